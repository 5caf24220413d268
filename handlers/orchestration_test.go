package handlers_test

import (
	"context"
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

func flow(t *testing.T, s *sagatest.System, sagaID string) string {
	t.Helper()
	st, err := s.Product.Engine.Get(context.Background(), sagaID)
	if err != nil {
		t.Fatal(err)
	}
	var f []string
	for _, h := range st.History {
		f = append(f, strings.TrimPrefix(h.Type, "cmd."))
	}
	return strings.Join(f, " ")
}

// A compensation that fails K times is retried with back-off and then
// succeeds: the saga ends COMPENSATED, each retry is in its history.
func TestCompensationRetriedUntilItSucceeds(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": event.ModeOrchestration,
		"COMPENSATION_BACKOFF": "20ms", "COMPENSATION_ATTEMPTS": "5"})
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"PAYMENT_REFUND_FAILURES": "2"})
	initial := map[string]int64{"sku-a": 10, "sku-scarce": 0}
	for sku, n := range initial {
		s.SetStock(sku, n)
	}
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100), sagatest.I("sku-scarce", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	s.MustCheck([]sagatest.Placed{o}, initial)
	s.MustOutcomes([]sagatest.Placed{o}, []string{handlers.OrderStatusCancelled})
	st, _ := s.Product.Engine.Get(context.Background(), o.SagaID)
	if st.Status != saga.StatusCompensated || st.Steps[1].Status != saga.StepCompensated || st.Steps[1].Attempts() != 2 {
		t.Fatalf("saga %s, payment step %+v", st.Status, st.Steps[1])
	}
	want := "payment.charge stock.reserve payment.refund retry.scheduled payment.refund retry.scheduled payment.refund order.cancel order.cancelled"
	if got := flow(t, s, o.SagaID); got != want {
		t.Fatalf("flow %q, want %q", got, want)
	}
	// A retry left behind for a version the saga has moved past is dropped,
	// never sent.
	ctx := context.Background()
	retries := s.KS.Retries(s.KS.PartitionOf(o.SagaID))
	s.RDB.ZAdd(ctx, retries, redis.Z{Score: 0, Member: o.SagaID + "|5"})
	deadline := time.Now().Add(5 * time.Second)
	for s.RDB.ZCard(ctx, retries).Val() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("obsolete retry not dropped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := flow(t, s, o.SagaID); got != want {
		t.Fatalf("an obsolete retry changed the saga: %q", got)
	}
}

// A compensation that always fails ends the saga FAILED with an alert, the
// order shows FAILED; once the fault is gone, POST /sagas/{id}/retry brings
// it to COMPENSATED. Retrying a saga that is not FAILED is a 409.
func TestFailedCompensationThenOperatorRetry(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": event.ModeOrchestration,
		"COMPENSATION_BACKOFF": "10ms", "COMPENSATION_ATTEMPTS": "3"})
	s.StartAPI(nil)
	stop := s.StartWorker(map[string]string{"PAYMENT_REFUND_FAILURES": "1000"})
	initial := map[string]int64{"sku-a": 10}
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 11, 1)) // stock short: the refund must run
	if err != nil {
		t.Fatal(err)
	}
	good, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 1))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o, good}, 10*time.Second)
	ctx := context.Background()
	v, _ := s.Product.Orders.Get(ctx, o.OrderID)
	st, _ := s.Product.Engine.Get(ctx, o.SagaID)
	if v.Status != handlers.OrderStatusFailed || st.Status != saga.StatusFailed || st.Steps[1].Attempts() != 3 {
		t.Fatalf("order %s, saga %s, steps %+v", v.Status, st.Status, st.Steps)
	}
	alerts, err := s.RDB.XRange(ctx, s.KS.Alerts(s.KS.PartitionOf(o.SagaID)), "-", "+").Result()
	if err != nil || len(alerts) != 1 || alerts[0].Values["saga_id"] != o.SagaID || alerts[0].Values["type"] != "saga.failed" {
		t.Fatalf("alerts %v %v", alerts, err)
	}
	if code, _ := s.Do(http.MethodPost, "/sagas/"+good.SagaID+"/retry", nil, nil, nil); code != http.StatusConflict {
		t.Errorf("retry of a %s saga: %d, want 409", "COMPLETED", code)
	}
	// The operator fixes the gateway (a worker without the fault) and retries.
	_ = stop()
	s.StartWorker(nil)
	var body map[string]string
	if code, err := s.Do(http.MethodPost, "/sagas/"+o.SagaID+"/retry", nil, nil, &body); err != nil || code != http.StatusAccepted || body["status"] != "COMPENSATING" {
		t.Fatalf("retry: %d %v %v", code, body, err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, _ = s.Product.Engine.Get(ctx, o.SagaID); st.Status == saga.StatusCompensated || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.WaitAtRest(5 * time.Second)
	s.MustCheck([]sagatest.Placed{o, good}, initial)
	s.MustOutcomes([]sagatest.Placed{o, good}, []string{handlers.OrderStatusCancelled, handlers.OrderStatusCompleted})
	if code, _ := s.Do(http.MethodPost, "/sagas/"+o.SagaID+"/retry", nil, nil, nil); code != http.StatusConflict {
		t.Errorf("second retry: %d, want 409", code)
	}
}

// A command a service cannot handle is dead-lettered; the orchestrated saga
// compensates the step in flight first (a refund of nothing: a no-op that
// blocks a late charge), then the steps before it.
func TestPoisonCommandCompensatesTheStepInFlight(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": event.ModeOrchestration})
	s.StartAPI(nil)
	stopFirst := s.StartWorker(map[string]string{"WORKER_SERVICES": "order,inventory,shipping,orchestrator"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	stream := s.KS.Stream(0, handlers.CmdPaymentCharge)
	deadline := time.Now().Add(10 * time.Second)
	var msgs []redis.XMessage
	for len(msgs) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no charge command")
		}
		msgs, _ = s.RDB.XRange(ctx, stream, "-", "+").Result()
		time.Sleep(10 * time.Millisecond)
	}
	v := msgs[0].Values
	v["data"] = `{"order":{},"step":1,"phase":"execute"}`
	s.RDB.XDel(ctx, stream, msgs[0].ID)
	s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v})
	_ = stopFirst()
	s.StartWorker(nil)
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	st, _ := s.Product.Engine.Get(ctx, o.SagaID)
	if st.Status != saga.StatusCompensated || !strings.Contains(st.Reason, "dead-lettered cmd.payment.charge") {
		t.Fatalf("saga %s %q", st.Status, st.Reason)
	}
	if got, want := flow(t, s, o.SagaID), "payment.charge payment.refund order.cancel order.cancelled"; got != want {
		t.Fatalf("flow %q, want %q", got, want)
	}
	// The charge never took effect: the step is FAILED, the saga stopped
	// at it, and its compensation ran as a refund of nothing.
	charge := st.Steps[1]
	if st.CurrentStep != 1 || charge.Status != saga.StepFailed || len(charge.Result) != 0 || charge.Compensation == nil ||
		charge.Compensation.Status != saga.CompensationCompleted || !strings.Contains(string(charge.Compensation.Result), `"refund":"null"`) {
		t.Fatalf("current step %d, charge step %+v, compensation %+v", st.CurrentStep, charge, charge.Compensation)
	}
	l, _ := s.Product.Gateway.Ledger(ctx, o.SagaID)
	if l.Charge != "" || l.Refund != "null" {
		t.Fatalf("ledger %+v, want a null refund and no charge", l)
	}
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
}
