package e2e

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
)

// No password reaches the logs: not the right one while the API and a
// worker run at debug level, not a wrong one while a worker retries its
// authentication, not one inside a REDIS_URL refused at start-up.
func TestNoPasswordInLogs(t *testing.T) {
	const right, wrong, bad = "right-pw-7f3a91", "wrong-pw-c02b44", "bad-pw-91d2e7"
	rs, err := redistest.Start(redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	admin := rs.Client()
	if err := admin.ConfigSet(context.Background(), "requirepass", right).Err(); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	url := func(pw string) string { return "redis://:" + pw + "@" + rs.Addr() + "/0" }
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	api := start(t, "api", map[string]string{"REDIS_URL": url(right), "HTTP_ADDR": addr, "LOG_LEVEL": "debug"})
	worker := start(t, "worker", map[string]string{"REDIS_URL": url(right), "LOG_LEVEL": "debug"})
	refused := start(t, "worker", map[string]string{"REDIS_URL": url(wrong), "LOG_LEVEL": "debug"})
	badURL := start(t, "api", map[string]string{"REDIS_URL": "redis://:" + bad + "@127.0.0.1:notaport/0"})
	worker.waitFor(t, "worker started")
	// Some traffic, including a request the API refuses and one it accepts.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Post("http://"+addr+"/orders", "application/json",
			strings.NewReader(`{"customer_id":"c-1","items":[{"sku":"sku-1","quantity":1,"unit_price_cents":100}]}`))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusAccepted {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the API did not accept an order")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resp, err := http.Post("http://"+addr+"/orders", "text/plain", strings.NewReader("x")); err == nil {
		resp.Body.Close()
	}
	// The refused worker logs its failed attempts for a while.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil && !strings.Contains(strings.ToLower(refused.output()), "redis") {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	if code := badURL.wait(10 * time.Second); code != 2 {
		t.Errorf("API with a malformed REDIS_URL: exit %d, want 2", code)
	}
	for name, p := range map[string]*proc{"api": api, "worker": worker, "refused worker": refused, "api with a bad URL": badURL} {
		out := p.output()
		for _, pw := range []string{right, wrong, bad} {
			if strings.Contains(out, pw) {
				t.Errorf("%s logged a password:\n%s", name, out)
			}
		}
		if out == "" {
			t.Errorf("%s logged nothing: the test would prove nothing", name)
		}
	}
}
