package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// The read endpoints answer in the documented shapes.
func TestReadEndpoints(t *testing.T) {
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(nil)
	var stock map[string]any
	code, err := s.Do(http.MethodPut, "/inventory/sku-r", map[string]int{"available": 7}, nil, &stock)
	if err != nil || code != 200 || stock["sku"] != "sku-r" || stock["available"] != 7.0 || stock["reserved"] != 0.0 {
		t.Fatalf("PUT /inventory: %d %v %v", code, stock, err)
	}
	ok, err := s.PlaceOrder("c-r", sagatest.I("sku-r", 2, 150))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := s.PlaceOrder("c-r", sagatest.I("sku-r", 1, 100001))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{ok.OrderID, ok.SagaID, bad.OrderID} {
		if u, err := uuid.Parse(id); err != nil || u.Version() != 7 {
			t.Errorf("id %s is not a UUIDv7", id)
		}
	}
	s.WaitFinished([]sagatest.Placed{ok, bad}, 10*time.Second)

	var order map[string]any
	if code, err := s.Do(http.MethodGet, "/orders/"+ok.OrderID, nil, nil, &order); err != nil || code != 200 {
		t.Fatalf("GET /orders: %d %v", code, err)
	}
	for k, want := range map[string]any{"order_id": ok.OrderID, "saga_id": ok.SagaID, "status": "COMPLETED",
		"customer_id": "c-r", "total_cents": 300.0, "reason": ""} {
		if order[k] != want {
			t.Errorf("order.%s = %v, want %v", k, order[k], want)
		}
	}
	items, _ := json.Marshal(order["items"])
	if string(items) != `[{"quantity":2,"sku":"sku-r","unit_price_cents":150}]` {
		t.Errorf("order.items = %s", items)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if ts, _ := order[k].(string); ts == "" {
			t.Errorf("order.%s missing", k)
		} else if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("order.%s = %q: %v", k, ts, err)
		}
	}

	var sg struct {
		SagaID      string          `json:"sagaId"`
		Type        string          `json:"type"`
		Mode        string          `json:"mode"`
		CurrentStep *int            `json:"currentStep"`
		Status      string          `json:"status"`
		Reason      string          `json:"reason"`
		FirstReason string          `json:"firstReason"`
		Context     json.RawMessage `json:"context"`
		Steps       []struct {
			Name, Status string
			Result       json.RawMessage
		} `json:"steps"`
		CreatedAt, UpdatedAt string
		History              []struct{ Type, ID string }
	}
	if code, err := s.Do(http.MethodGet, "/sagas/"+bad.SagaID, nil, nil, &sg); err != nil || code != 200 {
		t.Fatalf("GET /sagas: %d %v", code, err)
	}
	// The saga stopped at the charge, which was declined: its current step
	// and its one reason say so.
	const declined = "payment declined: amount over the gateway limit"
	if sg.SagaID != bad.SagaID || sg.Type != "ORDER_SAGA" || sg.Mode != "choreography" || sg.CurrentStep == nil || *sg.CurrentStep != 1 ||
		sg.Status != "COMPENSATED" || sg.Reason != declined || sg.FirstReason != declined ||
		len(sg.Context) == 0 || sg.CreatedAt == "" || sg.UpdatedAt == "" {
		t.Errorf("saga %+v", sg)
	}
	wantSteps := []string{"createOrder:COMPENSATED", "chargePayment:FAILED", "reserveStock:PENDING", "createShipment:PENDING"}
	for i, w := range wantSteps {
		if i >= len(sg.Steps) || sg.Steps[i].Name+":"+sg.Steps[i].Status != w {
			t.Errorf("steps %+v, want %v", sg.Steps, wantSteps)
			break
		}
	}
	var types []string
	for _, h := range sg.History {
		types = append(types, h.Type)
	}
	if got, _ := json.Marshal(types); string(got) != `["order.created","payment.failed","order.cancelled"]` {
		t.Errorf("history %s", got)
	}

	var list struct {
		Sagas []struct{ SagaID, Status string } `json:"sagas"`
	}
	if code, _ := s.Do(http.MethodGet, "/sagas?status=COMPLETED", nil, nil, &list); code != 200 || len(list.Sagas) != 1 || list.Sagas[0].SagaID != ok.SagaID {
		t.Errorf("GET /sagas?status=COMPLETED: %d %+v", code, list)
	}
	if code, _ := s.Do(http.MethodGet, "/sagas?limit=1", nil, nil, &list); code != 200 || len(list.Sagas) != 1 {
		t.Errorf("GET /sagas?limit=1: %d %+v", code, list)
	}
	if code, _ := s.Do(http.MethodGet, "/sagas", nil, nil, &list); code != 200 || len(list.Sagas) != 2 {
		t.Errorf("GET /sagas: %d %+v", code, list)
	}
	if code, _ := s.Do(http.MethodGet, "/sagas?status=FAILED", nil, nil, &list); code != 200 || len(list.Sagas) != 0 {
		t.Errorf("GET /sagas?status=FAILED: %d %+v", code, list)
	}
	if code, _ := s.Do(http.MethodGet, "/inventory/sku-r", nil, nil, &stock); code != 200 || stock["available"] != 5.0 || stock["reserved"] != 0.0 {
		t.Errorf("GET /inventory after the order: %d %v", code, stock)
	}
	var health map[string]string
	if code, _ := s.Do(http.MethodGet, "/healthz", nil, nil, &health); code != 200 || health["status"] != "ok" {
		t.Errorf("healthz: %d %v", code, health)
	}
	if code, _ := s.Do(http.MethodGet, "/readyz", nil, nil, &health); code != 200 || health["status"] != "ready" {
		t.Errorf("readyz: %d %v", code, health)
	}
}
