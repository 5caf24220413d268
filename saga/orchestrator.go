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

// Errors of Retry.
var (
	// ErrNotFailed: only a FAILED saga can be retried.
	ErrNotFailed = errors.New("saga is not FAILED")
	// ErrCannotRetry: nothing in the saga's definition can undo what is left.
	ErrCannotRetry = errors.New("saga cannot be re-driven")
)

// CommandData is the data of a command: the saga's context with the step
// and phase added, so that a service needs nothing else.
func CommandData(sagaContext json.RawMessage, step int, phase string) (json.RawMessage, error) {
	m := map[string]json.RawMessage{}
	if len(sagaContext) > 0 {
		if err := json.Unmarshal(sagaContext, &m); err != nil {
			return nil, fmt.Errorf("saga context: %w", err)
		}
	}
	m["step"] = json.RawMessage(strconv.Itoa(step))
	m["phase"], _ = json.Marshal(phase)
	return json.Marshal(m)
}

// HandleReply is the orchestrator: it advances a saga by one service reply,
// in one transition script fenced on the saga's version (state change + next
// command + XACK). It keeps nothing in memory between replies, so any worker
// can run it and a killed one loses nothing.
func (e *Engine) HandleReply(ctx context.Context, m *streams.Message) error {
	var r event.ReplyData
	if err := json.Unmarshal(m.Env.Data, &r); err != nil {
		return streams.Permanent(fmt.Errorf("decode reply: %w", err))
	}
	st, err := e.Get(ctx, m.Env.SagaID)
	if errors.Is(err, ErrNotFound) {
		return e.SagaMissing(ctx, m, "the orchestrator")
	}
	if err != nil {
		return err
	}
	// A reply is the saga's only if it answers the command the saga sent at
	// that version: its causation is the command's id.
	switch standing, why := standingOf(st, m.Env.SagaVersion, m.Env.SagaMode, r.Command, m.Env.CausationID, false); standing {
	case Foreign:
		return e.Reject(ctx, m, why)
	case Late:
		return e.staleReply(ctx, m, st, r)
	}
	def := e.defs[st.Type]
	if def == nil || r.Step < 0 || r.Step >= len(def.Steps) || r.Step >= len(st.Steps) || !answers(def.Steps[r.Step], r) {
		return e.Reject(ctx, m, fmt.Sprintf("a %s reply for step %d that command %s did not ask for", r.Phase, r.Step, r.Command))
	}
	c := e.newCommit(m)
	c.ident = identity(m.Env.SagaMode, r.Command, m.Env.CausationID)
	c.mode, c.sagaType = st.Mode, st.Type
	// The saga can give up on this step (a sweeper's timeout) between the
	// read above and the commit, which the fence then refuses. An effect
	// that landed must not be dropped with the reply: the entry is kept, the
	// saga read again, and the effect undone if the step was abandoned.
	effect := r.Phase == event.PhaseExecute && r.OK
	c.keepOnRefusal = effect
	if err := e.advance(c, def, st, r); err != nil {
		return err
	}
	if e.beforeReplyCommit != nil {
		e.beforeReplyCommit()
	}
	res, err := c.run(ctx, e)
	if err != nil {
		return err
	}
	switch res.Code {
	case Rejected:
		return e.Reject(ctx, m, res.Reason)
	case Missing:
		return e.SagaMissing(ctx, m, "the orchestrator")
	}
	if res.Code != Applied && effect {
		now, err := e.Get(ctx, m.Env.SagaID)
		if errors.Is(err, ErrNotFound) {
			return e.SagaMissing(ctx, m, "the orchestrator")
		}
		if err != nil {
			return err
		}
		return e.staleReply(ctx, m, now, r)
	}
	if res.Code == Applied && c.status == event.StatusFailed {
		e.Stats.Failed.Add(1)
		e.opts.Logger.WarnContext(ctx, "saga FAILED: a compensation failed for good", "saga_id", st.SagaID,
			"step", def.Steps[r.Step].Name, "attempts", e.opts.CompensationAttempts, "reason", r.Reason)
	}
	return nil
}

// answers reports whether r can answer a command of step s: the command
// is the step's in r's phase.
func answers(s Step, r event.ReplyData) bool {
	switch r.Phase {
	case event.PhaseExecute:
		return r.Command == s.Execute
	case event.PhaseCompensate:
		return r.Command == s.Compensate && s.Compensate != ""
	}
	return false
}

// staleReply deals with a reply its saga has moved past: usually a
// duplicate or a late reply, acknowledged; but an effect that landed after
// the saga gave up on its step (a hanging step) is undone, once
// (compensations are idempotent).
func (e *Engine) staleReply(ctx context.Context, m *streams.Message, st *State, r event.ReplyData) error {
	e.Stats.Stale.Add(1)
	e.opts.Logger.DebugContext(ctx, "late reply", "saga_id", st.SagaID, "command", r.Command, "saga_version", st.Version)
	def := e.defs[st.Type]
	if r.Phase == event.PhaseExecute && r.OK && def != nil && r.Step >= 0 && r.Step < len(def.Steps) &&
		abandoned(st, r.Step) && def.Steps[r.Step].Compensate != "" {
		return e.undo(ctx, m, st, def.Steps[r.Step].Compensate, r.Step)
	}
	return e.Ack(ctx, m)
}

// abandoned reports whether a saga gave up on step i before it completed:
// an effect of that step that lands now must be compensated.
func abandoned(st *State, i int) bool {
	return st.Status != event.StatusInProgress && st.Status != event.StatusCompleted &&
		i < len(st.Steps) && st.Steps[i].Status == event.StepFailed
}

// Abandoned reports whether the saga gave up on step i before it completed
// (for a service that committed its step's effect and found the saga gone
// on): the service must then compensate that effect itself.
func (e *Engine) Abandoned(ctx context.Context, sagaID string, i int) (bool, error) {
	st, err := e.Get(ctx, sagaID)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return abandoned(st, i), nil
}

// IsCompensation reports whether a message type belongs to a saga's way
// back: a failure event, a compensation event or command, a retry, a
// failure for good (for pictures and logs).
func (e *Engine) IsCompensation(typ string) bool {
	switch typ {
	case "saga.failed", "retry.scheduled":
		return true
	}
	if def, ok := e.byEvent[typ]; ok {
		eff := def.Events[typ]
		return eff.StepStatus == event.StepFailed || eff.StepStatus == event.StepCompensated ||
			eff.Status == event.StatusCompensating || eff.Status == event.StatusCompensated
	}
	for _, def := range e.defs {
		for _, s := range def.Steps {
			if s.Compensate == typ {
				return true
			}
		}
	}
	return false
}

// StepOf is the step a choreography event reports on, or NoStep.
func (e *Engine) StepOf(eventType string) int {
	if def, ok := e.byEvent[eventType]; ok {
		return def.Events[eventType].Step
	}
	return NoStep
}

// undo sends the compensation of step i as an undo command (no transition,
// no reply) and acknowledges the late reply m, in one script.
func (e *Engine) undo(ctx context.Context, m *streams.Message, st *State, command string, i int) error {
	data, err := CommandData(st.Context, i, event.PhaseUndo)
	if err != nil {
		return err
	}
	env := &event.Envelope{
		EventID: newEventID(), Type: command, SagaID: st.SagaID, SagaMode: st.Mode,
		SagaVersion: st.Version, CausationID: m.Env.EventID, OccurredAt: e.opts.Clock(), Data: data,
	}
	keys := []string{m.Stream, e.ks.Stream(m.Partition, command), e.ks.Alerts(m.Partition)}
	args := append([]any{m.Group, m.ID, 0}, env.Fields()...)
	if err := forwardScript.Run(ctx, e.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("undo: %w", err)
	}
	e.opts.Logger.InfoContext(ctx, "late effect of an abandoned step: undoing it", "saga_id", st.SagaID, "step", i, "command", command)
	return nil
}

// Reply answers an orchestrator command m: it publishes r on the reply
// stream and acknowledges m in one script. The reply carries the command's
// saga version, which the orchestrator's transition is fenced on.
func (e *Engine) Reply(ctx context.Context, m *streams.Message, r event.ReplyData) error {
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	env := &event.Envelope{
		EventID: newEventID(), Type: event.Reply, SagaID: m.Env.SagaID, SagaMode: m.Env.SagaMode,
		SagaVersion: m.Env.SagaVersion, CausationID: m.Env.EventID, OccurredAt: e.opts.Clock(), Data: data,
	}
	keys := []string{m.Stream, e.ks.Stream(m.Partition, event.Reply), e.ks.Alerts(m.Partition)}
	args := append([]any{m.Group, m.ID, 0}, env.Fields()...)
	if err := forwardScript.Run(ctx, e.rdb, keys, args...).Err(); err != nil {
		return fmt.Errorf("reply: %w", err)
	}
	return nil
}

// advance fills c with what reply r does to the saga.
func (e *Engine) advance(c *commit, def *Definition, st *State, r event.ReplyData) error {
	i := r.Step
	result := ""
	if len(r.Result) > 0 {
		result = string(r.Result)
	}
	switch {
	case r.Phase == event.PhaseExecute && r.OK:
		c.saga = []any{stepField(i, "status"), event.StepCompleted}
		if result != "" {
			c.saga = append(c.saga, stepField(i, "result"), result)
		}
		if i+1 < len(def.Steps) {
			c.saga = append(c.saga, "current_step", strconv.Itoa(i+1))
			return c.command(def.Steps[i+1].Execute, st.Context, i+1, event.PhaseExecute)
		}
		return e.finish(c, def.Completed, event.StatusCompleted, st)

	case r.Phase == event.PhaseExecute:
		st.Reason = r.Reason
		c.status = event.StatusCompensating
		c.saga = []any{stepField(i, "status"), event.StepFailed, "status", c.status, "reason", st.Reason}
		if result != "" {
			c.saga = append(c.saga, stepField(i, "result"), result)
		}
		return e.compensateFrom(c, def, st, i-1)

	case r.Phase == event.PhaseCompensate && r.OK:
		c.saga = []any{stepField(i, "status"), event.StepCompensated}
		if result != "" {
			c.saga = append(c.saga, stepField(i, "result"), result)
		}
		return e.compensateFrom(c, def, st, i-1)

	case r.Phase == event.PhaseCompensate:
		attempts := st.Steps[i].Attempts + 1
		c.saga = []any{stepField(i, "attempts"), strconv.Itoa(attempts), "last_error", r.Reason}
		if attempts < e.opts.CompensationAttempts {
			// Try again after a capped exponential back-off: the retries set
			// holds the saga until then, and the Redriver re-sends the command.
			c.retry = "schedule:" + strconv.FormatInt(e.backoff(attempts).Milliseconds(), 10)
			c.history = "retry.scheduled|" + def.Steps[i].Compensate
			return nil
		}
		why := fmt.Sprintf("compensation %s of %s failed %d times: %s", def.Steps[i].Compensate, def.Steps[i].Name, attempts, r.Reason)
		c.status = event.StatusFailed
		c.saga = append(c.saga, stepField(i, "status"), event.StepFailed, "status", c.status, "reason", why)
		c.history = "saga.failed|" + def.Steps[i].Compensate
		c.alert = []any{"saga_id", st.SagaID, "type", "saga.failed", "step", def.Steps[i].Name, "error", why}
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
func (e *Engine) compensateFrom(c *commit, def *Definition, st *State, from int) error {
	c.status = event.StatusCompensating
	c.saga = append(c.saga, "status", c.status)
	for j := from; j >= 0; j-- {
		if st.Steps[j].Status == event.StepCompleted && def.Steps[j].Compensate != "" {
			c.saga = append(c.saga, "current_step", strconv.Itoa(j))
			return c.command(def.Steps[j].Compensate, st.Context, j, event.PhaseCompensate)
		}
	}
	return e.finish(c, def.Compensated, event.StatusCompensated, st)
}

// finish ends an orchestrated saga: its status, its final event, its record.
func (e *Engine) finish(c *commit, f Final, status string, st *State) error {
	c.status = status
	c.saga = append(c.saga, "status", status)
	if f.Event != "" {
		data, err := withReason(st.Context, st.Reason)
		if err != nil {
			return err
		}
		c.emit(f.Event, data)
	}
	if kind, id, ok := strings.Cut(st.Record, ":"); ok && len(f.Record) > 0 {
		fields := map[string]string{"reason": st.Reason}
		for k, v := range f.Record {
			fields[k] = v
		}
		c.record(&Record{Kind: kind, ID: id, Fields: fields})
	}
	return nil
}

func (c *commit) command(typ string, sagaContext json.RawMessage, step int, phase string) error {
	data, err := CommandData(sagaContext, step, phase)
	if err != nil {
		return err
	}
	c.emit(typ, data)
	return nil
}

// RedriveDue re-sends the current command of every saga of partition p
// whose retry time has come. Each re-send is one fenced script that checks
// the time again, so any number of workers can run it at once.
func (e *Engine) RedriveDue(ctx context.Context, p int) (int, error) {
	ids, err := e.due(ctx, e.ks.Retries(p))
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
		return false, e.rdb.ZRem(ctx, e.ks.Retries(p), member).Err()
	}
	if gerr != nil {
		return false, gerr
	}
	def := e.defs[st.Type]
	j := st.CurrentStep
	if def == nil || st.Status != event.StatusCompensating || j < 0 || j >= len(def.Steps) || def.Steps[j].Compensate == "" {
		return false, e.rdb.ZRem(ctx, e.ks.Retries(p), member).Err()
	}
	c := e.sagaCommit(p, st.SagaID, st.Mode, st.Version)
	c.sagaType = st.Type
	c.retry = "due:" + member
	if err := c.command(def.Steps[j].Compensate, st.Context, j, event.PhaseCompensate); err != nil {
		return false, err
	}
	res, err := c.run(ctx, e)
	return err == nil && res.Code == Applied, err
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
		for p := range e.ks.Partitions {
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
		p := e.ks.PartitionOf(sagaID)
		if known, kerr := e.rdb.HExists(ctx, e.ks.Records(p), sagaID).Result(); kerr == nil && known {
			if merr := e.missing(ctx, p, sagaID, nil, "a retry request", "", nil); merr != nil {
				return merr
			}
		}
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if st.Status != event.StatusFailed {
		return ErrNotFailed
	}
	def := e.defs[st.Type]
	if def == nil {
		return ErrCannotRetry
	}
	p := e.ks.PartitionOf(sagaID)
	c := e.sagaCommit(p, st.SagaID, st.Mode, st.Version)
	c.sagaType = st.Type
	c.status = event.StatusCompensating
	if st.Mode == event.ModeOrchestration {
		j := st.CurrentStep
		if j < 0 || j >= len(def.Steps) {
			return ErrCannotRetry
		}
		if def.Steps[j].Compensate == "" {
			// Nothing undoes step j itself: carry on with those before it.
			c.saga = []any{stepField(j, "status"), event.StepFailed}
			if err := e.compensateFrom(c, def, st, j-1); err != nil {
				return err
			}
		} else {
			c.saga = []any{"status", c.status, stepField(j, "status"), event.StepCompleted, stepField(j, "attempts"), "0"}
			if err := c.command(def.Steps[j].Compensate, st.Context, j, event.PhaseCompensate); err != nil {
				return err
			}
		}
	} else {
		k := -1
		for i, s := range st.Steps {
			if s.Status == event.StepCompleted || s.Status == event.StepFailed {
				k = i
			}
		}
		if k < 0 || def.Steps[k].Abort == "" {
			return ErrCannotRetry
		}
		data, err := withReason(st.Context, st.Reason)
		if err != nil {
			return err
		}
		c.saga = []any{"status", c.status, "sweeps", "0"}
		c.emit(def.Steps[k].Abort, data)
	}
	res, err := c.run(ctx, e)
	switch {
	case err != nil:
		return err
	case res.Code == Missing:
		return ErrNotFound
	case res.Code != Applied:
		return ErrNotFailed // another retry won the race
	}
	return nil
}
