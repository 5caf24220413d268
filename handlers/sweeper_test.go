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

// No shipping worker runs: every saga stalls at createShipment until its
// deadline, and three workers sweep at once. Each saga is compensated
// exactly once — stock back, one refund, order CANCELLED, saga COMPENSATED
// — and a shipping worker started afterwards ships none of them.
func TestSweepersCompensateStalledSagasOnce(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode, "SAGA_STEP_TIMEOUT": "300ms"})
			s.StartAPI(nil)
			for range 3 {
				s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory,orchestrator"})
			}
			initial := map[string]int64{"sku-a": 1000}
			s.SetStock("sku-a", initial["sku-a"])
			var placed []sagatest.Placed
			var want []string
			for range 20 {
				o, err := s.PlaceOrder("c-sweep", sagatest.I("sku-a", 2, 300))
				if err != nil {
					t.Fatal(err)
				}
				placed = append(placed, o)
				want = append(want, handlers.OrderStatusCancelled)
			}
			s.WaitFinished(placed, 20*time.Second)
			ctx := context.Background()
			// The one action a deadline may cause: the failure event of the
			// stalled step (choreography) or the first reverse compensation.
			action := handlers.ShipmentFailed
			if mode == event.ModeOrchestration {
				action = handlers.CmdStockRelease
			}
			for _, o := range placed {
				st, _ := s.Product.Engine.Get(ctx, o.SagaID)
				if st.Status != saga.StatusCompensated || !strings.Contains(st.Reason, "createShipment timed out") {
					t.Fatalf("saga %s: %s %q", o.SagaID, st.Status, st.Reason)
				}
				n := 0
				for _, h := range st.History {
					if h.Type == action {
						n++
					}
				}
				if n != 1 {
					t.Fatalf("saga %s: the deadline was acted on %d times", o.SagaID, n)
				}
				l, _ := s.Product.Gateway.Ledger(ctx, o.SagaID)
				if l.Charge != "charged" || l.Refund != "refunded" {
					t.Fatalf("ledger %+v", l)
				}
			}
			// The late shipping worker finds only stale work.
			s.StartWorker(nil)
			s.WaitAtRest(10 * time.Second) // the late worker read every stock.reserved
			s.MustCheck(placed, initial)
			s.MustOutcomes(placed, want)
			if n := s.RDB.HGet(ctx, s.KS.InPartition(0, "shipping.totals"), "shipments").Val(); n != "" && n != "0" {
				t.Fatalf("%s shipments created for compensated sagas", n)
			}
			if n := s.RDB.ZCard(ctx, s.KS.Deadlines(0)).Val(); n != 0 {
				t.Fatalf("%d deadlines left", n)
			}
		})
	}
}

// A payment gateway slower than the step timeout: the saga is compensated
// when its deadline passes, and the charge that lands afterwards is refunded
// exactly once: net charge 0. The test asserts that late charges did land
// (the gateway sleeps past the deadline before charging, so they do unless
// a worker is stopped first; a round without one is repeated).
func TestLateChargeIsRefundedOnce(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode, "SAGA_STEP_TIMEOUT": "200ms", "CLAIM_MIN_IDLE": "5s"})
			s.StartAPI(nil)
			s.StartWorker(map[string]string{"PAYMENT_LATENCY": "700ms"})
			initial := map[string]int64{"sku-a": 100}
			s.SetStock("sku-a", 100)
			ctx := context.Background()
			var placed []sagatest.Placed
			var late int64
			for round := 0; late == 0; round++ {
				if round == 3 {
					t.Fatal("no charge landed after its deadline in 3 rounds: the test exercised nothing")
				}
				for range 5 {
					o, err := s.PlaceOrder("c-late", sagatest.I("sku-a", 1, 300))
					if err != nil {
						t.Fatal(err)
					}
					o.Want = sagatest.Cancelled
					placed = append(placed, o)
				}
				s.WaitFinished(placed, 20*time.Second)
				s.WaitAtRest(10 * time.Second)
				late = 0
				for _, o := range placed {
					l, err := s.Product.Gateway.Ledger(ctx, o.SagaID)
					if err != nil {
						t.Fatal(err)
					}
					st, err := s.Product.Engine.Get(ctx, o.SagaID)
					if err != nil {
						t.Fatal(err)
					}
					if l.Charge != "charged" {
						continue
					}
					// The charge landed after the saga gave up on it: the
					// saga's history never records the step as done.
					if st.Steps[1].Status == saga.StepCompleted || st.Steps[1].Status == saga.StepCompensated {
						t.Fatalf("saga %s: chargePayment %s, but the gateway is slower than the deadline", o.SagaID, st.Steps[1].Status)
					}
					if l.Refund != "refunded" || l.RefundedCents != l.ChargedCents {
						t.Fatalf("saga %s: late charge not refunded: %+v", o.SagaID, l)
					}
					late++
				}
			}
			// Refunded exactly once: the checker sums the ledgers and compares
			// them with the gateway's running totals, which count every refund
			// applied.
			r := s.MustCheck(placed, initial)
			tot, _ := s.Product.Gateway.Totals(ctx)
			if tot.Charges != late || tot.Refunds != late || tot.ChargedCents != tot.RefundedCents {
				t.Fatalf("%d late charges; gateway totals %+v", late, tot)
			}
			t.Logf("%d late charges landed and were refunded once each (%v)", late, r.ByStatus)
		})
	}
}

// SAGA_TIMEOUT bounds the whole saga whatever the step timeout.
func TestSagaTimeout(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_TIMEOUT": "400ms"})
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory,orchestrator"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	st, _ := s.Product.Engine.Get(context.Background(), o.SagaID)
	if st.Status != saga.StatusCompensated || !strings.Contains(st.Reason, "saga timed out") {
		t.Fatalf("saga %s %q", st.Status, st.Reason)
	}
	// A shipping worker that comes back finds only stale work.
	s.StartWorker(nil)
	s.WaitAtRest(5 * time.Second)
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
}

// Workers whose clocks are minutes off sweep side by side: no saga is
// timed out before its deadline, judged by Redis time (the history records
// each transition at Redis time), and each is compensated exactly once.
func TestSkewedClocksTimeNothingOutEarlyOrTwice(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_STEP_TIMEOUT": "1500ms"})
	s.StartAPI(nil)
	for _, offset := range []string{"-5m", "5m", "10m"} {
		s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory,orchestrator", "CLOCK_OFFSET": offset})
	}
	initial := map[string]int64{"sku-a": 100}
	s.SetStock("sku-a", 100)
	var placed []sagatest.Placed
	for range 5 {
		o, err := s.PlaceOrder("c-skew", sagatest.I("sku-a", 1, 100))
		if err != nil {
			t.Fatal(err)
		}
		o.Want = sagatest.Cancelled
		placed = append(placed, o)
	}
	s.WaitFinished(placed, 10*time.Second)
	ctx := context.Background()
	for _, o := range placed {
		st, _ := s.Product.Engine.Get(ctx, o.SagaID)
		var reserved, timedOut []saga.HistoryEntry
		for _, h := range st.History {
			switch h.Type {
			case handlers.StockReserved:
				reserved = append(reserved, h)
			case handlers.ShipmentFailed:
				timedOut = append(timedOut, h)
			}
		}
		if st.Status != saga.StatusCompensated || len(reserved) != 1 || len(timedOut) != 1 {
			t.Fatalf("saga %s: %s, history %+v: want one stock.reserved and one timeout acted on", o.SagaID, st.Status, st.History)
		}
		// The deadline of createShipment was set when stock.reserved was
		// committed; both times are Redis's.
		if d := timedOut[0].At.Sub(reserved[0].At); d < 1500*time.Millisecond {
			t.Fatalf("saga %s timed out %s after its step began, before its 1.5s deadline", o.SagaID, d)
		}
	}
	s.StartWorker(nil) // shipping, back: only stale work for it
	s.WaitAtRest(5 * time.Second)
	s.MustCheck(placed, initial)
}

// After SAGA_TIMEOUT has passed, the compensations still get their own step
// deadline: a slow refund completes instead of being re-sent until FAILED.
func TestCompensationAfterSagaTimeoutHasTime(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_TIMEOUT": "500ms", "SAGA_STEP_TIMEOUT": "2s"})
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory,orchestrator", "PAYMENT_LATENCY": "300ms"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.StartWorker(nil) // shipping, back: only stale work for it
	s.WaitAtRest(5 * time.Second)
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
	s.MustOutcomes([]sagatest.Placed{o}, []string{handlers.OrderStatusCancelled})
}

// Choreography, no order service and no shipping: the saga waits at
// createShipment past its deadline. The sweeper gives up on the shipment
// and compensates; the chain stalls again at the absent order service and
// the sweeper re-publishes its last event, not another; once every service
// is back the saga ends COMPENSATED, no shipment ever made.
func TestSweeperRepublishesAStalledCompensation(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_STEP_TIMEOUT": "300ms", "COMPENSATION_ATTEMPTS": "20"})
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"WORKER_SERVICES": "payment,inventory"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sagatest.WaitFor(t, "the saga's refund", 10*time.Second, func() bool {
		st, _ := s.Product.Engine.Get(ctx, o.SagaID)
		return st.Status == saga.StatusCompensating && st.Steps[1].Status == saga.StepCompensated
	})
	sagatest.WaitFor(t, "the sweeper to re-publish payment.refunded", 10*time.Second, func() bool {
		st, _ := s.Product.Engine.Get(ctx, o.SagaID)
		n := 0
		for _, h := range st.History {
			if h.Type == handlers.PaymentRefunded {
				n++
			}
		}
		return n >= 2
	})
	s.StartWorker(nil)
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
	s.MustOutcomes([]sagatest.Placed{o}, []string{handlers.OrderStatusCancelled})
	st, _ := s.Product.Engine.Get(ctx, o.SagaID)
	var republished, others []string
	for _, h := range st.History {
		switch h.Type {
		case handlers.PaymentRefunded:
			republished = append(republished, h.Type)
		case handlers.ShipmentFailed, handlers.ShipmentAbandoned, handlers.ShipmentCancelled, handlers.StockReleased:
			others = append(others, h.Type)
		}
	}
	if len(republished) < 2 || strings.Join(others, " ") != handlers.ShipmentFailed+" "+handlers.StockReleased {
		t.Fatalf("history: %d payment.refunded (want a re-publication), chain %v", len(republished), others)
	}
	totals := s.RDB.HGetAll(ctx, s.KS.InPartition(0, "shipping.totals")).Val()
	if totals["shipments"] != "" || totals["cancellations"] != "" {
		t.Fatalf("shipping totals %v: the late shipping service must ship nothing", totals)
	}
}
