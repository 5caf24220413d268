package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/streams"
)

// Code is the outcome of a commit.
type Code string

// Commit outcomes.
const (
	// Applied: the transition was committed.
	Applied Code = "OK"
	// Stale: the saga's version moved on (a duplicate, a late message or a
	// zombie worker); the entry was acknowledged and nothing changed.
	Stale Code = "STALE"
	// Missing: the saga hash does not exist (lost, expired or never
	// created). Nothing changed and the entry is left pending: the caller
	// reports it (Engine.SagaMissing).
	Missing Code = "MISSING"
	// NotDue: a re-send came before the saga's retry time; nothing changed.
	NotDue Code = "NOTDUE"
	// Rejected: the consumed message is not one the saga published at its
	// version (a forgery, a replay of the wrong entry, the wrong style), or
	// the saga is finished. Nothing changed and the entry is left pending:
	// the caller dead-letters it with an alert (Engine.Reject).
	Rejected Code = "REJECTED"
)

// Result is what a commit did.
type Result struct {
	Code    Code
	Version int64
	// Reason says why a commit was rejected.
	Reason string
}

// Transition is what handling one message does to its saga.
type Transition struct {
	// Emit is the event to publish; its Effect in the saga's definition says
	// how the saga changes. Required.
	Emit string
	// Data is the published event's data, a JSON object.
	Data json.RawMessage
	// StepResult is stored as the result of the step the effect concerns.
	StepResult json.RawMessage
	// Reason says why the saga compensates or failed.
	Reason string
	// Record fields to set on the saga's record (the order), if any.
	Record *Record
	// KeepOnRefusal leaves the consumed entry pending when the saga has
	// moved on (STALE): the caller acknowledges it after dealing with an
	// effect the saga no longer expects. MISSING and REJECTED always leave
	// it pending, for Engine.SagaMissing and Engine.Reject.
	KeepOnRefusal bool
}

// Commit applies a transition for the consumed message m: it updates the
// saga hash, publishes the next event, moves the deadline and acknowledges m,
// all in one script fenced on the version m was published at and on m's
// identity (the saga must have published m at that version).
func (e *Engine) Commit(ctx context.Context, m *streams.Message, t Transition) (Result, error) {
	def, ok := e.byEvent[t.Emit]
	if !ok {
		return Result{}, fmt.Errorf("commit: event %q belongs to no saga definition", t.Emit)
	}
	eff := def.Events[t.Emit]
	c := e.newCommit(m)
	c.sagaType = def.Type
	c.saga = effectFields(def, eff, t.StepResult, t.Reason)
	c.status = eff.Status
	c.keepOnRefusal = t.KeepOnRefusal
	c.emit(t.Emit, t.Data)
	if t.Record != nil {
		c.record(t.Record)
	}
	return c.run(ctx, e)
}

// Ack acknowledges m without touching its saga: for consumers that only
// react to a saga's final event.
func (e *Engine) Ack(ctx context.Context, m *streams.Message) error {
	if err := e.rdb.XAck(ctx, m.Stream, m.Group, m.ID).Err(); err != nil {
		return fmt.Errorf("xack: %w", err)
	}
	return nil
}

// commit gathers the arguments of one run of transition.lua.
type commit struct {
	ks        streams.Keyspace
	p         int
	sagaID    string
	mode      string
	causation string
	// The consumed entry to acknowledge; empty when the transition consumes
	// none (a re-send, an operator's retry).
	stream, group, entryID string
	sagaKey                string
	expected               int64
	// ident is the consumed message's identity, "<mode>|<type>|<id>", which
	// the saga must have recorded at version expected; '' when none is
	// consumed.
	ident         string
	status        string
	saga          []any
	event         []any
	history       string
	outStream     string
	recordKey     string
	fields        []any
	dead          []any
	alert         []any
	deadAlways    bool
	keepOnRefusal bool
	retry         string
	clock         func() time.Time
	sagaType      string
}

func (e *Engine) newCommit(m *streams.Message) *commit {
	c := e.sagaCommit(m.Partition, m.Env.SagaID, m.Env.SagaMode, m.Env.SagaVersion)
	c.causation = m.Env.EventID
	c.stream, c.group, c.entryID = m.Stream, m.Group, m.ID
	c.ident = identity(m.Env.SagaMode, m.Env.Type, m.Env.EventID)
	return c
}

// sagaCommit is a transition that consumes no entry.
func (e *Engine) sagaCommit(p int, sagaID, mode string, version int64) *commit {
	c := &commit{ks: e.ks, p: p, sagaID: sagaID, mode: mode, sagaKey: e.ks.Saga(p, sagaID), expected: version, clock: e.opts.Clock}
	c.stream = c.sagaKey
	c.outStream = e.ks.DeadLetter(p) // a same-slot placeholder when nothing is published
	c.recordKey = c.sagaKey
	return c
}

func (c *commit) emit(typ string, data json.RawMessage) {
	env := &event.Envelope{
		EventID: newEventID(), Type: typ, SagaID: c.sagaID, SagaMode: c.mode,
		SagaVersion: c.expected + 1, CausationID: c.causation, OccurredAt: c.clock(), Data: data,
	}
	c.event = env.Fields()
	c.history = typ + "|" + env.EventID
	c.outStream = c.ks.Stream(c.p, typ)
}

func (c *commit) record(r *Record) {
	c.recordKey = c.ks.Record(c.p, r.Kind, r.ID)
	c.fields = mapPairs(r.Fields)
}

func (c *commit) run(ctx context.Context, e *Engine) (Result, error) {
	ks := e.ks
	timeout := e.opts.StepTimeout.Milliseconds()
	var retention int64
	switch {
	case terminal(c.status):
		timeout = 0
		retention = int64(e.opts.Retention.Seconds())
	case c.status == event.StatusFailed:
		timeout = 0
	}
	keys := []string{c.sagaKey, c.stream, ks.Deadlines(c.p), c.outStream, c.recordKey, ks.DeadLetter(c.p), ks.Alerts(c.p)}
	for _, s := range event.SagaStatuses {
		keys = append(keys, ks.Index(c.p, s))
	}
	keys = append(keys, ks.Retries(c.p), ks.Records(c.p))
	flags := ""
	if c.deadAlways {
		flags += "d"
	}
	if c.keepOnRefusal {
		flags += "k"
	}
	args := []any{c.group, c.entryID, c.expected, c.status, timeout, retention, c.history, flags, c.retry, c.ident}
	args = appendCounted(args, c.saga)
	args = appendCounted(args, c.event)
	args = appendCounted(args, c.fields)
	args = appendCounted(args, c.dead)
	args = appendCounted(args, c.alert)
	res, err := transitionScript.Run(ctx, e.rdb, keys, args...).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("commit transition: %w", err)
	}
	if len(res) < 2 {
		return Result{}, fmt.Errorf("commit transition: unexpected reply %v", res)
	}
	code, _ := res[0].(string)
	version, _ := res[1].(int64)
	r := Result{Code: Code(code), Version: version}
	if len(res) > 2 {
		r.Reason, _ = res[2].(string)
	}
	if r.Code == Applied && c.status != "" && e.opts.OnStatus != nil {
		e.opts.OnStatus(c.sagaType, c.mode, c.status)
	}
	switch r.Code {
	case Applied, NotDue, Rejected:
	case Stale:
		e.Stats.Stale.Add(1)
	case Missing:
		e.Stats.Missing.Add(1)
	default:
		return r, fmt.Errorf("commit transition: unexpected code %q", code)
	}
	return r, nil
}

// DeadLetter moves an entry that cannot be handled to the dead-letter
// stream and acknowledges it. When the entry is the live message of a saga
// in progress, the saga is sent down its normal compensation path in the
// same script (its step's Abort event); when a compensation itself is
// dead-lettered the saga becomes FAILED with an alert. It implements
// streams.DeadLetterer.
func (e *Engine) DeadLetter(ctx context.Context, m *streams.Message, reason string) error {
	dead := deadLetterFields(m, reason)
	if m.Values == nil {
		// Deleted while pending: nothing says which saga waited on it. The
		// alert makes the loss visible; the saga's deadline still stands.
		alert := []any{"type", "entry.lost", "source_stream", m.Stream, "source_id", m.ID, "group", m.Group, "error", reason}
		return e.deadLetterOnly(ctx, m, dead, alert)
	}
	if m.Env == nil {
		env, ok := rawRef(m.Values)
		if !ok {
			return e.deadLetterOnly(ctx, m, dead, nil)
		}
		// Undecodable, but it names its saga and version: if it is the
		// saga's live message the saga must not wait on it forever.
		cp := *m
		cp.Env = env
		m = &cp
	}
	st, err := e.Get(ctx, m.Env.SagaID)
	if errors.Is(err, ErrNotFound) {
		return e.missing(ctx, m.Partition, m.Env.SagaID, m, m.Group+"/"+m.Env.Type, "", dead)
	}
	if err != nil {
		return err
	}
	def := e.defs[st.Type]
	// A reply is its command's: its causation is the command's id, and the
	// command's type is in data that may not decode.
	typ, id := m.Env.Type, m.Env.EventID
	if typ == event.Reply {
		typ, id = "*", m.Env.CausationID
	}
	if standing, _ := standingOf(st, m.Env.SagaVersion, m.Env.SagaMode, typ, id, false); def == nil || standing != Awaited {
		// Not the message the saga waits on: a duplicate, a stale or a
		// foreign entry.
		return e.deadLetterOnly(ctx, m, dead, undoAlert(m, reason))
	}
	c := e.newCommit(m)
	c.ident = identity(m.Env.SagaMode, typ, id)
	c.dead = dead
	c.deadAlways = true
	why := "dead-lettered " + m.Env.Type + ": " + reason
	if err := e.giveUp(c, def, st, why, m.Env.Type, false); err != nil {
		return err
	}
	res, err := c.run(ctx, e)
	if err != nil {
		return err
	}
	switch res.Code {
	case Missing:
		return e.missing(ctx, m.Partition, m.Env.SagaID, m, m.Group+"/"+m.Env.Type, "", dead)
	case Rejected:
		return e.deadLetterOnly(ctx, m, dead, nil)
	}
	e.Stats.DeadLettered.Add(1)
	if res.Code == Applied {
		e.opts.Logger.WarnContext(ctx, "saga aborted by a dead letter", "saga_id", st.SagaID,
			"event_type", m.Env.Type, "group", m.Group, "status", c.status, "reason", reason)
	}
	return nil
}

// undoAlert is the alert for a dead-lettered undo command: the late effect
// it was to compensate may be left in place, and only an operator can tell.
func undoAlert(m *streams.Message, reason string) []any {
	var cmd event.Command
	if m.Env == nil || json.Unmarshal(m.Env.Data, &cmd) != nil || cmd.Phase != event.PhaseUndo {
		return nil
	}
	return []any{"type", "undo.failed", "saga_id", m.Env.SagaID, "command", m.Env.Type,
		"step", strconv.Itoa(cmd.Step), "source_stream", m.Stream, "source_id", m.ID,
		"error", "the late effect of an abandoned step may be left in place: " + reason}
}

func (e *Engine) deadLetterOnly(ctx context.Context, m *streams.Message, dead, alert []any) error {
	keys := []string{m.Stream, e.ks.DeadLetter(m.Partition), e.ks.Alerts(m.Partition)}
	args := append([]any{m.Group, m.ID, len(alert) / 2}, alert...)
	args = append(args, dead...)
	if err := forwardScript.Run(ctx, e.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	e.Stats.DeadLettered.Add(1)
	return nil
}

// Bounds on what a dead-letter entry copies from a poison entry, which may
// be arbitrarily large: Lua's unpack fails past a few thousand values.
const (
	maxDeadFields   = 32
	maxDeadValueLen = 64 << 10
)

// deadLetterFields are the original fields plus where the entry came from and
// why it is here. Original fields that clash with those names keep an
// "orig_" prefix. Past maxDeadFields fields or maxDeadValueLen bytes a value
// the copy is cut, and "truncated" says so.
func deadLetterFields(m *streams.Message, reason string) []any {
	meta := map[string]string{
		"group": m.Group, "error": reason, "deliveries": strconv.FormatInt(m.Deliveries, 10),
		"source_stream": m.Stream, "source_id": m.ID,
	}
	out := []any{"group", meta["group"], "error", meta["error"], "deliveries", meta["deliveries"],
		"source_stream", meta["source_stream"], "source_id", meta["source_id"]}
	names := make([]string, 0, len(m.Values))
	for k := range m.Values {
		names = append(names, k)
	}
	slices.Sort(names)
	cut := 0
	for i, k := range names {
		if i >= maxDeadFields {
			cut += len(names) - i
			break
		}
		v := fmt.Sprint(m.Values[k])
		if len(v) > maxDeadValueLen {
			v = v[:maxDeadValueLen]
			cut++
		}
		if len(k) > 256 {
			k = k[:256]
		}
		if _, clash := meta[k]; clash || k == "truncated" {
			k = "orig_" + k
		}
		out = append(out, k, v)
	}
	if cut > 0 {
		out = append(out, "truncated", strconv.Itoa(cut)+" fields dropped or cut")
	}
	return out
}

// rawRef reads the saga reference of an entry that did not decode: its saga
// id (only a canonical UUID, the only kind the product issues), version,
// mode and type.
func rawRef(values map[string]any) (*event.Envelope, bool) {
	str := func(k string) string { s, _ := values[k].(string); return s }
	id := str(event.FieldSagaID)
	if u, err := uuid.Parse(id); err != nil || u.String() != id {
		return nil, false
	}
	version, err := strconv.ParseInt(str(event.FieldSagaVersion), 10, 64)
	if err != nil {
		return nil, false
	}
	mode := str(event.FieldSagaMode)
	if mode != event.ModeChoreography && mode != event.ModeOrchestration {
		mode = event.ModeChoreography
	}
	typ := str(event.FieldType)
	if len(typ) > 64 {
		typ = typ[:64]
	}
	return &event.Envelope{SagaID: id, SagaVersion: version, SagaMode: mode, Type: typ,
		EventID: str(event.FieldEventID), CausationID: str(event.FieldCausationID)}, true
}

// giveUp fills c for a saga that cannot wait for its live message any more.
// A saga in progress starts compensating; the step in flight has an unknown
// outcome:
//   - its entry was dead-lettered (timeout false): its service is alive, so
//     the step's own compensation runs first (a no-op when it never took
//     effect, and a barrier against it taking effect later);
//   - its deadline passed (timeout true): its service may be down, so the
//     steps before it are compensated at once, and the service compensates
//     its own effect if it ever lands (see Abandoned).
//
// A compensation that cannot run makes the saga FAILED with an alert.
func (e *Engine) giveUp(c *commit, def *Definition, st *State, why, what string, timeout bool) error {
	c.mode = st.Mode
	c.sagaType = st.Type
	if st.Status == event.StatusInProgress {
		if st.Mode == event.ModeOrchestration {
			k := st.CurrentStep
			if k >= 0 && k < len(def.Steps) {
				e.Stats.Aborted.Add(1)
				st.Reason = why
				if timeout || def.Steps[k].Compensate == "" {
					// Nothing undoes the step in flight: compensate those before it.
					c.saga = []any{stepField(k, "status"), event.StepFailed, "reason", why}
					return e.compensateFrom(c, def, st, k-1)
				}
				c.status = event.StatusCompensating
				c.saga = []any{stepField(k, "status"), event.StepFailed, "status", c.status, "reason", why,
					"current_step", strconv.Itoa(k)}
				return c.command(def.Steps[k].Compensate, st.Context, k, event.PhaseCompensate)
			}
		} else if k := inFlight(st); chorAbort(def, st, k, timeout) != "" {
			data, err := withReason(st.Context, why)
			if err != nil {
				return err
			}
			e.Stats.Aborted.Add(1)
			c.status = event.StatusCompensating
			c.saga = []any{stepField(k, "status"), event.StepFailed, "status", c.status, "reason", why,
				"current_step", strconv.Itoa(max(k-1, 0))}
			c.emit(chorAbort(def, st, k, timeout), data)
			return nil
		}
	}
	c.status = event.StatusFailed
	c.saga = []any{"status", c.status, "reason", why}
	c.history = "saga.failed|" + what
	c.alert = []any{"saga_id", st.SagaID, "type", "saga.failed", "step", what, "error", why}
	e.Stats.Failed.Add(1)
	return nil
}

// chorAbort is the choreography event that gives up on step k: its failure
// event on a timeout (unless the step completed: then its effect is known
// and its own compensation must run), else its abort event.
func chorAbort(def *Definition, st *State, k int, timeout bool) string {
	if timeout && st.Steps[k].Status != event.StepCompleted && def.Steps[k].Fail != "" {
		return def.Steps[k].Fail
	}
	return def.Steps[k].Abort
}

// inFlight is the step a choreographed saga waits on: the first one not
// completed, or the last one when all are (its final event is pending).
func inFlight(st *State) int {
	for i, s := range st.Steps {
		if s.Status != event.StepCompleted {
			return i
		}
	}
	return len(st.Steps) - 1
}

// withReason returns the saga context with "reason" set: abort events carry
// the context, which holds everything the compensations need.
func withReason(ctxJSON json.RawMessage, reason string) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(ctxJSON) > 0 {
		if err := json.Unmarshal(ctxJSON, &m); err != nil {
			return nil, fmt.Errorf("saga context: %w", err)
		}
	}
	r, _ := json.Marshal(reason)
	m["reason"] = r
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("saga context: %w", err)
	}
	return out, nil
}
