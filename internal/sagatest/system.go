package sagatest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/worker"
)

// System is one isolated copy of the product on a shared redis-server: its
// own key prefix, workers and API run in-process through the same Run
// functions the binaries call.
type System struct {
	T      testing.TB
	Server *redistest.Server
	Env    map[string]string
	RDB    redis.UniversalClient
	KS     saga.Keys
	// Checker checks invariants from raw Redis reads, independently of
	// the product; Product reads through the product's own code.
	Checker *Checker
	Product *Product
	APIURL  string
	HTTP    *http.Client
}

// New makes a System with its own prefix. env overrides the defaults
// (short timeouts so that tests run fast).
func New(t testing.TB, srv *redistest.Server, env map[string]string) *System {
	t.Helper()
	s := newSystem(t, map[string]string{"REDIS_URL": srv.URL()}, env, srv.Client())
	s.Server = srv
	return s
}

// NewOnCluster makes a System on a Redis Cluster: the API and workers get
// REDIS_CLUSTER_ADDRS, and the test's own client is a cluster client.
func NewOnCluster(t testing.TB, c *redistest.Cluster, env map[string]string) *System {
	t.Helper()
	return newSystem(t, map[string]string{
		"REDIS_URL":           "redis://" + c.Addrs()[0] + "/0",
		"REDIS_CLUSTER_ADDRS": strings.Join(c.Addrs(), ","),
	}, env, c.Client())
}

func newSystem(t testing.TB, redisEnv, env map[string]string, rdb redis.UniversalClient) *System {
	t.Helper()
	t.Cleanup(func() { rdb.Close() })
	e := map[string]string{
		"SAGA_PREFIX":    redistest.Prefix(),
		"CLAIM_MIN_IDLE": "500ms",
		"LOG_LEVEL":      "warn",
	}
	for _, m := range []map[string]string{redisEnv, env} {
		for k, v := range m {
			e[k] = v
		}
	}
	cfg := MustConfig(t, e)
	ks := saga.NewKeys(cfg.Prefix, cfg.Partitions)
	product, err := NewProduct(rdb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &System{T: t, Env: e, RDB: rdb, KS: ks, Checker: NewChecker(rdb, cfg.Prefix), Product: product,
		HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// MustConfig parses env like the binaries do.
func MustConfig(t testing.TB, env map[string]string) *config.Config {
	t.Helper()
	cfg, err := config.LoadFrom(env)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

// Config returns the system's configuration with extra overrides.
func (s *System) Config(extra map[string]string) *config.Config {
	e := map[string]string{}
	for k, v := range s.Env {
		e[k] = v
	}
	for k, v := range extra {
		e[k] = v
	}
	return MustConfig(s.T, e)
}

// Logger is the logger of in-process parts: errors only, unless
// SAGATEST_LOG names another level (debug, info, warn).
func Logger() *slog.Logger {
	level := slog.LevelError
	_ = level.UnmarshalText([]byte(os.Getenv("SAGATEST_LOG")))
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// StartWorker runs a worker in-process; the returned stop function shuts it
// down like SIGTERM does and returns Run's error. It also stops at cleanup.
func (s *System) StartWorker(extra map[string]string) (stop func() error) {
	cfg := s.Config(extra)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, Logger()) }()
	var stopped bool
	var result error
	stop = func() error {
		if !stopped {
			stopped = true
			cancel()
			result = <-done
		}
		return result
	}
	s.T.Cleanup(func() { _ = stop() })
	s.waitGroups(done)
	return stop
}

// waitGroups waits until a starting worker has created every consumer group,
// so that a test may read through them at once.
func (s *System) waitGroups(done chan error) {
	s.T.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for p := range s.KS.Partitions {
		for group, types := range s.Product.Engine.Groups() {
			for _, typ := range types {
				for {
					groups, _ := s.RDB.XInfoGroups(ctx, s.KS.Stream(p, typ)).Result()
					if slices.ContainsFunc(groups, func(g redis.XInfoGroup) bool { return g.Name == group }) {
						break
					}
					select {
					case err := <-done:
						done <- err // for stop, at cleanup
						s.T.Fatalf("worker stopped while starting: %v", err)
					default:
					}
					if time.Now().After(deadline) {
						s.T.Fatalf("worker did not create group %s on %s", group, typ)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
		}
	}
}

// StartAPI serves the API in-process on a free port and sets APIURL.
func (s *System) StartAPI(extra map[string]string) {
	cfg := s.Config(extra)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.T.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln, cfg, Logger()) }()
	s.T.Cleanup(func() { cancel(); <-done })
	s.APIURL = "http://" + ln.Addr().String()
}

// Do sends a JSON request to the API and decodes a JSON answer into out
// (when not nil). It returns the status.
func (s *System) Do(method, path string, body any, header map[string]string, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.APIURL+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s: %w", data, err)
		}
	}
	return resp.StatusCode, nil
}

// SetStock sets a SKU's stock through the API.
func (s *System) SetStock(sku string, n int64) {
	s.T.Helper()
	code, err := s.Do(http.MethodPut, "/inventory/"+sku, map[string]int64{"available": n}, nil, nil)
	if err != nil || code != http.StatusOK {
		s.T.Fatalf("set stock %s: %d %v", sku, code, err)
	}
}

// Item is one order line for PlaceOrder.
type Item struct {
	SKU            string `json:"sku"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// PlaceOrder posts an order and returns the API's answer.
func (s *System) PlaceOrder(customer string, items ...Item) (Placed, error) {
	var out struct {
		OrderID string `json:"order_id"`
		SagaID  string `json:"saga_id"`
		Status  string `json:"status"`
	}
	code, err := s.Do(http.MethodPost, "/orders", map[string]any{"customer_id": customer, "items": items}, nil, &out)
	if err != nil {
		return Placed{}, err
	}
	if code != http.StatusAccepted {
		return Placed{}, fmt.Errorf("POST /orders: status %d", code)
	}
	return Placed{OrderID: out.OrderID, SagaID: out.SagaID, Items: items}, nil
}

// WaitFinished waits until every order is in a final state.
func (s *System) WaitFinished(orders []Placed, timeout time.Duration) {
	s.T.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n, err := s.Checker.Unfinished(context.Background(), orders)
		if err != nil {
			s.T.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.T.Fatalf("%d of %d orders still PENDING after %s", n, len(orders), timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitAtRest waits until every consumer group of every stream has read
// and acknowledged everything: nothing pending, nothing unread. Entries a
// test injected on a stream with a group are therefore handled once it
// returns.
func (s *System) WaitAtRest(timeout time.Duration) {
	s.T.Helper()
	var last []string
	ok := poll(timeout, func() bool {
		p, groups, err := s.Checker.AtRest(context.Background())
		if err != nil {
			s.T.Fatal(err)
		}
		if groups == 0 {
			s.T.Fatal("at rest: no consumer group found under the prefix; the check would check nothing")
		}
		last = p
		return len(p) == 0
	})
	if !ok {
		s.T.Fatalf("not at rest after %s:\n%s", timeout, strings.Join(last, "\n"))
	}
}

// Inject adds an entry to a stream, as a forger, a replay tool or a buggy
// service would, and returns its id. The stream must have a consumer group,
// so that WaitAtRest covers the entry.
func (s *System) Inject(stream string, values map[string]any) string {
	s.T.Helper()
	ctx := context.Background()
	if groups, err := s.RDB.XInfoGroups(ctx, stream).Result(); err != nil || len(groups) == 0 {
		s.T.Fatalf("inject into %s: no consumer group would read it (%v)", stream, err)
	}
	id, err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
	if err != nil {
		s.T.Fatal(err)
	}
	return id
}

// MustCheck runs the invariant checker and fails the test on any problem.
func (s *System) MustCheck(orders []Placed, initial map[string]int64) *Report {
	s.T.Helper()
	r, err := s.Checker.Check(context.Background(), orders, initial)
	if err != nil {
		s.T.Fatal(err)
	}
	if err := r.Err(); err != nil {
		s.T.Fatalf("invariants broken:\n%v", err)
	}
	return r
}

// I is an order line.
func I(sku string, quantity, unitPriceCents int64) Item {
	return Item{SKU: sku, Quantity: quantity, UnitPriceCents: unitPriceCents}
}

// PlaceOrderRetrying posts an order with an Idempotency-Key and retries
// while the outcome is unknown (a transport error or a 503), as a careful
// client does. It returns the order once the API acknowledged it, and how
// many attempts went unanswered before that.
func (s *System) PlaceOrderRetrying(key string, deadline time.Time, items ...Item) (Placed, int, error) {
	var out struct {
		OrderID string `json:"order_id"`
		SagaID  string `json:"saga_id"`
	}
	body := map[string]any{"customer_id": "c-retry", "items": items}
	for failed := 0; ; failed++ {
		code, err := s.Do(http.MethodPost, "/orders", body, map[string]string{"Idempotency-Key": key}, &out)
		if err == nil && code == http.StatusAccepted {
			return Placed{OrderID: out.OrderID, SagaID: out.SagaID, Items: items}, failed, nil
		}
		if err == nil && code != http.StatusServiceUnavailable {
			return Placed{}, failed, fmt.Errorf("POST /orders: status %d", code)
		}
		if time.Now().After(deadline) {
			return Placed{}, failed, fmt.Errorf("POST /orders: no answer before the deadline (last: %d %v)", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// MustOutcomes checks each order's final status against want (same order),
// and that nothing went to a dead-letter stream: faults must be absorbed by
// redelivery, not by cancelling sagas.
func (s *System) MustOutcomes(orders []Placed, want []string) {
	s.T.Helper()
	ctx := context.Background()
	got, err := s.Checker.Outcomes(ctx, orders)
	if err != nil {
		s.T.Fatal(err)
	}
	for i, o := range orders {
		if got[i] != want[i] {
			s.T.Errorf("order %d (%s) is %q, want %s", i, o.OrderID, got[i], want[i])
		}
	}
	dead, err := s.Checker.Entries(ctx, "deadletter")
	if err != nil {
		s.T.Fatal(err)
	}
	if len(dead) != 0 {
		s.T.Errorf("%d dead letters, first %v", len(dead), dead[0].Values)
	}
}

// WaitFor polls cond until it holds, failing the test after timeout.
func WaitFor(t testing.TB, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// poll calls cond until it holds or timeout passes; it reports whether it
// held. cond is always called at least once after the deadline passed, so
// a slow machine that overshoots the deadline still gets a last look.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
