package saga

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// State is a saga as GET /sagas/{id} shows it: the design notes' SagaState
// plus its mode, reason, deadline, version and history.
type State struct {
	SagaID      string          `json:"sagaId"`
	Type        string          `json:"type"`
	Mode        string          `json:"mode"`
	CurrentStep int             `json:"currentStep"`
	Status      string          `json:"status"`
	Reason      string          `json:"reason,omitempty"`
	Context     json.RawMessage `json:"context"`
	Steps       []StepState     `json:"steps"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
	DeadlineAt  *time.Time      `json:"deadlineAt,omitempty"`
	// SagaDeadlineAt is the whole saga's deadline (SAGA_TIMEOUT), if any.
	SagaDeadlineAt *time.Time     `json:"sagaDeadlineAt,omitempty"`
	Version        int64          `json:"version"`
	History        []HistoryEntry `json:"history"`
	// Record is "<kind>:<id>" of the saga's record (the order).
	Record string `json:"-"`
	// Sweeps counts the deadlines a choreographed compensation missed.
	Sweeps string `json:"-"`
	raw    map[string]string
}

// StepState is one step of a saga.
type StepState struct {
	Name   string          `json:"name"`
	Status string          `json:"status"`
	Result json.RawMessage `json:"result,omitempty"`
	// Attempts counts the failed tries of the step's compensation.
	Attempts int `json:"attempts,omitempty"`
}

// HistoryEntry is one message a saga's transitions published, in order.
type HistoryEntry struct {
	Version int64     `json:"version"`
	At      time.Time `json:"at"`
	Type    string    `json:"type"`
	ID      string    `json:"id"`
}

// Get reads one saga.
func (e *Engine) Get(ctx context.Context, sagaID string) (*State, error) {
	cmd := redis.NewMapStringStringCmd(ctx, "hgetall", e.keys.Saga(e.keys.PartitionOf(sagaID), sagaID))
	_ = e.batch.Do(ctx, cmd)
	h, err := cmd.Result()
	if err != nil {
		return nil, fmt.Errorf("read saga: %w", err)
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	return e.parseState(sagaID, h), nil
}

// getFields reads some fields of a saga (ErrNotFound when it has none of
// them): a State with only those filled in, step statuses PENDING unless
// read.
func (e *Engine) getFields(ctx context.Context, sagaID string, fields ...string) (*State, error) {
	res, err := e.hmget(ctx, e.keys.Saga(e.keys.PartitionOf(sagaID), sagaID), fields...)
	if err != nil {
		return nil, err
	}
	h := make(map[string]string, len(fields))
	for i, v := range res {
		if s, ok := v.(string); ok {
			h[fields[i]] = s
		}
	}
	if len(h) == 0 {
		return nil, ErrNotFound
	}
	return e.parseState(sagaID, h), nil
}

// hmget reads fields of a saga hash, through the batcher: the reads of the
// hops a worker runs at once share their round trips.
func (e *Engine) hmget(ctx context.Context, key string, fields ...string) ([]any, error) {
	args := make([]any, 0, 2+len(fields))
	args = append(args, "hmget", key)
	for _, f := range fields {
		args = append(args, f)
	}
	cmd := redis.NewSliceCmd(ctx, args...)
	_ = e.batch.Do(ctx, cmd)
	res, err := cmd.Result()
	if err != nil {
		return nil, fmt.Errorf("read saga: %w", err)
	}
	return res, nil
}

// Status reads only a saga's status.
func (e *Engine) Status(ctx context.Context, sagaID string) (string, error) {
	s, err := e.rdb.HGet(ctx, e.keys.Saga(e.keys.PartitionOf(sagaID), sagaID), "status").Result()
	if err == redis.Nil {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read saga status: %w", err)
	}
	return s, nil
}

// List returns up to limit sagas in the given statuses, most recently
// updated first.
func (e *Engine) List(ctx context.Context, statuses []string, limit int) ([]*State, error) {
	type cand struct {
		id    string
		score float64
	}
	var cands []cand
	pipe := e.rdb.Pipeline()
	var ranges []*redis.ZSliceCmd
	for p := range e.keys.Partitions {
		for _, status := range statuses {
			ranges = append(ranges, pipe.ZRevRangeWithScores(ctx, e.keys.Index(p, status), 0, int64(limit)-1))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("list sagas: %w", err)
	}
	for _, r := range ranges {
		for _, z := range r.Val() {
			id, _ := z.Member.(string)
			cands = append(cands, cand{id, z.Score})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Compare(b.score, a.score) })
	if len(cands) > limit {
		cands = cands[:limit]
	}
	pipe = e.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(cands))
	for i, c := range cands {
		cmds[i] = pipe.HGetAll(ctx, e.keys.Saga(e.keys.PartitionOf(c.id), c.id))
	}
	if _, err := pipe.Exec(ctx); err != nil && err != redis.Nil {
		return nil, fmt.Errorf("list sagas: %w", err)
	}
	out := make([]*State, 0, len(cands))
	for i, c := range cmds {
		if h := c.Val(); len(h) > 0 {
			out = append(out, e.parseState(cands[i].id, h))
		}
	}
	return out, nil
}

// parseState reads a saga hash. Step names come from the saga's
// definition; a saga of a type this engine does not know shows the steps
// its hash names.
func (e *Engine) parseState(sagaID string, h map[string]string) *State {
	st := &State{
		SagaID: sagaID, Type: h["type"], Mode: h["mode"], Status: h["status"], Reason: h["reason"],
		Context: json.RawMessage(h["context"]), History: []HistoryEntry{}, Record: h["record"], Sweeps: h["sweeps"],
		raw: h,
	}
	if len(st.Context) == 0 {
		st.Context = json.RawMessage("{}")
	}
	st.CurrentStep, _ = strconv.Atoi(h["current_step"])
	st.Version, _ = strconv.ParseInt(h["version"], 10, 64)
	st.CreatedAt = ParseMillis(h["created_at"])
	st.UpdatedAt = ParseMillis(h["updated_at"])
	if d := h["deadline_at"]; d != "" {
		t := ParseMillis(d)
		st.DeadlineAt = &t
	}
	if d, ok := h["saga_deadline_at"]; ok {
		t := ParseMillis(d)
		st.SagaDeadlineAt = &t
	}
	d := e.defs[st.Type]
	for i := 0; ; i++ {
		var name string
		if d != nil {
			if i >= len(d.Steps) {
				break
			}
			name = d.Steps[i].Name
		} else if name = h[stepField(i, "name")]; name == "" {
			break
		}
		s := StepState{Name: name, Status: cmp.Or(h[stepField(i, "status")], StepPending)}
		if r := h[stepField(i, "result")]; r != "" {
			s.Result = json.RawMessage(r)
		}
		s.Attempts, _ = strconv.Atoi(h[stepField(i, "attempts")])
		st.Steps = append(st.Steps, s)
	}
	for k, v := range h {
		n, ok := strings.CutPrefix(k, "h.")
		if !ok {
			continue
		}
		version, err := strconv.ParseInt(n, 10, 64)
		if err != nil {
			continue
		}
		parts := strings.SplitN(v, "|", 3)
		if len(parts) != 3 {
			continue
		}
		st.History = append(st.History, HistoryEntry{Version: version, At: ParseMillis(parts[0]), Type: parts[1], ID: parts[2]})
	}
	slices.SortFunc(st.History, func(a, b HistoryEntry) int { return cmp.Compare(a.Version, b.Version) })
	return st
}

// ParseMillis reads a time written as unix milliseconds (Redis time, as
// the scripts write it); zero when it is not one.
func ParseMillis(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
