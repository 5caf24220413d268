package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

func openAPIRouter(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.yaml is not valid OpenAPI 3: %v", err)
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return doc, router
}

// The real API's requests and answers match /openapi.yaml, and the served
// document is the validated one.
func TestOpenAPIDescribesTheAPI(t *testing.T) {
	_, router := openAPIRouter(t)
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(nil)
	ctx := context.Background()
	call := func(method, path, body string, header map[string]string) []byte {
		t.Helper()
		req, _ := http.NewRequest(method, s.APIURL+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		route, params, err := router.FindRoute(req)
		if err != nil {
			t.Fatalf("%s %s is not in openapi.yaml: %v", method, path, err)
		}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
		reqCopy := body
		resp, err := s.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode < 400 {
			// A request the API accepted must be one the document allows.
			check, _ := http.NewRequest(method, s.APIURL+path, strings.NewReader(reqCopy))
			check.Header = req.Header
			in.Request = check
			if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
				t.Errorf("%s %s: request does not match openapi.yaml: %v", method, path, err)
			}
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode,
			Header: resp.Header, Body: io.NopCloser(bytes.NewReader(data)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true}}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s: answer %d does not match openapi.yaml: %v\n%s", method, path, resp.StatusCode, err, data)
		}
		return data
	}
	call("PUT", "/inventory/sku-1", `{"available":10}`, nil)
	call("GET", "/inventory/sku-1", "", nil)
	body := call("POST", "/orders", `{"customer_id":"c-1","items":[{"sku":"sku-1","quantity":2,"unit_price_cents":1250}]}`,
		map[string]string{"Idempotency-Key": "k-openapi"})
	orderID := regexp.MustCompile(`"order_id":"([^"]+)"`).FindSubmatch(body)[1]
	sagaID := regexp.MustCompile(`"saga_id":"([^"]+)"`).FindSubmatch(body)[1]
	s.WaitFinished([]sagatest.Placed{{OrderID: string(orderID), SagaID: string(sagaID)}}, 10*time.Second)
	call("GET", "/orders/"+string(orderID), "", nil)
	call("GET", "/sagas/"+string(sagaID), "", nil)
	call("GET", "/sagas?status=COMPLETED&limit=5", "", nil)
	call("POST", "/sagas/"+string(sagaID)+"/retry", "", nil)             // 409: not FAILED
	call("POST", "/orders", `{"customer_id":"c-1","items":[]}`, nil)     // 400
	call("GET", "/orders/0192a000-0000-7000-8000-000000000000", "", nil) // 404
	call("GET", "/healthz", "", nil)
	call("GET", "/readyz", "", nil)
	served := call("GET", "/openapi.yaml", "", nil)
	if !bytes.Equal(served, api.OpenAPI) {
		t.Error("/openapi.yaml serves another document")
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
