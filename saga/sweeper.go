package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
)

// SweepStats count what sweepers did, for logs and metrics.
type SweepStats struct {
	Compensated atomic.Int64 // sagas in progress sent to compensation
	Resent      atomic.Int64 // compensations sent again after their deadline
	Failed      atomic.Int64 // sagas that became FAILED after too many deadlines
	Undone      atomic.Int64 // late effects of abandoned steps compensated
}

// SweepDue acts on every saga of partition p whose deadline, judged by Redis
// server time, has passed. A saga in progress starts compensating the steps
// that may have taken effect (the one in flight first); a compensation that
// missed its deadline is sent again, up to COMPENSATION_ATTEMPTS times, then
// the saga is FAILED with an alert. Each action is one transition fenced on
// the version the sweeper read, so any number of sweepers act once per
// deadline: the others get STALE. Workers' clocks play no part.
func (e *Engine) SweepDue(ctx context.Context, p int) (int, error) {
	ids, err := e.due(ctx, e.ks.Deadlines(p))
	if err != nil {
		return 0, err
	}
	acted := 0
	for _, id := range ids {
		ok, err := e.sweep(ctx, p, id)
		if err != nil {
			e.opts.Logger.WarnContext(ctx, "sweep a due saga", "saga_id", id, "err", err)
			continue
		}
		if ok {
			acted++
		}
	}
	return acted, nil
}

func (e *Engine) sweep(ctx context.Context, p int, id string) (bool, error) {
	st, err := e.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return false, e.missing(ctx, p, id, nil, "deadline", "", nil)
	}
	if err != nil {
		return false, err
	}
	def := e.defs[st.Type]
	if st.Status == event.StatusFailed {
		return false, nil // its transition removed the deadline; a retry may be adding one
	}
	if def == nil || terminal(st.Status) {
		// Finished for good: a leftover member would be read on every sweep.
		return false, e.rdb.ZRem(ctx, e.ks.Deadlines(p), id).Err()
	}
	c := e.sagaCommit(p, st.SagaID, st.Mode, st.Version)
	c.sagaType = st.Type
	c.causation = "deadline"
	c.retry = "sweep"
	why := "step " + stepName(def, st) + " timed out"
	if st.SagaDeadlineAt != nil && st.DeadlineAt != nil && !st.DeadlineAt.Before(*st.SagaDeadlineAt) {
		why = "saga timed out (SAGA_TIMEOUT) in step " + stepName(def, st)
	}
	switch {
	case st.Status == event.StatusInProgress:
		if err := e.giveUp(c, def, st, why, "deadline", true); err != nil {
			return false, err
		}
	case st.Mode == event.ModeOrchestration:
		// A compensation command is in flight past its deadline: count it as
		// a failed attempt and send it again (it is idempotent).
		j := st.CurrentStep
		attempts := st.Steps[j].Attempts + 1
		if attempts >= e.opts.CompensationAttempts {
			return e.failSweep(ctx, c, st, def.Steps[j].Name, why)
		}
		c.saga = []any{stepField(j, "attempts"), strconv.Itoa(attempts), "last_error", why}
		if err := c.command(def.Steps[j].Compensate, st.Context, j, event.PhaseCompensate); err != nil {
			return false, err
		}
	default:
		// Choreography: the compensation chain stalled on its last event:
		// publish that event again (its consumers are idempotent; the stuck
		// copy becomes stale).
		sweeps, _ := strconv.Atoi(st.Sweeps)
		last := ""
		if n := len(st.History); n > 0 {
			last = st.History[n-1].Type
		}
		if _, ok := def.Events[last]; !ok || sweeps+1 >= e.opts.CompensationAttempts {
			return e.failSweep(ctx, c, st, stepName(def, st), why)
		}
		data, err := withReason(st.Context, st.Reason)
		if err != nil {
			return false, err
		}
		c.saga = []any{"sweeps", strconv.Itoa(sweeps + 1)}
		c.emit(last, data)
	}
	res, err := c.run(ctx, e)
	if err != nil || res.Code != Applied {
		return false, err
	}
	if st.Status == event.StatusInProgress {
		e.Sweeps.Compensated.Add(1)
	} else {
		e.Sweeps.Resent.Add(1)
	}
	e.opts.Logger.InfoContext(ctx, "deadline passed", "saga_id", st.SagaID, "status", st.Status,
		"step", stepName(def, st), "now", c.status)
	return true, nil
}

func (e *Engine) failSweep(ctx context.Context, c *commit, st *State, step, why string) (bool, error) {
	why = fmt.Sprintf("%s %d times while compensating", why, e.opts.CompensationAttempts)
	c.status = event.StatusFailed
	c.saga = []any{"status", c.status, "reason", why}
	c.history = "saga.failed|deadline"
	c.alert = []any{"saga_id", st.SagaID, "type", "saga.failed", "step", step, "error", why}
	c.retry = "sweep"
	res, err := c.run(ctx, e)
	if err != nil || res.Code != Applied {
		return false, err
	}
	e.Stats.Failed.Add(1)
	e.Sweeps.Failed.Add(1)
	return true, nil
}

// due lists up to 100 members of a sorted set scored at or before Redis's
// current time (unix ms).
func (e *Engine) due(ctx context.Context, key string) ([]string, error) {
	now, err := e.rdb.Time(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("redis time: %w", err)
	}
	ids, err := e.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: 100,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("due members of %s: %w", key, err)
	}
	return ids, nil
}

func stepName(def *Definition, st *State) string {
	i := st.CurrentStep
	if st.Mode == event.ModeChoreography && st.Status == event.StatusInProgress {
		i = inFlight(st)
	}
	if i < 0 || i >= len(def.Steps) {
		return "?"
	}
	return def.Steps[i].Name
}

// Sweeper runs SweepDue over every partition. Every worker runs one: no
// leader is needed, each deadline is acted on once.
type Sweeper struct {
	Engine   *Engine
	Interval time.Duration
	Logger   *slog.Logger
}

// Run sweeps until ctx is done.
func (s *Sweeper) Run(ctx context.Context) error {
	everyPartition(ctx, s.Engine, s.Interval, time.Second, s.Logger, "sweep deadlines", s.Engine.SweepDue)
	return nil
}
