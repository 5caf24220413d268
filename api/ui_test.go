package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

func get(t *testing.T, url string) string {
	t.Helper()
	code, body, _ := fetch(t, url)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", url, code, body)
	}
	return body
}

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{Timeout: 10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func fetch(t *testing.T, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := noRedirects.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b), resp.Header
}

// consoleJSON is the answer of a console page's JSON twin.
type consoleJSON struct {
	View string          `json:"view"`
	Data json.RawMessage `json:"data"`
	HTML string          `json:"html"`
}

func getJSON(t *testing.T, url string) consoleJSON {
	t.Helper()
	var out consoleJSON
	if err := json.Unmarshal([]byte(get(t, url)), &out); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return out
}

const hostile = `<script>alert("x")</script>`

// seedHostileSaga writes a FAILED saga whose reason, context and history
// carry markup, as a user's data or a forger's could, and an alert and a
// dead letter that do too. It returns the saga's id.
func seedHostileSaga(t *testing.T, s *sagatest.System) string {
	t.Helper()
	ctx := context.Background()
	id := uuid.NewString()
	p := s.KS.PartitionOf(id)
	now := strconv.FormatInt(time.Now().UnixMilli(), 10)
	err := s.RDB.HSet(ctx, s.KS.Saga(p, id), map[string]any{
		"type": handlers.OrderSaga, "mode": saga.ModeChoreography, "status": saga.StatusFailed, "reason": hostile,
		"context":      `{"order_id":"` + strings.ReplaceAll(hostile, `"`, `\"`) + `","<b>key</b>":{"n":12345678901234567890,"list":[1,2,"<i>3</i>"]}}`,
		"current_step": "1", "version": "2", "created_at": now, "updated_at": now,
		"step.0.status": saga.StepCompleted, "step.0.result": `{"note":"<img src=x onerror=alert(1)>"}`,
		"step.1.status": saga.StepFailed, "h.1": now + "|<svg onload=alert(1)>|e-1",
	}).Err()
	if err != nil {
		t.Fatal(err)
	}
	s.RDB.ZAdd(ctx, s.KS.Index(p, saga.StatusFailed), redis.Z{Score: float64(time.Now().UnixMilli()), Member: id})
	s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.Alerts(p), Values: []any{"type", "<b>bold</b>", "saga_id", id, "error", hostile}})
	s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(p), Values: []any{"group", "g", "error", hostile,
		"source_stream", s.KS.Stream(p, "order.created"), "type", "order.created", "data", `{"x":"` + "<script>y</script>" + `"}`}})
	return id
}

// mustBeInert fails when a console page carries markup from the data, an
// inline script or style, or an event handler attribute.
func mustBeInert(t *testing.T, where, page string) {
	t.Helper()
	for _, bad := range []string{"<script>alert", "<img src=x", "<svg onload", "<b>key</b>", "<b>bold</b>", "<i>3</i>", "<script>y"} {
		if strings.Contains(page, bad) {
			t.Errorf("%s carries unescaped %q", where, bad)
		}
	}
	for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="/ui/static/`) {
			t.Errorf("%s has an inline script: %s", where, tag)
		}
	}
	// Escaped data has no "<", so every tag found is the console's own.
	for _, tag := range regexp.MustCompile(`<[a-zA-Z][^>]*>`).FindAllString(page, -1) {
		if m := regexp.MustCompile(`(?i)\s(style|on[a-z]+)=`).FindString(tag); m != "" {
			t.Errorf("%s has an inline %q attribute: %s", where, m, tag)
		}
	}
}

// The console's pages and their JSON render the product's data, escape
// whatever markup the data carries, refuse bad filters, page by cursor and
// find a saga by its id or its order's id. No browser involved.
func TestConsolePages(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(nil)
	s.SetStock("sku-ui", 10)
	ok, _ := s.PlaceOrder("c-ui", sagatest.I("sku-ui", 1, 100))
	bad, _ := s.PlaceOrder("c-ui", sagatest.I("sku-ui", 1001, 1)) // stock short: compensated
	s.WaitFinished([]sagatest.Placed{ok, bad}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	evil := seedHostileSaga(t, s)

	code, index, h := fetch(t, s.APIURL+"/ui/")
	if code != 200 || !strings.Contains(h.Get("Content-Security-Policy"), "script-src 'self'") ||
		strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") {
		t.Fatalf("GET /ui/: %d, CSP %q", code, h.Get("Content-Security-Policy"))
	}
	mustContain(t, "/ui/", index, "/ui/sagas/"+ok.SagaID, "/ui/sagas/"+bad.SagaID, "/ui/sagas/"+evil,
		"COMPLETED", "COMPENSATED", `data-live="/ui/api/sagas"`, "/ui/static/console.js?v=", "&lt;script&gt;alert")
	mustBeInert(t, "/ui/", index)

	page := get(t, s.APIURL+"/ui/sagas/"+evil)
	mustContain(t, "hostile saga page", page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;", "&lt;b&gt;key&lt;/b&gt;.n",
		"12345678901234567890", `data-action="retry"`)
	mustBeInert(t, "hostile saga page", page)
	for _, p := range []string{"/ui/alerts", "/ui/deadletters", "/ui/api/sagas", "/ui/api/sagas/" + evil, "/ui/api/alerts", "/ui/api/deadletters"} {
		body := get(t, s.APIURL+p)
		mustBeInert(t, p, body)
		if strings.HasPrefix(p, "/ui/api/") {
			mustBeInert(t, p+" html", getJSON(t, s.APIURL+p).HTML)
		}
	}

	// The JSON twin: data as data, the live region as escaped HTML.
	var list struct {
		Sagas []struct{ SagaID, OrderID, Status, Reason string }
		Next  string
	}
	live := getJSON(t, s.APIURL+"/ui/api/sagas?limit=2")
	if err := json.Unmarshal(live.Data, &list); err != nil || live.View != "index" || len(list.Sagas) != 2 || list.Next == "" {
		t.Fatalf("/ui/api/sagas?limit=2: %v %s", err, live.Data)
	}
	if list.Sagas[0].SagaID != evil || list.Sagas[0].Reason != hostile {
		t.Errorf("newest saga %+v, want the hostile one with its reason as data", list.Sagas[0])
	}
	var rest struct{ Sagas []struct{ SagaID string } }
	_ = json.Unmarshal(getJSON(t, s.APIURL+"/ui/api/sagas?limit=2&after="+list.Next).Data, &rest)
	if len(rest.Sagas) != 1 || rest.Sagas[0].SagaID == list.Sagas[0].SagaID || rest.Sagas[0].SagaID == list.Sagas[1].SagaID {
		t.Errorf("second page %+v after %+v", rest, list)
	}
	filtered := getJSON(t, s.APIURL+"/ui/api/sagas?status=COMPENSATED")
	if !strings.Contains(filtered.HTML, bad.SagaID) || strings.Contains(filtered.HTML, ok.SagaID) {
		t.Error("the status filter does not filter")
	}
	if orch := getJSON(t, s.APIURL+"/ui/api/sagas?mode=orchestration"); strings.Contains(orch.HTML, ok.SagaID) {
		t.Error("the style filter does not filter: a choreographed saga is listed as orchestrated")
	}

	// One saga: steps and context as key–value rows, history, a timeline
	// whose labels each have their own row.
	var one struct {
		Context []struct{ Key, Value string }
		Steps   []struct{ Name, Status string }
		History []struct{ Type string }
	}
	sagaJSON := getJSON(t, s.APIURL+"/ui/api/sagas/"+bad.SagaID)
	if err := json.Unmarshal(sagaJSON.Data, &one); err != nil || len(one.Steps) != 4 || len(one.History) < 5 {
		t.Fatalf("saga JSON: %v %s", err, sagaJSON.Data)
	}
	rows := map[string]string{}
	for _, r := range one.Context {
		rows[r.Key] = r.Value
	}
	if rows["order_id"] != bad.OrderID || rows["items[0].sku"] != "sku-ui" || rows["items[0].quantity"] != "1001" {
		t.Errorf("context rows %v", rows)
	}
	page = get(t, s.APIURL+"/ui/sagas/"+bad.SagaID)
	mustContain(t, "saga page", page, `<svg id="timeline"`, "createOrder", "chargePayment", "reserveStock", "createShipment",
		"stock.insufficient", "payment.refunded", bad.OrderID, `<th scope="row">items[0].sku</th>`)
	ys := regexp.MustCompile(`<text class="label" x="4" y="(\d+)">`).FindAllStringSubmatch(page, -1)
	if len(ys) != len(one.History) {
		t.Fatalf("%d timeline labels for %d messages", len(ys), len(one.History))
	}
	for i := 1; i < len(ys); i++ {
		a, _ := strconv.Atoi(ys[i-1][1])
		b, _ := strconv.Atoi(ys[i][1])
		if b-a < 16 { // 12px text
			t.Errorf("timeline labels %d and %d are %dpx apart: they overlap", i-1, i, b-a)
		}
	}

	// Search: a saga id or an order id leads to the saga.
	for q, want := range map[string]string{bad.SagaID: bad.SagaID, bad.OrderID: bad.SagaID, " " + strings.ToUpper(ok.OrderID) + " ": ok.SagaID} {
		code, _, h := fetch(t, s.APIURL+"/ui/search?q="+url.QueryEscape(q))
		if code != http.StatusSeeOther || h.Get("Location") != "/ui/sagas/"+want {
			t.Errorf("search %q: %d to %q, want /ui/sagas/%s", q, code, h.Get("Location"), want)
		}
	}
	if code, body, _ := fetch(t, s.APIURL+"/ui/search?q="+uuid.NewString()); code != 404 || !strings.Contains(body, "no saga and no order") {
		t.Errorf("search of an unknown id: %d", code)
	}

	// Streams: the empty ones only on request.
	some, all := get(t, s.APIURL+"/ui/streams"), get(t, s.APIURL+"/ui/streams?all=1")
	if n, m := strings.Count(some, "<tr"), strings.Count(all, "<tr"); n >= m || !strings.Contains(some, ":{0}:order.created") {
		t.Errorf("streams: %d rows by default, %d with all", n, m)
	}

	// Bad input is refused with a 400, in the page and in its JSON twin.
	for _, p := range []string{"/ui/?status=BOGUS", "/ui/api/sagas?status=BOGUS", "/ui/?mode=both", "/ui/api/sagas?type=NOPE",
		"/ui/?limit=0", "/ui/?limit=x", "/ui/?after=yesterday", "/ui/api/deadletters?before=x", "/ui/alerts?before=1-x",
		"/ui/streams?all=maybe", "/ui/search?q=saga:*"} {
		code, body, h := fetch(t, s.APIURL+p)
		if code != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400", p, code)
		}
		if strings.HasPrefix(p, "/ui/api/") != strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("GET %s: %s", p, h.Get("Content-Type"))
		}
		mustBeInert(t, p, body)
	}
	if code, _, _ := fetch(t, s.APIURL+"/ui/sagas/"+uuid.NewString()); code != 404 {
		t.Errorf("unknown saga page: %d", code)
	}

	// Static files, with a validator.
	code, js, h := fetch(t, s.APIURL+"/ui/static/console.js")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || h.Get("ETag") == "" || !strings.Contains(js, "sessionStorage") {
		t.Errorf("console.js: %d %v", code, h)
	}
	if code, _, _ := fetch(t, s.APIURL+"/ui/static/nope.js"); code != 404 {
		t.Errorf("unknown static file: %d", code)
	}
}
