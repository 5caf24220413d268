package saga

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/streams"
)

// Redis-free tests of the engine's pure decisions: what a saga does when a
// step fails, times out or is dead-lettered, in each style, and what the
// orchestrator sends next for each reply.

// gearSaga has a step without compensation (pack), so that each rule about
// skipping it is exercised.
func gearSaga() *Definition {
	return &Definition{
		Type: "GEAR_SAGA",
		Steps: []Step{
			{Name: "order", Execute: "cmd.order", Compensate: "cmd.order.cancel", Abort: "order.aborted"},
			{Name: "pay", Execute: "cmd.pay", Compensate: "cmd.pay.refund", Abort: "pay.aborted", Fail: "pay.failed"},
			{Name: "pack", Execute: "cmd.pack", Fail: "pack.failed"},
			{Name: "ship", Execute: "cmd.ship", Compensate: "cmd.ship.cancel", Abort: "ship.aborted", Fail: "ship.failed"},
		},
		Completed:   Final{Event: "gear.done"},
		Compensated: Final{Event: "gear.undone"},
		Events: map[string]Effect{
			"order.aborted": {Step: 0, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			"pay.aborted":   {Step: 1, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			"pay.failed":    {Step: 1, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			"pack.failed":   {Step: 2, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			"ship.aborted":  {Step: 3, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			"ship.failed":   {Step: 3, StepStatus: event.StepFailed, Status: event.StatusCompensating},
		},
	}
}

func testEngine(t testing.TB) *Engine {
	t.Helper()
	e, err := New(nil, streams.NewKeyspace("unit", 1), Options{CompensationAttempts: 3, Backoff: 100 * time.Millisecond, BackoffMax: time.Second}, gearSaga())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// sagaAt is a saga of gearSaga waiting on step k: the steps before it
// completed, the others pending.
func sagaAt(mode, status string, k int) *State {
	st := &State{SagaID: "s-1", Type: "GEAR_SAGA", Mode: mode, Status: status, CurrentStep: k, Version: 7,
		Context: json.RawMessage(`{"n":1}`)}
	for i, s := range gearSaga().Steps {
		ss := StepState{Name: s.Name, Status: event.StepPending}
		if i < k {
			ss.Status = event.StepCompleted
		}
		st.Steps = append(st.Steps, ss)
	}
	return st
}

// decision is what a filled commit does, in words a table can hold.
type decision struct {
	status  string // the saga's new status, "" for unchanged
	emit    string // the event or command published, "" for none
	step    string // a command's "<step>/<phase>"
	current string // current_step written, "" for unchanged
	set     string // step statuses written, "i=STATUS ..." in order
	alert   bool
	history string // recorded without publishing
	retry   string
}

func decide(t *testing.T, c *commit) decision {
	t.Helper()
	d := decision{status: c.status, alert: len(c.alert) > 0, retry: c.retry}
	var set []string
	for i := 0; i+1 < len(c.saga); i += 2 {
		k, v := fmt.Sprint(c.saga[i]), fmt.Sprint(c.saga[i+1])
		if n, ok := strings.CutPrefix(k, "step."); ok && strings.HasSuffix(n, ".status") {
			set = append(set, strings.TrimSuffix(n, ".status")+"="+v)
		}
		if k == "current_step" {
			d.current = v
		}
	}
	d.set = strings.Join(set, " ")
	if len(c.event) > 0 {
		fields := map[string]string{}
		for i := 0; i+1 < len(c.event); i += 2 {
			fields[fmt.Sprint(c.event[i])] = fmt.Sprint(c.event[i+1])
		}
		d.emit = fields[event.FieldType]
		if v, _ := strconv.ParseInt(fields[event.FieldSagaVersion], 10, 64); v != 8 {
			t.Errorf("published at version %d, want the saga's next (8)", v)
		}
		var cmd event.Command
		if strings.HasPrefix(d.emit, "cmd.") && json.Unmarshal([]byte(fields[event.FieldData]), &cmd) == nil {
			d.step = strconv.Itoa(cmd.Step) + "/" + cmd.Phase
		}
	} else if c.history != "" {
		// A transition that publishes nothing still records what happened.
		d.history, _, _ = strings.Cut(c.history, "|")
	}
	return d
}

func TestGiveUp(t *testing.T) {
	const (
		orch = event.ModeOrchestration
		chor = event.ModeChoreography
		comp = event.StatusCompensating
	)
	failed := decision{status: event.StatusFailed, alert: true, history: "saga.failed"}
	cases := []struct {
		name    string
		mode    string
		status  string
		k       int // step in flight
		timeout bool
		want    decision
	}{
		// Orchestration, dead letter: the step in flight is compensated
		// first (its effect is unknown), unless nothing undoes it.
		{"orch/dead/order", orch, event.StatusInProgress, 0, false,
			decision{status: comp, emit: "cmd.order.cancel", step: "0/compensate", current: "0", set: "0=FAILED"}},
		{"orch/dead/pay", orch, event.StatusInProgress, 1, false,
			decision{status: comp, emit: "cmd.pay.refund", step: "1/compensate", current: "1", set: "1=FAILED"}},
		{"orch/dead/pack has no compensation", orch, event.StatusInProgress, 2, false,
			decision{status: comp, emit: "cmd.pay.refund", step: "1/compensate", current: "1", set: "2=FAILED"}},
		{"orch/dead/ship", orch, event.StatusInProgress, 3, false,
			decision{status: comp, emit: "cmd.ship.cancel", step: "3/compensate", current: "3", set: "3=FAILED"}},
		// Orchestration, timeout: the service may be down; the steps before
		// are compensated at once (the late effect is undone when it lands).
		{"orch/timeout/order", orch, event.StatusInProgress, 0, true,
			decision{status: event.StatusCompensated, emit: "gear.undone", set: "0=FAILED"}},
		{"orch/timeout/pay", orch, event.StatusInProgress, 1, true,
			decision{status: comp, emit: "cmd.order.cancel", step: "0/compensate", current: "0", set: "1=FAILED"}},
		{"orch/timeout/pack", orch, event.StatusInProgress, 2, true,
			decision{status: comp, emit: "cmd.pay.refund", step: "1/compensate", current: "1", set: "2=FAILED"}},
		{"orch/timeout/ship skips pack", orch, event.StatusInProgress, 3, true,
			decision{status: comp, emit: "cmd.pay.refund", step: "1/compensate", current: "1", set: "3=FAILED"}},
		{"orch/compensating", orch, comp, 1, true, failed},
		{"orch/compensating/dead", orch, comp, 1, false, failed},
		// Choreography: the step's failure event on a timeout, its abort
		// event on a dead letter; no event means FAILED with an alert.
		{"chor/dead/order", chor, event.StatusInProgress, 0, false,
			decision{status: comp, emit: "order.aborted", current: "0", set: "0=FAILED"}},
		{"chor/timeout/order has no failure event", chor, event.StatusInProgress, 0, true,
			decision{status: comp, emit: "order.aborted", current: "0", set: "0=FAILED"}},
		{"chor/dead/pay", chor, event.StatusInProgress, 1, false,
			decision{status: comp, emit: "pay.aborted", current: "0", set: "1=FAILED"}},
		{"chor/timeout/pay", chor, event.StatusInProgress, 1, true,
			decision{status: comp, emit: "pay.failed", current: "0", set: "1=FAILED"}},
		{"chor/dead/pack cannot be aborted", chor, event.StatusInProgress, 2, false, failed},
		{"chor/timeout/pack", chor, event.StatusInProgress, 2, true,
			decision{status: comp, emit: "pack.failed", current: "1", set: "2=FAILED"}},
		{"chor/dead/ship", chor, event.StatusInProgress, 3, false,
			decision{status: comp, emit: "ship.aborted", current: "2", set: "3=FAILED"}},
		{"chor/timeout/ship", chor, event.StatusInProgress, 3, true,
			decision{status: comp, emit: "ship.failed", current: "2", set: "3=FAILED"}},
		// Every step completed, the final event is pending: the last step's
		// effect is known, so its own compensation runs, not its failure.
		{"chor/timeout/all done", chor, event.StatusInProgress, 4, true,
			decision{status: comp, emit: "ship.aborted", current: "2", set: "3=FAILED"}},
		{"chor/compensating", chor, comp, 2, true, failed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := testEngine(t)
			st := sagaAt(tc.mode, tc.status, min(tc.k, 3))
			if tc.k == 4 {
				st.Steps[3].Status = event.StepCompleted
			}
			c := e.sagaCommit(0, st.SagaID, st.Mode, st.Version)
			if err := e.giveUp(c, gearSaga(), st, "why", "what", tc.timeout); err != nil {
				t.Fatal(err)
			}
			if got := decide(t, c); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	comp := event.StatusCompensating
	cases := []struct {
		name     string
		at       int // the saga's current step
		attempts int // failed tries of the step's compensation so far
		reply    event.ReplyData
		want     decision
	}{
		{"order done", 0, 0, event.ReplyData{Step: 0, Phase: event.PhaseExecute, OK: true},
			decision{emit: "cmd.pay", step: "1/execute", current: "1", set: "0=COMPLETED"}},
		{"pack done", 2, 0, event.ReplyData{Step: 2, Phase: event.PhaseExecute, OK: true},
			decision{emit: "cmd.ship", step: "3/execute", current: "3", set: "2=COMPLETED"}},
		{"last step done", 3, 0, event.ReplyData{Step: 3, Phase: event.PhaseExecute, OK: true},
			decision{status: event.StatusCompleted, emit: "gear.done", set: "3=COMPLETED"}},
		{"order refused", 0, 0, event.ReplyData{Step: 0, Phase: event.PhaseExecute},
			decision{status: event.StatusCompensated, emit: "gear.undone", set: "0=FAILED"}},
		{"pay refused", 1, 0, event.ReplyData{Step: 1, Phase: event.PhaseExecute},
			decision{status: comp, emit: "cmd.order.cancel", step: "0/compensate", current: "0", set: "1=FAILED"}},
		{"ship refused skips pack", 3, 0, event.ReplyData{Step: 3, Phase: event.PhaseExecute},
			decision{status: comp, emit: "cmd.pay.refund", step: "1/compensate", current: "1", set: "3=FAILED"}},
		{"pay refunded", 1, 0, event.ReplyData{Step: 1, Phase: event.PhaseCompensate, OK: true},
			decision{status: comp, emit: "cmd.order.cancel", step: "0/compensate", current: "0", set: "1=COMPENSATED"}},
		{"order cancelled", 0, 0, event.ReplyData{Step: 0, Phase: event.PhaseCompensate, OK: true},
			decision{status: event.StatusCompensated, emit: "gear.undone", set: "0=COMPENSATED"}},
		{"refund refused, retried", 1, 1, event.ReplyData{Step: 1, Phase: event.PhaseCompensate, Reason: "no"},
			decision{retry: "schedule:200", history: "retry.scheduled"}},
		{"refund refused for good", 1, 2, event.ReplyData{Step: 1, Phase: event.PhaseCompensate, Reason: "no"},
			decision{status: event.StatusFailed, set: "1=FAILED", alert: true, history: "saga.failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := testEngine(t)
			st := sagaAt(event.ModeOrchestration, event.StatusInProgress, tc.at)
			if tc.reply.Phase == event.PhaseCompensate {
				st.Status = comp
				st.Steps[tc.at].Attempts = tc.attempts
				st.Steps[tc.at].Status = event.StepCompleted
			}
			c := e.sagaCommit(0, st.SagaID, st.Mode, st.Version)
			if err := e.advance(c, gearSaga(), st, tc.reply); err != nil {
				t.Fatal(err)
			}
			if got := decide(t, c); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	t.Run("unknown phase", func(t *testing.T) {
		e := testEngine(t)
		st := sagaAt(event.ModeOrchestration, event.StatusInProgress, 1)
		err := e.advance(e.sagaCommit(0, "s-1", st.Mode, 7), gearSaga(), st, event.ReplyData{Step: 1, Phase: "sideways"})
		if !streams.IsPermanent(err) {
			t.Fatalf("err %v, want a permanent error", err)
		}
	})
}

func TestAbandoned(t *testing.T) {
	st := sagaAt(event.ModeOrchestration, event.StatusCompensating, 2)
	st.Steps[2].Status = event.StepFailed
	for _, tc := range []struct {
		status string
		step   int
		want   bool
	}{
		{event.StatusCompensating, 2, true},
		{event.StatusCompensated, 2, true},
		{event.StatusFailed, 2, true},
		{event.StatusInProgress, 2, false}, // a step marked FAILED while in progress cannot happen; never undo then
		{event.StatusCompleted, 2, false},
		{event.StatusCompensating, 1, false}, // completed, compensated by the normal path
		{event.StatusCompensating, 3, false}, // never started
		{event.StatusCompensating, 9, false},
	} {
		st.Status = tc.status
		if got := abandoned(st, tc.step); got != tc.want {
			t.Errorf("abandoned(%s, step %d) = %v, want %v", tc.status, tc.step, got, tc.want)
		}
	}
}

func TestBackoffIsCappedAndDoubling(t *testing.T) {
	e := testEngine(t)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for n, w := range want {
		if got := e.backoff(n + 1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", n+1, got, w*time.Millisecond)
		}
	}
}

func TestDefinitionErrorsNameTheProblem(t *testing.T) {
	d := gearSaga()
	d.Steps[1].Abort = "nowhere"
	d.Events["x"] = Effect{Step: 9}
	err := d.Validate()
	for _, want := range []string{"abort event nowhere", "event x names step 9"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %q", err, want)
		}
	}
	if _, err := New(nil, streams.NewKeyspace("unit", 1), Options{}, gearSaga(), gearSaga()); err == nil || !strings.Contains(err.Error(), "defined by both") {
		t.Errorf("two definitions publishing the same events: %v", err)
	}
}

// The fence's verdict on a message, from what the saga recorded.
func TestStanding(t *testing.T) {
	// A saga at version 3 that published payment.completed (id p3) then,
	// and order.created (id o1) at version 1.
	saga := func(status string, record string) head {
		h := head{found: true, version: 3, status: status, mode: event.ModeChoreography}
		h.setRecord(record)
		return h
	}
	const chor = event.ModeChoreography
	cases := []struct {
		name    string
		h       head
		version int64
		mode    string
		typ, id string
		final   bool
		want    Standing
	}{
		{"awaited", saga(event.StatusInProgress, "100|payment.completed|p3"), 3, chor, "payment.completed", "p3", false, Awaited},
		{"another id at the current version", saga(event.StatusInProgress, "100|payment.completed|p3"), 3, chor, "payment.completed", "x", false, Foreign},
		{"another type with the awaited id", saga(event.StatusInProgress, "100|payment.completed|p3"), 3, chor, "stock.insufficient", "p3", false, Foreign},
		{"the other style", saga(event.StatusInProgress, "100|payment.completed|p3"), 3, event.ModeOrchestration, "payment.completed", "p3", false, Foreign},
		{"any type for a reply", saga(event.StatusInProgress, "100|cmd.pay|c3"), 3, chor, "*", "c3", false, Awaited},
		{"an earlier message", saga(event.StatusInProgress, "90|order.created|o1"), 1, chor, "order.created", "o1", false, Late},
		{"an unknown message at an earlier version", saga(event.StatusInProgress, "90|order.created|o1"), 1, chor, "order.created", "x", false, Foreign},
		{"a version the saga never had", saga(event.StatusInProgress, ""), 4, chor, "stock.reserved", "s4", false, Foreign},
		{"a finished saga's last message", saga(event.StatusCompensated, "100|order.cancelled|c3"), 3, chor, "order.cancelled", "c3", false, Foreign},
		{"a finaliser of a completed saga", saga(event.StatusCompleted, "100|order.completed|d3"), 3, chor, "order.completed", "d3", true, Awaited},
		{"a finaliser of a forged completion", saga(event.StatusCompleted, "100|order.completed|d3"), 3, chor, "order.completed", "x", true, Foreign},
		{"a finaliser of a saga still running", saga(event.StatusInProgress, "100|stock.reserved|r3"), 3, chor, "stock.reserved", "r3", true, Foreign},
		{"a FAILED saga's record is not a message", saga(event.StatusFailed, "100|saga.failed|deadline"), 3, chor, "saga.failed", "x", false, Foreign},
		{"no saga", head{}, 3, chor, "payment.completed", "p3", false, Gone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := tc.h.standing(tc.version, tc.mode, tc.typ, tc.id, tc.final); got != tc.want {
				t.Errorf("%s (%s), want %s", got, why, tc.want)
			}
		})
	}
}
