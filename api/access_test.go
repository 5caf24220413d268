package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// logBuffer collects the JSON log lines of an API under test.
type logBuffer struct{ sagatest.SyncBuffer }

// lines returns the records whose msg is msg.
func (l *logBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(l.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", sc.Text(), err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// serveLogged runs the API like the binary does, logging JSON at debug
// level into the returned buffer; it returns the API's base URL.
func serveLogged(t *testing.T, s *sagatest.System, extra map[string]string) (string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- api.Serve(ctx, ln, s.Config(extra), log) }()
	t.Cleanup(func() { cancel(); <-done })
	return "http://" + ln.Addr().String(), logs
}

type sent struct {
	status int
	header http.Header
	body   string
}

func hit(t *testing.T, method, url, body string, header map[string]string) sent {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return sent{resp.StatusCode, resp.Header, string(b)}
}

// accessLine returns the one access log line of the request with this id.
func accessLine(t *testing.T, logs *logBuffer, id string) map[string]any {
	t.Helper()
	var found []map[string]any
	for _, rec := range logs.lines(t, "http request") {
		if rec["request_id"] == id {
			found = append(found, rec)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d access lines for request %s in:\n%s", len(found), id, logs)
	}
	return found[0]
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Each request gets one access line with its route pattern (never the raw
// path), status, size, duration and request id; a sane X-Request-Id is kept
// and echoed, any other replaced; a handler's error line carries the same
// id, and so does the console's; request metrics are labelled by route,
// with unknown paths under one label.
func TestAccessLogRequestIDAndMetrics(t *testing.T) {
	redisSrv := redistest.StartT(t, redistest.Options{}) // stopped below
	s := sagatest.New(t, redisSrv, nil)
	base, logs := serveLogged(t, s, nil)
	const unknown = "0192a000-0000-7000-8000-000000000000"

	r := hit(t, "GET", base+"/sagas/"+unknown, "", map[string]string{"X-Request-Id": "req-1.abc:Z"})
	if r.status != 404 || r.header.Get("X-Request-Id") != "req-1.abc:Z" {
		t.Fatalf("GET /sagas/{id}: %d, X-Request-Id %q", r.status, r.header.Get("X-Request-Id"))
	}
	line := accessLine(t, logs, "req-1.abc:Z")
	for k, want := range map[string]any{"level": "INFO", "method": "GET", "route": "/sagas/{id}", "status": 404.0, "bytes": float64(len(r.body))} {
		if line[k] != want {
			t.Errorf("access line %s = %v, want %v (%v)", k, line[k], want, line)
		}
	}
	if d, ok := line["duration_ms"].(float64); !ok || d <= 0 {
		t.Errorf("access line duration_ms = %v", line["duration_ms"])
	}
	if strings.Contains(logs.String(), unknown) {
		t.Error("the raw path reached the log")
	}

	for _, bad := range []string{"has space", "x\u00e9", strings.Repeat("a", 129), ""} {
		r := hit(t, "GET", base+"/nope/"+unknown, "", map[string]string{"X-Request-Id": bad})
		id := r.header.Get("X-Request-Id")
		if r.status != 404 || id == bad || !generatedID.MatchString(id) {
			t.Errorf("X-Request-Id %q: answered %d with id %q, want a new UUIDv7", bad, r.status, id)
			continue
		}
		if line := accessLine(t, logs, id); line["route"] != "unmatched" {
			t.Errorf("unknown path logged as route %v", line["route"])
		}
	}
	hit(t, "FROB", base+"/healthz", "", map[string]string{"X-Request-Id": "req-frob"})
	if line := accessLine(t, logs, "req-frob"); line["method"] != "OTHER" || line["status"] != 405.0 {
		t.Errorf("unknown method logged as %v", line)
	}
	hit(t, "GET", base+"/healthz", "", map[string]string{"X-Request-Id": "req-probe"})
	if line := accessLine(t, logs, "req-probe"); line["level"] != "DEBUG" {
		t.Errorf("a passing probe is logged at %v, want DEBUG", line["level"])
	}

	m := hit(t, "GET", base+"/metrics", "", nil).body
	mustContain(t, "API /metrics", m,
		`streamsaga_http_requests_total{code="404",method="GET",route="/sagas/{id}"} 1`,
		`streamsaga_http_request_duration_seconds_count{code="404",method="GET",route="/sagas/{id}"} 1`,
		`streamsaga_http_requests_total{code="404",method="GET",route="unmatched"} 4`,
		`streamsaga_http_requests_total{code="405",method="OTHER",route="/healthz"} 1`)
	if strings.Contains(m, "/nope") {
		t.Error("a raw path became a metric label")
	}

	redisSrv.Kill()
	r = hit(t, "GET", base+"/orders/"+unknown, "", map[string]string{"X-Request-Id": "req-down"})
	if r.status != 503 {
		t.Fatalf("GET /orders/{id} with Redis down: %d", r.status)
	}
	var errLine map[string]any
	for _, rec := range logs.lines(t, "redis unavailable") {
		if rec["request_id"] == "req-down" {
			errLine = rec
		}
	}
	if errLine == nil || errLine["route"] != "/orders/{id}" || errLine["level"] != "ERROR" {
		t.Errorf("no error line with the request id and route: %v\n%s", errLine, logs)
	}
	if line := accessLine(t, logs, "req-down"); line["status"] != 503.0 {
		t.Errorf("access line of the 503: %v", line)
	}
	// The console logs through the API's logger too: its error line is in
	// the same log, with the request id.
	if r := hit(t, "GET", base+"/ui/api/sagas", "", map[string]string{"X-Request-Id": "req-ui-down"}); r.status != 503 {
		t.Fatalf("GET /ui/api/sagas with Redis down: %d", r.status)
	}
	var uiLine map[string]any
	for _, rec := range logs.lines(t, "console: redis unavailable") {
		if rec["request_id"] == "req-ui-down" {
			uiLine = rec
		}
	}
	if uiLine == nil || uiLine["level"] != "ERROR" || uiLine["path"] != "/ui/api/sagas" {
		t.Errorf("no console error line with the request id in the API's log: %v\n%s", uiLine, logs)
	}
}

// With ADMIN_TOKEN set, each admin route refuses a request without the
// token or with another one (401, WWW-Authenticate, nothing written) and
// serves it with the token; reads and POST /orders need none. The token
// and the Authorization header never reach the log. Without ADMIN_TOKEN the
// admin routes are open and the API warns once at start.
func TestAdminToken(t *testing.T) {
	s := sagatest.New(t, srv, nil)
	const token = "s3cret-admin-token-0123456789"
	const wrongToken = "not-the-token-9876543210"
	base, logs := serveLogged(t, s, map[string]string{"ADMIN_TOKEN": token})
	right := map[string]string{"Authorization": "Bearer " + token}
	if r := hit(t, "PUT", base+"/inventory/sku-adm", `{"available":5}`, right); r.status != 200 {
		t.Fatalf("PUT with the token: %d %s", r.status, r.body)
	}
	placed := hit(t, "POST", base+"/orders", good, nil) // no token needed
	if placed.status != 202 {
		t.Fatalf("POST /orders without a token: %d %s", placed.status, placed.body)
	}
	sagaID := regexp.MustCompile(`"saga_id":"([^"]+)"`).FindStringSubmatch(placed.body)[1]

	routes := []struct {
		method, path, body string
		authorized         int // the answer once the token is right
	}{
		{"PUT", "/inventory/sku-adm", `{"available":7}`, 200},
		{"POST", "/sagas/" + sagaID + "/retry", "", 409},    // IN_PROGRESS, not FAILED
		{"POST", "/deadletters/1-0/replay", "", 404},        // no such dead letter
		{"POST", "/sagas/not-a-uuid/retry", "", 404},        // the token is checked before the id
		{"PUT", "/inventory/a%7Bb", `{"available":7}`, 400}, // and before the sku
	}
	refusals := []struct {
		name   string
		header map[string]string
		code   string
	}{
		{"no header", nil, "unauthorized"},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, "unauthorized"},
		{"basic scheme", map[string]string{"Authorization": "Basic " + token}, "unauthorized"},
		{"token without scheme", map[string]string{"Authorization": token}, "unauthorized"},
		{"wrong token", map[string]string{"Authorization": "Bearer " + wrongToken}, "invalid_token"},
		{"token prefix", map[string]string{"Authorization": "Bearer " + token[:len(token)-1]}, "invalid_token"},
		{"token and more", map[string]string{"Authorization": "Bearer " + token + "x"}, "invalid_token"},
	}
	before := writes(t, s.RDB)
	for _, rt := range routes {
		for _, ref := range refusals {
			r := hit(t, rt.method, base+rt.path, rt.body, ref.header)
			var e struct{ Error struct{ Code string } }
			_ = json.Unmarshal([]byte(r.body), &e)
			if r.status != 401 || e.Error.Code != ref.code || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s, %s: %d %q WWW-Authenticate %q, want 401 %s", rt.method, rt.path, ref.name,
					r.status, e.Error.Code, r.header.Get("WWW-Authenticate"), ref.code)
			}
		}
	}
	if after := writes(t, s.RDB); after != before {
		t.Errorf("refused admin requests wrote to Redis: %d changes", after-before)
	}
	for _, rt := range routes {
		for _, h := range []map[string]string{right, {"Authorization": "bearer " + token}} {
			if r := hit(t, rt.method, base+rt.path, rt.body, h); r.status != rt.authorized {
				t.Errorf("%s %s with the token (%q): %d, want %d: %s", rt.method, rt.path, h["Authorization"][:7], r.status, rt.authorized, r.body)
			}
		}
	}
	for _, p := range []string{"/inventory/sku-adm", "/sagas/" + sagaID, "/sagas", "/deadletters", "/orders/" + regexp.MustCompile(`"order_id":"([^"]+)"`).FindStringSubmatch(placed.body)[1]} {
		if r := hit(t, "GET", base+p, "", nil); r.status != 200 {
			t.Errorf("GET %s without a token: %d", p, r.status)
		}
	}
	all := logs.String()
	for _, secret := range []string{token, wrongToken, token[:len(token)-1], "Bearer", "Authorization"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log contains %q:\n%s", secret, all)
		}
	}
	if strings.Contains(all, "ADMIN_TOKEN is not set") {
		t.Error("warned about a missing ADMIN_TOKEN although it is set")
	}

	openBase, openLogs := serveLogged(t, s, nil)
	if r := hit(t, "PUT", openBase+"/inventory/sku-adm", `{"available":9}`, nil); r.status != 200 {
		t.Errorf("PUT without ADMIN_TOKEN configured: %d", r.status)
	}
	// Open admin actions still refuse another site's page (a forged form
	// post from anywhere the operator browses), and write nothing.
	before = writes(t, s.RDB)
	for _, rt := range routes {
		for _, site := range []string{"cross-site", "same-site"} {
			r := hit(t, rt.method, openBase+rt.path, rt.body, map[string]string{"Sec-Fetch-Site": site})
			var e struct{ Error struct{ Code string } }
			_ = json.Unmarshal([]byte(r.body), &e)
			if r.status != 403 || e.Error.Code != "cross_site" {
				t.Errorf("%s %s from a %s page without ADMIN_TOKEN: %d %s", rt.method, rt.path, site, r.status, r.body)
			}
		}
	}
	if after := writes(t, s.RDB); after != before {
		t.Errorf("cross-site admin requests wrote to Redis: %d changes", after-before)
	}
	for _, site := range []string{"same-origin", "none"} {
		if r := hit(t, "PUT", openBase+"/inventory/sku-adm", `{"available":9}`, map[string]string{"Sec-Fetch-Site": site}); r.status != 200 {
			t.Errorf("PUT from %s: %d %s", site, r.status, r.body)
		}
	}
	if warns := openLogs.lines(t, "ADMIN_TOKEN is not set: admin actions (saga retry, stock, dead-letter replay) are open to anyone who reaches the API"); len(warns) != 1 || warns[0]["level"] != "WARN" {
		t.Errorf("start-up warnings about ADMIN_TOKEN: %v", warns)
	}
}
