package saga

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/streams"
)

// Standing is how a saga stands towards one message consumed for it. A
// message is identified by the saga's version it was published at and by
// its type and event id, which the saga recorded (h.<version>) when it
// published it: a copy with the right version number but another id or
// type, a style other than the saga's, or a message for a finished saga is
// not the saga's, however well-formed it is.
type Standing int

const (
	// Awaited: the message the saga waits for now.
	Awaited Standing = iota
	// Late: a message the saga published before and has moved past (a
	// duplicate, a late redelivery, a zombie worker's copy). Acknowledged
	// silently, except that the late effect of an abandoned step is undone.
	Late
	// Foreign: not a message the saga published, or a transition of a
	// finished saga. Dead-lettered with an entry.rejected alert, no effect.
	Foreign
	// Gone: the saga's hash does not exist. Dead-lettered with a
	// saga.missing alert (once per saga); its record is marked FAILED.
	Gone
)

func (s Standing) String() string {
	switch s {
	case Awaited:
		return "awaited"
	case Late:
		return "late"
	case Foreign:
		return "foreign"
	case Gone:
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
func (h head) standing(version int64, mode, typ, id string, final bool) (Standing, string) {
	if !h.found {
		return Gone, "saga not found"
	}
	if mode != h.mode {
		return Foreign, fmt.Sprintf("a %s message for a %s saga", mode, h.mode)
	}
	if h.id == "" || h.id != id || (typ != "*" && h.typ != typ) {
		return Foreign, fmt.Sprintf("not the message the saga published at version %d", version)
	}
	switch {
	case version < h.version:
		return Late, ""
	case version > h.version:
		return Foreign, fmt.Sprintf("version %d is ahead of the saga's %d", version, h.version)
	case final && h.status == event.StatusCompleted:
		return Awaited, ""
	case final || terminal(h.status):
		return Foreign, "a transition of a finished (" + h.status + ") saga"
	}
	return Awaited, ""
}

// Check reads how m's saga stands towards it, before any effect of m is
// applied: one HMGET of the saga's version, status, style and the record of
// what it published at m's version. final is set for a finaliser of a
// completed saga (it consumes the saga's last message). The commit script
// checks the same again, atomically.
func (e *Engine) Check(ctx context.Context, m *streams.Message, final bool) (Standing, string, error) {
	v := strconv.FormatInt(m.Env.SagaVersion, 10)
	res, err := e.rdb.HMGet(ctx, e.ks.Saga(m.Partition, m.Env.SagaID), "version", "status", "mode", "h."+v).Result()
	if err != nil {
		return 0, "", fmt.Errorf("read saga: %w", err)
	}
	str := func(i int) string { s, _ := res[i].(string); return s }
	h := head{found: res[0] != nil, status: str(1), mode: str(2)}
	h.version, _ = strconv.ParseInt(str(0), 10, 64)
	h.setRecord(str(3))
	st, why := h.standing(m.Env.SagaVersion, m.Env.SagaMode, m.Env.Type, m.Env.EventID, final)
	if st == Late {
		e.Stats.Stale.Add(1)
	}
	return st, why, nil
}

// standingOf judges a message against a saga already read in full.
func standingOf(st *State, version int64, mode, typ, id string, final bool) (Standing, string) {
	h := head{found: true, version: st.Version, status: st.Status, mode: st.Mode}
	for _, e := range st.History {
		if e.Version == version {
			h.typ, h.id = e.Type, e.ID
		}
	}
	return h.standing(version, mode, typ, id, final)
}

// UndoStanding judges an undo command (the compensation of a late effect,
// sent without a transition): it is the saga's only while the saga has
// abandoned the step.
func (e *Engine) UndoStanding(ctx context.Context, m *streams.Message, step int) (Standing, string, error) {
	st, err := e.Get(ctx, m.Env.SagaID)
	if errors.Is(err, ErrNotFound) {
		return Gone, "saga not found", nil
	}
	if err != nil {
		return 0, "", err
	}
	if st.Mode != m.Env.SagaMode || !abandoned(st, step) {
		return Foreign, fmt.Sprintf("an undo of step %d, which the %s saga did not abandon", step, st.Status), nil
	}
	return Awaited, "", nil
}

// Reject moves an entry its saga refuses (Standing Foreign) to the
// dead-letter stream with the reason, raises an entry.rejected alert and
// acknowledges it, in one script: forgeries and replay mistakes are seen by
// an operator, never applied and never silently dropped.
func (e *Engine) Reject(ctx context.Context, m *streams.Message, reason string) error {
	alert := []any{"type", "entry.rejected", "saga_id", m.Env.SagaID, "event_type", m.Env.Type,
		"source_stream", m.Stream, "source_id", m.ID, "group", m.Group, "error", reason}
	if err := e.deadLetterOnly(ctx, m, deadLetterFields(m, "rejected: "+reason), alert); err != nil {
		return err
	}
	e.Stats.Rejected.Add(1)
	e.opts.Logger.WarnContext(ctx, "entry rejected: not a message its saga waits for", "saga_id", m.Env.SagaID,
		"event_type", m.Env.Type, "group", m.Group, "entry_id", m.ID, "reason", reason)
	return nil
}

// SagaMissing deals with an entry whose saga hash is gone (Standing Gone):
// it is dead-lettered, and the loss alerted once per saga (see Missing).
func (e *Engine) SagaMissing(ctx context.Context, m *streams.Message, reason string) error {
	dead := deadLetterFields(m, "saga not found: "+reason)
	return e.missing(ctx, m.Partition, m.Env.SagaID, m, m.Group+"/"+m.Env.Type, "", dead)
}

// missing runs missing.lua for a saga whose hash is gone: found by the
// consumed entry m (nil for a deadline or a retry), with the retries member
// to drop. The saga's record, found through the partition's record
// references, is marked FAILED.
func (e *Engine) missing(ctx context.Context, p int, sagaID string, m *streams.Message, foundBy, member string, dead []any) error {
	ref, err := e.rdb.HGet(ctx, e.ks.Records(p), sagaID).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("read record reference: %w", err)
	}
	sagaKey := e.ks.Saga(p, sagaID)
	recordKey := sagaKey
	if kind, id, ok := strings.Cut(ref, ":"); ok {
		recordKey = e.ks.Record(p, kind, id)
	}
	stream, group, entry := sagaKey, "", ""
	if m != nil {
		stream, group, entry = m.Stream, m.Group, m.ID
	} else {
		dead = nil
	}
	keys := []string{stream, sagaKey, e.ks.Records(p), e.ks.Missing(p, sagaID), recordKey,
		e.ks.DeadLetter(p), e.ks.Alerts(p), e.ks.Deadlines(p), e.ks.Retries(p)}
	for _, s := range event.SagaStatuses {
		keys = append(keys, e.ks.Index(p, s))
	}
	args := append([]any{group, entry, sagaID, ref, int64(e.opts.Retention.Seconds()), foundBy, member}, dead...)
	res, err := missingScript.Run(ctx, e.rdb, keys, args...).Text()
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
	e.Stats.Missing.Add(1)
	if m != nil {
		e.Stats.DeadLettered.Add(1)
	}
	return nil
}
