package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/streams"
)

// Handle runs the hop of one message: it implements streams.Handler for
// every consumer group of every saga type the engine knows. The route of
// the message (derived from the declarations) says what it means; the
// engine checks it against its saga where an effect could escape the
// transition, calls the participant's operation, applies its writes and
// commits the transition, and acknowledges the message. A participant's
// code never calls back into the engine.
func (e *Engine) Handle(ctx context.Context, m *streams.Message) error {
	env := m.Env
	if !strings.HasSuffix(m.Stream, ":"+env.Type) {
		return streams.Permanent(fmt.Errorf("event type %q does not belong on stream %s", env.Type, m.Stream))
	}
	if m.Group == Orchestrator && env.Type == ReplyType {
		return e.handleReply(ctx, m)
	}
	r, ok := e.routes[m.Group+"|"+env.Type]
	if !ok {
		return streams.Permanent(fmt.Errorf("group %s does not handle %s", m.Group, env.Type))
	}
	switch {
	case r.kind == routeComplete:
		return e.complete(ctx, m, r)
	case r.kind == routeFinalize:
		return e.finalize(ctx, m, r)
	case r.command:
		return e.serveCommand(ctx, m, r)
	}
	return e.hop(ctx, m, r)
}

// run is one operation's run for a message: what it decided and where its
// effect went.
type run struct {
	out     Outcome
	result  json.RawMessage
	local   []resolvedWrite
	outside bool // an effect may have landed outside the transition (a checked call, writes on another slot)
	// completes is set when the last step's success completes the saga in
	// its own transition; record is then the saga's record reference.
	completes bool
	record    string
}

// operate reads what the operation needs of its saga (compensations read it
// whole; checked steps and writes on another slot are checked first: their
// effects would escape the transition), runs it and applies its writes on
// other slots behind their barriers. It returns done when m was dealt with
// (refused, late, or its saga gone).
func (e *Engine) operate(ctx context.Context, m *streams.Message, d *definition, k int, phase Phase, data json.RawMessage, dc *decoded) (*run, *State, bool, error) {
	step := d.Steps[k]
	var st *State
	checked := false
	check := func() (bool, error) {
		checked = true
		standing, why, cur, err := e.standing(ctx, m, false, phase == Compensate)
		st = cur
		if err != nil {
			return true, err
		}
		switch standing {
		case awaited:
			return false, nil
		case late:
			return true, e.late(ctx, m, d, k, phase, step.Checked)
		}
		return true, e.refuse(ctx, m, standing, why)
	}
	if step.Checked || phase == Compensate {
		if done, err := check(); done {
			return nil, st, true, err
		}
	}
	var fields map[string]string
	if st != nil {
		fields = st.fields(step.Service)
	}
	out, err := e.impl[d.Type].run(ctx, k, phase, m.Env.SagaID, data, fields, dc)
	if err != nil {
		return nil, st, true, err
	}
	r := &run{out: out, outside: step.Checked}
	if out.result != nil {
		if r.result, err = json.Marshal(out.result); err != nil {
			return nil, st, true, fmt.Errorf("encode the result of %s: %w", step.Name, err)
		}
	}
	ws := e.splitWrites(out.writes, step.Service, m.Partition, e.keys.Saga(m.Partition, m.Env.SagaID))
	r.local = ws.local
	if len(ws.shared) > 0 {
		if len(ws.shared) > 1 {
			// Two slots cannot be written all or nothing.
			return nil, st, true, streams.Permanent(fmt.Errorf("step %s writes shared state in %d slots (%v): one at most", step.Name, len(ws.shared), slices.Sorted(maps.Keys(ws.shared))))
		}
		if phase == Execute && !step.HasFinally {
			// Its barrier would be kept for ever: a live execution's barrier
			// expires only once the step is compensated or finalised.
			return nil, st, true, streams.Permanent(fmt.Errorf("step %s writes shared state (%v): declare Finally on it", step.Name, slices.Collect(maps.Keys(ws.shared))))
		}
		if !e.split {
			// One Redis: every slot is within reach of the transition's
			// script, so these writes apply with it like the saga's own,
			// fenced, all or nothing, with no barrier and no check first.
			for _, writes := range ws.shared {
				r.local = append(r.local, writes...)
			}
			return r, st, false, nil
		}
		if !checked {
			if done, err := check(); done {
				return nil, st, true, err
			}
		}
		r.outside = true
		for tag, writes := range ws.shared {
			res, err := e.effect(ctx, tag, m.Env.SagaID, step.Name, phase, writes)
			if err != nil {
				return nil, st, true, err
			}
			switch res.code {
			case "FAIL":
				if phase != Execute {
					return nil, st, true, fmt.Errorf("%s of %s refused: %s", phase, step.Name, res.reason)
				}
				r.out, r.local, r.result = Fail(res.reason), nil, nil
			case "BLOCKED":
				// Compensated before: the saga gave up on the step; the
				// commit finds it moved on.
				r.out, r.local = Fail("blocked: compensated before"), nil
			case "DONE":
				if strings.HasPrefix(res.reason, "fail|") {
					r.out, r.local, r.result = Fail(strings.TrimPrefix(res.reason, "fail|")), nil, nil
				}
			}
		}
	}
	return r, st, false, nil
}

// hop runs a choreographed step's operation and commits its outcome: the
// step's writes, the saga's transition and the next event, fenced on the
// message being the one the saga waits for.
func (e *Engine) hop(ctx context.Context, m *streams.Message, rt route) error {
	d, k := rt.def, rt.step
	dc := &decoded{}
	r, st, done, err := e.operate(ctx, m, d, k, rt.phase, m.Env.Data, dc)
	if done {
		return err
	}
	if rt.phase == Execute && k == len(d.Steps)-1 && r.out.ok && !(hasTake(r.local) && e.checkFinals(d)) {
		if done, err := e.completing(ctx, m, d, r, dc); done {
			return err
		}
	}
	return e.settle(ctx, m, d, k, rt.phase, r, func(r *run) (scriptResult, error) {
		c, compensated, err := e.decide(ctx, m, d, k, rt.phase, r, st)
		if err != nil {
			return scriptResult{}, err
		}
		return e.commitHop(ctx, m, c, compensated, r)
	})
}

// settle runs commit until the message is dealt with: committed, late,
// refused or its saga gone. A take that found too little turns the step's
// outcome into its failure, committed instead.
func (e *Engine) settle(ctx context.Context, m *streams.Message, d *definition, k int, phase Phase, r *run,
	commit func(*run) (scriptResult, error)) error {
	for {
		res, err := commit(r)
		if err != nil {
			return err
		}
		switch res.code {
		case applied, dup:
			return nil
		case stale:
			if !r.outside {
				return nil // acknowledged by the script
			}
			return e.late(ctx, m, d, k, phase, true)
		case rejectedCode:
			return e.reject(ctx, m, res.reason)
		case missingCode:
			return e.sagaMissing(ctx, m, "the commit")
		case took:
			r = &run{out: Fail(res.reason), outside: r.outside}
			continue
		}
		return fmt.Errorf("commit %s: unexpected code %s", m.Env.Type, res.code)
	}
}

// decide turns an operation's outcome into the saga's transition, in
// choreography. compensated is the step whose compensation this is (its
// writes apply only if it had completed), or -1.
func (e *Engine) decide(ctx context.Context, m *streams.Message, d *definition, k int, phase Phase, r *run, st *State) (*patch, int, error) {
	env := m.Env
	if phase == Compensate {
		if !r.out.ok {
			// Compensations do not give up: retried, then dead-lettered (the
			// saga becomes FAILED with an alert).
			e.tried(ctx, m, k, r.out.reason)
			return nil, -1, fmt.Errorf("compensation of %s refused: %s", d.Steps[k].Name, r.out.reason)
		}
		c := newPatch(d.Type, env.SagaID, env.SagaMode, m.Partition, st.Status).of(st)
		c.compensated(k, st.Steps[k], r.result, d.Steps[k].Checked)
		if j := lastCompleted(d, st, k); j >= 0 {
			c.compensating(j).publish(e, d.Steps[k].Compensated, env.Data, env.EventID)
		} else {
			// The order was cancelled for its first failure, not for a
			// compensation that failed before an operator's retry.
			c.to(StatusCompensated).ends(RecordCancelled, st.firstReason()).
				publish(e, d.Compensated, env.Data, env.EventID)
		}
		return c, k, nil
	}
	c := newPatch(d.Type, env.SagaID, env.SagaMode, m.Partition, StatusInProgress)
	if r.out.ok && r.completes {
		c.record = r.record
		c.step(k, StepCompleted).result(k, r.result).current(k).
			to(StatusCompleted).ends(RecordCompleted, "").publish(e, d.Completed, env.Data, env.EventID)
		return c, -1, nil
	}
	if r.out.ok {
		c.step(k, StepCompleted).result(k, r.result).current(min(k+1, len(d.Steps)-1)).
			publish(e, d.Steps[k].Completed, env.Data, env.EventID)
		return c, -1, nil
	}
	// A saga in progress has no reason yet: this one is its first.
	c.step(k, StepFailed).result(k, r.result).reason(r.out.reason).current(k)
	if j := d.prevCompensable(k); j >= 0 {
		c.to(StatusCompensating).compensating(j).
			publish(e, d.Steps[k].Failed, env.Data, env.EventID)
		return c, -1, nil
	}
	// Nothing before the step can be undone: the saga ends here.
	ref, err := e.recordOf(ctx, m.Partition, env.SagaID)
	if err != nil {
		return nil, -1, err
	}
	c.record = ref
	c.to(StatusCompensated).ends(RecordCancelled, r.out.reason).
		publish(e, d.Compensated, env.Data, env.EventID)
	return c, -1, nil
}

// tried shows a refused try of step k's compensation on its saga (tried.lua),
// for the message m that stays pending for its next delivery. It is only
// shown: the delivery is retried whether or not it was written.
func (e *Engine) tried(ctx context.Context, m *streams.Message, k int, reason string) {
	keys := []string{e.keys.Saga(m.Partition, m.Env.SagaID)}
	args := []any{m.Env.SagaVersion, identity(m.Env.SagaMode, m.Env.Type, m.Env.EventID), k, reason}
	if err := e.batch.Eval(ctx, triedScript, keys, args...).Err(); err != nil {
		e.opts.Logger.WarnContext(ctx, "record a refused compensation", "saga_id", m.Env.SagaID, "step", k, "err", err)
	}
}

// lastCompleted is the nearest step before k that completed and has a
// compensation, or -1.
func lastCompleted(d *definition, st *State, k int) int {
	for j := k - 1; j >= 0; j-- {
		if d.Steps[j].CanCompensate && j < len(st.Steps) && st.Steps[j].forward() == StepCompleted {
			return j
		}
	}
	return -1
}

// Answers of hop.lua and reply.lua beside the common ones: a take found
// too little (nothing written), a command already answered.
const (
	took resultCode = "TAKE"
	dup  resultCode = "DUP"
)

// commitHop runs hop.lua: the fence, the step's writes and the transition.
func (e *Engine) commitHop(ctx context.Context, m *streams.Message, c *patch, compensated int, r *run) (scriptResult, error) {
	keys := append(c.keys(e), m.Stream)
	comp := ""
	if compensated >= 0 {
		comp = fmt.Sprint(compensated)
	}
	keep := ""
	if r.outside {
		keep = "1" // a late effect outside the script is undone before the ack
	}
	args := []any{m.Group, m.ID, m.Env.SagaVersion, identity(m.Env.SagaMode, m.Env.Type, m.Env.EventID), comp, keep}
	args = append(args, c.args(e)...)
	local := r.local
	if compensated < 0 {
		// An execution's fields on the saga apply whenever its transition
		// does: they join the transition's one HSET.
		local = nil
		for _, w := range r.local {
			if w.op == "hset" && w.key == keys[0] {
				c.set(w.field, w.value)
				continue
			}
			local = append(local, w)
		}
	}
	keys, args = writeArgs(keys, args, local)
	args = append(args, c.fields...)
	res, err := e.result(e.batch.Eval(ctx, hopScript, keys, args...).Slice())
	if err == nil && res.code == applied {
		e.applied(c)
	}
	return res, err
}

// completing prepares r to complete m's saga in its transition — the last
// step's success, or the owner's completion (complete): the steps' Finally
// operations run first (their outside effects after the check that m is
// the message the saga waits for), their writes join r's, and r learns the
// saga's record. It returns done when m was dealt with (late, refused, or
// its saga gone).
//
// The step's effect must not be able to fail in the commit once Finally
// operations have acted outside it, so a step that takes with such Finally
// operations completes through its completed event and the owner instead.
func (e *Engine) completing(ctx context.Context, m *streams.Message, d *definition, r *run, dc *decoded) (bool, error) {
	env := m.Env
	h, err := e.head(ctx, m)
	if err != nil {
		return true, err
	}
	if e.checkFinals(d) {
		standing, why := h.standing(env.SagaVersion, env.SagaMode, env.Type, env.EventID, false)
		e.countLate(standing)
		switch standing {
		case late:
			return true, e.late(ctx, m, d, len(d.Steps)-1, Execute, r.outside)
		case foreign, gone:
			return true, e.refuse(ctx, m, standing, why)
		}
	}
	local, err := e.finals(ctx, d, m.Partition, env.SagaID, env.Data, dc)
	if err != nil {
		return true, err
	}
	r.local = append(r.local, local...)
	r.completes, r.record = true, h.record
	return false, nil
}

func hasTake(ws []resolvedWrite) bool {
	for _, w := range ws {
		if w.op == "take" {
			return true
		}
	}
	return false
}

// complete is the owner's hop when a choreographed saga's last step
// completed without completing the saga (see completing): the steps'
// Finally operations run, and the saga ends COMPLETED with their writes,
// its record marked and its completed event published, in one transition.
func (e *Engine) complete(ctx context.Context, m *streams.Message, rt route) error {
	d, env := rt.def, m.Env
	r := &run{} // nothing outside the transition: a late copy is only acknowledged
	if done, err := e.completing(ctx, m, d, r, nil); done {
		return err
	}
	c := newPatch(d.Type, env.SagaID, env.SagaMode, m.Partition, StatusInProgress)
	c.record = r.record
	c.to(StatusCompleted).ends(RecordCompleted, "").
		publish(e, d.Completed, env.Data, env.EventID)
	return e.settle(ctx, m, d, -1, Execute, r, func(r *run) (scriptResult, error) {
		return e.commitHop(ctx, m, c, -1, r)
	})
}

// checkFinals reports whether a completion must be checked against its saga
// before the Finally operations run: one of them calls outside Redis (a
// checked step), an effect that a forged completion must not cause.
// Otherwise the commit's fence is the check. (On a Redis Cluster the
// Finally operations run after the completion: see finalizers.)
func (e *Engine) checkFinals(d *definition) bool {
	for _, s := range d.Steps {
		if s.HasFinally && s.Checked && !e.split {
			return true
		}
	}
	return false
}

// finals runs the Finally operations of a saga that completes now, on one
// Redis: their writes, on any slot, come back to be applied with the
// completion. A Finally that fails or errs makes the completion retried. On
// a Redis Cluster it does nothing: the finalisers' own hops run them once
// the saga completed (finalizers).
func (e *Engine) finals(ctx context.Context, d *definition, p int, sagaID string, data json.RawMessage, dc *decoded) ([]resolvedWrite, error) {
	if e.split {
		return nil, nil
	}
	var local []resolvedWrite
	for k, s := range d.Steps {
		if !s.HasFinally {
			continue
		}
		out, err := e.impl[d.Type].run(ctx, k, Finalize, sagaID, data, nil, dc)
		if err != nil {
			return nil, err
		}
		if !out.ok {
			return nil, fmt.Errorf("finalize %s: %s", s.Name, out.reason)
		}
		for _, w := range out.writes {
			if w.op == "take" {
				return nil, streams.Permanent(fmt.Errorf("finalize %s: a Finally operation cannot take (it cannot fail)", s.Name))
			}
		}
		ws := e.splitWrites(out.writes, s.Service, p, e.keys.Saga(p, sagaID))
		local = append(local, ws.local...)
		for _, writes := range ws.shared {
			local = append(local, writes...)
		}
	}
	return local, nil
}

// finalize runs a step's Finally operation once its saga completed, on a
// Redis Cluster: after the check that the message is the saga's real
// completion, its writes apply once (behind a barrier on another slot,
// guarded on the saga's).
func (e *Engine) finalize(ctx context.Context, m *streams.Message, rt route) error {
	d, k := rt.def, rt.step
	standing, why, _, err := e.standing(ctx, m, true, false)
	if err != nil {
		return err
	}
	switch standing {
	case late:
		return e.ack(ctx, m)
	case foreign, gone:
		return e.refuse(ctx, m, standing, why)
	}
	out, err := e.impl[d.Type].run(ctx, k, Finalize, m.Env.SagaID, m.Env.Data, nil, nil)
	if err != nil {
		return err
	}
	if !out.ok {
		return fmt.Errorf("finalize %s: %s", d.Steps[k].Name, out.reason)
	}
	ws := e.splitWrites(out.writes, d.Steps[k].Service, m.Partition, e.keys.Saga(m.Partition, m.Env.SagaID))
	for tag, writes := range ws.shared {
		if _, err := e.effect(ctx, tag, m.Env.SagaID, d.Steps[k].Name, Finalize, writes); err != nil {
			return err
		}
	}
	return e.once(ctx, m, "f."+fmt.Sprint(k), ws.local)
}

// late deals with a message its saga has moved past. Usually that is all:
// a duplicate or a late redelivery, acknowledged. But when the saga gave up
// on the step (its deadline passed, its message was dead-lettered) and the
// step's effect may have landed outside the transition — by this delivery,
// or by an earlier one that crashed before committing — nobody else will
// compensate it: the step's compensation runs here, once (it is a no-op
// when nothing landed).
func (e *Engine) late(ctx context.Context, m *streams.Message, d *definition, k int, phase Phase, outside bool) error {
	if phase != Execute || !outside || !d.Steps[k].CanCompensate {
		return e.ack(ctx, m)
	}
	st, err := e.Get(ctx, m.Env.SagaID)
	if errors.Is(err, ErrNotFound) {
		return e.sagaMissing(ctx, m, "a late effect")
	}
	if err != nil {
		return err
	}
	if !abandoned(st, k) {
		return e.ack(ctx, m)
	}
	return e.undo(ctx, m, d, k, st)
}

// undo compensates the late effect of step k of saga st, and acknowledges m.
func (e *Engine) undo(ctx context.Context, m *streams.Message, d *definition, k int, st *State) error {
	step := d.Steps[k]
	e.opts.Logger.InfoContext(ctx, "late effect of an abandoned step: compensating it", "saga_id", st.SagaID,
		"step", step.Name, "event_type", m.Env.Type, "group", m.Group)
	out, err := e.impl[d.Type].run(ctx, k, Compensate, st.SagaID, st.Context, st.fields(step.Service), nil)
	if err != nil {
		return err
	}
	if !out.ok {
		return fmt.Errorf("undo %s: %s", step.Name, out.reason) // retried: the effect must not stay
	}
	ws := e.splitWrites(out.writes, step.Service, m.Partition, e.keys.Saga(m.Partition, st.SagaID))
	for tag, writes := range ws.shared {
		switch {
		case e.split:
			if _, err := e.effect(ctx, tag, st.SagaID, step.Name, Compensate, writes); err != nil {
				return err
			}
		case st.Mode == ModeOrchestration:
			// On one Redis the execution's writes on that slot went with its
			// reply, which was sent: they are undone here, once.
			ws.local = append(ws.local, writes...)
		}
		// In choreography they went with its transition, which never
		// committed: nothing of them to undo.
	}
	if err := e.once(ctx, m, "u."+fmt.Sprint(k), ws.local); err != nil {
		return err
	}
	e.stats.undone.Add(1)
	return nil
}

// once applies writes on the saga's partition once, guarded by a field of
// the saga hash, and acknowledges m.
func (e *Engine) once(ctx context.Context, m *streams.Message, guard string, ws []resolvedWrite) error {
	keys := []string{e.keys.Saga(m.Partition, m.Env.SagaID), m.Stream}
	keys, args := writeArgs(keys, []any{m.Group, m.ID, guard}, ws)
	if err := e.batch.Eval(ctx, onceScript, keys, args...).Err(); err != nil {
		return fmt.Errorf("apply %s: %w", guard, err)
	}
	return nil
}

type effectResult struct{ code, reason string }

// effect applies writes on a shared slot behind the saga's barrier there.
func (e *Engine) effect(ctx context.Context, tag, sagaID, step string, phase Phase, ws []resolvedWrite) (effectResult, error) {
	keys := []string{e.keys.Barrier(tag, sagaID)}
	keys, args := writeArgs(keys, []any{step, string(phase), int64(e.opts.Retention.Seconds())}, ws)
	res, err := e.batch.Eval(ctx, effectScript, keys, args...).StringSlice()
	if err != nil {
		return effectResult{}, fmt.Errorf("%s %s on {%s}: %w", phase, step, tag, err)
	}
	r := effectResult{code: res[0]}
	if len(res) > 1 {
		r.reason = res[1]
	}
	return r, nil
}

// recordOf reads a saga's record reference ("" when it has none).
func (e *Engine) recordOf(ctx context.Context, p int, sagaID string) (string, error) {
	ref, err := e.rdb.HGet(ctx, e.keys.Saga(p, sagaID), "record").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("read saga record: %w", err)
	}
	return ref, nil
}

// Ack acknowledges m without touching its saga.
func (e *Engine) ack(ctx context.Context, m *streams.Message) error {
	cmd := redis.NewIntCmd(ctx, "xack", m.Stream, m.Group, m.ID)
	if err := e.batch.Do(ctx, cmd); err != nil {
		return fmt.Errorf("xack: %w", err)
	}
	return nil
}

// refuse deals with a message its saga refuses: a foreign one is
// dead-lettered with an alert, one whose saga is gone too (the loss is
// alerted once per saga).
func (e *Engine) refuse(ctx context.Context, m *streams.Message, standing verdict, why string) error {
	if standing == gone {
		return e.sagaMissing(ctx, m, why)
	}
	return e.reject(ctx, m, why)
}

// fields returns the fields a service wrote on the saga with Set.
func (st *State) fields(service string) map[string]string {
	out := map[string]string{}
	for k, v := range st.raw {
		if name, ok := strings.CutPrefix(k, service+"."); ok {
			out[name] = v
		}
	}
	return out
}

// code is the outcome of a script that commits a transition.
type resultCode string

// Commit outcomes.
const (
	// applied: the transition was committed.
	applied resultCode = "OK"
	// stale: the saga's version moved on (a duplicate, a late message or a
	// zombie worker); nothing changed.
	stale resultCode = "STALE"
	// missingCode: the saga hash does not exist; nothing changed, the entry is
	// left pending for SagaMissing.
	missingCode resultCode = "MISSING"
	// notDue: a deadline or a re-send came before its time; nothing changed.
	notDue resultCode = "NOTDUE"
	// rejectedCode: the consumed message is not one the saga published at its
	// version, or the saga is finished; nothing changed, the entry is left
	// pending for Reject.
	rejectedCode resultCode = "REJECTED"
)

// scriptResult is what a script did.
type scriptResult struct {
	code    resultCode
	version int64
	reason  string
}

func (e *Engine) result(res []any, err error) (scriptResult, error) {
	if err != nil {
		return scriptResult{}, fmt.Errorf("commit transition: %w", err)
	}
	if len(res) < 2 {
		return scriptResult{}, fmt.Errorf("commit transition: unexpected reply %v", res)
	}
	c, _ := res[0].(string)
	version, _ := res[1].(int64)
	r := scriptResult{code: resultCode(c), version: version}
	if len(res) > 2 {
		r.reason, _ = res[2].(string)
	}
	if r.code == stale {
		e.stats.stale.Add(1)
	}
	return r, nil
}
