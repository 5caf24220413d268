package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/streams"
)

// The orchestration style: a stateless orchestrator (the group named
// Orchestrator) sends each step's command, the step's service answers with
// a reply, and the orchestrator advances the saga by one fenced transition
// per reply. No process holds a saga between two messages.

// replyData is the data of a service's reply to a command.
type replyData struct {
	Command string          `json:"command"`
	Step    int             `json:"step"`
	Phase   string          `json:"phase"`
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result,omitempty"`
	Reason  string          `json:"reason,omitempty"`
}

// commandData is what the orchestrator adds to a command's data, beside the
// saga's context.
type commandData struct {
	Step  int    `json:"step"`
	Phase string `json:"phase"`
}

// phaseUndo compensates a late effect of a step its saga gave up on: sent
// without a transition, answered by no reply.
const phaseUndo = "undo"

// serveCommand is a service's hop in orchestration: it runs the command's
// operation and answers the orchestrator, the operation's writes on the
// saga's partition applied with the reply, once per command.
func (e *Engine) serveCommand(ctx context.Context, m *streams.Message, rt route) error {
	d, k := rt.def, rt.step
	var cmd commandData
	if err := json.Unmarshal(m.Env.Data, &cmd); err != nil || cmd.Step != k ||
		(cmd.Phase != string(rt.phase) && !(rt.phase == Compensate && cmd.Phase == phaseUndo)) {
		return streams.Permanent(fmt.Errorf("%s carries no step %d and phase %s", m.Env.Type, k, rt.phase))
	}
	if cmd.Phase == phaseUndo {
		standing, why, st, err := e.undoStanding(ctx, m, k)
		if err != nil {
			return err
		}
		if standing != awaited {
			return e.refuse(ctx, m, standing, why)
		}
		return e.undo(ctx, m, d, k, st)
	}
	r, _, done, err := e.operate(ctx, m, d, k, rt.phase, m.Env.Data, nil)
	if done {
		return err
	}
	return e.settle(ctx, m, d, k, rt.phase, r, func(r *run) (scriptResult, error) {
		return e.reply(ctx, m, k, rt.phase, r)
	})
}

// reply runs reply.lua: the writes and the reply, fenced, once per command.
func (e *Engine) reply(ctx context.Context, m *streams.Message, k int, phase Phase, r *run) (scriptResult, error) {
	data, err := json.Marshal(replyData{Command: m.Env.Type, Step: k, Phase: string(phase), OK: r.out.ok,
		Result: r.result, Reason: r.out.reason})
	if err != nil {
		return scriptResult{}, fmt.Errorf("encode reply: %w", err)
	}
	comp, keep := "", ""
	if phase == Compensate {
		comp = strconv.Itoa(k)
	}
	if r.outside {
		keep = "1"
	}
	keys := []string{e.keys.Saga(m.Partition, m.Env.SagaID), m.Stream, e.keys.Stream(m.Partition, ReplyType)}
	args := []any{m.Group, m.ID, m.Env.SagaVersion, identity(m.Env.SagaMode, m.Env.Type, m.Env.EventID), comp, keep,
		newEventID(), m.Env.SagaMode, m.Env.EventID, e.opts.Clock().UTC().Format(time.RFC3339Nano), string(data)}
	keys, args = writeArgs(keys, args, r.local)
	return e.result(e.batch.Eval(ctx, replyScript, keys, args...).Slice())
}

// handleReply is the orchestrator: it advances a saga by one service reply,
// in one transition fenced on the saga's version and on the reply answering
// the command the saga waits for (state change + next command + XACK).
func (e *Engine) handleReply(ctx context.Context, m *streams.Message) error {
	var r replyData
	if err := json.Unmarshal(m.Env.Data, &r); err != nil {
		return streams.Permanent(fmt.Errorf("decode reply: %w", err))
	}
	var st *State
	var err error
	if r.Phase == string(Execute) && r.OK {
		// A step done: the saga moves on; what that needs is read, not the
		// whole saga.
		st, err = e.getFields(ctx, m.Env.SagaID, "type", "mode", "status", "version", "context", "record",
			"current_step", "h."+strconv.FormatInt(m.Env.SagaVersion, 10))
	} else {
		st, err = e.Get(ctx, m.Env.SagaID)
	}
	if errors.Is(err, ErrNotFound) {
		return e.sagaMissing(ctx, m, "the orchestrator")
	}
	if err != nil {
		return err
	}
	switch standing, why := standingOf(st, m.Env.SagaVersion, m.Env.SagaMode, r.Command, m.Env.CausationID, false); standing {
	case foreign:
		return e.reject(ctx, m, why)
	case late:
		e.stats.stale.Add(1)
		return e.rereadLate(ctx, m, r) // its step's statuses decide
	}
	d := e.defs[st.Type]
	if d == nil || r.Step < 0 || r.Step >= len(d.Steps) || r.Step >= len(st.Steps) || !answers(d.Steps[r.Step], r) {
		return e.reject(ctx, m, fmt.Sprintf("a %s reply for step %d that command %s did not ask for", r.Phase, r.Step, r.Command))
	}
	c := newPatch(st.Type, st.SagaID, st.Mode, m.Partition, st.Status).of(st)
	if err := e.advance(c, d, st, r, m.Env.EventID); err != nil {
		return err
	}
	var local []resolvedWrite
	if c.status == StatusCompleted {
		if local, err = e.finals(ctx, d, m.Partition, st.SagaID, st.Context, &decoded{}); err != nil {
			return err
		}
	}
	if e.beforeReplyCommit != nil {
		e.beforeReplyCommit()
	}
	// The saga can give up on this step (a sweeper's timeout) between the
	// read above and the commit, which the fence then refuses. An effect
	// that landed must not be dropped with the reply: the entry is kept, the
	// saga read again, and the effect undone if the step was abandoned.
	effect := r.Phase == string(Execute) && r.OK
	keep := ""
	if effect {
		keep = "1"
	}
	keys := append(c.keys(e), m.Stream)
	args := []any{m.Group, m.ID, m.Env.SagaVersion, identity(m.Env.SagaMode, r.Command, m.Env.CausationID), "", keep}
	args = append(args, c.args(e)...)
	// No writes of the step: its service applied them with its reply. A
	// completion applies the Finally operations' writes.
	keys, args = writeArgs(keys, args, local)
	args = append(args, c.fields...)
	res, err := e.result(e.batch.Eval(ctx, hopScript, keys, args...).Slice())
	if err != nil {
		return err
	}
	switch res.code {
	case applied:
		e.applied(c)
		if c.status == StatusFailed {
			e.opts.Logger.WarnContext(ctx, "saga FAILED: a compensation failed for good", "saga_id", st.SagaID,
				"step", d.Steps[r.Step].Name, "attempts", st.Steps[r.Step].Attempts()+1, "reason", r.Reason)
		}
		return nil
	case rejectedCode:
		return e.reject(ctx, m, res.reason)
	case missingCode:
		return e.sagaMissing(ctx, m, "the orchestrator")
	}
	if !effect {
		return nil // STALE: acknowledged by the script
	}
	return e.rereadLate(ctx, m, r)
}

// rereadLate reads the saga of a late reply m again, whole, and deals with
// the reply.
func (e *Engine) rereadLate(ctx context.Context, m *streams.Message, r replyData) error {
	st, err := e.Get(ctx, m.Env.SagaID)
	if errors.Is(err, ErrNotFound) {
		return e.sagaMissing(ctx, m, "the orchestrator")
	}
	if err != nil {
		return err
	}
	return e.lateReply(ctx, m, st, r)
}

// answers reports whether r can answer a command of step s: the command
// is the step's in r's phase.
func answers(s stepSpec, r replyData) bool {
	switch Phase(r.Phase) {
	case Execute:
		return s.CanExecute && r.Command == s.Execute
	case Compensate:
		return s.CanCompensate && r.Command == s.Compensate
	}
	return false
}

// lateReply deals with a reply its saga has moved past: usually a duplicate
// or a late reply, acknowledged; but an effect that landed after the saga
// gave up on its step (a hanging step) is undone by the step's service,
// once (compensations are idempotent): an undo command goes to it.
func (e *Engine) lateReply(ctx context.Context, m *streams.Message, st *State, r replyData) error {
	d := e.defs[st.Type]
	if r.Phase == string(Execute) && r.OK && d != nil && r.Step >= 0 && r.Step < len(d.Steps) &&
		abandoned(st, r.Step) && d.Steps[r.Step].CanCompensate {
		return e.sendUndo(ctx, m, st, d.Steps[r.Step].Compensate, r.Step)
	}
	return e.ack(ctx, m)
}

// abandoned reports whether a saga gave up on step i before it completed:
// an effect of that step that lands now must be compensated.
func abandoned(st *State, i int) bool {
	return st.Status != StatusInProgress && st.Status != StatusCompleted &&
		i >= 0 && i < len(st.Steps) && st.Steps[i].forward() == StepFailed
}

// sendUndo sends the compensation of step i as an undo command (no
// transition, no reply) and acknowledges the late reply m, in one script.
func (e *Engine) sendUndo(ctx context.Context, m *streams.Message, st *State, command string, i int) error {
	data, err := commandPayload(st.Context, i, phaseUndo)
	if err != nil {
		return err
	}
	env := &event.Envelope{
		EventID: newEventID(), Type: command, SagaID: st.SagaID, SagaMode: st.Mode,
		SagaVersion: st.Version, CausationID: m.Env.EventID, OccurredAt: e.opts.Clock(), Data: data,
	}
	keys := []string{m.Stream, e.keys.Stream(m.Partition, command), e.keys.Alerts(m.Partition)}
	args := append([]any{m.Group, m.ID, 0}, env.Fields()...)
	if err := e.batch.Eval(ctx, forwardScript, keys, args...).Err(); err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	e.opts.Logger.InfoContext(ctx, "late effect of an abandoned step: undoing it", "saga_id", st.SagaID, "step", i, "command", command)
	return nil
}

// advance fills c with what reply r does to the saga.
func (e *Engine) advance(c *patch, d *definition, st *State, r replyData, causation string) error {
	i := r.Step
	switch {
	case r.Phase == string(Execute) && r.OK:
		c.step(i, StepCompleted).result(i, r.Result)
		if i+1 < len(d.Steps) {
			c.current(i + 1)
			return c.command(e, d.Steps[i+1].Execute, st.Context, i+1, Execute, causation)
		}
		e.finish(c, d, StatusCompleted, st, causation)
		return nil

	case r.Phase == string(Execute):
		st.Reason = r.Reason // the first: a saga in progress has none
		c.to(StatusCompensating).step(i, StepFailed).reason(r.Reason).result(i, r.Result).current(i)
		return e.compensateFrom(c, d, st, i-1, causation)

	case r.Phase == string(Compensate) && r.OK:
		// A step that never took effect stays FAILED: its compensation was
		// a null one.
		c.compensated(i, st.Steps[i], r.Result, d.Steps[i].Checked)
		return e.compensateFrom(c, d, st, i-1, causation)

	case r.Phase == string(Compensate):
		if tries := st.Steps[i].tries() + 1; tries < e.opts.CompensationAttempts {
			// Try again after a capped exponential back-off: the retries set
			// holds the saga until then, and the Redriver re-sends the command.
			c.compensationTried(i, st.Steps[i], r.Reason)
			c.retry = e.backoff(tries)
			c.history = "retry.scheduled|" + d.Steps[i].Compensate
			return nil
		}
		why := fmt.Sprintf("compensation %s of %s failed %d times: %s", d.Steps[i].Compensate, d.Steps[i].Name,
			st.Steps[i].Attempts()+1, r.Reason)
		c.compensationFailed(d, st, i, 1, r.Reason, d.Steps[i].Compensate, why)
		return nil
	}
	return streams.Permanent(fmt.Errorf("reply with unknown phase %q", r.Phase))
}

// backoff is the wait before retry number n (n >= 1) of a compensation.
func (e *Engine) backoff(n int) time.Duration {
	d := e.opts.Backoff
	for range n - 1 {
		d *= 2
		if d >= e.opts.BackoffMax {
			return e.opts.BackoffMax
		}
	}
	return d
}

// compensateFrom sends the compensation of the last completed step at or
// before index from, or ends the saga COMPENSATED when none is left.
func (e *Engine) compensateFrom(c *patch, d *definition, st *State, from int, causation string) error {
	c.to(StatusCompensating)
	for j := from; j >= 0; j-- {
		if st.Steps[j].forward() == StepCompleted && d.Steps[j].CanCompensate {
			c.compensating(j)
			return c.command(e, d.Steps[j].Compensate, st.Context, j, Compensate, causation)
		}
	}
	e.finish(c, d, StatusCompensated, st, causation)
	return nil
}

// finish ends an orchestrated saga: its status, its final event, its record.
func (e *Engine) finish(c *patch, d *definition, status string, st *State, causation string) {
	c.to(status)
	if status == StatusCompleted {
		c.ends(RecordCompleted, "").publish(e, d.Completed, st.Context, causation)
		return
	}
	c.ends(RecordCancelled, st.firstReason()).publish(e, d.Compensated, st.Context, causation)
}

// RedriveDue re-sends the current command of every saga of partition p
// whose retry time has come. Each re-send is one fenced script that checks
// the time again, so any number of workers can run it at once.
func (e *Engine) RedriveDue(ctx context.Context, p int) (int, error) {
	ids, _, err := e.due(ctx, e.keys.Retries(p))
	if err != nil {
		return 0, err
	}
	sent := 0
	for _, member := range ids {
		ok, err := e.redrive(ctx, p, member)
		if err != nil {
			// One bad saga must not hold up the others of its partition.
			e.opts.Logger.WarnContext(ctx, "re-send a due compensation", "retry", member, "err", err)
			continue
		}
		if ok {
			sent++
		}
	}
	return sent, nil
}

// redrive re-sends one due compensation; member is "<saga id>|<version>".
func (e *Engine) redrive(ctx context.Context, p int, member string) (bool, error) {
	id, v, _ := strings.Cut(member, "|")
	version, err := strconv.ParseInt(v, 10, 64)
	st, gerr := e.Get(ctx, id)
	if err == nil && errors.Is(gerr, ErrNotFound) {
		return false, e.missing(ctx, p, id, nil, "retry", member, nil)
	}
	if err != nil || (gerr == nil && st.Version != version) {
		// Malformed, or the saga moved on since it was scheduled: the
		// member is obsolete (a newer schedule has another member).
		return false, e.rdb.ZRem(ctx, e.keys.Retries(p), member).Err()
	}
	if gerr != nil {
		return false, gerr
	}
	d := e.defs[st.Type]
	j := st.compensating
	if d == nil || st.Status != StatusCompensating || j < 0 || j >= len(d.Steps) || !d.Steps[j].CanCompensate {
		return false, e.rdb.ZRem(ctx, e.keys.Retries(p), member).Err()
	}
	c := newPatch(st.Type, st.SagaID, st.Mode, p, st.Status)
	if err := c.command(e, d.Steps[j].Compensate, st.Context, j, Compensate, "retry"); err != nil {
		return false, err
	}
	args := append([]any{st.Version, member}, c.args(e)...)
	res, err := e.result(e.batch.Eval(ctx, redriveScript, c.keys(e), append(args, c.fields...)...).Slice())
	return err == nil && res.code == applied, err
}

// Redriver re-sends compensations whose back-off has passed, in every
// partition. Every worker runs one; no leader is needed.
type Redriver struct {
	Engine   *Engine
	Interval time.Duration
	Logger   *slog.Logger
}

// Run works until ctx is done.
func (r *Redriver) Run(ctx context.Context) error {
	everyPartition(ctx, r.Engine, r.Interval, 100*time.Millisecond, r.Logger, "re-send due compensations", r.Engine.RedriveDue)
	return nil
}

// everyPartition runs fn over every partition each interval (def when not
// set) until ctx is done, logging failures.
func everyPartition(ctx context.Context, e *Engine, interval, def time.Duration, log *slog.Logger, what string,
	fn func(context.Context, int) (int, error)) {
	if interval <= 0 {
		interval = def
	}
	if log == nil {
		log = slog.Default()
	}
	streams.RunEvery(ctx, interval, func(ctx context.Context) {
		for p := range e.keys.Partitions {
			if _, err := fn(ctx, p); err != nil && ctx.Err() == nil {
				log.WarnContext(ctx, what, "partition", p, "err", err)
			}
		}
	})
}

// Retry re-drives a FAILED saga (POST /sagas/{id}/retry): an orchestrated
// saga gets its failed compensation sent again with a fresh attempt count;
// a choreographed one gets the event that starts compensating its last step
// that may have taken effect.
func (e *Engine) Retry(ctx context.Context, sagaID string) error {
	st, err := e.Get(ctx, sagaID)
	if errors.Is(err, ErrNotFound) {
		// A saga the partition still lists as unfinished was lost: report it
		// (an unknown id is only a 404).
		p := e.keys.PartitionOf(sagaID)
		if known, kerr := e.rdb.HExists(ctx, e.keys.Records(p), sagaID).Result(); kerr == nil && known {
			if merr := e.missing(ctx, p, sagaID, nil, "a retry request", "", nil); merr != nil {
				return merr
			}
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if st.Status != StatusFailed {
		return ErrNotFailed
	}
	d := e.defs[st.Type]
	if d == nil {
		return ErrCannotRetry
	}
	p := e.keys.PartitionOf(sagaID)
	c := newPatch(st.Type, st.SagaID, st.Mode, p, st.Status).of(st)
	c.to(StatusCompensating)
	// The compensation that failed for good is tried again, with a fresh
	// limit: its failed tries so far stay counted and shown.
	for i, s := range st.Steps {
		if s.Compensation != nil && s.Compensation.Status == CompensationFailed {
			c.set(stepField(i, "compensation"), CompensationPending, stepField(i, "redriven"), strconv.Itoa(s.Attempts()))
		}
	}
	if st.Mode == ModeOrchestration {
		j := st.compensating
		if j < 0 || j >= len(d.Steps) {
			return ErrCannotRetry
		}
		if !d.Steps[j].CanCompensate {
			// Nothing undoes step j itself: carry on with those before it.
			if err := e.compensateFrom(c, d, st, j-1, "retry"); err != nil {
				return err
			}
		} else {
			if _, ok := st.raw[stepField(j, "compensation")]; !ok {
				// Written by an engine that marked a step whose compensation
				// failed FAILED; it re-drove it as COMPLETED.
				c.step(j, StepCompleted).set(stepField(j, "attempts"), "0")
			}
			if err := c.compensating(j).command(e, d.Steps[j].Compensate, st.Context, j, Compensate, "retry"); err != nil {
				return err
			}
		}
	} else {
		k := -1
		for i, s := range st.Steps {
			if f := s.forward(); f == StepCompleted || f == StepFailed {
				k = i
			}
		}
		if k < 0 {
			return ErrCannotRetry
		}
		ev := d.abort(k, false, st.Steps[k].forward() == StepCompleted)
		if ev == "" {
			return ErrCannotRetry
		}
		if j := d.compensatedBy(ev); j >= 0 {
			c.compensating(j)
		}
		c.set("sweeps", "0").publish(e, ev, st.Context, "retry")
	}
	args := append([]any{st.Version}, c.args(e)...)
	res, err := e.result(e.batch.Eval(ctx, retryScript, c.keys(e), append(args, c.fields...)...).Slice())
	switch {
	case err != nil:
		return err
	case res.code == missingCode:
		return ErrNotFound
	case res.code != applied:
		return ErrNotFailed // another retry won the race
	}
	e.applied(c)
	return nil
}

// IsCompensation reports whether a message type belongs to a saga's way
// back: a failure event, a compensation event or command, a retry, a
// failure for good (for pictures and logs).
func (e *Engine) IsCompensation(typ string) bool {
	switch typ {
	case "saga.failed", "retry.scheduled":
		return true
	}
	for _, d := range e.defs {
		if d.isCompensation(typ) {
			return true
		}
	}
	return false
}
