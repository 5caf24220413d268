package devrun

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/redislog"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

func TestMain(m *testing.M) {
	redislog.Use(config.NewLogger("error", os.Stderr))
	os.Exit(m.Run())
}

type devInstance struct {
	Endpoints
	banner *sagatest.SyncBuffer
	stop   func() error
}

func testConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	env["HTTP_ADDR"] = "127.0.0.1:0"
	cfg, err := config.LoadFrom(env)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// startDev runs Run until the returned instance is stopped (or the test
// ends); it fails the test when Run fails before it is ready.
func startDev(t *testing.T, cfg *config.Config, o Options) *devInstance {
	t.Helper()
	banner := &sagatest.SyncBuffer{}
	ready := make(chan Endpoints, 1)
	o.Out, o.Logger = banner, config.NewLogger("error", os.Stderr)
	o.OnReady = func(ep Endpoints) { ready <- ep }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, o) }()
	var once sync.Once
	var stopErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case stopErr = <-done:
			case <-time.After(30 * time.Second):
				stopErr = fmt.Errorf("dev did not stop within 30s")
			}
		})
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	select {
	case ep := <-ready:
		return &devInstance{Endpoints: ep, banner: banner, stop: stop}
	case err := <-done:
		t.Fatalf("dev failed at start: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("dev not ready within 30s")
	}
	return nil
}

func freeTestAddr(t *testing.T) string {
	t.Helper()
	p, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", p)
}

// freePortPair finds a port P such that P and P+1 are free.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		p, err := redistest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1)); err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no two consecutive free ports")
	return 0
}

// waitGet polls url until it answers want.
func waitGet(t *testing.T, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, err := call(context.Background(), "GET", url, nil, nil)
		if err == nil && code == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %v, want %d", url, code, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// placeOrder places an order and returns its saga's id and final status.
func placeOrder(t *testing.T, base string) (sagaID, status string) {
	t.Helper()
	ctx := context.Background()
	if code, err := call(ctx, "PUT", base+"/inventory/sku-1", map[string]int{"available": 10}, nil); err != nil || code != 200 {
		t.Fatalf("PUT /inventory: %d %v", code, err)
	}
	var a struct {
		OrderID string `json:"order_id"`
	}
	body := map[string]any{"customer_id": "c-1", "items": []any{item("sku-1", 1, 100)}}
	if code, err := call(ctx, "POST", base+"/orders", body, &a); err != nil || code != http.StatusAccepted {
		t.Fatalf("POST /orders: %d %v", code, err)
	}
	var o struct {
		Status string `json:"status"`
		SagaID string `json:"saga_id"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for o.SagaID == "" || o.Status == "PENDING" {
		if time.Now().After(deadline) {
			t.Fatalf("order %s still %q", a.OrderID, o.Status)
		}
		time.Sleep(20 * time.Millisecond)
		if _, err := call(ctx, "GET", base+"/orders/"+a.OrderID, nil, &o); err != nil {
			t.Fatal(err)
		}
	}
	return o.SagaID, o.Status
}

func sagaStatus(t *testing.T, base, id string) (int, string) {
	t.Helper()
	var s struct {
		Status string `json:"status"`
	}
	code, err := call(context.Background(), "GET", base+"/sagas/"+id, nil, &s)
	if err != nil && code != http.StatusNotFound {
		t.Fatal(err)
	}
	return code, s.Status
}

// Two workers given one WORKER_METRICS_ADDR each serve on its port + i;
// the data survive a restart on the same directory, and -fresh empties it.
func TestWorkersMetricsAndRestart(t *testing.T) {
	dir, addr := t.TempDir(), freeTestAddr(t)
	port := freePortPair(t)
	cfg := testConfig(t, map[string]string{"WORKER_METRICS_ADDR": fmt.Sprintf("127.0.0.1:%d", port)})
	dev := startDev(t, cfg, Options{Workers: 2, RedisAddr: addr, DataDir: dir})
	want := []string{fmt.Sprintf("http://127.0.0.1:%d", port), fmt.Sprintf("http://127.0.0.1:%d", port+1)}
	if strings.Join(dev.Workers, " ") != strings.Join(want, " ") {
		t.Fatalf("workers serve on %v, want %v", dev.Workers, want)
	}
	for _, w := range dev.Workers {
		waitGet(t, w+"/readyz", http.StatusOK)
		waitGet(t, w+"/metrics", http.StatusOK)
	}
	banner := dev.banner.String()
	t.Logf("banner:\n%s", banner)
	for _, line := range []string{
		"REDIS_URL=redis://" + addr + "/0 go run ./cmd/sagactl ls",
		dev.API + "/ui/", dev.API + "/metrics", want[0] + "/metrics", want[1] + "/metrics", dir,
	} {
		if !strings.Contains(banner, line) {
			t.Errorf("banner lacks %q", line)
		}
	}
	// One run at a time on a data directory.
	err := Run(context.Background(), testConfig(t, map[string]string{}), Options{RedisAddr: freeTestAddr(t), DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), "another dev run") {
		t.Errorf("second run on the same directory: %v", err)
	}

	id, status := placeOrder(t, dev.API)
	if err := dev.stop(); err != nil {
		t.Fatal(err)
	}

	dev = startDev(t, testConfig(t, map[string]string{}), Options{RedisAddr: addr, DataDir: dir})
	if code, got := sagaStatus(t, dev.API, id); code != http.StatusOK || got != status {
		t.Errorf("after a restart: saga %s: %d %q, want 200 %q", id, code, got, status)
	}
	if err := dev.stop(); err != nil {
		t.Fatal(err)
	}

	dev = startDev(t, testConfig(t, map[string]string{}), Options{RedisAddr: addr, DataDir: dir, Fresh: true})
	if code, _ := sagaStatus(t, dev.API, id); code != http.StatusNotFound {
		t.Errorf("after -fresh: saga %s: %d, want 404", id, code)
	}
}

// A redis-server that an interrupted run left on the data directory is
// shut down (flushing its AOF) and replaced.
func TestTakesOverItsEarlierRedis(t *testing.T) {
	dir := t.TempDir()
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := redistest.Start(redistest.Options{AOF: "everysec", Port: port, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(orphan.Close)
	c := orphan.Client()
	if err := c.Set(context.Background(), "dev-test", "kept", 0).Err(); err != nil {
		t.Fatal(err)
	}
	c.Close()
	dev := startDev(t, testConfig(t, map[string]string{}), Options{RedisAddr: orphan.Addr(), DataDir: dir})
	if !orphan.Exited() {
		t.Error("the earlier redis-server still runs")
	}
	opt, _ := redis.ParseURL(dev.RedisURL)
	c = redis.NewClient(opt)
	defer c.Close()
	if got, err := c.Get(context.Background(), "dev-test").Result(); err != nil || got != "kept" {
		t.Errorf("data of the earlier run: %q %v", got, err)
	}
}

// Another program on the address is an error naming how to choose another,
// and it is left alone.
func TestRefusesAnotherServerOnItsPort(t *testing.T) {
	other := redistest.StartT(t, redistest.Options{})
	banner := &bytes.Buffer{}
	err := Run(context.Background(), testConfig(t, map[string]string{}), Options{RedisAddr: other.Addr(), DataDir: t.TempDir(), Out: banner})
	if err == nil || !strings.Contains(err.Error(), "-redis-addr") || !strings.Contains(err.Error(), "DEV_REDIS_ADDR") {
		t.Fatalf("err = %v", err)
	}
	if banner.Len() > 0 || other.Exited() {
		t.Errorf("banner %q, other server exited: %v", banner.String(), other.Exited())
	}
}

// The demo passes and leaves the data directory alone; with ADMIN_TOKEN set
// it sets the stock with the token (CI runs it without one).
func TestDemoUsesATemporaryDirectory(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	err := Run(context.Background(), testConfig(t, map[string]string{"ADMIN_TOKEN": "demo-token"}), Options{Demo: true, Workers: 2, DataDir: dir, Out: &out,
		Logger: config.NewLogger("error", os.Stderr)})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Errorf("the demo wrote into the data directory: %v", entries)
	}
	if !strings.Contains(out.String(), "temporary data") || strings.Contains(out.String(), "UNEXPECTED") {
		t.Errorf("demo output:\n%s", out.String())
	}
}
