package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// writes is Redis's count of changes since the last save: any write moves it.
func writes(t *testing.T, rdb redis.UniversalClient) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "rdb_changes_since_last_save:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no rdb_changes_since_last_save in INFO")
	return 0
}

type rawRequest struct {
	name        string
	method      string
	path        string
	contentType string
	header      map[string]string
	body        string
	status      int
	code        string
	allow       string
}

func send(t *testing.T, s *sagatest.System, rr rawRequest) (int, map[string]map[string]string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(rr.method, s.APIURL+rr.path, strings.NewReader(rr.body))
	if err != nil {
		t.Fatal(err)
	}
	if rr.contentType != "-" {
		ct := rr.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range rr.header {
		req.Header.Set(k, v)
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", rr.name, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var body map[string]map[string]string
	if resp.StatusCode >= 400 {
		if err := json.Unmarshal(data, &body); err != nil || body["error"]["code"] == "" || body["error"]["message"] == "" {
			t.Errorf("%s: error body %q is not {\"error\":{\"code\",\"message\"}}", rr.name, data)
		}
	}
	return resp.StatusCode, body, resp.Header
}

const good = `{"customer_id":"c-1","items":[{"sku":"sku-1","quantity":2,"unit_price_cents":1250}]}`

func withItem(item string) string {
	return `{"customer_id":"c-1","items":[` + item + `]}`
}

// Every bad request of SPEC section 7 and RELIABILITY.md (c) that applies
// gets the right status and a JSON error, and writes nothing to Redis.
func TestBadRequestsWriteNothing(t *testing.T) {
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	many := make([]string, 101)
	for i := range many {
		many[i] = `{"sku":"s` + strconv.Itoa(i) + `","quantity":1,"unit_price_cents":1}`
	}
	cases := []rawRequest{
		{name: "empty body", body: "", status: 400, code: "empty_body"},
		{name: "not json", body: "abc", status: 400, code: "invalid_json"},
		{name: "truncated", body: `{"items":[{"sku":"A"`, status: 400, code: "invalid_json"},
		{name: "array", body: `[]`, status: 400, code: "invalid_json"},
		{name: "null", body: `null`, status: 400, code: "invalid_json"},
		{name: "string", body: `"x"`, status: 400, code: "invalid_json"},
		{name: "number", body: `42`, status: 400, code: "invalid_json"},
		{name: "text/plain", contentType: "text/plain", body: good, status: 415, code: "unsupported_media_type"},
		{name: "no content type", contentType: "-", body: good, status: 415, code: "unsupported_media_type"},
		{name: "10 MB body", body: `{"customer_id":"` + strings.Repeat("a", 10<<20) + `"}`, status: 413, code: "body_too_large"},
		{name: "deep nesting", body: strings.Repeat("[", 100000), status: 413, code: "body_too_large"},
		{name: "nesting under the cap", body: `{"customer_id":"c","items":` + strings.Repeat("[", 1000) + `}`, status: 400, code: "too_deep"},
		{name: "unknown field", body: `{"customer_id":"c-1","is_admin":true,"items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "unknown_field"},
		{name: "status field", body: `{"customer_id":"c-1","status":"COMPLETED","items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "unknown_field"},
		{name: "unknown item field", body: withItem(`{"sku":"a","quantity":1,"unit_price_cents":1,"discount":5}`), status: 400, code: "unknown_field"},
		{name: "duplicate key", body: `{"customer_id":"c-1","customer_id":"c-2","items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "duplicate_field"},
		{name: "case-variant duplicate", body: `{"customer_id":"c","items":[{"sku":"a","quantity":1,"unit_price_cents":5}],"ITEMS":[{"sku":"b"}]}`, status: 400, code: "unknown_field"},
		{name: "mixed-case field", body: `{"Customer_ID":"c-1","items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "unknown_field"},
		{name: "duplicate item key", body: withItem(`{"sku":"a","quantity":1,"quantity":9,"unit_price_cents":1}`), status: 400, code: "duplicate_field"},
		{name: "trailing object", body: good + good, status: 400, code: "invalid_json"},
		{name: "trailing garbage", body: good + " garbage", status: 400, code: "invalid_json"},
		{name: "quantity 0", body: withItem(`{"sku":"a","quantity":0,"unit_price_cents":1}`), status: 400, code: "quantity_out_of_range"},
		{name: "quantity -1", body: withItem(`{"sku":"a","quantity":-1,"unit_price_cents":1}`), status: 400, code: "quantity_out_of_range"},
		{name: "quantity missing", body: withItem(`{"sku":"a","unit_price_cents":1}`), status: 400, code: "quantity_out_of_range"},
		{name: "quantity 1.5", body: withItem(`{"sku":"a","quantity":1.5,"unit_price_cents":1}`), status: 400, code: "type_error"},
		{name: "quantity string", body: withItem(`{"sku":"a","quantity":"2","unit_price_cents":1}`), status: 400, code: "type_error"},
		{name: "quantity 1e3", body: withItem(`{"sku":"a","quantity":1e3,"unit_price_cents":1}`), status: 400, code: "type_error"},
		{name: "quantity over max", body: withItem(`{"sku":"a","quantity":10001,"unit_price_cents":1}`), status: 400, code: "quantity_out_of_range"},
		{name: "quantity overflow", body: withItem(`{"sku":"a","quantity":9223372036854775808,"unit_price_cents":1}`), status: 400, code: "type_error"},
		{name: "price negative", body: withItem(`{"sku":"a","quantity":1,"unit_price_cents":-100}`), status: 400, code: "price_out_of_range"},
		{name: "price over max", body: withItem(`{"sku":"a","quantity":1,"unit_price_cents":100000001}`), status: 400, code: "price_out_of_range"},
		{name: "price decimal", body: withItem(`{"sku":"a","quantity":1,"unit_price_cents":10.50}`), status: 400, code: "type_error"},
		{name: "price NaN", body: withItem(`{"sku":"a","quantity":1,"unit_price_cents":NaN}`), status: 400, code: "invalid_json"},
		{name: "items empty", body: `{"customer_id":"c-1","items":[]}`, status: 400, code: "items_required"},
		{name: "items missing", body: `{"customer_id":"c-1"}`, status: 400, code: "items_required"},
		{name: "items null", body: `{"customer_id":"c-1","items":null}`, status: 400, code: "items_required"},
		{name: "101 items", body: withItem(strings.Join(many, ",")), status: 400, code: "too_many_items"},
		{name: "same sku twice", body: withItem(`{"sku":"a","quantity":1,"unit_price_cents":1},{"sku":"a","quantity":2,"unit_price_cents":1}`), status: 400, code: "duplicate_sku"},
		{name: "customer missing", body: `{"items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "invalid_id"},
		{name: "customer too long", body: `{"customer_id":"` + strings.Repeat("c", 65) + `","items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "invalid_id"},
		{name: "NUL in customer", body: `{"customer_id":"c\u0000","items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "invalid_id"},
		{name: "RTL override", body: `{"customer_id":"c\u202e1","items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "invalid_id"},
		{name: "invalid UTF-8", body: "{\"customer_id\":\"c\xff\xfe\",\"items\":[{\"sku\":\"a\",\"quantity\":1,\"unit_price_cents\":1}]}", status: 400, code: "invalid_id"},
		{name: "items not a list", body: `{"customer_id":"c-1","items":{"sku":"a"}}`, status: 400, code: "type_error"},
		{name: "idempotency key with space", header: map[string]string{"Idempotency-Key": "a b"}, body: good, status: 400, code: "invalid_idempotency_key"},
		{name: "idempotency key 10 KB", header: map[string]string{"Idempotency-Key": strings.Repeat("k", 10<<10)}, body: good, status: 400, code: "invalid_idempotency_key"},
	}
	for _, inj := range []string{"a}{b", "{p07}", "saga:*", "*", "../x", "x\r\nFLUSHALL\r\n", strings.Repeat("x", 10<<10), "", " "} {
		b, _ := json.Marshal(inj)
		cases = append(cases,
			rawRequest{name: "sku " + inj[:min(len(inj), 12)], body: withItem(`{"sku":` + string(b) + `,"quantity":1,"unit_price_cents":1}`), status: 400, code: "invalid_id"},
			rawRequest{name: "customer " + inj[:min(len(inj), 12)], body: `{"customer_id":` + string(b) + `,"items":[{"sku":"a","quantity":1,"unit_price_cents":1}]}`, status: 400, code: "invalid_id"})
	}
	before := writes(t, s.RDB)
	for _, c := range cases {
		c.method, c.path = http.MethodPost, "/orders"
		status, body, _ := send(t, s, c)
		if status != c.status || body["error"]["code"] != c.code {
			t.Errorf("%s: got %d %q, want %d %q", c.name, status, body["error"]["code"], c.status, c.code)
		}
	}
	other := []rawRequest{
		{name: "GET /orders", method: "GET", path: "/orders", status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "PUT /orders", method: "PUT", path: "/orders", body: good, status: 405, code: "method_not_allowed", allow: "POST"},
		{name: "DELETE /orders/x", method: "DELETE", path: "/orders/x", status: 405, code: "method_not_allowed", allow: "GET"},
		{name: "POST /sagas", method: "POST", path: "/sagas", body: good, status: 405, code: "method_not_allowed", allow: "GET"},
		{name: "unknown order", method: "GET", path: "/orders/0192a000-0000-7000-8000-000000000000", status: 404, code: "not_found"},
		{name: "order id not a uuid", method: "GET", path: "/orders/saga:*", status: 404, code: "not_found"},
		{name: "saga id not a uuid", method: "GET", path: "/sagas/..%2Fx", status: 404, code: "not_found"},
		{name: "bad status filter", method: "GET", path: "/sagas?status=DONE", status: 400, code: "invalid_status"},
		{name: "bad limit", method: "GET", path: "/sagas?limit=0", status: 400, code: "invalid_limit"},
		{name: "huge limit", method: "GET", path: "/sagas?limit=99999999999999999999", status: 400, code: "invalid_limit"},
		{name: "stock negative", method: "PUT", path: "/inventory/sku-1", body: `{"available":-1}`, status: 400, code: "available_out_of_range"},
		{name: "stock missing", method: "PUT", path: "/inventory/sku-1", body: `{}`, status: 400, code: "available_out_of_range"},
		{name: "stock not a number", method: "PUT", path: "/inventory/sku-1", body: `{"available":"5"}`, status: 400, code: "type_error"},
		{name: "stock unknown field", method: "PUT", path: "/inventory/sku-1", body: `{"available":5,"reserved":0}`, status: 400, code: "unknown_field"},
		{name: "stock bad sku", method: "PUT", path: "/inventory/a%7Bb", body: `{"available":5}`, status: 400, code: "invalid_id"},
		{name: "stock text/plain", method: "PUT", path: "/inventory/sku-1", contentType: "text/plain", body: `{"available":5}`, status: 415, code: "unsupported_media_type"},
		{name: "unknown path", method: "GET", path: "/nope", status: 404, code: "not_found"},
	}
	for _, c := range other {
		status, body, h := send(t, s, c)
		if status != c.status || body["error"]["code"] != c.code {
			t.Errorf("%s: got %d %q, want %d %q", c.name, status, body["error"]["code"], c.status, c.code)
		}
		if status == 405 && h.Get("Allow") != c.allow {
			t.Errorf("%s: Allow %q, want %q", c.name, h.Get("Allow"), c.allow)
		}
	}
	if after := writes(t, s.RDB); after != before {
		t.Errorf("bad requests wrote to Redis: %d changes", after-before)
	}
	// A header larger than the server accepts is refused before any handler.
	req, _ := http.NewRequest(http.MethodPost, s.APIURL+"/orders", strings.NewReader(good))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Big", strings.Repeat("h", 64<<10))
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatalf("64 KiB header: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", resp.StatusCode)
	}
}
