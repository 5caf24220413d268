package worker

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/redislog"
	"github.com/streamsaga/streamsaga/internal/redistest"
)

func TestMain(m *testing.M) {
	// go-redis's reconnect lines at WARN would bury the test output.
	redislog.Use(config.NewLogger("error", os.Stderr))
	os.Exit(m.Run())
}

// startWorker runs Serve against redisURL with a metrics listener of its
// own and returns the listener's base URL; the worker stops with the test.
func startWorker(t *testing.T, redisURL string) string {
	t.Helper()
	cfg, err := config.LoadFrom(map[string]string{"REDIS_URL": redisURL, "SAGA_PREFIX": redistest.Prefix()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, cfg, config.NewLogger("error", os.Stderr)) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("worker did not stop within 20s")
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if resp.Header.Get("Content-Type") == "application/json" {
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	return resp.StatusCode, body
}

// waitStatus polls url until it answers want.
func waitStatus(t *testing.T, url string, want int) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, body := get(t, url)
		if code == want {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %d %v, want %d", url, code, body, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	base := startWorker(t, srv.URL())
	if body := waitStatus(t, base+"/readyz", http.StatusOK); body["status"] != "ready" {
		t.Errorf("readyz body %v", body)
	}
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("healthz: %d %v", code, body)
	}
	if code, _ := get(t, base+"/metrics"); code != http.StatusOK {
		t.Errorf("metrics: %d", code)
	}
	srv.Kill()
	body := waitStatus(t, base+"/readyz", http.StatusServiceUnavailable)
	if e, _ := body["error"].(map[string]any); e["code"] != "not_ready" {
		t.Errorf("readyz without redis: %v", body)
	}
	// Liveness does not depend on Redis.
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("healthz without redis: %d %v", code, body)
	}
}

// A worker started before Redis is alive (healthz) but not ready.
func TestNotReadyBeforeRedis(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := startWorker(t, fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if code, body := get(t, base+"/healthz"); code != http.StatusOK || body["status"] != "ok" {
		t.Errorf("healthz: %d %v", code, body)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz without redis: %d %v", code, body)
	}
}
