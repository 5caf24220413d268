package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

func deadLetters(t *testing.T, s *sagatest.System) []redis.XMessage {
	t.Helper()
	msgs, err := s.RDB.XRange(context.Background(), s.KS.DeadLetter(0), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

// Malformed entries go to the dead-letter stream with their group and
// error; the group keeps going and later orders complete.
func TestMalformedEntriesAreDeadLettered(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(nil)
	s.SetStock("sku-a", 100)
	ctx := context.Background()
	stream := s.KS.Stream(0, handlers.OrderCreated)
	poison := []map[string]any{
		{"garbage": "x"},
		{"event_id": "e1", "type": "order.created", "saga_id": "s1", "saga_mode": "choreography",
			"saga_version": "1", "occurred_at": "not a time", "data": "{}"},
		{"event_id": "e2", "type": "order.created", "saga_id": "s2", "saga_mode": "choreography",
			"saga_version": "1", "occurred_at": "2026-01-01T00:00:00Z", "data": "[not json"},
		{"event_id": "e3", "type": "payment.completed", "saga_id": "s3", "saga_mode": "choreography",
			"saga_version": "1", "occurred_at": "2026-01-01T00:00:00Z", "data": `{"order":{"order_id":"o","items":[{"sku":"a","quantity":1}]}}`},
		{"event_id": "e4", "type": "order.created", "saga_id": "s4", "saga_mode": "choreography",
			"saga_version": "1", "occurred_at": "2026-01-01T00:00:00Z", "data": `{"order":"not an object"}`, "group": "forged"},
	}
	for _, p := range poison {
		if err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: p}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	o, err := s.PlaceOrder("c-1", sagatest.Item{SKU: "sku-a", Quantity: 1, UnitPriceCents: 100})
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	dl := deadLetters(t, s)
	if len(dl) != len(poison) {
		t.Fatalf("%d dead letters, want %d: %v", len(dl), len(poison), dl)
	}
	for _, m := range dl {
		if m.Values["group"] != handlers.ServicePayment || m.Values["source_stream"] != stream || m.Values["error"] == "" {
			t.Errorf("dead letter %v lacks group, source or error", m.Values)
		}
	}
	kept := false
	for _, m := range dl {
		kept = kept || (m.Values["event_id"] == "e4" && m.Values["orig_group"] == "forged")
	}
	if !kept {
		t.Errorf("a clashing original field was not kept: %v", dl)
	}
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 100})
}

// A well-formed entry whose payload a service rejects is dead-lettered, and
// its saga is cancelled through the normal compensation path: the refund of
// a charge that never happened is a no-op.
func TestPoisonEntryCompensatesItsSaga(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	// No payment service yet: order.created waits in its group.
	stopFirst := s.StartWorker(map[string]string{"WORKER_SERVICES": "order,inventory,shipping"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.Item{SKU: "sku-a", Quantity: 1, UnitPriceCents: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream := s.KS.Stream(0, handlers.OrderCreated)
	msgs, err := s.RDB.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("order.created: %v %v", msgs, err)
	}
	// Replace the event by a copy whose data carries no order.
	v := msgs[0].Values
	v["data"] = `{"order":{}}`
	if err := s.RDB.XDel(ctx, stream, msgs[0].ID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v}).Err(); err != nil {
		t.Fatal(err)
	}
	_ = stopFirst()
	s.StartWorker(nil)
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	st, err := s.Product.Engine.Get(ctx, o.SagaID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Status != saga.StatusCompensated || !strings.Contains(st.Reason, "dead-lettered order.created") {
		t.Errorf("saga %s (%s), want COMPENSATED by the dead letter", st.Status, st.Reason)
	}
	// The charge never took effect: its step stays FAILED (a null refund).
	if st.Steps[1].Status != saga.StepFailed || st.Steps[2].Status != saga.StepPending {
		t.Errorf("steps %+v", st.Steps)
	}
	l, _ := s.Product.Gateway.Ledger(ctx, o.SagaID)
	if l.Charge != "" || l.Refund != "null" {
		t.Errorf("ledger %+v: want no charge and a null refund", l)
	}
	if dl := deadLetters(t, s); len(dl) != 1 || dl[0].Values["saga_id"] != o.SagaID {
		t.Errorf("dead letters %v", dl)
	}
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
}

// A step that fails on every delivery is dead-lettered after MAX_DELIVERIES
// and compensated; when its compensation fails for good too, the saga is
// FAILED, an alert is raised and the order shows FAILED. Once the gateway is
// fixed, POST /sagas/{id}/retry compensates it.
func TestFailingCompensationEndsFailedWithAlert(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"MAX_DELIVERIES": "2", "CLAIM_MIN_IDLE": "200ms"})
	s.StartAPI(nil)
	// A gateway slower than a handler may take: every charge and refund
	// attempt times out.
	stop := s.StartWorker(map[string]string{"PAYMENT_LATENCY": "5s"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.Item{SKU: "sku-a", Quantity: 1, UnitPriceCents: 100})
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 20*time.Second)
	s.WaitAtRest(5 * time.Second)
	ctx := context.Background()
	v, err := s.Product.Orders.Get(ctx, o.OrderID)
	if err != nil {
		t.Fatal(err)
	}
	if v.Status != handlers.OrderStatusFailed {
		t.Fatalf("order %s, want FAILED", v.Status)
	}
	alerts, err := s.RDB.XRange(ctx, s.KS.Alerts(0), "-", "+").Result()
	if err != nil || len(alerts) != 1 || alerts[0].Values["saga_id"] != o.SagaID {
		t.Fatalf("alerts %v %v", alerts, err)
	}
	dl := deadLetters(t, s)
	if len(dl) != 2 || dl[0].Values["type"] != handlers.OrderCreated || dl[1].Values["type"] != handlers.StockInsufficient {
		t.Errorf("dead letters %v, want order.created then its compensation", dl)
	}
	failed, err := s.Product.Engine.List(ctx, []string{saga.StatusFailed}, 10)
	if err != nil || len(failed) != 1 || failed[0].SagaID != o.SagaID {
		t.Errorf("FAILED index: %v %v", failed, err)
	}
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})

	_ = stop()
	s.StartWorker(nil) // the gateway is fast again
	if code, err := s.Do(http.MethodPost, "/sagas/"+o.SagaID+"/retry", nil, nil, nil); err != nil || code != http.StatusAccepted {
		t.Fatalf("retry: %d %v", code, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, _ = s.Product.Orders.Get(ctx, o.OrderID)
		if v.Status == handlers.OrderStatusCancelled || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	st, _ := s.Product.Engine.Get(ctx, o.SagaID)
	if v.Status != handlers.OrderStatusCancelled || st.Status != saga.StatusCompensated {
		t.Fatalf("after retry: order %s, saga %s", v.Status, st.Status)
	}
	s.WaitAtRest(5 * time.Second)
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
}

// A poison entry with thousands of fields is dead-lettered with a bounded
// copy, and nothing stays pending.
func TestHugePoisonEntryIsDeadLetteredBounded(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(nil)
	ctx := context.Background()
	values := map[string]any{}
	for i := range 5000 {
		values[fmt.Sprintf("f%05d", i)] = strings.Repeat("x", 10)
	}
	values["big"] = strings.Repeat("y", 1<<20)
	if err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.Stream(0, handlers.OrderCreated), Values: values}).Err(); err != nil {
		t.Fatal(err)
	}
	s.SetStock("sku-a", 5)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	dl := deadLetters(t, s)
	if len(dl) != 1 || dl[0].Values["truncated"] == nil || len(dl[0].Values) > 64 {
		t.Fatalf("dead letter of a huge entry: %d entries, %d fields", len(dl), len(dl[0].Values))
	}
}

// An undecodable entry that still names its saga and version is that saga's
// live message: the saga is compensated instead of waiting forever. An entry
// deleted while pending raises an alert.
func TestUndecodableLiveEntryAndLostEntry(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	stopFirst := s.StartWorker(map[string]string{"WORKER_SERVICES": "order,inventory,shipping"})
	s.SetStock("sku-a", 10)
	ctx := context.Background()
	stream := s.KS.Stream(0, handlers.OrderCreated)
	var placed []sagatest.Placed
	for range 2 {
		o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	msgs, err := s.RDB.XRange(ctx, stream, "-", "+").Result()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("order.created: %v %v", msgs, err)
	}
	// The first saga's event becomes undecodable (its time is garbage).
	v := msgs[0].Values
	v[event.FieldOccurredAt] = "garbage"
	s.RDB.XDel(ctx, stream, msgs[0].ID)
	s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v})
	// The second's is read by a consumer that dies, then trimmed away.
	if err := s.RDB.XReadGroup(ctx, &redis.XReadGroupArgs{Group: handlers.ServicePayment, Consumer: "dead", Streams: []string{stream, ">"}, Count: 1}).Err(); err != nil {
		t.Fatal(err)
	}
	s.RDB.XDel(ctx, stream, msgs[1].ID)
	_ = stopFirst()
	s.StartWorker(nil)
	s.WaitFinished(placed[:1], 10*time.Second)
	st, _ := s.Product.Engine.Get(ctx, placed[0].SagaID)
	if st.Status != saga.StatusCompensated || !strings.Contains(st.Reason, "dead-lettered") {
		t.Errorf("saga with an undecodable live event: %s %q", st.Status, st.Reason)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		alerts, _ := s.RDB.XRange(ctx, s.KS.Alerts(0), "-", "+").Result()
		if len(alerts) == 1 && alerts[0].Values["type"] == "entry.lost" && alerts[0].Values["source_id"] == msgs[1].ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no entry.lost alert: %v", alerts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.WaitAtRest(5 * time.Second)
}

// The shipment's message is dead-lettered before any shipment exists: its
// compensation (cancel the shipment) runs first, as for any step whose
// outcome is unknown, and must write nothing — no cancellation counted, no
// "cancelled" record — before the steps before it are compensated.
func TestDeadLetteredShipmentIsANullCancel(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode})
			s.StartAPI(nil)
			// No shipping service yet: its message waits in its group.
			stopFirst := s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory,orchestrator"})
			s.SetStock("sku-a", 10)
			o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
			if err != nil {
				t.Fatal(err)
			}
			o.Want = sagatest.Cancelled
			ctx := context.Background()
			typ := map[string]string{event.ModeChoreography: handlers.StockReserved, event.ModeOrchestration: handlers.CmdShipmentCreate}[mode]
			stream := s.KS.Stream(0, typ)
			var msgs []redis.XMessage
			sagatest.WaitFor(t, "the shipping step's message", 10*time.Second, func() bool {
				msgs, _ = s.RDB.XRange(ctx, stream, "-", "+").Result()
				return len(msgs) == 1
			})
			// Its copy that carries no order is poison.
			v := msgs[0].Values
			v[event.FieldData] = `{"order":{},"step":3,"phase":"execute"}`
			s.RDB.XDel(ctx, stream, msgs[0].ID)
			s.Inject(stream, v)
			_ = stopFirst()
			s.StartWorker(nil)
			s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
			s.WaitAtRest(5 * time.Second)
			s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
			st, _ := s.Product.Engine.Get(ctx, o.SagaID)
			if st.Steps[3].Status != saga.StepFailed {
				t.Errorf("createShipment %s, want FAILED: it never took effect", st.Steps[3].Status)
			}
			if n := s.RDB.HGet(ctx, s.KS.Saga(0, o.SagaID), "shipping.status").Val(); n != "" {
				t.Errorf("the null cancel wrote shipping.status %q", n)
			}
			if c := s.RDB.HGetAll(ctx, s.KS.InPartition(0, "shipping.totals")).Val(); c["cancellations"] != "" {
				t.Errorf("shipping totals %v: a cancellation counted for no shipment", c)
			}
		})
	}
}
