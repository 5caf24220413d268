package e2e

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
)

// The API's server timeouts and size limits hold against hostile clients: a
// client dripping its headers is cut off after ReadHeaderTimeout (5 s), one
// dripping a body within the size limit after ReadTimeout (10 s), an oversized header block gets
// 431, and none of them keeps the API from serving others.
func TestAPIHoldsAgainstSlowClients(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	api := start(t, "api", map[string]string{"REDIS_URL": srv.URL(), "HTTP_ADDR": addr})
	api.waitFor(t, "api listening")
	// drip sends head, then one byte of filler every 500 ms, and reports how
	// long the server kept the connection open.
	var dripping sync.WaitGroup // both slow clients connected and started
	dripping.Add(2)
	drip := func(head string) time.Duration {
		var once sync.Once
		defer once.Do(dripping.Done)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Error(err)
			return 0
		}
		defer c.Close()
		began := time.Now()
		if _, err := io.WriteString(c, head); err != nil {
			t.Error(err)
			return 0
		}
		once.Do(dripping.Done)
		closed := make(chan struct{})
		go func() { _, _ = io.Copy(io.Discard, c); close(closed) }()
		for {
			select {
			case <-closed:
				return time.Since(began)
			case <-time.After(500 * time.Millisecond):
				if _, err := io.WriteString(c, "x"); err != nil {
					return time.Since(began)
				}
				if time.Since(began) > 30*time.Second {
					t.Error("the server never closed a dripping connection")
					return time.Since(began)
				}
			}
		}
	}
	var wg sync.WaitGroup
	var headers, body time.Duration
	wg.Add(2)
	go func() { defer wg.Done(); headers = drip("POST /orders HTTP/1.1\r\nHost: x\r\nX-Slow: ") }()
	go func() {
		defer wg.Done()
		body = drip("POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{")
	}()
	// Meanwhile the API serves others, and refuses an oversized header.
	dripping.Wait()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
	status, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.Contains(status, "431") {
		t.Errorf("oversized header: got %q (%v), want 431", status, err)
	}
	h, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	_, _ = io.WriteString(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if status, err := bufio.NewReader(h).ReadString('\n'); err != nil || !strings.Contains(status, "200") {
		t.Errorf("healthz during the slow clients: %q (%v)", status, err)
	}
	wg.Wait()
	// Cut at the timeouts, not before; drip itself fails a connection kept
	// open 30 s, so a slow machine that closes late still passes.
	if headers < 4500*time.Millisecond {
		t.Errorf("dripping headers: cut after %s, before ReadHeaderTimeout (5s)", headers)
	}
	if body < 9500*time.Millisecond {
		t.Errorf("dripping body: cut after %s, before ReadTimeout (10s)", body)
	}
	t.Logf("dripping headers cut after %s, a dripping body after %s", headers, body)
}
