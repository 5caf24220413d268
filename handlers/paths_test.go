package handlers_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

// The four paths of the order saga end in the right state, with the steps,
// stock and money SPEC section 9 requires.
func TestFourPaths(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		for _, parts := range []string{"1", "4"} {
			t.Run(mode+"/partitions="+parts, func(t *testing.T) {
				t.Parallel()
				fourPaths(t, map[string]string{"SAGA_PARTITIONS": parts, "SAGA_MODE": mode})
			})
		}
	}
}

func fourPaths(t *testing.T, env map[string]string) {
	fourPathsOn(t, sagatest.New(t, srv, env), env["SAGA_MODE"])
}

// fourPathsOn runs each path three times on s and checks every outcome; it
// returns the orders it placed.
func fourPathsOn(t *testing.T, s *sagatest.System, mode string) []sagatest.Placed {
	s.StartAPI(nil)
	s.StartWorker(nil)
	initial := map[string]int64{"sku-a": 50, "sku-b": 5000, "sku-scarce": 1}
	for sku, n := range initial {
		s.SetStock(sku, n)
	}
	type path struct {
		name        string
		items       []sagatest.Item
		orderStatus string
		sagaStatus  string
		steps       []string
		// current is the step the saga failed at (the last for a happy one)
		current int
		// compensations are the statuses of the steps' compensations, ""
		// for none
		compensations []string
		reason        string
		// orchestration: the commands and final event, in order
		flow string
	}
	paths := []path{
		{"happy", []sagatest.Item{sagatest.I("sku-a", 2, 1250)}, handlers.OrderStatusCompleted, saga.StatusCompleted,
			[]string{"COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED"}, 3, []string{"", "", "", ""}, "",
			"payment.charge stock.reserve shipment.create order.completed"},
		{"payment declined", []sagatest.Item{sagatest.I("sku-a", 1, 100001)}, handlers.OrderStatusCancelled, saga.StatusCompensated,
			[]string{"COMPENSATED", "FAILED", "PENDING", "PENDING"}, 1, []string{"COMPLETED", "", "", ""}, "payment declined: amount over the gateway limit",
			"payment.charge order.cancel order.cancelled"},
		{"stock short", []sagatest.Item{sagatest.I("sku-a", 1, 10), sagatest.I("sku-scarce", 2, 10)}, handlers.OrderStatusCancelled, saga.StatusCompensated,
			[]string{"COMPENSATED", "COMPENSATED", "FAILED", "PENDING"}, 2, []string{"COMPLETED", "COMPLETED", "", ""}, "stock insufficient: sku-scarce",
			"payment.charge stock.reserve payment.refund order.cancel order.cancelled"},
		{"shipment failed", []sagatest.Item{sagatest.I("sku-b", 1001, 1)}, handlers.OrderStatusCancelled, saga.StatusCompensated,
			[]string{"COMPENSATED", "COMPENSATED", "COMPENSATED", "FAILED"}, 3, []string{"COMPLETED", "COMPLETED", "COMPLETED", ""}, "shipment failed: too many units for one shipment",
			"payment.charge stock.reserve shipment.create stock.release payment.refund order.cancel order.cancelled"},
	}
	var placed []sagatest.Placed
	for range 3 { // each path three times, so that several partitions are used
		for _, p := range paths {
			o, err := s.PlaceOrder("c-1", p.items...)
			if err != nil {
				t.Fatal(err)
			}
			placed = append(placed, o)
		}
	}
	used := map[int]bool{}
	for _, o := range placed {
		used[s.KS.PartitionOf(o.SagaID)] = true
		if s.KS.PartitionOf(o.OrderID) != s.KS.PartitionOf(o.SagaID) {
			t.Errorf("order %s and saga %s in different partitions", o.OrderID, o.SagaID)
		}
	}
	if s.KS.Partitions > 1 && len(used) < 2 {
		t.Errorf("12 sagas all in one of %d partitions", s.KS.Partitions)
	}
	s.WaitFinished(placed, 20*time.Second)
	ctx := context.Background()
	for i, o := range placed {
		p := paths[i%len(paths)]
		v, err := s.Product.Orders.Get(ctx, o.OrderID)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.Product.Engine.Get(ctx, o.SagaID)
		if err != nil {
			t.Fatal(err)
		}
		if v.Status != p.orderStatus || st.Status != p.sagaStatus {
			t.Errorf("%s: order %s saga %s, want %s %s", p.name, v.Status, st.Status, p.orderStatus, p.sagaStatus)
		}
		if v.Reason != p.reason || st.Reason != p.reason {
			t.Errorf("%s: reason %q / %q, want %q", p.name, v.Reason, st.Reason, p.reason)
		}
		if st.FirstReason != p.reason || st.CurrentStep != p.current {
			t.Errorf("%s: first reason %q, current step %d; want %q, %d", p.name, st.FirstReason, st.CurrentStep, p.reason, p.current)
		}
		for j, want := range p.steps {
			if st.Steps[j].Status != want {
				t.Errorf("%s: step %s is %s, want %s", p.name, st.Steps[j].Name, st.Steps[j].Status, want)
			}
			got := ""
			if c := st.Steps[j].Compensation; c != nil {
				got = c.Status
			}
			if got != p.compensations[j] {
				t.Errorf("%s: step %s's compensation %q, want %q", p.name, st.Steps[j].Name, got, p.compensations[j])
			}
		}
		checkResults(t, p.name, st)
		if mode == event.ModeChoreography && (len(st.History) < 2 || st.History[0].Type != handlers.OrderCreated) {
			t.Errorf("%s: history %+v does not start with order.created", p.name, st.History)
		}
		if mode == event.ModeOrchestration {
			// The commands went out in order, compensations in reverse.
			var flow []string
			for _, h := range st.History {
				flow = append(flow, strings.TrimPrefix(h.Type, "cmd."))
			}
			if got := strings.Join(flow, " "); got != p.flow {
				t.Errorf("%s: flow %q, want %q", p.name, got, p.flow)
			}
		}
		if st.Mode != mode {
			t.Errorf("%s: mode %s", p.name, st.Mode)
		}
		last := st.History[len(st.History)-1].Type
		if want := map[string]string{saga.StatusCompleted: handlers.OrderCompleted, saga.StatusCompensated: handlers.OrderCancelled}[p.sagaStatus]; last != want {
			t.Errorf("%s: last event %s, want %s", p.name, last, want)
		}
		if st.DeadlineAt != nil {
			t.Errorf("%s: a finished saga still has a deadline", p.name)
		}
		ttl, err := s.RDB.TTL(ctx, s.KS.Saga(s.KS.PartitionOf(st.SagaID), st.SagaID)).Result()
		if err != nil || ttl <= 0 {
			t.Errorf("%s: finished saga hash has no TTL (%v, %v)", p.name, ttl, err)
		}
	}
	s.WaitAtRest(5 * time.Second)
	r := s.MustCheck(placed, initial)
	if r.ByStatus[handlers.OrderStatusCompleted] != 3 || r.ByStatus[handlers.OrderStatusCancelled] != 9 {
		t.Errorf("statuses %v", r.ByStatus)
	}
	// The shipping failure path released the reservation and refunded.
	l, _ := s.Product.Gateway.Ledger(ctx, placed[3].SagaID)
	if l.Charge != "charged" || l.Refund != "refunded" || l.RefundedCents != 1001 {
		t.Errorf("shipment-failed ledger %+v", l)
	}
	return placed
}

// The chaos knobs decline charges and fail shipments at random; each such
// saga compensates, and stock and money still balance.
func TestRandomFailuresCompensate(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"PAYMENT_FAILURE_RATE": "0.3", "SHIPPING_FAILURE_RATE": "0.3"})
	initial := map[string]int64{"sku-a": 1000}
	s.SetStock("sku-a", initial["sku-a"])
	var placed []sagatest.Placed
	for range 60 {
		o, err := s.PlaceOrder("c-chaos", sagatest.I("sku-a", 2, 300))
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	s.WaitFinished(placed, 20*time.Second)
	s.WaitAtRest(5 * time.Second)
	r := s.MustCheck(placed, initial)
	if r.ByStatus[handlers.OrderStatusCompleted] == 0 || r.ByStatus[handlers.OrderStatusCancelled] == 0 {
		t.Fatalf("60 orders at 30%% failure rates: %v", r.ByStatus)
	}
	reasons := map[string]bool{}
	for _, o := range placed {
		v, _ := s.Product.Orders.Get(context.Background(), o.OrderID)
		reasons[v.Reason] = true
	}
	if !reasons["payment declined: declined by the gateway"] || !reasons["shipment failed: carrier refused the shipment"] {
		t.Errorf("reasons %v lack a random decline or a random shipment failure", reasons)
	}
}

// checkResults checks that each step that ran kept its forward result, and
// that each compensation that ran kept its own: the charge names its
// payment, a refund how much it gave back.
func checkResults(t *testing.T, name string, st *saga.State) {
	t.Helper()
	want := []struct{ forward, compensation string }{
		{"", ""}, // createOrder: done by the API; cancelling it returns nothing
		{`"payment_id":"pay-`, `"refund":"refunded"`},
		{`"reserved_units":`, `"released_units":`},
		{`"shipment_id":`, `"cancel":"cancelled"`},
	}
	for j, s := range st.Steps {
		ran := s.Status == saga.StepCompleted || s.Status == saga.StepCompensated
		if ran && !strings.Contains(string(s.Result), want[j].forward) {
			t.Errorf("%s: step %s %s, result %s, want it to hold %s", name, s.Name, s.Status, s.Result, want[j].forward)
		}
		if s.Status == saga.StepCompensated && !strings.Contains(string(s.Compensation.Result), want[j].compensation) {
			t.Errorf("%s: step %s compensated with result %s, want it to hold %s", name, s.Name, s.Compensation.Result, want[j].compensation)
		}
		if s.Status == saga.StepFailed && len(s.Result) > 0 {
			t.Errorf("%s: step %s failed with a result %s", name, s.Name, s.Result)
		}
	}
}
