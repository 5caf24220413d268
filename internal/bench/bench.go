// Package bench is the load driver behind cmd/bench: a closed loop of sagas
// in flight against real worker processes, with latency measured from the
// start of a saga to its final event.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Options of one run.
type Options struct {
	Workers   int
	Sagas     int
	InFlight  int
	HTTP      bool
	Mix       bool
	Mode      string
	RedisURL  string
	JSON      bool
	WorkerEnv []string // added to the workers' environment
}

// Result of one run.
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
	PendingAfter int64   `json:"pending_after"`
}

// Run runs one benchmark and prints its result.
func Run(ctx context.Context, o Options, out io.Writer) error {
	url := o.RedisURL
	if url == "" {
		srv, err := redistest.Start(redistest.Options{})
		if err != nil {
			return err
		}
		defer srv.Close()
		url = srv.URL()
	}
	prefix := "bench" + strings.TrimPrefix(redistest.Prefix(), "t")
	if o.Mode == "" {
		o.Mode = event.ModeChoreography
	}
	env := map[string]string{"REDIS_URL": url, "SAGA_PREFIX": prefix, "LOG_LEVEL": "error", "SAGA_MODE": o.Mode}
	cfg, err := config.LoadFrom(env)
	if err != nil {
		return err
	}
	rdb, err := streams.Connect(url, streams.ClientOptions{PoolSize: o.InFlight + 16, Name: "bench"})
	if err != nil {
		return err
	}
	defer rdb.Close()
	ks := streams.NewKeyspace(cfg.Prefix, cfg.Partitions)
	engine, err := saga.New(rdb, ks, saga.Options{}, handlers.OrderSaga())
	if err != nil {
		return err
	}
	inv := handlers.NewInventory(rdb, ks, handlers.Options{})
	if err := inv.Set(ctx, "sku-1", 1_000_000_000); err != nil {
		return err
	}
	// Worker processes.
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var procs []*exec.Cmd
	for range o.Workers {
		cmd := exec.Command(self)
		cmd.Env = append(os.Environ(), o.WorkerEnv...)
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		procs = append(procs, cmd)
	}
	defer func() {
		for _, p := range procs {
			_ = p.Process.Signal(os.Interrupt)
			_ = p.Wait()
		}
	}()
	place, stop, err := placer(ctx, o, cfg, rdb, engine)
	if err != nil {
		return err
	}
	defer stop()
	res, err := drive(ctx, o, rdb, ks, place)
	if err != nil {
		return err
	}
	chk, _ := newPendingCounter(rdb, ks)
	time.Sleep(200 * time.Millisecond)
	res.PendingAfter = chk(ctx)
	if o.JSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(out, string(b))
	} else {
		fmt.Fprintf(out, "%s, %d workers, %d in flight: %d sagas in %.2fs = %.0f sagas/s; p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms; completed %d, compensated %d, pending after %d\n",
			res.Mode, res.Workers, res.InFlight, res.Sagas, res.Seconds, res.SagasPerSec, res.P50ms, res.P90ms, res.P99ms, res.Maxms,
			res.Completed, res.Compensated, res.PendingAfter)
	}
	if res.PendingAfter != 0 {
		return fmt.Errorf("%d entries still pending after the run", res.PendingAfter)
	}
	return nil
}

type placeFunc func(ctx context.Context, i int) (sagaID string, err error)

// placer returns how one saga is started: through the order service (the
// code POST /orders runs) or through the HTTP API.
func placer(ctx context.Context, o Options, cfg *config.Config, rdb redis.UniversalClient, engine *saga.Engine) (placeFunc, func(), error) {
	orders := handlers.NewOrders(rdb, engine, cfg.Mode)
	items := func(i int) []event.Item {
		if o.Mix && i%10 == 9 {
			return []event.Item{{SKU: "sku-1", Quantity: 1, UnitPriceCents: 500000}} // declined
		}
		return []event.Item{{SKU: "sku-1", Quantity: 1, UnitPriceCents: 1250}}
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
func drive(ctx context.Context, o Options, rdb redis.UniversalClient, ks streams.Keyspace, place placeFunc) (*Result, error) {
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
	var startOnce sync.Once
	for range o.InFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if i == warm {
					startOnce.Do(func() { measuredStart = time.Now() })
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
			startOnce.Do(func() { measuredStart = time.Now() })
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
		SagasPerSec: float64(len(measured)) / elapsed.Seconds(), P50ms: pct(0.5), P90ms: pct(0.9), P99ms: pct(0.99), Maxms: pct(1)}
	for _, s := range outcomes {
		switch s {
		case event.OrderCompleted:
			r.Completed++
		case event.OrderCancelled:
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
func watch(ctx context.Context, rdb redis.UniversalClient, ks streams.Keyspace, mu *sync.Mutex, waiting map[string]chan string) error {
	var streamsArgs []string
	for p := range ks.Partitions {
		streamsArgs = append(streamsArgs, ks.Stream(p, event.OrderCompleted), ks.Stream(p, event.OrderCancelled))
	}
	last := make([]string, len(streamsArgs))
	for i := range last {
		last[i] = "0"
	}
	for ctx.Err() == nil {
		res, err := rdb.XRead(ctx, &redis.XReadArgs{Streams: append(slices.Clone(streamsArgs), last...), Count: 1000, Block: 100 * time.Millisecond}).Result()
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
			idx := slices.Index(streamsArgs, s.Stream)
			for _, m := range s.Messages {
				last[idx] = m.ID
				sagaID, _ := m.Values[event.FieldSagaID].(string)
				typ, _ := m.Values[event.FieldType].(string)
				mu.Lock()
				if ch, ok := waiting[sagaID]; ok {
					ch <- typ
					delete(waiting, sagaID)
				} else {
					parked := make(chan string, 1)
					parked <- typ
					waiting[sagaID] = parked
				}
				mu.Unlock()
			}
		}
	}
	return nil
}

func newPendingCounter(rdb redis.UniversalClient, ks streams.Keyspace) (func(context.Context) int64, error) {
	return func(ctx context.Context) int64 {
		var n int64
		for p := range ks.Partitions {
			for _, typ := range handlers.Streams() {
				groups, err := rdb.XInfoGroups(ctx, ks.Stream(p, typ)).Result()
				if err != nil {
					continue
				}
				for _, g := range groups {
					n += g.Pending
				}
			}
		}
		return n
	}, nil
}
