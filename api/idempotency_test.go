package api_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

func createdEvents(t *testing.T, s *sagatest.System) int64 {
	t.Helper()
	var n int64
	for p := range s.KS.Partitions {
		l, err := s.RDB.XLen(context.Background(), s.KS.Stream(p, handlers.OrderCreated)).Result()
		if err != nil {
			t.Fatal(err)
		}
		n += l
	}
	return n
}

type answer struct {
	OrderID string `json:"order_id"`
	SagaID  string `json:"saga_id"`
	Status  string `json:"status"`
}

// The same Idempotency-Key and body sent 20 times at once start one saga and
// all get the same answer; the key with another body gets 409 and writes
// nothing.
func TestIdempotencyKeyConcurrentRetries(t *testing.T) {
	for _, parts := range []string{"1", "8"} {
		t.Run("partitions="+parts, func(t *testing.T) {
			s := sagatest.New(t, srv, map[string]string{"SAGA_PARTITIONS": parts})
			s.StartAPI(nil)
			body := map[string]any{"customer_id": "c-1", "items": []map[string]any{{"sku": "a", "quantity": 1, "unit_price_cents": 5}}}
			hdr := map[string]string{"Idempotency-Key": "order-42"}
			var wg sync.WaitGroup
			answers := make([]answer, 20)
			codes := make([]int, 20)
			for i := range answers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					codes[i], _ = s.Do(http.MethodPost, "/orders", body, hdr, &answers[i])
				}()
			}
			wg.Wait()
			for i, a := range answers {
				if codes[i] != http.StatusAccepted || a != answers[0] || a.OrderID == "" || a.Status != "PENDING" {
					t.Fatalf("answer %d: %d %+v, first %+v", i, codes[i], a, answers[0])
				}
			}
			if n := createdEvents(t, s); n != 1 {
				t.Fatalf("%d sagas started for one key", n)
			}
			// Reordered fields and whitespace are the same request.
			var again answer
			code, _ := s.Do(http.MethodPost, "/orders", map[string]any{"items": body["items"], "customer_id": "c-1"}, hdr, &again)
			if code != http.StatusAccepted || again != answers[0] {
				t.Fatalf("retry: %d %+v", code, again)
			}
			before := writes(t, s.RDB)
			other := map[string]any{"customer_id": "c-1", "items": []map[string]any{{"sku": "a", "quantity": 2, "unit_price_cents": 5}}}
			code, _ = s.Do(http.MethodPost, "/orders", other, hdr, nil)
			if code != http.StatusConflict {
				t.Fatalf("same key, other body: %d, want 409", code)
			}
			if writes(t, s.RDB) != before || createdEvents(t, s) != 1 {
				t.Fatal("a refused reuse of the key wrote to Redis")
			}
			// Without a key every POST is a new order.
			var a, b answer
			s.Do(http.MethodPost, "/orders", body, nil, &a)
			s.Do(http.MethodPost, "/orders", body, nil, &b)
			if a.OrderID == b.OrderID || createdEvents(t, s) != 3 {
				t.Fatal("POSTs without a key were merged")
			}
		})
	}
}

// A client that never saw the answer to its POST (the connection dropped)
// retries with the same key and gets the order the first attempt created.
func TestIdempotencyKeyAfterUnknownOutcome(t *testing.T) {
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	body := `{"customer_id":"c-9","items":[{"sku":"a","quantity":1,"unit_price_cents":5}]}`
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.APIURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nIdempotency-Key: lost-1\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	// Wait for the commit, then hang up without reading the answer.
	deadline := time.Now().Add(5 * time.Second)
	for createdEvents(t, s) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	conn.Close()
	req, _ := http.NewRequest(http.MethodPost, s.APIURL+"/orders", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", "lost-1")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Idempotent-Replayed") != "true" || !strings.HasPrefix(resp.Header.Get("Location"), "/orders/") {
		t.Fatalf("retry: %d %v", resp.StatusCode, resp.Header)
	}
	if n := createdEvents(t, s); n != 1 {
		t.Fatalf("%d sagas for one key", n)
	}
}

// With Redis unreachable the API answers 503 with a JSON error, stays live
// and reports not ready; when Redis is back it serves again.
func TestRedisDownGives503(t *testing.T) {
	down, err := redistest.Start(redistest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	s := sagatest.New(t, down, nil)
	s.StartAPI(nil)
	down.Kill()
	body := map[string]any{"customer_id": "c-1", "items": []map[string]any{{"sku": "a", "quantity": 1, "unit_price_cents": 5}}}
	var e map[string]map[string]string
	code, err := s.Do(http.MethodPost, "/orders", body, map[string]string{"Idempotency-Key": "k1"}, &e)
	if err != nil || code != http.StatusServiceUnavailable || e["error"]["code"] != "unavailable" {
		t.Fatalf("POST with Redis down: %d %v %v", code, e, err)
	}
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/orders/0192a000-0000-7000-8000-000000000000": 503} {
		if code, _ := s.Do(http.MethodGet, path, nil, nil, nil); code != want {
			t.Errorf("GET %s with Redis down: %d, want %d", path, code, want)
		}
	}
	if err := down.Restart(); err != nil {
		t.Fatal(err)
	}
	var a answer
	code, err = s.Do(http.MethodPost, "/orders", body, map[string]string{"Idempotency-Key": "k1"}, &a)
	if err != nil || code != http.StatusAccepted || a.OrderID == "" {
		t.Fatalf("POST after Redis came back: %d %v", code, err)
	}
	if code, _ := s.Do(http.MethodGet, "/readyz", nil, nil, nil); code != 200 {
		t.Errorf("readyz after Redis came back: %d", code)
	}
}
