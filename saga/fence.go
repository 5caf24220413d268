package saga

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/streams"
)

// verdict is how a saga stands towards one message consumed for it. A
// message is identified by the saga's version it was published at and by
// its type and event id, which the saga recorded (h.<version>) when it
// published it: a copy with the right version number but another id or
// type, a style other than the saga's, or a message for a finished saga is
// not the saga's, however well-formed it is.
type verdict int

const (
	// awaited: the message the saga waits for now.
	awaited verdict = iota
	// late: a message the saga published before and has moved past (a
	// duplicate, a late redelivery, a zombie worker's copy). Acknowledged
	// silently, except that the late effect of an abandoned step is undone.
	late
	// foreign: not a message the saga published, or a transition of a
	// finished saga. Dead-lettered with an entry.rejected alert, no effect.
	foreign
	// gone: the saga's hash does not exist. Dead-lettered with a
	// saga.missing alert (once per saga); its record is marked FAILED.
	gone
)

func (s verdict) String() string {
	switch s {
	case awaited:
		return "awaited"
	case late:
		return "late"
	case foreign:
		return "foreign"
	case gone:
		return "gone"
	}
	return "standing(" + strconv.Itoa(int(s)) + ")"
}

// head is what the fence reads of a saga: one HMGET.
type head struct {
	found   bool
	version int64
	status  string
	mode    string
	// What the saga published at the message's version (h.<version>,
	// "<ms>|<type>|<id>"); empty when it published nothing then.
	typ, id string
	// record is the reference of the saga's record ("" for none).
	record string
}

func (h *head) setRecord(record string) {
	_, rest, _ := strings.Cut(record, "|")
	h.typ, h.id, _ = strings.Cut(rest, "|")
}

// identity is the fence's name of a message: "<mode>|<type>|<id>". A type
// of "*" matches any (a dead-lettered reply whose command is unknown).
func identity(mode, typ, id string) string { return mode + "|" + typ + "|" + id }

// standing judges a message published at version, in mode, with type and
// id. final is set for the finalisers of a completed saga, which read the
// saga's last message after it finished.
func (h head) standing(version int64, mode, typ, id string, final bool) (verdict, string) {
	if !h.found {
		return gone, "saga not found"
	}
	if mode != h.mode {
		return foreign, fmt.Sprintf("a %s message for a %s saga", mode, h.mode)
	}
	if h.id == "" || h.id != id || (typ != "*" && h.typ != typ) {
		return foreign, fmt.Sprintf("not the message the saga published at version %d", version)
	}
	switch {
	case version < h.version:
		return late, ""
	case version > h.version:
		return foreign, fmt.Sprintf("version %d is ahead of the saga's %d", version, h.version)
	case final && h.status == StatusCompleted:
		return awaited, ""
	case final || terminal(h.status):
		return foreign, "a transition of a finished (" + h.status + ") saga"
	}
	return awaited, ""
}

// standing reads how m's saga stands towards m, before an effect of m that
// could escape the transition: one HMGET of the saga's version, status,
// style and the record of what it published at m's version, or, with full,
// the whole saga (a compensation reads its service's fields). final is set
// for a finaliser of a completed saga (it consumes the saga's last
// message). The commit script checks the same again, atomically.
func (e *Engine) standing(ctx context.Context, m *streams.Message, final, full bool) (verdict, string, *State, error) {
	if full {
		st, err := e.Get(ctx, m.Env.SagaID)
		if errors.Is(err, ErrNotFound) {
			return gone, "saga not found", nil, nil
		}
		if err != nil {
			return 0, "", nil, err
		}
		s, why := standingOf(st, m.Env.SagaVersion, m.Env.SagaMode, m.Env.Type, m.Env.EventID, final)
		e.countLate(s)
		return s, why, st, nil
	}
	h, err := e.head(ctx, m)
	if err != nil {
		return 0, "", nil, err
	}
	s, why := h.standing(m.Env.SagaVersion, m.Env.SagaMode, m.Env.Type, m.Env.EventID, final)
	e.countLate(s)
	return s, why, nil, nil
}

// head reads what the fence checks of m's saga, and its record's reference.
func (e *Engine) head(ctx context.Context, m *streams.Message) (head, error) {
	v := strconv.FormatInt(m.Env.SagaVersion, 10)
	res, err := e.hmget(ctx, e.keys.Saga(m.Partition, m.Env.SagaID), "version", "status", "mode", "h."+v, "record")
	if err != nil {
		return head{}, err
	}
	str := func(i int) string { s, _ := res[i].(string); return s }
	h := head{found: res[0] != nil, status: str(1), mode: str(2), record: str(4)}
	h.version, _ = strconv.ParseInt(str(0), 10, 64)
	h.setRecord(str(3))
	return h, nil
}

// countLate counts a message found late before its commit; one the fence
// refuses at the commit is counted by result.
func (e *Engine) countLate(s verdict) {
	if s == late {
		e.stats.stale.Add(1)
	}
}

// standingOf judges a message against a saga already read in full.
func standingOf(st *State, version int64, mode, typ, id string, final bool) (verdict, string) {
	h := head{found: true, version: st.Version, status: st.Status, mode: st.Mode}
	for _, e := range st.History {
		if e.Version == version {
			h.typ, h.id = e.Type, e.ID
		}
	}
	return h.standing(version, mode, typ, id, final)
}

// undoStanding judges an undo command (the compensation of a late effect,
// sent without a transition): it is the saga's only while the saga has
// abandoned the step.
func (e *Engine) undoStanding(ctx context.Context, m *streams.Message, step int) (verdict, string, *State, error) {
	st, err := e.Get(ctx, m.Env.SagaID)
	if errors.Is(err, ErrNotFound) {
		return gone, "saga not found", nil, nil
	}
	if err != nil {
		return 0, "", nil, err
	}
	if st.Mode != m.Env.SagaMode || !abandoned(st, step) {
		return foreign, fmt.Sprintf("an undo of step %d, which the %s saga did not abandon", step, st.Status), st, nil
	}
	return awaited, "", st, nil
}

// Reject moves an entry its saga refuses (verdict foreign) to the
// dead-letter stream with the reason, raises an entry.rejected alert and
// acknowledges it, in one script: forgeries and replay mistakes are seen by
// an operator, never applied and never silently dropped.
func (e *Engine) reject(ctx context.Context, m *streams.Message, reason string) error {
	alert := []any{"type", "entry.rejected", "saga_id", m.Env.SagaID, "event_type", m.Env.Type,
		"source_stream", m.Stream, "source_id", m.ID, "group", m.Group, "error", reason}
	if err := e.deadLetterOnly(ctx, m, deadLetterFields(m, "rejected: "+reason), alert); err != nil {
		return err
	}
	e.stats.rejected.Add(1)
	e.opts.Logger.WarnContext(ctx, "entry rejected: not a message its saga waits for", "saga_id", m.Env.SagaID,
		"event_type", m.Env.Type, "group", m.Group, "entry_id", m.ID, "reason", reason)
	return nil
}

// SagaMissing deals with an entry whose saga hash is gone (verdict gone):
// it is dead-lettered, and the loss alerted once per saga (see missing).
func (e *Engine) sagaMissing(ctx context.Context, m *streams.Message, reason string) error {
	dead := deadLetterFields(m, "saga not found: "+reason)
	return e.missing(ctx, m.Partition, m.Env.SagaID, m, m.Group+"/"+m.Env.Type, "", dead)
}

// missing runs missing.lua for a saga whose hash is gone: found by the
// consumed entry m (nil for a deadline or a retry), with the retries member
// to drop. The saga's record, found through the partition's record
// references, is marked FAILED.
func (e *Engine) missing(ctx context.Context, p int, sagaID string, m *streams.Message, foundBy, member string, dead []any) error {
	ref, err := e.rdb.HGet(ctx, e.keys.Records(p), sagaID).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read record reference: %w", err)
	}
	sagaKey := e.keys.Saga(p, sagaID)
	recordKey := sagaKey
	if kind, id, ok := strings.Cut(ref, ":"); ok {
		recordKey = e.keys.Record(p, kind, id)
	}
	stream, group, entry := sagaKey, "", ""
	if m != nil {
		stream, group, entry = m.Stream, m.Group, m.ID
	} else {
		dead = nil
	}
	keys := []string{stream, sagaKey, e.keys.Records(p), e.keys.Missing(p, sagaID), recordKey,
		e.keys.DeadLetter(p), e.keys.Alerts(p), e.keys.Deadlines(p), e.keys.Retries(p)}
	for _, s := range Statuses {
		keys = append(keys, e.keys.Index(p, s))
	}
	args := append([]any{group, entry, sagaID, ref, int64(e.opts.Retention.Seconds()), foundBy, member}, dead...)
	res, err := e.batch.Eval(ctx, missingScript, keys, args...).Text()
	if err != nil {
		return fmt.Errorf("report missing saga: %w", err)
	}
	switch res {
	case "EXISTS":
		// Recreated in between (a restore): the entry is handled again.
		return fmt.Errorf("saga %s reappeared while reporting it missing", sagaID)
	case "ALERTED":
		e.opts.Logger.ErrorContext(ctx, "saga not found: its hash is gone (evicted, deleted or flushed)",
			"saga_id", sagaID, "found_by", foundBy, "record", ref)
	}
	e.stats.missing.Add(1)
	if m != nil {
		e.stats.deadLettered.Add(1)
	}
	return nil
}
