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
// plus its mode, reasons, deadline, version and history.
type State struct {
	SagaID string `json:"sagaId"`
	Type   string `json:"type"`
	Mode   string `json:"mode"`
	// CurrentStep is the step in flight while the saga runs, and the step
	// it failed or stopped at (whose failure, dead letter or timeout started
	// compensation) once it compensates, whatever it ended as.
	CurrentStep int    `json:"currentStep"`
	Status      string `json:"status"`
	// Reason is the latest failure's; FirstReason the first one's (the
	// cause of the compensation), kept when a later failure (a compensation
	// that failed for good) or an operator's retry follows. They are equal
	// until then.
	Reason      string          `json:"reason,omitempty"`
	FirstReason string          `json:"firstReason,omitempty"`
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
	// compensating is the step whose compensation is in flight (or failed
	// for good): the engine's cursor on the way back.
	compensating int
	// firstKept: the hash holds first_reason (a second reason came).
	firstKept bool
	raw       map[string]string
}

// Statuses of a step's compensation.
const (
	// CompensationPending: tried and failed, tried again (after a back-off,
	// a missed deadline, a redelivery or an operator's retry).
	CompensationPending = "PENDING"
	// CompensationCompleted: it ran. On a COMPENSATED step it undid the
	// step's effect; on a FAILED step it ran because the action's outcome
	// was unknown, and its writes applied only if the action had taken
	// effect (they never do for a FAILED step).
	CompensationCompleted = "COMPLETED"
	// CompensationFailed: failed for good; the saga is FAILED.
	CompensationFailed = "FAILED"
)

// StepState is one step of a saga.
type StepState struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	// Result is the forward action's result; a compensation never
	// overwrites it.
	Result json.RawMessage `json:"result,omitempty"`
	// Compensation is there once the step's compensation was attempted.
	Compensation *Compensation `json:"compensation,omitempty"`
	// stored is step.<i>.status of the hash: the forward outcome, or
	// COMPENSATED (what the scripts check before a compensation's writes).
	stored string
	// redriven is Compensation.Attempts when an operator last re-drove
	// the compensation: the tries since then count against its limit.
	redriven int
}

// Compensation is what became of a step's compensation.
type Compensation struct {
	// Status is PENDING, COMPLETED or FAILED (see the constants).
	Status string `json:"status"`
	// Result is the compensation's result (a refund's), when it has one.
	Result json.RawMessage `json:"result,omitempty"`
	// Attempts counts its tries that failed (refused, dead-lettered or past
	// their deadline), over every re-drive.
	Attempts int `json:"attempts"`
	// Error is the last failed try's error.
	Error string `json:"error,omitempty"`
}

// Attempts is the failed tries of the step's compensation (0 when none).
func (s StepState) Attempts() int {
	if s.Compensation == nil {
		return 0
	}
	return s.Compensation.Attempts
}

// forward is the step's status as the engine decides on it: the hash's
// step.<i>.status (Status for a State not read from Redis).
func (s StepState) forward() string { return cmp.Or(s.stored, s.Status) }

// tries is the failed tries of the compensation since it was last re-driven
// by an operator: what counts against CompensationAttempts.
func (s StepState) tries() int { return s.Attempts() - s.redriven }

// StepName is the name of step i, or "" when the saga has no step i (a
// CurrentStep of -1 before the first).
func (st *State) StepName(i int) string {
	if i < 0 || i >= len(st.Steps) {
		return ""
	}
	return st.Steps[i].Name
}

// firstReason is the saga's first failure reason.
func (st *State) firstReason() string { return cmp.Or(st.FirstReason, st.Reason) }

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
		FirstReason: cmp.Or(h["first_reason"], h["reason"]), Context: json.RawMessage(h["context"]),
		History: []HistoryEntry{}, Record: h["record"], Sweeps: h["sweeps"], raw: h,
	}
	_, st.firstKept = h["first_reason"]
	if len(st.Context) == 0 {
		st.Context = json.RawMessage("{}")
	}
	st.CurrentStep, _ = strconv.Atoi(h["current_step"])
	// Hashes written before compensating_step existed kept the cursor in
	// current_step.
	st.compensating, _ = strconv.Atoi(cmp.Or(h["compensating_step"], h["current_step"]))
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
		st.Steps = append(st.Steps, parseStep(name, i, h))
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

// parseStep reads step i of a saga hash: step.<i>.status, .result, and on
// the way back .compensation, .compensation_result, .attempts, .error and
// .redriven (none of which a saga that completes writes).
func parseStep(name string, i int, h map[string]string) StepState {
	s := StepState{Name: name, stored: cmp.Or(h[stepField(i, "status")], StepPending)}
	s.Status = s.stored
	if r := h[stepField(i, "result")]; r != "" {
		s.Result = json.RawMessage(r)
	}
	attempts, _ := strconv.Atoi(h[stepField(i, "attempts")])
	status := h[stepField(i, "compensation")]
	if status == "" && s.stored == StepCompensated {
		status = CompensationCompleted // written before the field existed
	}
	if status == "" && attempts == 0 {
		return s
	}
	c := &Compensation{Status: cmp.Or(status, CompensationPending), Attempts: attempts, Error: h[stepField(i, "error")]}
	if r := h[stepField(i, "compensation_result")]; r != "" {
		c.Result = json.RawMessage(r)
	}
	s.Compensation = c
	s.redriven, _ = strconv.Atoi(h[stepField(i, "redriven")])
	if c.Status == CompensationFailed {
		s.Status = StepCompensationFailed
	}
	return s
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
