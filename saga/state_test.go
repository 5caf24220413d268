package saga

import (
	"encoding/json"
	"strings"
	"testing"
)

// What a saga hash says, as GET /sagas/{id} shows it: each step's forward
// result beside its compensation's, which of the two failed, where the saga
// stopped, and both of its reasons.
func TestStateShowsBothOutcomes(t *testing.T) {
	e, _ := testEngine(t)
	st := e.parseState("s-1", map[string]string{
		"type": "GEAR_SAGA", "mode": "orchestration", "status": StatusFailed, "version": "9",
		"current_step": "2", "compensating_step": "1",
		"reason": "compensation of pay failed 3 times: no", "first_reason": "pack refused",
		"step.0.status": "COMPLETED",
		"step.1.status": "COMPLETED", "step.1.result": `{"payment_id":"p-1"}`,
		"step.1.compensation": "FAILED", "step.1.attempts": "3", "step.1.error": "no",
		"step.2.status": "FAILED",
	})
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`"currentStep":2`, `"reason":"compensation of pay failed 3 times: no","firstReason":"pack refused"`,
		`{"name":"order","status":"COMPLETED"}`,
		`{"name":"pay","status":"COMPENSATION_FAILED","result":{"payment_id":"p-1"},"compensation":{"status":"FAILED","attempts":3,"error":"no"}}`,
		`{"name":"pack","status":"FAILED"}`, `{"name":"ship","status":"PENDING"}`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("JSON %s\nlacks %s", b, want)
		}
	}
	// The engine decides on what the hash stores: the step had completed,
	// and the compensation in flight is pay's.
	if st.Steps[1].forward() != StepCompleted || st.compensating != 1 || st.Steps[1].Attempts() != 3 {
		t.Errorf("forward %s, compensating %d, attempts %d", st.Steps[1].forward(), st.compensating, st.Steps[1].Attempts())
	}

	// A hash written before these fields existed: a COMPENSATED step's
	// compensation ran; the cursor was current_step; one reason.
	old := e.parseState("s-2", map[string]string{
		"type": "GEAR_SAGA", "status": StatusCompensating, "current_step": "0", "reason": "r",
		"step.0.status": "COMPLETED", "step.1.status": "COMPENSATED", "step.2.status": "FAILED",
	})
	if c := old.Steps[1].Compensation; c == nil || c.Status != CompensationCompleted || old.compensating != 0 || old.FirstReason != "r" {
		t.Errorf("old hash: compensation %+v, compensating %d, first reason %q", c, old.compensating, old.FirstReason)
	}
	if old.Steps[0].Compensation != nil || old.Steps[2].Compensation != nil {
		t.Errorf("old hash: compensations of steps that had none: %+v", old.Steps)
	}
}

// A saga's first reason is kept once a different one follows, and written
// only then.
func TestFirstReasonIsKept(t *testing.T) {
	fields := func(c *patch) map[string]any {
		out := map[string]any{}
		for i := 0; i+1 < len(c.fields); i += 2 {
			out[c.fields[i].(string)] = c.fields[i+1]
		}
		return out
	}
	cases := []struct {
		name       string
		st         *State
		why        string
		wantFirst  any
		wantReason any
	}{
		{"the first", &State{}, "stock short", nil, "stock short"},
		{"a second", &State{Reason: "stock short"}, "refund refused", "stock short", "refund refused"},
		{"the same again", &State{Reason: "stock short"}, "stock short", nil, "stock short"},
		{"a third", &State{Reason: "refund refused", FirstReason: "stock short", firstKept: true}, "refund refused 2", nil, "refund refused 2"},
	}
	for _, tc := range cases {
		got := fields(newPatch("T", "s", ModeChoreography, 0, StatusCompensating).of(tc.st).reason(tc.why))
		if got["first_reason"] != tc.wantFirst || got["reason"] != tc.wantReason {
			t.Errorf("%s: %v, want first_reason %v, reason %v", tc.name, got, tc.wantFirst, tc.wantReason)
		}
	}
}

// The step whose compensation a message runs, in both styles.
func TestCompensatedBy(t *testing.T) {
	_, d := testEngine(t)
	for typ, want := range map[string]int{
		"pay.failed": 0, "pack.failed": 1, "ship.failed": 1, "ship.compensated": 1, "pay.compensated": 0,
		"ship.abandoned": 3, "cmd.pay.compensate": 1, "cmd.ship.compensate": 3,
		"pay.completed": -1, "cmd.pay": -1, "gear.undone": -1, ReplyType: -1,
	} {
		if got := d.compensatedBy(typ); got != want {
			t.Errorf("compensatedBy(%s) = %d, want %d", typ, got, want)
		}
	}
}
