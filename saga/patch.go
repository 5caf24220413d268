package saga

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/streamsaga/streamsaga/event"
)

// patch is one transition of a saga, typed: what the engine decided, which
// the scripts apply (prelude.lua's transition) after their own checks.
type patch struct {
	sagaType, sagaID, mode string
	p                      int
	// from is the status the saga has; status the one it gets ("" keeps it).
	from, status string
	fields       []any // saga hash field/value pairs: steps, reason, current step
	// msg is the next message, published with the transition; history is
	// recorded instead when there is none ("<type>|<what>").
	msg     *event.Envelope
	history string
	// recordStatus, when set, marks the saga's record (at the end).
	recordStatus, recordReason string
	record                     string // the record's reference "<kind>:<id>", "" for none
	alert                      *alert
	retry                      time.Duration // re-send the current command after this
	// deadline gives the new step a deadline (the step timeout); false
	// clears it (the saga ended or FAILED).
	deadline bool
	// prior is the saga's reason before this transition; firstKept is set
	// when the hash already keeps its first one (first_reason).
	prior     string
	firstKept bool
}

type alert struct{ typ, step, err string }

func newPatch(sagaType, sagaID, mode string, p int, from string) *patch {
	return &patch{sagaType: sagaType, sagaID: sagaID, mode: mode, p: p, from: from, deadline: true}
}

func (c *patch) set(pairs ...any) *patch {
	c.fields = append(c.fields, pairs...)
	return c
}

func (c *patch) step(i int, status string) *patch {
	return c.set(stepField(i, "status"), status)
}

func (c *patch) result(i int, result json.RawMessage) *patch {
	if len(result) > 0 && string(result) != "null" {
		c.set(stepField(i, "result"), string(result))
	}
	return c
}

func (c *patch) current(i int) *patch { return c.set("current_step", strconv.Itoa(i)) }

// compensating moves the engine's cursor on the way back: the step whose
// compensation is in flight. current_step stays the step the saga failed
// or stopped at.
func (c *patch) compensating(i int) *patch { return c.set("compensating_step", strconv.Itoa(i)) }

// of makes c a transition of st as read: its record, and its reason so far
// (a new reason keeps the first one).
func (c *patch) of(st *State) *patch {
	c.record, c.prior, c.firstKept = st.Record, st.Reason, st.firstKept
	return c
}

// reason sets the saga's latest failure reason. The first one is kept
// beside it (first_reason), written only when a second, different one
// comes: a saga that fails once has its reason alone.
func (c *patch) reason(why string) *patch {
	if why == "" {
		return c
	}
	c.set("reason", why)
	if c.prior != "" && c.prior != why && !c.firstKept {
		c.set("first_reason", c.prior)
		c.firstKept = true
	}
	return c
}

// compensated records that step i's compensation ran, with its result.
// A step that had COMPLETED becomes COMPENSATED; one whose action failed
// (or was given up on) stays FAILED, and its compensation's result is kept
// only when the compensation acted outside Redis (checked): its writes in
// Redis were skipped, so what it returned did not happen here. A step
// already COMPENSATED (a re-drive ran its compensation again, as a no-op)
// keeps what the first run recorded.
func (c *patch) compensated(i int, s StepState, result json.RawMessage, checked bool) *patch {
	switch s.forward() {
	case StepCompleted:
		c.step(i, StepCompensated)
	case StepFailed:
		if !checked {
			result = nil
		}
	case StepCompensated:
		if s.Compensation == nil || s.Compensation.Status != CompensationCompleted {
			c.set(stepField(i, "compensation"), CompensationCompleted)
		}
		return c
	default:
		return c
	}
	c.set(stepField(i, "compensation"), CompensationCompleted)
	if len(result) > 0 && string(result) != "null" {
		c.set(stepField(i, "compensation_result"), string(result))
	}
	return c
}

// compensationTried records a failed try of step i's compensation that
// will be tried again.
func (c *patch) compensationTried(i int, s StepState, err string) *patch {
	return c.set(stepField(i, "compensation"), CompensationPending, stepField(i, "attempts"), strconv.Itoa(s.Attempts()+1),
		stepField(i, "error"), err)
}

// compensationFailed makes the transition end the saga FAILED because step
// i's compensation failed for good after tries more failed tries (err the
// last one's error, "" to keep the one recorded); i < 0 when it is not
// known which step's it was.
func (c *patch) compensationFailed(d *definition, st *State, i, tries int, err, what, why string) *patch {
	name := "?"
	if i >= 0 && i < len(d.Steps) && i < len(st.Steps) {
		name = d.Steps[i].Name
		c.set(stepField(i, "compensation"), CompensationFailed, stepField(i, "attempts"),
			strconv.Itoa(st.Steps[i].Attempts()+tries))
		if err != "" {
			c.set(stepField(i, "error"), err)
		}
	}
	return c.failed(name, what, why)
}

// to sets the saga's new status.
func (c *patch) to(status string) *patch {
	c.status = status
	c.set("status", status)
	switch status {
	case StatusCompleted, StatusCompensated, StatusFailed:
		c.deadline = false
	}
	return c
}

// publish makes typ (with data) the next message.
func (c *patch) publish(e *Engine, typ string, data json.RawMessage, causation string) *patch {
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	c.msg = &event.Envelope{EventID: newEventID(), Type: typ, SagaID: c.sagaID, SagaMode: c.mode,
		CausationID: causation, OccurredAt: e.opts.Clock(), Data: data}
	return c
}

// command makes the command typ of step i in phase the next message.
func (c *patch) command(e *Engine, typ string, sagaContext json.RawMessage, i int, phase Phase, causation string) error {
	data, err := commandPayload(sagaContext, i, string(phase))
	if err != nil {
		return err
	}
	c.publish(e, typ, data, causation)
	return nil
}

// failed makes the transition end the saga FAILED, with an alert.
func (c *patch) failed(step, what, why string) *patch {
	c.to(StatusFailed).reason(why)
	c.history = "saga.failed|" + what
	c.alert = &alert{typ: "saga.failed", step: step, err: why}
	c.recordStatus, c.recordReason = RecordFailed, why
	return c
}

// ends marks the saga's record with how it ended.
func (c *patch) ends(recordStatus, why string) *patch {
	c.recordStatus, c.recordReason = recordStatus, why
	return c
}

// keys are the transition's KEYS[1..9] (prelude.lua): the next stream
// stands for any key of the slot when nothing is published.
func (c *patch) keys(e *Engine) []string {
	k := e.keys
	sagaKey := k.Saga(c.p, c.sagaID)
	next := sagaKey
	if c.msg != nil {
		next = k.Stream(c.p, c.msg.Type)
	}
	from, to := c.from, c.status
	if to == "" {
		to = from
	}
	record := sagaKey
	if kind, id, ok := strings.Cut(c.record, ":"); ok {
		record = k.Record(c.p, kind, id)
	}
	return []string{sagaKey, k.Deadlines(c.p), next, k.Index(c.p, from), k.Index(c.p, to), k.Alerts(c.p),
		k.Records(c.p), record, k.Retries(c.p)}
}

// args are the transition's sixteen ARGV values (prelude.lua).
func (c *patch) args(e *Engine) []any {
	timeout, retention := int64(0), int64(0)
	if c.deadline {
		timeout = e.opts.StepTimeout.Milliseconds()
	}
	if c.status == StatusCompleted || c.status == StatusCompensated {
		retention = int64(e.opts.Retention.Seconds())
	}
	a := []any{c.status, timeout, retention, c.history}
	if m := c.msg; m != nil {
		a = append(a, m.EventID, m.Type, m.SagaMode, m.CausationID, m.OccurredAt.UTC().Format(time.RFC3339Nano), string(m.Data))
	} else {
		a = append(a, "", "", "", "", "", "")
	}
	a = append(a, c.recordStatus, c.recordReason)
	if c.alert != nil {
		a = append(a, c.alert.typ, c.alert.step, c.alert.err)
	} else {
		a = append(a, "", "", "")
	}
	retry := ""
	if c.retry > 0 {
		retry = strconv.FormatInt(c.retry.Milliseconds(), 10)
	}
	return append(a, retry)
}

// applied tells the observer about a committed status change.
func (e *Engine) applied(c *patch) {
	if c.status != "" && c.status != c.from && e.opts.OnStatus != nil {
		e.opts.OnStatus(c.sagaType, c.mode, c.status)
	}
	if c.status == StatusFailed && c.status != c.from {
		e.stats.failed.Add(1)
	}
}
