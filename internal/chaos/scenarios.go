package chaos

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/wiring"
	"github.com/streamsaga/streamsaga/streams"
)

// scenario is one kind of fault, injected during the load. The rows are
// those of the fault matrix in RELIABILITY.md (b).
type scenario struct {
	name, rows string
	aof        string            // appendfsync; "always" when empty
	redisArgs  []string          // extra redis-server arguments
	env        map[string]string // API and workers
	allowLoss  bool              // acknowledged orders may be lost (everysec)
	timeouts   bool              // sagas may time out and compensate by design
	inject     func(ctx context.Context, h *harness)
	// verify checks what is particular to the scenario, at rest.
	verify func(ctx context.Context, h *harness) []string
}

func (s scenario) aofOr(def string) string {
	if s.aof == "" {
		return def
	}
	return s.aof
}

// Names lists the scenarios in the order they run.
func Names() []string {
	var out []string
	for _, s := range scenarios() {
		out = append(out, s.name)
	}
	return out
}

// action injects one fault and undoes it when it is a pause.
type action func(ctx context.Context, h *harness)

func killWorker(ctx context.Context, h *harness) {
	w := h.workers[h.rng.IntN(len(h.workers))]
	w.kill()
	h.count("worker SIGKILL", 1)
	sleep(ctx, 300*time.Millisecond)
	_ = w.start()
}

func killRedis(ctx context.Context, h *harness) {
	h.redis.Kill()
	h.count("redis SIGKILL", 1)
	sleep(ctx, 500*time.Millisecond)
	_ = h.redis.Restart()
}

func restartRedis(ctx context.Context, h *harness) {
	h.redis.Shutdown()
	h.count("redis clean restart", 1)
	sleep(ctx, 500*time.Millisecond)
	_ = h.redis.Restart()
}

func pauseRedis(ctx context.Context, h *harness) {
	_ = h.redis.Signal(syscall.SIGSTOP)
	h.count("redis SIGSTOP", 1)
	sleep(ctx, time.Duration(1000+h.rng.IntN(2000))*time.Millisecond)
	_ = h.redis.Signal(syscall.SIGCONT)
}

// pauseWorker stops a worker longer than CLAIM_MIN_IDLE: a zombie whose
// entries others reclaim.
func pauseWorker(ctx context.Context, h *harness) {
	w := h.workers[h.rng.IntN(len(h.workers))]
	w.signal(syscall.SIGSTOP)
	h.count("worker SIGSTOP", 1)
	sleep(ctx, time.Duration(1500+h.rng.IntN(1500))*time.Millisecond)
	w.signal(syscall.SIGCONT)
}

func flakyNetwork(ctx context.Context, h *harness) {
	p := h.proxies[h.rng.IntN(len(h.proxies))]
	if h.rng.IntN(3) == 0 {
		h.count("connections reset", p.resetAll(0.5))
		return
	}
	lat := []time.Duration{0, 5 * time.Millisecond, 50 * time.Millisecond, 200 * time.Millisecond}[h.rng.IntN(4)]
	p.latency.Store(int64(lat))
	h.count("latency change", 1)
}

// partition cuts one worker off Redis for longer than CLAIM_MIN_IDLE: its
// connections stay open but nothing crosses them; what it sent meanwhile
// arrives when the partition heals.
func partition(ctx context.Context, h *harness) {
	p := h.proxies[h.rng.IntN(len(h.proxies))]
	p.blackhole.Store(true)
	h.count("worker partitioned", 1)
	sleep(ctx, time.Duration(2000+h.rng.IntN(2000))*time.Millisecond)
	p.blackhole.Store(false)
}

// memoryPressure sets maxmemory just above what Redis uses (noeviction):
// writes fail with OOM for a while, the API answers 503, workers retry.
func memoryPressure(ctx context.Context, h *harness) {
	used, err := h.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return
	}
	var mem int64
	for _, line := range strings.Split(used, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			mem, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if mem == 0 || h.rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(mem+64<<10, 10)).Err() != nil {
		return
	}
	h.count("maxmemory squeezes", 1)
	sleep(ctx, time.Duration(1000+h.rng.IntN(1000))*time.Millisecond)
	_ = h.rdb.ConfigSet(context.WithoutCancel(ctx), "maxmemory", "0").Err()
}

func scenarios() []scenario {
	return []scenario{
		{name: "worker-sigkill", rows: "1,2", inject: repeat(500*time.Millisecond, 2*time.Second, killWorker)},
		{name: "redis-sigkill-always", rows: "3", inject: repeat(2*time.Second, 4*time.Second, killRedis)},
		{name: "redis-sigkill-everysec", rows: "4", aof: "everysec", allowLoss: true, inject: repeat(2*time.Second, 4*time.Second, killRedis)},
		{name: "redis-restart", rows: "6", inject: repeat(3*time.Second, 5*time.Second, restartRedis)},
		{name: "pause", rows: "7,8", inject: repeat(time.Second, 2*time.Second, pick(pauseRedis, pauseWorker))},
		{name: "network", rows: "9", inject: repeat(300*time.Millisecond, time.Second, flakyNetwork)},
		{name: "partition", rows: "10", inject: repeat(time.Second, 2*time.Second, partition)},
		{name: "duplicates", rows: "11", inject: repeat(100*time.Millisecond, 300*time.Millisecond, duplicateStorm)},
		{name: "late-success", rows: "13,14", timeouts: true, env: map[string]string{
			// A charge takes longer than its step may: the sweeper gives up
			// on it, compensates, and the late charge must be refunded.
			"PAYMENT_LATENCY": "1200ms", "SAGA_STEP_TIMEOUT": "1s", "CLAIM_MIN_IDLE": "4s",
		}},
		{name: "failing-compensation", rows: "15", env: map[string]string{
			"PAYMENT_REFUND_FAILURES": "2", "COMPENSATION_ATTEMPTS": "5",
		}},
		{name: "poison", rows: "16", inject: repeat(200*time.Millisecond, 500*time.Millisecond, injectPoison)},
		{name: "trim-while-paused", rows: "18", env: map[string]string{"STREAM_RETENTION": "0s"},
			inject: repeat(time.Second, 2*time.Second, trimWhilePaused)},
		// Killed workers leave consumers behind, some holding entries:
		// those are reclaimed first, and only then deleted.
		{name: "consumer-cleanup", rows: "19", env: map[string]string{"CONSUMER_IDLE": "1s"},
			inject: repeat(time.Second, 2*time.Second, killWorker), verify: consumersOfLiveWorkersOnly},
		{name: "memory-pressure", rows: "20", inject: repeat(time.Second, 3*time.Second, memoryPressure), verify: outOfMemoryHappened},
		{name: "api-sigkill", rows: "21", inject: repeat(700*time.Millisecond, 2*time.Second, func(ctx context.Context, h *harness) {
			h.api.kill()
			h.count("API SIGKILL", 1)
			sleep(ctx, 200*time.Millisecond)
			_ = h.api.start()
		})},
		{name: "mixed", rows: "24", inject: repeat(300*time.Millisecond, 1500*time.Millisecond,
			pick(killWorker, killRedis, pauseRedis, pauseWorker, flakyNetwork, partition, duplicateStorm))},
	}
}

// repeat runs a at random intervals between lo and hi during the load.
func repeat(lo, hi time.Duration, a action) func(context.Context, *harness) {
	return func(ctx context.Context, h *harness) { every(ctx, h, lo, hi, func() { a(ctx, h) }) }
}

// pick chooses one of the actions at random each time.
func pick(actions ...action) action {
	return func(ctx context.Context, h *harness) { actions[h.rng.IntN(len(actions))](ctx, h) }
}

func trimWhilePaused(ctx context.Context, h *harness) {
	for _, w := range h.workers {
		w.signal(syscall.SIGSTOP)
	}
	h.count("workers paused while trimming", 1)
	until := time.Now().Add(time.Second)
	for time.Now().Before(until) && ctx.Err() == nil {
		for _, typ := range orderSaga.MessageTypes() {
			if n, err := streams.Trim(ctx, h.rdb, h.ks.Stream(0, typ), 0); err == nil && n > 0 {
				h.count("entries trimmed", int(n))
			}
		}
		sleep(ctx, 100*time.Millisecond)
	}
	for _, w := range h.workers {
		w.signal(syscall.SIGCONT)
	}
}

// outOfMemoryHappened: the squeezes really made Redis refuse writes (with
// noeviction it cannot evict instead), so the scenario tested something.
func outOfMemoryHappened(ctx context.Context, h *harness) []string {
	info, err := h.rdb.Info(ctx, "errorstats").Result()
	if err != nil {
		return []string{"read INFO errorstats: " + err.Error()}
	}
	if !strings.Contains(info, "errorstat_OOM:count=") {
		return []string{"memory pressure never made Redis refuse a write"}
	}
	return nil
}

// consumersOfLiveWorkersOnly: once CONSUMER_IDLE has passed at rest, no
// group keeps more consumers than there are live workers (the killed
// workers' consumers were deleted, after their entries were reclaimed).
func consumersOfLiveWorkersOnly(ctx context.Context, h *harness) []string {
	var problems []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		problems = problems[:0]
		for group, types := range orderSaga.Groups() {
			for _, typ := range types {
				cs, err := h.rdb.XInfoConsumers(ctx, h.ks.Stream(0, typ), group).Result()
				if err != nil {
					problems = append(problems, fmt.Sprintf("XINFO CONSUMERS %s %s: %v", typ, group, err))
				} else if len(cs) > len(h.workers) {
					problems = append(problems, fmt.Sprintf("C6: %s/%s keeps %d consumers for %d live workers", typ, group, len(cs), len(h.workers)))
				}
			}
		}
		if len(problems) == 0 || time.Now().After(deadline) {
			return problems
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// orderSaga describes the order saga's groups and streams.
var orderSaga = wiring.Shape("saga", 1)

// duplicateStorm re-publishes entries already processed (same fields, so
// the same event id and saga version) and moves pending entries to another
// consumer, so that they are delivered twice.
func duplicateStorm(ctx context.Context, h *harness) {
	subs := orderSaga.Groups()
	types := subs[[]string{handlers.ServicePayment, handlers.ServiceInventory, handlers.ServiceShipping, handlers.ServiceOrder}[h.rng.IntN(4)]]
	stream := h.ks.Stream(0, types[h.rng.IntN(len(types))])
	msgs, err := h.rdb.XRevRangeN(ctx, stream, "+", "-", 20).Result()
	if err != nil || len(msgs) == 0 {
		return
	}
	for range 3 {
		m := msgs[h.rng.IntN(len(msgs))]
		if h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: m.Values}).Err() == nil {
			h.count("entries re-published", 1)
		}
	}
	for group, types := range subs {
		for _, typ := range types {
			s := h.ks.Stream(0, typ)
			pending, err := h.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s, Group: group, Start: "-", End: "+", Count: 3}).Result()
			if err != nil || len(pending) == 0 {
				continue
			}
			ids := make([]string, 0, len(pending))
			for _, p := range pending {
				ids = append(ids, p.ID)
			}
			if n, err := h.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: s, Group: group, Consumer: "thief", Messages: ids}).Result(); err == nil {
				h.count("pending entries stolen", len(n))
			}
		}
	}
}

// injectPoison writes entries no handler can take: missing fields, data that
// is not JSON, an event type that does not belong on the stream, a body of
// one megabyte. order.created has one reader (payment), so each is one dead
// letter.
func injectPoison(ctx context.Context, h *harness) {
	stream := h.ks.Stream(0, handlers.OrderCreated)
	base := map[string]any{"event_id": "poison", "type": handlers.OrderCreated, "saga_id": "poison-saga", "saga_mode": "choreography",
		"saga_version": "1", "causation_id": "", "occurred_at": "2026-01-01T00:00:00Z", "data": `{"order":{}}`}
	variants := []func(map[string]any){
		func(v map[string]any) { delete(v, "saga_id") },
		func(v map[string]any) { v["data"] = "not json {" },
		func(v map[string]any) { v["type"] = handlers.PaymentCompleted },
		func(v map[string]any) { v["data"] = `{"blob":"` + strings.Repeat("x", 1<<20) + `"}` },
		func(v map[string]any) { v["saga_version"] = "minus one" },
	}
	v := map[string]any{}
	for k, x := range base {
		v[k] = x
	}
	variants[h.rng.IntN(len(variants))](v)
	if h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v}).Err() == nil {
		h.mu.Lock()
		h.poison++
		h.mu.Unlock()
		h.count("poison entries", 1)
	}
}

// every runs fn at random intervals between lo and hi until ctx is done.
func every(ctx context.Context, h *harness, lo, hi time.Duration, fn func()) {
	for {
		if !sleep(ctx, lo+time.Duration(h.rng.Int64N(int64(hi-lo)+1))) {
			return
		}
		fn()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
