// Package bench is the load driver behind cmd/bench: a closed loop of sagas
// in flight against real worker processes, with latency measured from the
// start of a saga to its final event.
package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/wiring"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Options of one run.
type Options struct {
	Workers  int
	Sagas    int
	InFlight int
	HTTP     bool
	Mix      bool
	Mode     string
	RedisURL string
	// Cluster > 0 starts a Redis Cluster of that many masters instead of
	// one redis-server; Partitions sets SAGA_PARTITIONS (default 4 per
	// master on a cluster, 1 otherwise).
	Cluster    int
	Partitions int
	JSON       bool
	Verbose    bool     // print Redis time per command
	WorkerEnv  []string // added to the workers' environment
}

// Result of one run. Per-saga figures count the measured sagas (warm-up
// excluded), except memory, which counts every saga the run kept.
type Result struct {
	Mode         string  `json:"mode"`
	Workers      int     `json:"workers"`
	InFlight     int     `json:"inflight"`
	Sagas        int     `json:"sagas"`
	Seconds      float64 `json:"seconds"`
	SagasPerSec  float64 `json:"sagas_per_sec"`
	P50ms        float64 `json:"p50_ms"`
	P90ms        float64 `json:"p90_ms"`
	P99ms        float64 `json:"p99_ms"`
	Maxms        float64 `json:"max_ms"`
	Completed    int     `json:"completed"`
	Compensated  int     `json:"compensated"`
	Failed       int64   `json:"failed"`
	PendingAfter int64   `json:"pending_after"`
	// RedisCmdsPerSaga sums INFO commandstats, script internals included.
	RedisCmdsPerSaga float64 `json:"redis_cmds_per_saga"`
	// RedisRoundtripsPerSaga counts read events on Redis's client sockets
	// (total_reads_processed): a pipeline that arrives at once is one.
	RedisRoundtripsPerSaga float64 `json:"redis_roundtrips_per_saga"`
	// RedisUsPerSaga is Redis's own time in commands (commandstats usec).
	RedisUsPerSaga float64 `json:"redis_us_per_saga"`
	// AvgReadBatch is entries acknowledged per XREADGROUP call.
	AvgReadBatch float64 `json:"avg_read_batch"`
	// RedisBytesPerSaga is used_memory per finished saga once the streams
	// are trimmed: what stays for SAGA_RETENTION (default 7 days).
	RedisBytesPerSaga float64 `json:"redis_bytes_per_saga"`
	// RedisBytesPerSagaUntrimmed also counts the stream entries, which stay
	// for STREAM_RETENTION (default 1 h).
	RedisBytesPerSagaUntrimmed float64 `json:"redis_bytes_per_saga_untrimmed"`
	// CPUusPerSaga is CPU microseconds per saga by process kind: redis,
	// workers (all of them), driver (this process: load and, with -http,
	// the API).
	CPUusPerSaga map[string]float64 `json:"cpu_us_per_saga"`
	// RedisCPUusPerSagaByMaster is Redis's CPU per saga on each master of a
	// cluster (-cluster), by address: how the load divides.
	RedisCPUusPerSagaByMaster map[string]float64 `json:"redis_cpu_us_per_saga_by_master,omitempty"`
	// perCommand is Redis calls and time per command, for -v.
	perCommand map[string][2]int64
	start      snapshot // counters when the measured part began
}

// rig is what a run drives: Redis, the worker processes and the way a saga
// is started.
type rig struct {
	rdb     redis.UniversalClient
	ks      saga.Keys
	engine  *saga.Engine
	place   placeFunc
	pids    []int
	cleanup []func()
}

func (r *rig) close() {
	for _, f := range slices.Backward(r.cleanup) {
		f()
	}
}

// newRig starts Redis (unless o.RedisURL), the workers and the placer. It
// fills in o's defaults.
func newRig(ctx context.Context, o *Options) (_ *rig, err error) {
	if o.Mode == "" {
		o.Mode = event.ModeChoreography
	}
	r := &rig{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	url := o.RedisURL
	var clusterAddrs []string
	switch {
	case o.Cluster > 0:
		c, err := redistest.StartCluster(o.Cluster, "")
		if err != nil {
			return nil, err
		}
		r.cleanup = append(r.cleanup, c.Close)
		clusterAddrs = c.Addrs()
		url = "redis://" + clusterAddrs[0] + "/0"
	case url == "":
		srv, err := redistest.Start(redistest.Options{})
		if err != nil {
			return nil, err
		}
		r.cleanup = append(r.cleanup, srv.Close)
		url = srv.URL()
	}
	partitions := o.Partitions
	if partitions <= 0 {
		partitions = max(4*o.Cluster, 1)
	}
	prefix := "bench" + strings.TrimPrefix(redistest.Prefix(), "t")
	env := map[string]string{"REDIS_URL": url, "SAGA_PREFIX": prefix, "LOG_LEVEL": "error", "SAGA_MODE": o.Mode,
		"SAGA_PARTITIONS": strconv.Itoa(partitions)}
	if len(clusterAddrs) > 0 {
		env["REDIS_CLUSTER_ADDRS"] = strings.Join(clusterAddrs, ",")
	}
	cfg, err := config.LoadFrom(env)
	if err != nil {
		return nil, err
	}
	rdb, err := streams.Connect(url, streams.ClientOptions{PoolSize: o.InFlight + 16, Name: "bench", ClusterAddrs: clusterAddrs})
	if err != nil {
		return nil, err
	}
	r.rdb = rdb
	r.cleanup = append(r.cleanup, func() { rdb.Close() })
	product, err := wiring.New(rdb, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, err
	}
	engine := product.Engine
	r.engine = engine
	r.ks = engine.Keys()
	inv := product.Services.Inventory()
	if err := inv.Set(ctx, "sku-1", 1_000_000_000); err != nil {
		return nil, err
	}
	procs, err := startWorkers(*o, env)
	if err != nil {
		return nil, err
	}
	r.cleanup = append(r.cleanup, func() { stopWorkers(procs) })
	for _, p := range procs {
		r.pids = append(r.pids, p.Process.Pid)
	}
	place, stop, err := placer(ctx, *o, cfg, product.Orders)
	if err != nil {
		return nil, err
	}
	r.place = place
	r.cleanup = append(r.cleanup, stop)
	if err := waitForGroups(ctx, rdb, r.engine); err != nil {
		return nil, err
	}
	return r, nil
}

// Run runs one benchmark and prints its result.
func Run(ctx context.Context, o Options, out io.Writer) error {
	r, err := newRig(ctx, &o)
	if err != nil {
		return err
	}
	defer r.close()
	rdb, ks, place, pids := r.rdb, r.ks, r.place, r.pids
	before, err := readRedisStats(ctx, rdb)
	if err != nil {
		return err
	}
	snap := func() (snapshot, error) { return takeSnapshot(ctx, rdb, pids) }
	res, err := drive(ctx, o, rdb, ks, place, snap)
	if err != nil {
		return err
	}
	// The last sagas' finalizers may still run: wait for them, then read
	// the counters, so every measured saga is counted whole.
	res.PendingAfter = waitNoPending(ctx, rdb, ks, 10*time.Second)
	end, err := snap()
	if err != nil {
		return err
	}
	res.account(end)
	if res.Failed, err = countStatus(ctx, rdb, ks, saga.StatusFailed); err != nil {
		return err
	}
	if err := res.measureMemory(ctx, rdb, ks, before.memory, o.Sagas); err != nil {
		return err
	}
	res.print(o, out)
	if res.PendingAfter != 0 {
		return fmt.Errorf("%d entries still pending after the run", res.PendingAfter)
	}
	if unfinished, err := countStatus(ctx, rdb, ks, saga.StatusInProgress, saga.StatusCompensating); err != nil || unfinished > 0 {
		return fmt.Errorf("%d sagas did not finish (err %v)", unfinished, err)
	}
	return nil
}

func startWorkers(o Options, env map[string]string) ([]*exec.Cmd, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var procs []*exec.Cmd
	for i := range o.Workers {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), o.WorkerEnv...)
		cmd.Env = append(cmd.Env, "STREAMSAGA_BENCH_WORKER="+strconv.Itoa(i))
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			stopWorkers(procs)
			return nil, err
		}
		procs = append(procs, cmd)
	}
	return procs, nil
}

func stopWorkers(procs []*exec.Cmd) {
	for _, p := range procs {
		_ = p.Process.Signal(os.Interrupt)
	}
	for _, p := range procs {
		_ = p.Wait()
	}
}

// waitForGroups waits until the workers have created their consumer groups,
// so the first sagas do not wait on a worker's start-up.
func waitForGroups(ctx context.Context, rdb redis.UniversalClient, engine *saga.Engine) error {
	ks := engine.Keys()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ready := true
		for p := range ks.Partitions {
			for group, types := range engine.Groups() {
				for _, typ := range types {
					groups, _ := rdb.XInfoGroups(ctx, ks.Stream(p, typ)).Result()
					if !slices.ContainsFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == group }) {
						ready = false
					}
				}
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the workers did not create their consumer groups within 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitNoPending polls until no group has a pending entry or a lag, and
// returns the pending entries left when it gives up (-1 when Redis could
// not be read).
func waitNoPending(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, limit time.Duration) int64 {
	deadline := time.Now().Add(limit)
	for {
		pending, lag := int64(-1), int64(0)
		if infos, err := inspectAll(ctx, rdb, ks); err == nil {
			pending = 0
			for _, si := range infos {
				for _, g := range si.Groups {
					pending += g.Pending
					lag += g.Lag
				}
			}
		}
		if (pending == 0 && lag == 0) || time.Now().After(deadline) {
			return pending
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// messageTypes are the order saga's streams (the bench runs only it).
var messageTypes = wiring.Shape("saga", 1).MessageTypes()

// inspectAll reads the length and groups of every event stream.
func inspectAll(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys) ([]streams.StreamInfo, error) {
	var keys []string
	for p := range ks.Partitions {
		for _, typ := range messageTypes {
			keys = append(keys, ks.Stream(p, typ))
		}
	}
	return streams.Inspect(ctx, rdb, keys)
}

func countStatus(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, statuses ...string) (int64, error) {
	var n int64
	for p := range ks.Partitions {
		for _, s := range statuses {
			c, err := rdb.ZCard(ctx, ks.Index(p, s)).Result()
			if err != nil {
				return 0, fmt.Errorf("count %s: %w", s, err)
			}
			n += c
		}
	}
	return n, nil
}

// account turns the counters' deltas over the measured part into per-saga
// figures.
func (r *Result) account(end snapshot) {
	n := float64(r.Sagas)
	d := func(a, b int64) float64 { return float64(a-b) / n }
	start := r.start
	r.RedisCmdsPerSaga = d(end.redis.calls, start.redis.calls)
	r.RedisRoundtripsPerSaga = d(end.redis.reads, start.redis.reads)
	r.perCommand = map[string][2]int64{}
	var usec int64
	for cmd, v := range end.redis.perCommand {
		w := start.redis.perCommand[cmd]
		r.perCommand[cmd] = [2]int64{v[0] - w[0], v[1] - w[1]}
		usec += v[1] - w[1]
	}
	r.RedisUsPerSaga = float64(usec) / n
	if reads := r.perCommand["xreadgroup"][0]; reads > 0 {
		r.AvgReadBatch = float64(r.perCommand["xack"][0]) / float64(reads)
	}
	us := func(a, b time.Duration) float64 { return float64((a - b).Microseconds()) / n }
	r.CPUusPerSaga = map[string]float64{
		"redis":   us(end.cpu.redis, start.cpu.redis),
		"workers": us(end.cpu.workers, start.cpu.workers),
		"driver":  us(end.cpu.driver, start.cpu.driver),
	}
	for addr, cpu := range end.redis.masterCPU {
		if r.RedisCPUusPerSagaByMaster == nil {
			r.RedisCPUusPerSagaByMaster = map[string]float64{}
		}
		r.RedisCPUusPerSagaByMaster[addr] = us(cpu, start.redis.masterCPU[addr])
	}
}

// measureMemory reports used_memory per saga, with the streams as they are,
// then trimmed of everything every group has acknowledged: what remains is
// what SAGA_RETENTION keeps.
func (r *Result) measureMemory(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, before int64, sagas int) error {
	mem := func() (int64, error) {
		s, err := readRedisStats(ctx, rdb)
		return s.memory, err
	}
	untrimmed, err := mem()
	if err != nil {
		return err
	}
	for p := range ks.Partitions {
		for _, typ := range messageTypes {
			if _, err := streams.Trim(ctx, rdb, ks.Stream(p, typ), 0); err != nil {
				return err
			}
		}
	}
	trimmed, err := mem()
	if err != nil {
		return err
	}
	r.RedisBytesPerSagaUntrimmed = float64(untrimmed-before) / float64(sagas)
	r.RedisBytesPerSaga = float64(trimmed-before) / float64(sagas)
	return nil
}

func (r *Result) print(o Options, out io.Writer) {
	if o.JSON {
		b, _ := json.Marshal(r)
		fmt.Fprintln(out, string(b))
		return
	}
	fmt.Fprintf(out, "%s, %d workers, %d in flight: %d sagas in %.2fs = %.0f sagas/s; p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms\n",
		r.Mode, r.Workers, r.InFlight, r.Sagas, r.Seconds, r.SagasPerSec, r.P50ms, r.P90ms, r.P99ms, r.Maxms)
	fmt.Fprintf(out, "  completed %d, compensated %d, failed %d, pending after %d\n", r.Completed, r.Compensated, r.Failed, r.PendingAfter)
	fmt.Fprintf(out, "  per saga: %.1f Redis commands, %.1f round trips, %.0f µs in Redis commands, %.0f B kept (%.0f B untrimmed); read batch %.1f\n",
		r.RedisCmdsPerSaga, r.RedisRoundtripsPerSaga, r.RedisUsPerSaga, r.RedisBytesPerSaga, r.RedisBytesPerSagaUntrimmed, r.AvgReadBatch)
	fmt.Fprintf(out, "  CPU µs per saga: redis %.0f, workers %.0f, driver %.0f\n", r.CPUusPerSaga["redis"], r.CPUusPerSaga["workers"], r.CPUusPerSaga["driver"])
	if len(r.RedisCPUusPerSagaByMaster) > 0 {
		fmt.Fprint(out, "  Redis CPU µs per saga by master:")
		for _, addr := range slices.Sorted(maps.Keys(r.RedisCPUusPerSagaByMaster)) {
			fmt.Fprintf(out, " %s %.0f", addr, r.RedisCPUusPerSagaByMaster[addr])
		}
		fmt.Fprintln(out)
	}
	if o.Verbose {
		cmds := slices.SortedFunc(maps.Keys(r.perCommand), func(a, b string) int { return cmp.Compare(r.perCommand[b][1], r.perCommand[a][1]) })
		for _, c := range cmds {
			v := r.perCommand[c]
			if v[0] == 0 {
				continue
			}
			fmt.Fprintf(out, "  %-14s %6.2f calls/saga %6.1f µs/saga %5.2f µs/call\n", c, float64(v[0])/float64(r.Sagas), float64(v[1])/float64(r.Sagas), float64(v[1])/float64(v[0]))
		}
	}
}

type placeFunc func(ctx context.Context, i int) (sagaID string, err error)

// placer returns how one saga is started: through the order service (the
// code POST /orders runs) or through the HTTP API.
func placer(ctx context.Context, o Options, cfg *config.Config, orders *handlers.Orders) (placeFunc, func(), error) {
	items := func(i int) []handlers.Item {
		if o.Mix && i%10 == 9 {
			return []handlers.Item{{SKU: "sku-1", Quantity: 1, UnitPriceCents: 500000}} // declined
		}
		return []handlers.Item{{SKU: "sku-1", Quantity: 1, UnitPriceCents: 1250}}
	}
	if !o.HTTP {
		return func(ctx context.Context, i int) (string, error) {
			p, err := orders.Place(ctx, handlers.PlaceRequest{CustomerID: "bench", Items: items(i)})
			return p.SagaID, err
		}, func() {}, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = api.Serve(actx, ln, cfg, config.NewLogger("error", os.Stderr)); close(done) }()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.InFlight}}
	base := "http://" + ln.Addr().String() + "/orders"
	return func(ctx context.Context, i int) (string, error) {
			body, _ := json.Marshal(map[string]any{"customer_id": "bench", "items": items(i)})
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base, strings.NewReader(string(body)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return "", err
			}
			defer resp.Body.Close()
			var a struct {
				SagaID string `json:"saga_id"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil || resp.StatusCode != http.StatusAccepted {
				return "", fmt.Errorf("POST /orders: %d %v", resp.StatusCode, err)
			}
			return a.SagaID, nil
		}, func() {
			cancel()
			<-done
		}, nil
}

// drive runs the closed loop and measures.
func drive(ctx context.Context, o Options, rdb redis.UniversalClient, ks saga.Keys, place placeFunc, snap func() (snapshot, error)) (*Result, error) {
	var mu sync.Mutex
	waiting := map[string]chan string{}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchErr := make(chan error, 1)
	go func() { watchErr <- watch(wctx, rdb, ks, &mu, waiting) }()

	warm := max(o.Sagas/10, 1)
	latencies := make([]time.Duration, o.Sagas)
	outcomes := make([]string, o.Sagas)
	next := make(chan int)
	var wg sync.WaitGroup
	var firstErr error
	var errOnce sync.Once
	var measuredStart time.Time
	var startSnap snapshot
	var startOnce sync.Once
	begin := func() {
		startOnce.Do(func() {
			var err error
			if startSnap, err = snap(); err != nil {
				errOnce.Do(func() { firstErr = err })
			}
			measuredStart = time.Now()
		})
	}
	for range o.InFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if i == warm {
					begin()
				}
				began := time.Now()
				// Register before placing: the final event can arrive before
				// Place returns.
				ch := make(chan string, 1)
				sagaID, err := placeAndWait(ctx, place, i, &mu, waiting, ch)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					continue
				}
				select {
				case outcomes[i] = <-ch:
					latencies[i] = time.Since(began)
				case <-time.After(60 * time.Second):
					errOnce.Do(func() { firstErr = fmt.Errorf("saga %s did not finish in 60s", sagaID) })
				}
			}
		}()
	}
	for i := range o.Sagas {
		if i == warm {
			begin()
		}
		select {
		case next <- i:
		case <-ctx.Done():
			close(next)
			wg.Wait()
			return nil, ctx.Err()
		}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(measuredStart)
	stopWatch()
	if err := <-watchErr; err != nil && !errors.Is(err, context.Canceled) {
		return nil, err
	}
	if firstErr != nil {
		return nil, firstErr
	}
	measured := slices.Clone(latencies[warm:])
	slices.Sort(measured)
	pct := func(p float64) float64 {
		return float64(measured[min(int(p*float64(len(measured))), len(measured)-1)].Microseconds()) / 1000
	}
	mode := o.Mode
	if o.HTTP {
		mode += " via HTTP"
	}
	r := &Result{Mode: mode, Workers: o.Workers, InFlight: o.InFlight, Sagas: len(measured), Seconds: elapsed.Seconds(),
		SagasPerSec: float64(len(measured)) / elapsed.Seconds(), P50ms: pct(0.5), P90ms: pct(0.9), P99ms: pct(0.99), Maxms: pct(1),
		start: startSnap}
	for _, s := range outcomes {
		switch s {
		case handlers.OrderCompleted:
			r.Completed++
		case handlers.OrderCancelled:
			r.Compensated++
		}
	}
	return r, nil
}

func placeAndWait(ctx context.Context, place placeFunc, i int, mu *sync.Mutex, waiting map[string]chan string, ch chan string) (string, error) {
	// The saga id is known only once Place returns, so the watcher buffers
	// final events of unknown sagas for a moment (see watch).
	sagaID, err := place(ctx, i)
	if err != nil {
		return "", err
	}
	mu.Lock()
	if early, ok := waiting[sagaID]; ok && early != nil {
		// Finished before we registered: the watcher parked the outcome.
		ch <- <-early
		delete(waiting, sagaID)
	} else {
		waiting[sagaID] = ch
	}
	mu.Unlock()
	return sagaID, nil
}

// watch follows the final events and hands each saga's outcome to its
// waiter; an outcome that arrives before its waiter registered is parked.
// One reader per partition: on a cluster, one XREAD must stay in one slot.
func watch(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys, mu *sync.Mutex, waiting map[string]chan string) error {
	deliver := func(sagaID, typ string) {
		mu.Lock()
		defer mu.Unlock()
		if ch, ok := waiting[sagaID]; ok {
			ch <- typ
			delete(waiting, sagaID)
			return
		}
		parked := make(chan string, 1)
		parked <- typ
		waiting[sagaID] = parked
	}
	g, gctx := errgroup.WithContext(ctx)
	for p := range ks.Partitions {
		finals := []string{ks.Stream(p, handlers.OrderCompleted), ks.Stream(p, handlers.OrderCancelled)}
		g.Go(func() error { return watchStreams(gctx, rdb, finals, deliver) })
	}
	return g.Wait()
}

func watchStreams(ctx context.Context, rdb redis.UniversalClient, names []string, deliver func(sagaID, typ string)) error {
	last := make([]string, len(names))
	for i := range last {
		last[i] = "0"
	}
	for ctx.Err() == nil {
		res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: append(slices.Clone(names), last...), Count: 1000, Block: 100 * time.Millisecond}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("watch final events: %w", err)
		}
		for _, s := range res {
			idx := slices.Index(names, s.Stream)
			for _, m := range s.Messages {
				last[idx] = m.ID
				sagaID, _ := m.Values[event.FieldSagaID].(string)
				typ, _ := m.Values[event.FieldType].(string)
				deliver(sagaID, typ)
			}
		}
	}
	return nil
}
