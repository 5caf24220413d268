package e2e

import (
	"strings"
	"syscall"
	"testing"
	"time"
)

// A bad value stops either binary at start with exit status 2 and a message
// naming the variable.
func TestBadConfigExits2(t *testing.T) {
	cases := []struct{ name, value string }{
		{"SAGA_PARTITIONS", "abc"},
		{"SAGA_PARTITIONS", "0"},
		{"WORKER_SERVICES", "payment,billing"},
		{"WORKER_CONCURRENCY", "-3"},
		{"SAGA_STEP_TIMEOUT", "soon"},
		{"PAYMENT_FAILURE_RATE", "1.5"},
		{"SAGA_MODE", "telepathy"},
		{"REDIS_URL", "http://example"},
		{"SAGA_PREFIX", "a}{b"},
		{"LOG_LEVEL", "loud"},
		{"WORKER_PARTITIONS", "7"},
		{"REDIS_CLUSTER_ADDRS", "no-port-here"},
		{"REDIS_TLS_CA_FILE", "/nonexistent/ca.pem"},
	}
	for _, bin := range []string{"api", "worker"} {
		for _, c := range cases {
			p := start(t, bin, map[string]string{c.name: c.value, "REDIS_URL_UNUSED": ""})
			if code := p.wait(10 * time.Second); code != 2 {
				t.Errorf("%s with %s=%s: exit %d, want 2", bin, c.name, c.value, code)
			}
			if !strings.Contains(p.output(), c.name) {
				t.Errorf("%s with %s=%s: message %q does not name the variable", bin, c.name, c.value, p.output())
			}
		}
	}
}

// The API binary stops on SIGTERM with exit 0.
func TestAPISIGTERM(t *testing.T) {
	p := start(t, "api", map[string]string{"REDIS_URL": srv.URL(), "HTTP_ADDR": "127.0.0.1:0"})
	p.waitFor(t, "api listening")
	p.signal(syscall.SIGTERM)
	if code := p.wait(10 * time.Second); code != 0 {
		t.Fatalf("api exit %d after SIGTERM", code)
	}
}
