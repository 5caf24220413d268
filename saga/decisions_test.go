package saga

import (
	"context"
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

type gear struct{ N int }

func noop(context.Context, *Call[gear]) (Outcome, error) { return OK(nil), nil }

// gearSaga has a step without compensation (pack), so that each rule about
// skipping it is exercised.
func gearSaga() *Saga[gear] {
	return Define("GEAR_SAGA",
		Step("order", "orders", noop, noop),
		Step("pay", "payments", noop, noop),
		Step("pack", "warehouse", noop, nil),
		Step("ship", "carrier", noop, noop),
	).Ends("gear.done", "gear.undone")
}

func testEngine(t testing.TB) (*Engine, *definition) {
	t.Helper()
	e, err := New(nil, Options{CompensationAttempts: 3, Backoff: 100 * time.Millisecond, BackoffMax: time.Second}, gearSaga())
	if err != nil {
		t.Fatal(err)
	}
	return e, e.defs["GEAR_SAGA"]
}

// sagaAt is a saga of gearSaga waiting on step k: the steps before it
// completed, the others pending.
func sagaAt(mode, status string, k int) *State {
	st := &State{SagaID: "s-1", Type: "GEAR_SAGA", Mode: mode, Status: status, CurrentStep: k, Version: 7,
		Context: json.RawMessage(`{"n":1}`), compensating: k}
	for i, name := range []string{"order", "pay", "pack", "ship"} {
		ss := StepState{Name: name, Status: StepPending}
		if i < k {
			ss.Status = StepCompleted
		}
		st.Steps = append(st.Steps, ss)
	}
	return st
}

// decision is what a patch does, in words a table can hold.
type decision struct {
	status  string // the saga's new status, "" for unchanged
	emit    string // the event or command published, "" for none
	step    string // a command's "<step>/<phase>"
	current string // current_step written, "" for unchanged
	back    string // compensating_step written (the step compensated next), "" for unchanged
	set     string // step statuses written, "i=STATUS ..." in order
	comp    string // compensation statuses written, "i=STATUS ..." in order
	alert   bool
	history string // recorded without publishing
	retry   time.Duration
}

func decide(t *testing.T, c *patch) decision {
	t.Helper()
	d := decision{status: c.status, alert: c.alert != nil, retry: c.retry}
	var set, comp []string
	for i := 0; i+1 < len(c.fields); i += 2 {
		k, v := fmt.Sprint(c.fields[i]), fmt.Sprint(c.fields[i+1])
		if n, ok := strings.CutPrefix(k, "step."); ok && strings.HasSuffix(n, ".status") {
			set = append(set, strings.TrimSuffix(n, ".status")+"="+v)
		}
		if n, ok := strings.CutPrefix(k, "step."); ok && strings.HasSuffix(n, ".compensation") {
			comp = append(comp, strings.TrimSuffix(n, ".compensation")+"="+v)
		}
		switch k {
		case "current_step":
			d.current = v
		case "compensating_step":
			d.back = v
		}
	}
	d.set, d.comp = strings.Join(set, " "), strings.Join(comp, " ")
	if c.msg != nil {
		d.emit = c.msg.Type
		var cmd commandData
		if strings.HasPrefix(d.emit, "cmd.") && json.Unmarshal(c.msg.Data, &cmd) == nil {
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
		comp = StatusCompensating
	)
	cases := []struct {
		name    string
		mode    string
		k       int // step in flight
		timeout bool
		want    decision
	}{
		// Orchestration, dead letter: the step in flight is compensated
		// first (its effect is unknown), unless nothing undoes it. The
		// step in flight stays the saga's current step; compensation moves
		// its own cursor.
		{"orch/dead/order", orch, 0, false,
			decision{status: comp, emit: "cmd.order.compensate", step: "0/compensate", current: "0", back: "0", set: "0=FAILED"}},
		{"orch/dead/pay", orch, 1, false,
			decision{status: comp, emit: "cmd.pay.compensate", step: "1/compensate", current: "1", back: "1", set: "1=FAILED"}},
		{"orch/dead/pack has no compensation", orch, 2, false,
			decision{status: comp, emit: "cmd.pay.compensate", step: "1/compensate", current: "2", back: "1", set: "2=FAILED"}},
		{"orch/dead/ship", orch, 3, false,
			decision{status: comp, emit: "cmd.ship.compensate", step: "3/compensate", current: "3", back: "3", set: "3=FAILED"}},
		// Orchestration, timeout: the service may be down; the steps before
		// are compensated at once (the late effect is undone when it lands).
		{"orch/timeout/order", orch, 0, true,
			decision{status: StatusCompensated, emit: "gear.undone", current: "0", set: "0=FAILED"}},
		{"orch/timeout/pay", orch, 1, true,
			decision{status: comp, emit: "cmd.order.compensate", step: "0/compensate", current: "1", back: "0", set: "1=FAILED"}},
		{"orch/timeout/pack", orch, 2, true,
			decision{status: comp, emit: "cmd.pay.compensate", step: "1/compensate", current: "2", back: "1", set: "2=FAILED"}},
		{"orch/timeout/ship skips pack", orch, 3, true,
			decision{status: comp, emit: "cmd.pay.compensate", step: "1/compensate", current: "3", back: "1", set: "3=FAILED"}},
		// Choreography, dead letter: the event that makes the step's own
		// service compensate it first (the next step's failure; for the
		// last step, its abandoned event); a step with nothing to undo
		// hands over to the one before.
		{"chor/dead/order", chor, 0, false,
			decision{status: comp, emit: "pay.failed", current: "0", back: "0", set: "0=FAILED"}},
		{"chor/dead/pay", chor, 1, false,
			decision{status: comp, emit: "pack.failed", current: "1", back: "1", set: "1=FAILED"}},
		{"chor/dead/pack has no compensation", chor, 2, false,
			decision{status: comp, emit: "pack.failed", current: "2", back: "1", set: "2=FAILED"}},
		{"chor/dead/ship", chor, 3, false,
			decision{status: comp, emit: "ship.abandoned", current: "3", back: "3", set: "3=FAILED"}},
		// Choreography, timeout: the step's own failure event, which the
		// step before compensates on; nothing before: the saga ends.
		{"chor/timeout/order, nothing before", chor, 0, true,
			decision{status: StatusCompensated, emit: "gear.undone", current: "0", set: "0=FAILED"}},
		{"chor/timeout/pay", chor, 1, true,
			decision{status: comp, emit: "pay.failed", current: "1", back: "0", set: "1=FAILED"}},
		{"chor/timeout/pack", chor, 2, true,
			decision{status: comp, emit: "pack.failed", current: "2", back: "1", set: "2=FAILED"}},
		{"chor/timeout/ship", chor, 3, true,
			decision{status: comp, emit: "ship.failed", current: "3", back: "1", set: "3=FAILED"}},
		// Every step completed, the end is pending: the last step's effect
		// is known, so its own compensation runs, and it stays COMPLETED
		// until then.
		{"chor/timeout/all done", chor, 4, true,
			decision{status: comp, emit: "ship.abandoned", current: "3", back: "3"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, d := testEngine(t)
			st := sagaAt(tc.mode, StatusInProgress, min(tc.k, 3))
			if tc.k == 4 {
				st.Steps[3].Status = StepCompleted
			}
			c := newPatch(st.Type, st.SagaID, st.Mode, 0, st.Status)
			if err := e.giveUp(c, d, st, "why", "what", "cause", tc.timeout); err != nil {
				t.Fatal(err)
			}
			if got := decide(t, c); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	comp := StatusCompensating
	cases := []struct {
		name     string
		at       int // the saga's current step
		attempts int // failed tries of the step's compensation so far
		redriven int // of which before an operator's last retry
		reply    replyData
		want     decision
	}{
		{"order done", 0, 0, 0, replyData{Step: 0, Phase: "execute", OK: true},
			decision{emit: "cmd.pay", step: "1/execute", current: "1", set: "0=COMPLETED"}},
		{"pack done", 2, 0, 0, replyData{Step: 2, Phase: "execute", OK: true},
			decision{emit: "cmd.ship", step: "3/execute", current: "3", set: "2=COMPLETED"}},
		{"last step done", 3, 0, 0, replyData{Step: 3, Phase: "execute", OK: true},
			decision{status: StatusCompleted, emit: "gear.done", set: "3=COMPLETED"}},
		{"order refused", 0, 0, 0, replyData{Step: 0, Phase: "execute"},
			decision{status: StatusCompensated, emit: "gear.undone", current: "0", set: "0=FAILED"}},
		{"pay refused", 1, 0, 0, replyData{Step: 1, Phase: "execute"},
			decision{status: comp, emit: "cmd.order.compensate", step: "0/compensate", current: "1", back: "0", set: "1=FAILED"}},
		{"ship refused skips pack", 3, 0, 0, replyData{Step: 3, Phase: "execute"},
			decision{status: comp, emit: "cmd.pay.compensate", step: "1/compensate", current: "3", back: "1", set: "3=FAILED"}},
		// A compensation keeps the step's result: it sets its own.
		{"pay refunded", 1, 0, 0, replyData{Step: 1, Phase: "compensate", OK: true},
			decision{status: comp, emit: "cmd.order.compensate", step: "0/compensate", back: "0", set: "1=COMPENSATED", comp: "1=COMPLETED"}},
		{"order cancelled", 0, 0, 0, replyData{Step: 0, Phase: "compensate", OK: true},
			decision{status: StatusCompensated, emit: "gear.undone", set: "0=COMPENSATED", comp: "0=COMPLETED"}},
		{"refund refused, retried", 1, 1, 0, replyData{Step: 1, Phase: "compensate", Reason: "no"},
			decision{retry: 200 * time.Millisecond, history: "retry.scheduled", comp: "1=PENDING"}},
		// The step keeps its status (COMPLETED: its effect is in place); its
		// compensation says it failed.
		{"refund refused for good", 1, 2, 0, replyData{Step: 1, Phase: "compensate", Reason: "no"},
			decision{status: StatusFailed, comp: "1=FAILED", alert: true, history: "saga.failed"}},
		// After an operator's retry only the tries since count against the
		// limit.
		{"refund refused after a retry", 1, 4, 4, replyData{Step: 1, Phase: "compensate", Reason: "no"},
			decision{retry: 100 * time.Millisecond, history: "retry.scheduled", comp: "1=PENDING"}},
		{"refund refused for good after a retry", 1, 5, 3, replyData{Step: 1, Phase: "compensate", Reason: "no"},
			decision{status: StatusFailed, comp: "1=FAILED", alert: true, history: "saga.failed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, d := testEngine(t)
			st := sagaAt(event.ModeOrchestration, StatusInProgress, tc.at)
			if tc.reply.Phase == "compensate" {
				st.Status = comp
				if tc.attempts > 0 {
					st.Steps[tc.at].Compensation = &Compensation{Status: CompensationPending, Attempts: tc.attempts}
					st.Steps[tc.at].redriven = tc.redriven
				}
				st.Steps[tc.at].Status = StepCompleted
			}
			c := newPatch(st.Type, st.SagaID, st.Mode, 0, st.Status)
			if err := e.advance(c, d, st, tc.reply, "cause"); err != nil {
				t.Fatal(err)
			}
			if got := decide(t, c); got != tc.want {
				t.Errorf("\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
	t.Run("unknown phase", func(t *testing.T) {
		e, d := testEngine(t)
		st := sagaAt(event.ModeOrchestration, StatusInProgress, 1)
		err := e.advance(newPatch(st.Type, "s-1", st.Mode, 0, st.Status), d, st, replyData{Step: 1, Phase: "sideways"}, "cause")
		if !streams.IsPermanent(err) {
			t.Fatalf("err %v, want a permanent error", err)
		}
	})
}

func TestAbandoned(t *testing.T) {
	st := sagaAt(event.ModeOrchestration, StatusCompensating, 2)
	st.Steps[2].Status = StepFailed
	for _, tc := range []struct {
		status string
		step   int
		want   bool
	}{
		{StatusCompensating, 2, true},
		{StatusCompensated, 2, true},
		{StatusFailed, 2, true},
		{StatusInProgress, 2, false}, // a step marked FAILED while in progress cannot happen; never undo then
		{StatusCompleted, 2, false},
		{StatusCompensating, 1, false}, // completed, compensated by the normal path
		{StatusCompensating, 3, false}, // never started
		{StatusCompensating, 9, false},
	} {
		st.Status = tc.status
		if got := abandoned(st, tc.step); got != tc.want {
			t.Errorf("abandoned(%s, step %d) = %v, want %v", tc.status, tc.step, got, tc.want)
		}
	}
}

func TestBackoffIsCappedAndDoubling(t *testing.T) {
	e, _ := testEngine(t)
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for n, w := range want {
		if got := e.backoff(n + 1); got != w*time.Millisecond {
			t.Errorf("backoff(%d) = %v, want %v", n+1, got, w*time.Millisecond)
		}
	}
}

func TestDefinitionErrorsNameTheProblem(t *testing.T) {
	bad := Define("BAD SAGA",
		Step("a", "svc", noop, noop),
		Step("a", "svc", nil, noop),
	)
	_, err := New(nil, Options{}, bad)
	for _, want := range []string{"saga name", "two steps named a", "step a has no execute operation"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New() = %v, want it to name %q", err, want)
		}
	}
	if _, err := New(nil, Options{}, Define("X", Step("c", Orchestrator, noop, nil))); err == nil || !strings.Contains(err.Error(), "may not be named orchestrator") {
		t.Errorf("a service named like the orchestrator: %v", err)
	}
	if _, err := New(nil, Options{}, gearSaga(), gearSaga()); err == nil || !strings.Contains(err.Error(), "declared twice") {
		t.Errorf("two declarations of one saga type: %v", err)
	}
	other := Define("OTHER", Step("pay", "payments", noop, nil))
	if _, err := New(nil, Options{}, gearSaga(), other); err == nil || !strings.Contains(err.Error(), "belongs to both") {
		t.Errorf("two saga types publishing the same events: %v", err)
	}
	if _, err := New(nil, Options{}); err == nil {
		t.Error("an engine without a saga type")
	}
}

// The routes derived from one declaration: each step's service reads the
// event of the step before, failures and compensations go to the nearest
// earlier step that can be undone, the owner completes, commands go to
// their services.
func TestRoutesAreDerived(t *testing.T) {
	e, _ := testEngine(t)
	got := map[string][]string{}
	for group, types := range e.Groups() {
		got[group] = types
	}
	want := map[string][]string{
		"orders":     {"GEAR_SAGA.started", "cmd.order", "cmd.order.compensate", "pay.compensated", "pay.failed", "ship.completed"},
		"payments":   {"cmd.pay", "cmd.pay.compensate", "order.completed", "pack.failed", "ship.compensated", "ship.failed"},
		"warehouse":  {"cmd.pack", "pay.completed"},
		"carrier":    {"cmd.ship", "cmd.ship.compensate", "pack.completed", "ship.abandoned"},
		Orchestrator: {ReplyType},
	}
	for group, types := range want {
		if strings.Join(got[group], " ") != strings.Join(types, " ") {
			t.Errorf("group %s reads %v, want %v", group, got[group], types)
		}
	}
	if len(got) != len(want) {
		t.Errorf("groups %v", got)
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
		want    verdict
	}{
		{"awaited", saga(StatusInProgress, "100|payment.completed|p3"), 3, chor, "payment.completed", "p3", false, awaited},
		{"another id at the current version", saga(StatusInProgress, "100|payment.completed|p3"), 3, chor, "payment.completed", "x", false, foreign},
		{"another type with the awaited id", saga(StatusInProgress, "100|payment.completed|p3"), 3, chor, "stock.insufficient", "p3", false, foreign},
		{"the other style", saga(StatusInProgress, "100|payment.completed|p3"), 3, event.ModeOrchestration, "payment.completed", "p3", false, foreign},
		{"any type for a reply", saga(StatusInProgress, "100|cmd.pay|c3"), 3, chor, "*", "c3", false, awaited},
		{"an earlier message", saga(StatusInProgress, "90|order.created|o1"), 1, chor, "order.created", "o1", false, late},
		{"an unknown message at an earlier version", saga(StatusInProgress, "90|order.created|o1"), 1, chor, "order.created", "x", false, foreign},
		{"a version the saga never had", saga(StatusInProgress, ""), 4, chor, "stock.reserved", "s4", false, foreign},
		{"a finished saga's last message", saga(StatusCompensated, "100|order.cancelled|c3"), 3, chor, "order.cancelled", "c3", false, foreign},
		{"a finaliser of a completed saga", saga(StatusCompleted, "100|order.completed|d3"), 3, chor, "order.completed", "d3", true, awaited},
		{"a finaliser of a forged completion", saga(StatusCompleted, "100|order.completed|d3"), 3, chor, "order.completed", "x", true, foreign},
		{"a finaliser of a saga still running", saga(StatusInProgress, "100|stock.reserved|r3"), 3, chor, "stock.reserved", "r3", true, foreign},
		{"a FAILED saga's record is not a message", saga(StatusFailed, "100|saga.failed|deadline"), 3, chor, "saga.failed", "x", false, foreign},
		{"no saga", head{}, 3, chor, "payment.completed", "p3", false, gone},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := tc.h.standing(tc.version, tc.mode, tc.typ, tc.id, tc.final); got != tc.want {
				t.Errorf("%s (%s), want %s", got, why, tc.want)
			}
		})
	}
}
