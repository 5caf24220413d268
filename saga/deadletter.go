package saga

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/streams"
)

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
	d := e.defs[st.Type]
	// A reply is its command's: its causation is the command's id, and the
	// command's type is in data that may not decode.
	typ, id := m.Env.Type, m.Env.EventID
	if typ == ReplyType {
		typ, id = "*", m.Env.CausationID
	}
	if standing, _ := standingOf(st, m.Env.SagaVersion, m.Env.SagaMode, typ, id, false); d == nil || standing != awaited {
		// Not the message the saga waits on: a duplicate, a stale or a
		// foreign entry.
		return e.deadLetterOnly(ctx, m, dead, undoAlert(m, reason))
	}
	c := newPatch(st.Type, st.SagaID, st.Mode, m.Partition, st.Status).of(st)
	why := "dead-lettered " + m.Env.Type + ": " + reason
	if st.Status == StatusInProgress {
		if err := e.giveUp(c, d, st, why, m.Env.Type, m.Env.EventID, false); err != nil {
			return err
		}
	} else {
		// A compensation's message failed every delivery: that
		// compensation failed for good.
		j := d.compensatedBy(typ)
		if j < 0 {
			j = st.compensating // a reply: its command is the one in flight
		}
		// Refusals were shown as they came (tried), with their reason; other
		// failed deliveries (errors) count here, with the dead letter's.
		tries, err := int(max(m.Deliveries-1, 1)), reason
		if j >= 0 && j < len(st.Steps) {
			s, last := st.Steps[j], reason
			if s.tries() > 0 && s.Compensation.Error != "" {
				tries, err, last = 0, "", s.Compensation.Error
			}
			why = fmt.Sprintf("compensation of %s failed %d times: %s (%s)", d.Steps[j].Name, s.Attempts()+tries, last, why)
		}
		c.compensationFailed(d, st, j, tries, err, m.Env.Type, why)
	}
	keys := append(c.keys(e), m.Stream, e.keys.DeadLetter(m.Partition))
	args := []any{m.Group, m.ID, m.Env.SagaVersion, identity(m.Env.SagaMode, typ, id)}
	args = append(args, c.args(e)...)
	args = appendCounted(args, dead)
	res, err := e.result(e.batch.Eval(ctx, deadLetterScript, keys, append(args, c.fields...)...).Slice())
	if err != nil {
		return err
	}
	e.stats.deadLettered.Add(1)
	if res.code == applied {
		e.applied(c)
		e.opts.Logger.WarnContext(ctx, "saga aborted by a dead letter", "saga_id", st.SagaID,
			"event_type", m.Env.Type, "group", m.Group, "status", c.status, "reason", reason)
	}
	return nil
}

// undoAlert is the alert for a dead-lettered undo command: the late effect
// it was to compensate may be left in place, and only an operator can tell.
func undoAlert(m *streams.Message, reason string) []any {
	var cmd commandData
	if m.Env == nil || json.Unmarshal(m.Env.Data, &cmd) != nil || cmd.Phase != phaseUndo {
		return nil
	}
	return []any{"type", "undo.failed", "saga_id", m.Env.SagaID, "command", m.Env.Type,
		"step", strconv.Itoa(cmd.Step), "source_stream", m.Stream, "source_id", m.ID,
		"error", "the late effect of an abandoned step may be left in place: " + reason}
}

func (e *Engine) deadLetterOnly(ctx context.Context, m *streams.Message, dead, alert []any) error {
	keys := []string{m.Stream, e.keys.DeadLetter(m.Partition), e.keys.Alerts(m.Partition)}
	args := append([]any{m.Group, m.ID, len(alert) / 2}, alert...)
	args = append(args, dead...)
	if err := e.batch.Eval(ctx, forwardScript, keys, args...).Err(); err != nil {
		return fmt.Errorf("dead-letter: %w", err)
	}
	e.stats.deadLettered.Add(1)
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
	if !ValidID(id) {
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
