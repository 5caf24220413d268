package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

func openAPIRouter(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	// Validate also checks every example against its schema.
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// ownHeaders are the headers the API sets on purpose: an answer that
// carries one its operation does not document fails the contract.
var ownHeaders = []string{"Location", "Retry-After", "Allow", "Idempotent-Replayed", "X-Request-Id", "WWW-Authenticate"}

// contract sends requests to the real API and checks each answer against
// openapi.yaml: the status must be one its operation lists (not merely
// covered by a default), the body and documented headers must match, and no
// header of ownHeaders may be undocumented. It records which documented
// answers were seen, so that the test can fail on any it never produced.
type contract struct {
	t      *testing.T
	doc    *openapi3.T
	router routers.Router
	base   string
	client *http.Client
	seen   map[string]bool // "METHOD /template status"
}

type exchange struct {
	method, path, body string
	contentType        string // default application/json when there is a body; "-" for none
	header             map[string]string
	want               int
	// as names the operation ("GET /healthz") a fallback 404 is checked
	// against: its path is deliberately not in the document.
	as string
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (c *contract) do(x exchange) reply {
	c.t.Helper()
	req := c.request(x)
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", x.method, x.path, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	name := fmt.Sprintf("%s %s", x.method, x.path)
	if resp.StatusCode != x.want {
		c.t.Errorf("%s: status %d, want %d: %s", name, resp.StatusCode, x.want, data)
	}
	for _, route := range c.routes(x, resp) {
		c.check(name, x, route, resp.StatusCode, resp.Header, data)
	}
	return reply{resp.StatusCode, resp.Header, data}
}

func (c *contract) request(x exchange) *http.Request {
	c.t.Helper()
	req, err := http.NewRequest(x.method, c.base+x.path, strings.NewReader(x.body))
	if err != nil {
		c.t.Fatal(err)
	}
	switch {
	case x.contentType == "-":
	case x.contentType != "":
		req.Header.Set("Content-Type", x.contentType)
	case x.body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range x.header {
		req.Header.Set(k, v)
	}
	return req
}

// routes finds the operations an answer is checked against: the request's
// own, every operation of its path for a 405, or the named one.
func (c *contract) routes(x exchange, resp *http.Response) []*routers.Route {
	c.t.Helper()
	if x.as != "" {
		method, path, _ := strings.Cut(x.as, " ")
		item := c.doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			c.t.Fatalf("%s is not an operation of openapi.yaml", x.as)
		}
		return []*routers.Route{{Spec: c.doc, Path: path, PathItem: item, Method: method, Operation: item.GetOperation(method)}}
	}
	if resp.StatusCode == http.StatusMethodNotAllowed {
		var out []*routers.Route
		for path, item := range c.doc.Paths.Map() {
			if !matchTemplate(path, strings.Split(x.path, "?")[0]) {
				continue
			}
			for method, op := range item.Operations() {
				out = append(out, &routers.Route{Spec: c.doc, Path: path, PathItem: item, Method: method, Operation: op})
			}
		}
		if len(out) == 0 {
			c.t.Fatalf("%s %s: 405 on a path openapi.yaml does not have", x.method, x.path)
		}
		return out
	}
	r, _, err := c.router.FindRoute(c.request(x))
	if err != nil {
		c.t.Fatalf("%s %s is not in openapi.yaml: %v", x.method, x.path, err)
	}
	return []*routers.Route{r}
}

func (c *contract) check(name string, x exchange, route *routers.Route, status int, header http.Header, data []byte) {
	c.t.Helper()
	ctx := context.Background()
	op := fmt.Sprintf("%s %s", route.Method, route.Path)
	resp := route.Operation.Responses.Value(strconv.Itoa(status))
	if resp == nil || resp.Value == nil {
		c.t.Errorf("%s: answered %d, which %s does not list in openapi.yaml\n%s", name, status, op, data)
		return
	}
	c.seen[fmt.Sprintf("%s %d", op, status)] = true
	for _, h := range ownHeaders {
		if header.Get(h) != "" && resp.Value.Headers[h] == nil {
			c.t.Errorf("%s: answer %d carries %s, which %s's %d does not document", name, status, h, op, status)
		}
	}
	params := map[string]string{}
	if found, p, err := c.router.FindRoute(c.request(x)); err == nil && found.Path == route.Path {
		params = p
	}
	in := &openapi3filter.RequestValidationInput{Request: c.request(x), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if status < 400 {
		// A request the API accepted must be one the document allows.
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			c.t.Errorf("%s: request does not match openapi.yaml: %v", name, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status,
		Header: header, Body: io.NopCloser(bytes.NewReader(data)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		c.t.Errorf("%s: answer %d does not match %s in openapi.yaml: %v\n%s", name, status, op, err, data)
	}
}

// matchTemplate reports whether a request path fits a path template, each
// {parameter} standing for one non-empty segment.
func matchTemplate(template, path string) bool {
	ts, ps := strings.Split(template, "/"), strings.Split(path, "/")
	if len(ts) != len(ps) {
		return false
	}
	for i, t := range ts {
		if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
			if ps[i] == "" {
				return false
			}
		} else if t != ps[i] {
			return false
		}
	}
	return true
}

// unseen lists the documented answers no request produced.
func (c *contract) unseen() []string {
	var out []string
	for path, item := range c.doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				if key := fmt.Sprintf("%s %s %s", method, path, code); !c.seen[key] {
					out = append(out, key)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

// exampleMessage is the message of the single example of an operation's
// answer, or "".
func exampleMessage(doc *openapi3.T, method, path string, status int) string {
	resp := doc.Paths.Value(path).GetOperation(method).Responses.Value(strconv.Itoa(status)).Value
	mt := resp.Content.Get("application/json")
	if mt == nil || mt.Example == nil {
		return ""
	}
	b, _ := json.Marshal(mt.Example)
	var e struct{ Error struct{ Message string } }
	_ = json.Unmarshal(b, &e)
	return e.Error.Message
}

func errorOf(t *testing.T, a reply) (code, message string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(a.body, &e); err != nil {
		t.Errorf("error body %q: %v", a.body, err)
	}
	return e.Error.Code, e.Error.Message
}

// Every operation of openapi.yaml, and every answer it lists, is produced
// by the real API and checked against the document; an answer with a status
// or one of our headers that its operation does not list fails, and so does
// a listed answer the API never gave. The served document is this one.
func TestOpenAPIDescribesTheAPI(t *testing.T) {
	doc, router := openAPIRouter(t)
	redisSrv := redistest.StartT(t, redistest.Options{}) // stopped below for the 503s
	// Two partitions: a dead-letter id two of them hold is ambiguous.
	s := sagatest.New(t, redisSrv, map[string]string{"SAGA_MODE": event.ModeOrchestration,
		"COMPENSATION_BACKOFF": "10ms", "COMPENSATION_ATTEMPTS": "2", "SAGA_PARTITIONS": "2"})
	const token = "contract-test-token"
	s.StartAPI(map[string]string{"ADMIN_TOKEN": token})
	stopWorker := s.StartWorker(map[string]string{"PAYMENT_REFUND_FAILURES": "1000"})
	c := &contract{t: t, doc: doc, router: router, base: s.APIURL, client: s.HTTP, seen: map[string]bool{}}
	admin := map[string]string{"Authorization": "Bearer " + token}
	crossSite := map[string]string{"Authorization": "Bearer " + token, "Sec-Fetch-Site": "cross-site"}
	wrong := map[string]string{"Authorization": "Bearer not-" + token}
	ctx := context.Background()
	const unknownID = "0192a000-0000-7000-8000-000000000000"
	big := `{"available":` + strings.Repeat(" ", 70<<10) + `1}`

	// Inventory.
	c.do(exchange{method: "PUT", path: "/inventory/sku-1", body: `{"available":10}`, header: admin, want: 200})
	c.do(exchange{method: "PUT", path: "/inventory/sku-1", body: `{"available":10}`, want: 401})
	c.do(exchange{method: "PUT", path: "/inventory/sku-1", body: `{"available":10}`, header: wrong, want: 401})
	c.do(exchange{method: "PUT", path: "/inventory/sku-1", body: `{"available":10}`, header: crossSite, want: 403})
	c.do(exchange{method: "PUT", path: "/inventory/a%7Bb", body: `{"available":10}`, header: admin, want: 400})
	c.do(exchange{method: "PUT", path: "/inventory/sku-1", body: `{"available":10}`, contentType: "text/plain", header: admin, want: 415})
	c.do(exchange{method: "PUT", path: "/inventory/sku-1", body: big, header: admin, want: 413})
	c.do(exchange{method: "PUT", path: "/inventory/", body: `{"available":10}`, header: admin, want: 404, as: "PUT /inventory/{sku}"})
	c.do(exchange{method: "GET", path: "/inventory/sku-1", want: 200})
	c.do(exchange{method: "GET", path: "/inventory/a%7Bb", want: 400})
	c.do(exchange{method: "GET", path: "/inventory/", want: 404, as: "GET /inventory/{sku}"})
	c.do(exchange{method: "DELETE", path: "/inventory/sku-1", want: 405})

	// Orders: one that completes, one short of stock whose refund fails
	// for good (FAILED), an idempotent replay and every refusal.
	good := `{"customer_id":"c-1","items":[{"sku":"sku-1","quantity":2,"unit_price_cents":1250}]}`
	short := `{"customer_id":"c-1","items":[{"sku":"sku-1","quantity":11,"unit_price_cents":1}]}`
	first := c.do(exchange{method: "POST", path: "/orders", body: good, header: map[string]string{"Idempotency-Key": "k-openapi"}, want: 202})
	again := c.do(exchange{method: "POST", path: "/orders", body: good, header: map[string]string{"Idempotency-Key": "k-openapi"}, want: 202})
	if again.header.Get("Idempotent-Replayed") != "true" || first.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("Idempotent-Replayed: first %q, replay %q", first.header.Get("Idempotent-Replayed"), again.header.Get("Idempotent-Replayed"))
	}
	failing := c.do(exchange{method: "POST", path: "/orders", body: short, want: 202})
	c.do(exchange{method: "POST", path: "/orders", body: short, header: map[string]string{"Idempotency-Key": "k-openapi"}, want: 409})
	c.do(exchange{method: "POST", path: "/orders", body: `{"customer_id":"c-1","items":[]}`, want: 400})
	c.do(exchange{method: "POST", path: "/orders", body: `{"customer_id":"` + strings.Repeat("c", 70<<10) + `"}`, want: 413})
	c.do(exchange{method: "POST", path: "/orders", body: good, contentType: "text/plain", want: 415})
	c.do(exchange{method: "POST", path: "/orders/", body: good, want: 404, as: "POST /orders"})
	c.do(exchange{method: "GET", path: "/orders", want: 405})
	ok, bad := placedOf(t, first), placedOf(t, failing)
	s.WaitFinished([]sagatest.Placed{ok, bad}, 10*time.Second)
	c.do(exchange{method: "GET", path: "/orders/" + ok.OrderID, want: 200})
	c.do(exchange{method: "GET", path: "/orders/" + unknownID, want: 404})
	c.do(exchange{method: "DELETE", path: "/orders/" + ok.OrderID, want: 405})

	// Sagas.
	c.do(exchange{method: "GET", path: "/sagas/" + ok.SagaID, want: 200})
	c.do(exchange{method: "GET", path: "/sagas/" + bad.SagaID, want: 200})
	c.do(exchange{method: "GET", path: "/sagas/not-a-uuid", want: 404})
	c.do(exchange{method: "DELETE", path: "/sagas/" + ok.SagaID, want: 405})
	c.do(exchange{method: "GET", path: "/sagas?status=FAILED&limit=5", want: 200})
	c.do(exchange{method: "GET", path: "/sagas?status=DONE", want: 400})
	c.do(exchange{method: "GET", path: "/sagas/", want: 404, as: "GET /sagas"})
	c.do(exchange{method: "POST", path: "/sagas", want: 405})
	retry := "/sagas/" + bad.SagaID + "/retry"
	c.do(exchange{method: "POST", path: retry, want: 401})
	c.do(exchange{method: "POST", path: retry, header: wrong, want: 401})
	c.do(exchange{method: "POST", path: retry, header: crossSite, want: 403})
	c.do(exchange{method: "POST", path: "/sagas/" + ok.SagaID + "/retry", header: admin, want: 409})
	c.do(exchange{method: "POST", path: "/sagas/" + unknownID + "/retry", header: admin, want: 404})
	c.do(exchange{method: "GET", path: retry, want: 405})
	if a := c.do(exchange{method: "POST", path: retry, header: admin, want: 202}); a.header.Get("Location") != "/sagas/"+bad.SagaID {
		t.Errorf("retry: Location %q", a.header.Get("Location"))
	}

	// Dead letters: a junk reply, dead-lettered by the orchestrator on
	// partition 0, its twin on partition 1 (same id, as two written in the
	// same millisecond are), and a hand-written one that names another
	// partition's stream.
	s.Inject(s.KS.Stream(0, saga.ReplyType), map[string]any{"junk": "1"})
	deadID := waitDeadLetter(t, s, "junk")
	err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(1), ID: deadID, Values: map[string]any{
		"group": "orchestrator", "error": "twin", "deliveries": "1", "source_stream": s.KS.Stream(1, saga.ReplyType), "source_id": "1-1", "junk": "3"}}).Err()
	if err != nil {
		t.Fatal(err)
	}
	forged, err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(0), Values: map[string]any{
		"group": "orchestrator", "error": "forged", "deliveries": "1", "source_stream": "elsewhere", "source_id": "1-1", "junk": "2"}}).Result()
	if err != nil {
		t.Fatal(err)
	}
	c.do(exchange{method: "GET", path: "/deadletters?limit=10", want: 200})
	c.do(exchange{method: "GET", path: "/deadletters?limit=0", want: 400})
	c.do(exchange{method: "GET", path: "/deadletters/", want: 404, as: "GET /deadletters"})
	c.do(exchange{method: "POST", path: "/deadletters", want: 405})
	ambiguous := c.do(exchange{method: "GET", path: "/deadletters/" + deadID, want: 409})
	if code, msg := errorOf(t, ambiguous); code != "ambiguous_id" || !strings.Contains(msg, "partitions 0, 1") || !strings.Contains(msg, "?partition=") {
		t.Errorf("GET an ambiguous dead letter: %s %q, want ambiguous_id naming partitions 0, 1 and ?partition=", code, msg)
	}
	var twin struct{ Partition int }
	if a := c.do(exchange{method: "GET", path: "/deadletters/" + deadID + "?partition=1", want: 200}); json.Unmarshal(a.body, &twin) != nil || twin.Partition != 1 {
		t.Errorf("GET ?partition=1 answered %s", a.body)
	}
	c.do(exchange{method: "GET", path: "/deadletters/" + deadID + "?partition=2", want: 400})
	c.do(exchange{method: "GET", path: "/deadletters/" + deadID + "?partition=-1", want: 400})
	c.do(exchange{method: "GET", path: "/deadletters/" + forged + "?partition=1", want: 404})
	c.do(exchange{method: "GET", path: "/deadletters/1-0", want: 404})
	c.do(exchange{method: "GET", path: "/deadletters/not-an-id", want: 404})
	c.do(exchange{method: "DELETE", path: "/deadletters/" + deadID, want: 405})
	replay := "/deadletters/" + deadID + "/replay"
	c.do(exchange{method: "POST", path: replay, want: 401})
	c.do(exchange{method: "POST", path: replay, header: wrong, want: 401})
	c.do(exchange{method: "POST", path: replay, header: crossSite, want: 403})
	c.do(exchange{method: "GET", path: replay, want: 405})
	if code, _ := errorOf(t, c.do(exchange{method: "POST", path: "/deadletters/" + forged + "/replay", header: admin, want: 409})); code != "cannot_replay" {
		t.Errorf("replay of a dead letter naming another partition's stream: %s, want cannot_replay", code)
	}
	if code, _ := errorOf(t, c.do(exchange{method: "POST", path: replay, header: admin, want: 409})); code != "ambiguous_id" {
		t.Errorf("replay of an ambiguous id: %s, want ambiguous_id", code)
	}
	c.do(exchange{method: "POST", path: replay + "?partition=x", header: admin, want: 400})
	c.do(exchange{method: "POST", path: replay + "?partition=0", header: admin, want: 200})
	c.do(exchange{method: "POST", path: replay + "?partition=0", header: admin, want: 404}) // replayed already
	if n := s.RDB.XLen(ctx, s.KS.DeadLetter(1)).Val(); n != 1 {
		t.Errorf("partition 1 holds %d dead letters after partition 0's was replayed, want its twin", n)
	}
	c.do(exchange{method: "POST", path: "/deadletters/x/replay", header: admin, want: 404})

	// Probes and the document.
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.yaml"} {
		a := c.do(exchange{method: "GET", path: p, want: 200})
		if p == "/openapi.yaml" && !bytes.Equal(a.body, api.OpenAPI) {
			t.Error("/openapi.yaml serves another document")
		}
		c.do(exchange{method: "POST", path: p, want: 405})
		c.do(exchange{method: "GET", path: p + "/", want: 404, as: "GET " + p})
	}

	// Redis gone: every call that needs it is 503 with Retry-After, and the
	// message is the documented one (a GET never asks for an
	// Idempotency-Key).
	_ = stopWorker()
	redisSrv.Kill()
	for _, x := range []exchange{
		{method: "POST", path: "/orders", body: good, header: map[string]string{"Idempotency-Key": "k-down"}},
		{method: "GET", path: "/orders/" + ok.OrderID},
		{method: "GET", path: "/sagas"},
		{method: "GET", path: "/sagas/" + ok.SagaID},
		{method: "POST", path: retry, header: admin},
		{method: "GET", path: "/inventory/sku-1"},
		{method: "PUT", path: "/inventory/sku-1", body: `{"available":10}`, header: admin},
		{method: "GET", path: "/deadletters"},
		{method: "GET", path: "/deadletters/" + forged},
		{method: "POST", path: "/deadletters/" + forged + "/replay", header: admin},
		{method: "GET", path: "/readyz"},
	} {
		x.want = http.StatusServiceUnavailable
		a := c.do(x)
		_, msg := errorOf(t, a)
		route, _, _ := router.FindRoute(c.request(x))
		if want := exampleMessage(doc, x.method, route.Path, 503); msg != want {
			t.Errorf("%s %s: 503 says %q, its documented example %q", x.method, x.path, msg, want)
		}
		if strings.Contains(msg, "Idempotency-Key") != (x.method == "POST" && x.path == "/orders") {
			t.Errorf("%s %s: 503 message %q does not fit the method", x.method, x.path, msg)
		}
	}
	if missing := c.unseen(); len(missing) > 0 {
		t.Errorf("openapi.yaml lists answers the test never produced:\n%s", strings.Join(missing, "\n"))
	}
}

func placedOf(t *testing.T, a reply) sagatest.Placed {
	t.Helper()
	var v struct {
		OrderID string `json:"order_id"`
		SagaID  string `json:"saga_id"`
	}
	if err := json.Unmarshal(a.body, &v); err != nil || v.OrderID == "" {
		t.Fatalf("POST /orders answered %s", a.body)
	}
	return sagatest.Placed{OrderID: v.OrderID, SagaID: v.SagaID}
}

// waitDeadLetter waits for a dead letter carrying field and returns its id.
func waitDeadLetter(t *testing.T, s *sagatest.System, field string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs, _ := s.RDB.XRange(context.Background(), s.KS.DeadLetter(0), "-", "+").Result()
		for _, m := range msgs {
			if _, ok := m.Values[field]; ok {
				return m.ID
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no dead letter with %q", field)
	return ""
}

// The document and the router agree: every path and method the API routes
// is an operation of openapi.yaml and every operation is routed; every
// operation lists 404 and 405 (the fallback and any other method), admin
// operations list 401 and need the bearer scheme; every request body and
// every answer has an example.
func TestOpenAPIIsComplete(t *testing.T) {
	doc, _ := openAPIRouter(t)
	var documented []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			documented = append(documented, name)
			for _, code := range []string{"404", "405"} {
				if op.Responses.Value(code) == nil {
					t.Errorf("%s does not list %s", name, code)
				}
			}
			isAdmin := op.Security != nil && len(*op.Security) > 0
			if isAdmin != (op.Responses.Value("401") != nil) {
				t.Errorf("%s: admin security %v but 401 listed %v", name, isAdmin, op.Responses.Value("401") != nil)
			}
			if op.RequestBody != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					if mt.Example == nil && len(mt.Examples) == 0 {
						t.Errorf("%s: request body %s has no example", name, ct)
					}
				}
			}
			for code, r := range op.Responses.Map() {
				if len(r.Value.Content) == 0 {
					t.Errorf("%s %s: no content", name, code)
				}
				for ct, mt := range r.Value.Content {
					if mt.Example == nil && len(mt.Examples) == 0 {
						t.Errorf("%s %s %s: no example", name, code, ct)
					}
				}
				if r.Value.Headers["X-Request-Id"] == nil {
					t.Errorf("%s %s: X-Request-Id not documented", name, code)
				}
			}
		}
	}
	slices.Sort(documented)
	if routed := api.RoutedPaths(); !slices.Equal(routed, documented) {
		t.Errorf("routed and documented operations differ:\nrouted     %v\ndocumented %v", routed, documented)
	}
	want := map[string]bool{"POST /sagas/{id}/retry": true, "PUT /inventory/{sku}": true, "POST /deadletters/{id}/replay": true}
	for _, name := range documented {
		method, path, _ := strings.Cut(name, " ")
		op := doc.Paths.Value(path).GetOperation(method)
		if got := op.Security != nil && len(*op.Security) > 0; got != want[name] {
			t.Errorf("%s: admin security %v, want %v", name, got, want[name])
		}
	}
}

// Every curl example in the README calls an operation of openapi.yaml.
func TestREADMECurlExamplesMatchOpenAPI(t *testing.T) {
	_, router := openAPIRouter(t)
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`curl[^\n]*?(?:-X (\w+) )?[^\n]*?'?localhost:8080(/[^\s']*)`)
	n := 0
	for _, m := range re.FindAllStringSubmatch(string(readme), -1) {
		method := m[1]
		line := m[0]
		if method == "" {
			if mm := regexp.MustCompile(`-X (\w+)`).FindStringSubmatch(line); mm != nil {
				method = mm[1]
			} else {
				method = "GET"
			}
		}
		path := strings.NewReplacer("<order_id>", "0192a000-0000-7000-8000-000000000000", "<saga_id>", "0192a000-0000-7000-8000-000000000000").Replace(m[2])
		req, _ := http.NewRequest(method, "http://localhost:8080"+path, nil)
		if _, _, err := router.FindRoute(req); err != nil {
			t.Errorf("README example %q: %s %s is not in openapi.yaml: %v", line, method, path, err)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("found only %d curl examples in the README", n)
	}
}
