package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

// sagaJSON is GET /sagas/{id} as a client decodes it.
type sagaJSON struct {
	Status      string `json:"status"`
	CurrentStep *int   `json:"currentStep"`
	Reason      string `json:"reason"`
	FirstReason string `json:"firstReason"`
	Steps       []struct {
		Name         string         `json:"name"`
		Status       string         `json:"status"`
		Result       map[string]any `json:"result"`
		Compensation *struct {
			Status   string         `json:"status"`
			Result   map[string]any `json:"result"`
			Attempts int            `json:"attempts"`
			Error    string         `json:"error"`
		} `json:"compensation"`
	} `json:"steps"`
}

func getSaga(t *testing.T, s *sagatest.System, id string) sagaJSON {
	t.Helper()
	var sg sagaJSON
	if code, err := s.Do(http.MethodGet, "/sagas/"+id, nil, nil, &sg); err != nil || code != http.StatusOK {
		t.Fatalf("GET /sagas/%s: %d %v", id, code, err)
	}
	if sg.CurrentStep == nil || len(sg.Steps) != 4 {
		t.Fatalf("GET /sagas/%s: %+v", id, sg)
	}
	return sg
}

func (sg sagaJSON) statuses() string {
	var out []string
	for _, s := range sg.Steps {
		out = append(out, s.Status)
	}
	return strings.Join(out, " ")
}

// A refund that keeps failing, in both styles: the saga is FAILED, its
// charge step COMPENSATION_FAILED with its payment and the refund's tries
// and error, the saga's current step the one that failed (reserveStock),
// its reason the refund's and its first reason the stock's. Once an
// operator retried it with the gateway fixed, it is COMPENSATED: the
// charge keeps its payment beside the refund's result, the latest reason
// stays, the first one still names the stock, and the order is cancelled
// for the stock.
func TestFailedCompensationThenRetryInTheSagaJSON(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode, "COMPENSATION_BACKOFF": "10ms",
				"COMPENSATION_ATTEMPTS": "3", "MAX_DELIVERIES": "2", "CLAIM_MIN_IDLE": "200ms"})
			s.StartAPI(nil)
			stop := s.StartWorker(map[string]string{"PAYMENT_REFUND_FAILURES": "1000"})
			initial := map[string]int64{"sku-a": 10}
			s.SetStock("sku-a", 10)
			o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 11, 100)) // stock short: the refund must run
			if err != nil {
				t.Fatal(err)
			}
			o.Want = sagatest.Failed
			s.WaitFinished([]sagatest.Placed{o}, 15*time.Second)
			s.WaitAtRest(10 * time.Second)
			s.MustCheck([]sagatest.Placed{o}, initial)

			const stock = "stock insufficient: sku-a"
			sg := getSaga(t, s, o.SagaID)
			charge := sg.Steps[1]
			// Orchestration tries the refund COMPENSATION_ATTEMPTS times; in
			// choreography its event is delivered MAX_DELIVERIES times.
			tries := map[string]int{event.ModeChoreography: 2, event.ModeOrchestration: 3}[mode]
			if sg.Status != saga.StatusFailed || *sg.CurrentStep != 2 || sg.FirstReason != stock ||
				!strings.Contains(sg.Reason, "refused the refund") || sg.statuses() != "COMPLETED COMPENSATION_FAILED FAILED PENDING" {
				t.Fatalf("FAILED saga: %s at step %d, reason %q, first %q, steps %s", sg.Status, *sg.CurrentStep, sg.Reason, sg.FirstReason, sg.statuses())
			}
			paymentID, _ := charge.Result["payment_id"].(string)
			if !strings.HasPrefix(paymentID, "pay-") || charge.Compensation == nil || charge.Compensation.Status != saga.CompensationFailed ||
				charge.Compensation.Attempts != tries || !strings.Contains(charge.Compensation.Error, "refused the refund") ||
				charge.Compensation.Result != nil {
				t.Fatalf("charge step %+v, compensation %+v", charge, charge.Compensation)
			}
			if v, _ := s.Product.Orders.Get(context.Background(), o.OrderID); v.Status != handlers.OrderStatusFailed || v.Reason != sg.Reason {
				t.Fatalf("order %s %q, want FAILED with the saga's reason", v.Status, v.Reason)
			}

			// The operator fixes the gateway (a worker without the fault) and
			// retries.
			_ = stop()
			s.StartWorker(nil)
			if code, err := s.Do(http.MethodPost, "/sagas/"+o.SagaID+"/retry", nil, nil, nil); err != nil || code != http.StatusAccepted {
				t.Fatalf("retry: %d %v", code, err)
			}
			o.Want = sagatest.Cancelled
			s.WaitFinished([]sagatest.Placed{o}, 15*time.Second)
			s.WaitAtRest(10 * time.Second)
			s.MustCheck([]sagatest.Placed{o}, initial)

			after := getSaga(t, s, o.SagaID)
			charge = after.Steps[1]
			if after.Status != saga.StatusCompensated || *after.CurrentStep != 2 || after.Reason != sg.Reason ||
				after.FirstReason != stock || !strings.HasPrefix(after.statuses(), "COMPENSATED COMPENSATED FAILED PENDING") {
				t.Fatalf("retried saga: %s at step %d, reason %q, first %q, steps %s", after.Status, *after.CurrentStep, after.Reason, after.FirstReason, after.statuses())
			}
			if charge.Result["payment_id"] != paymentID || charge.Compensation == nil || charge.Compensation.Status != saga.CompensationCompleted ||
				charge.Compensation.Result["refund"] != "refunded" || charge.Compensation.Attempts != tries {
				b, _ := json.Marshal(charge)
				t.Fatalf("charge step after the retry: %s, want payment %s kept and the refund beside it", b, paymentID)
			}
			if v, _ := s.Product.Orders.Get(context.Background(), o.OrderID); v.Status != handlers.OrderStatusCancelled || v.Reason != stock {
				t.Fatalf("order %s %q, want CANCELLED for the stock", v.Status, v.Reason)
			}
		})
	}
}
