package chaos

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

// Options of a chaos run.
type Options struct {
	Scenarios []string      // names to run; empty runs them all
	Duration  time.Duration // load (and faults) per scenario
	Rate      float64       // orders per second
	Workers   int
	Mode      string // saga style
	Dir       string // logs and ledgers; a temporary directory when empty
	Seed      uint64
	Out       io.Writer
}

// Result is what one scenario found.
type Result struct {
	Scenario     string         `json:"scenario"`
	Rows         string         `json:"rows"`
	Acked        int            `json:"acknowledged"`
	Lost         int            `json:"lost"`
	Duplicated   int            `json:"duplicated"`
	Retries      int64          `json:"retried_requests"`
	GaveUp       int64          `json:"gave_up"`
	ByStatus     map[string]int `json:"by_status"`
	Charges      int64          `json:"charges"`
	Refunds      int64          `json:"refunds"`
	NetCents     int64          `json:"net_cents"`
	StockDiff    int64          `json:"stock_difference"`
	Pending      int64          `json:"groups_not_at_rest"`
	DeadLetters  int64          `json:"dead_letters"`
	Alerts       int64          `json:"alerts"`
	Faults       map[string]int `json:"faults"`
	Problems     []string       `json:"problems,omitempty"`
	Seconds      float64        `json:"seconds"`
	LossAccepted bool           `json:"loss_accepted,omitempty"`
}

// OK reports whether every invariant held.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// harness is one scenario's system: Redis, a proxy in front of it for the
// workers, the API and the workers, all real processes; each worker reaches Redis through a
// proxy of its own.
type harness struct {
	o       Options
	sc      scenario
	dir     string
	bin     string
	redis   *redistest.Server
	proxies []*proxy // one per worker, between it and Redis
	api     *proc
	workers []*proc
	rdb     *redis.Client
	ks      saga.Keys
	rng     *rand.Rand
	apiURL  string

	mu     sync.Mutex
	faults map[string]int
	poison int
}

func (h *harness) count(kind string, n int) {
	h.mu.Lock()
	h.faults[kind] += n
	h.mu.Unlock()
}

// Run runs the chosen scenarios one after the other, each on a fresh Redis,
// and prints a summary line per scenario.
func Run(ctx context.Context, o Options) ([]Result, error) {
	if o.Workers < 3 {
		o.Workers = 3
	}
	dir := o.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "streamsaga-chaos-")
		if err != nil {
			return nil, err
		}
		dir = d
	}
	bin := filepath.Join(dir, "bin")
	fmt.Fprintf(o.Out, "building cmd/api and cmd/worker into %s\n", bin)
	if err := buildBinaries(bin); err != nil {
		return nil, err
	}
	var out []Result
	for i, sc := range scenarios() {
		if len(o.Scenarios) > 0 && !slices.Contains(o.Scenarios, sc.name) {
			continue
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("interrupted before scenario %s: %w", sc.name, ctx.Err())
		}
		h := &harness{o: o, sc: sc, dir: filepath.Join(dir, sc.name), bin: bin, faults: map[string]int{},
			rng: rand.New(rand.NewPCG(o.Seed, uint64(i)))}
		res, err := h.run(ctx)
		if err != nil {
			return out, fmt.Errorf("scenario %s: %w", sc.name, err)
		}
		printResult(o.Out, res)
		out = append(out, res)
	}
	return out, nil
}

func (h *harness) run(ctx context.Context) (res Result, err error) {
	began := time.Now()
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return res, err
	}
	defer h.shutdown()
	if err := h.startAll(ctx); err != nil {
		return res, err
	}
	lf, err := os.Create(filepath.Join(h.dir, "ledger.jsonl"))
	if err != nil {
		return res, err
	}
	defer lf.Close()
	l := &ledger{f: lf}
	fctx, stopFaults := context.WithCancel(ctx)
	var faultsDone sync.WaitGroup
	if h.sc.inject != nil {
		faultsDone.Add(1)
		go func() { defer faultsDone.Done(); h.sc.inject(fctx, h) }()
	}
	load(ctx, h.apiURL, h.sc.name, h.o.Rate, h.o.Duration, l)
	stopFaults()
	faultsDone.Wait()
	if err := h.heal(); err != nil {
		return res, err
	}
	if err := l.err(); err != nil {
		return res, err
	}
	res = h.check(ctx, l)
	res.Seconds = time.Since(began).Seconds()
	return res, nil
}

func (h *harness) startAll(ctx context.Context) error {
	var args []string
	if h.sc.redisArgs != nil {
		args = h.sc.redisArgs
	}
	rs, err := redistest.Start(redistest.Options{AOF: h.sc.aofOr("always"), Args: args})
	if err != nil {
		return err
	}
	h.redis = rs
	h.rdb = rs.Client()
	h.ks = saga.NewKeys("saga", 1)
	inv := handlers.NewInventory(h.rdb, h.ks)
	for sku, n := range initialStock {
		if err := inv.Set(ctx, sku, n); err != nil {
			return err
		}
	}
	port, err := redistest.FreePort()
	if err != nil {
		return err
	}
	h.apiURL = "http://127.0.0.1:" + strconv.Itoa(port)
	base := []string{"SAGA_PREFIX=saga", "LOG_LEVEL=warn", "CLAIM_MIN_IDLE=1s", "COMPENSATION_BACKOFF=50ms", "SAGA_MODE=" + h.o.Mode}
	for k, v := range h.sc.env {
		base = append(base, k+"="+v)
	}
	logFile := func(name string) (*os.File, error) { return os.Create(filepath.Join(h.dir, name+".log")) }
	alog, err := logFile("api")
	if err != nil {
		return err
	}
	h.api = &proc{name: "api", bin: filepath.Join(h.bin, "api"), log: alog,
		env: append(slices.Clone(base), "REDIS_URL="+rs.URL(), "HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port))}
	if err := h.api.start(); err != nil {
		return err
	}
	for i := range h.o.Workers {
		wlog, err := logFile(fmt.Sprintf("worker-%d", i))
		if err != nil {
			return err
		}
		px, err := newProxy(rs.Addr())
		if err != nil {
			return err
		}
		h.proxies = append(h.proxies, px)
		w := &proc{name: fmt.Sprintf("worker-%d", i), bin: filepath.Join(h.bin, "worker"), log: wlog,
			env: append(slices.Clone(base), "REDIS_URL=redis://"+px.addr()+"/0")}
		if err := w.start(); err != nil {
			return err
		}
		h.workers = append(h.workers, w)
	}
	return h.waitReady(30 * time.Second)
}

func (h *harness) waitReady(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(h.apiURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the API did not become ready (see %s)", filepath.Join(h.dir, "api.log"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// heal ends every fault: processes resumed or started again, Redis up, the
// network clean.
func (h *harness) heal() error {
	for _, p := range h.proxies {
		p.latency.Store(0)
		p.blackhole.Store(false)
	}
	if h.redis.Exited() {
		if err := h.redis.Restart(); err != nil {
			return fmt.Errorf("restart redis: %w", err)
		}
	} else {
		_ = h.redis.Signal(syscall.SIGCONT)
	}
	for _, p := range append([]*proc{h.api}, h.workers...) {
		p.signal(syscall.SIGCONT)
		if p.exited() {
			if err := p.start(); err != nil {
				return err
			}
		}
	}
	return h.waitReady(30 * time.Second)
}

func (h *harness) shutdown() {
	for _, p := range append([]*proc{h.api}, h.workers...) {
		if p != nil {
			p.stop()
			p.log.Close()
		}
	}
	for _, p := range h.proxies {
		p.close()
	}
	if h.rdb != nil {
		h.rdb.Close()
	}
	if h.redis != nil {
		h.redis.Close()
	}
}

// check waits for every saga to end, then checks C1–C8.
func (h *harness) check(ctx context.Context, l *ledger) Result {
	res := Result{Scenario: h.sc.name, Rows: h.sc.rows, Faults: h.faults, Retries: l.retries.Load(), GaveUp: l.gaveUp.Load(),
		LossAccepted: h.sc.allowLoss}
	fail := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	c := sagatest.NewChecker(h.rdb, h.ks.Prefix)
	orders := l.snapshot()
	res.Acked = len(orders)
	// C1: every acknowledged order exists.
	var present []sagatest.Placed
	for _, o := range orders {
		n, err := h.rdb.Exists(ctx, h.ks.Record(h.ks.PartitionOf(o.OrderID), "order", o.OrderID)).Result()
		if err != nil {
			fail("read order %s: %v", o.OrderID, err)
			return res
		}
		if n == 0 {
			res.Lost++
			continue
		}
		p := sagatest.Placed{OrderID: o.OrderID, SagaID: o.SagaID, Want: sagatest.Cancelled}
		if o.Kind == "happy" {
			p.Want = sagatest.Completed
		}
		if h.sc.timeouts {
			// Where steps are slower than their timeout by design, any saga
			// may be compensated, and a compensation that keeps timing out
			// ends FAILED with an alert (the checker requires the alert).
			p.Want = ""
		}
		for _, it := range o.Items {
			p.Items = append(p.Items, sagatest.Item{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents})
		}
		present = append(present, p)
	}
	if res.Lost > 0 && !h.sc.allowLoss {
		fail("C1: %d acknowledged orders lost", res.Lost)
	}
	if res.Acked == 0 {
		fail("no order was acknowledged: the scenario tested nothing")
	}
	if h.sc.inject != nil && len(h.faults) == 0 {
		fail("no fault was injected: the scenario tested nothing")
	}
	for _, p := range append([]*proc{h.api}, h.workers...) {
		res.Problems = append(res.Problems, p.crashed()...)
	}
	if l.gaveUp.Load() > 0 {
		fail("%d orders never acknowledged within 90 s of the load's end", l.gaveUp.Load())
	}
	// C2: every saga ends.
	deadline := time.Now().Add(120 * time.Second)
	for {
		n, err := c.Unfinished(ctx, present)
		if err == nil && n == 0 {
			break
		}
		if time.Now().After(deadline) {
			fail("C2: %d sagas not terminal 120 s after the faults stopped (err %v)", n, err)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// An entry whose reply a fault swallowed waits CLAIM_MIN_IDLE for its
	// reclaim, and a duplicate may still be on its way: give both time
	// before C6 checks that everything was read and acknowledged.
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if p, _, err := c.AtRest(ctx); err == nil && len(p) == 0 {
			break
		}
	}
	// C5: one order per Idempotency-Key: the orders in Redis are exactly
	// the acknowledged ones still present.
	var stored int
	iter := h.rdb.Scan(ctx, 0, h.ks.Prefix+":{*}:order:*", 1000).Iterator()
	for iter.Next(ctx) {
		stored++
	}
	if res.Duplicated = stored - len(present); res.Duplicated > 0 {
		fail("C5: %d orders in Redis that no acknowledged key accounts for", res.Duplicated)
	}
	// C3, C4, C6 and each order's outcome by its kind: the independent
	// checker, from what the harness itself sent.
	rep, err := c.Check(ctx, present, initialStock)
	if err != nil {
		fail("check: %v", err)
		return res
	}
	res.ByStatus = rep.ByStatus
	res.Problems = append(res.Problems, rep.Problems...)
	if t, err := h.rdb.HGetAll(ctx, h.ks.Shared("payment", "totals")).Result(); err == nil {
		n := func(k string) int64 { v, _ := strconv.ParseInt(t[k], 10, 64); return v }
		res.Charges, res.Refunds, res.NetCents = n("charges"), n("refunds"), n("charged_cents")-n("refunded_cents")
	}
	completedUnits := map[string]int64{}
	if outcomes, err := c.Outcomes(ctx, present); err == nil {
		for i, o := range present {
			if outcomes[i] == sagatest.Completed {
				for _, it := range o.Items {
					completedUnits[it.SKU] += it.Quantity
				}
			}
		}
	}
	for sku, n := range initialStock {
		a, _ := h.rdb.HGet(ctx, h.ks.Shared("inventory", "available"), sku).Int64()
		r, _ := h.rdb.HGet(ctx, h.ks.Shared("inventory", "reserved"), sku).Int64()
		res.StockDiff += abs(n-completedUnits[sku]-a) + abs(r)
	}
	if problems, _, err := c.AtRest(ctx); err == nil {
		res.Pending = int64(len(problems))
	}
	// C7, C8: dead letters and alerts.
	dead, err := h.rdb.XRange(ctx, h.ks.DeadLetter(0), "-", "+").Result()
	if err != nil {
		fail("read dead letters: %v", err)
	}
	res.DeadLetters = int64(len(dead))
	poison := 0
	for _, d := range dead {
		if reason, _ := d.Values["error"].(string); strings.Contains(reason, "deleted while pending") {
			fail("C8: an entry was lost while pending (%s)", reason)
		}
		if id, _ := d.Values["event_id"].(string); id == "poison" {
			poison++
		}
	}
	if poison != h.poison {
		fail("C7: %d poison entries injected, %d of them dead-lettered", h.poison, poison)
	}
	if other := len(dead) - poison; other > 0 {
		fail("C7: %d dead letters besides the poison: a fault was not absorbed by redelivery", other)
	}
	if h.sc.verify != nil {
		res.Problems = append(res.Problems, h.sc.verify(ctx, h)...)
	}
	res.Alerts, _ = h.rdb.XLen(ctx, h.ks.Alerts(0)).Result()
	if failed := int64(rep.ByStatus[sagatest.Failed]); failed > res.Alerts {
		fail("C7: %d FAILED sagas but %d alerts", failed, res.Alerts)
	}
	return res
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

func printResult(w io.Writer, r Result) {
	verdict := "PASS"
	if !r.OK() {
		verdict = "FAIL"
	}
	kinds := slices.Sorted(maps.Keys(r.Faults))
	var faults []string
	for _, k := range kinds {
		faults = append(faults, fmt.Sprintf("%s=%d", k, r.Faults[k]))
	}
	fmt.Fprintf(w, "%-20s %s  rows %-8s acknowledged %5d lost %d duplicated %d (retried %d)  %v  charges %d refunds %d net %d¢  stock diff %d  not at rest %d  dead letters %d  alerts %d  faults [%s]  %.0fs\n",
		r.Scenario, verdict, r.Rows, r.Acked, r.Lost, r.Duplicated, r.Retries, r.ByStatus, r.Charges, r.Refunds, r.NetCents,
		r.StockDiff, r.Pending, r.DeadLetters, r.Alerts, strings.Join(faults, " "), r.Seconds)
	for _, p := range r.Problems {
		fmt.Fprintf(w, "    %s\n", p)
	}
}
