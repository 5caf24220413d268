package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// SweepDue acts on every saga of partition p whose deadline, judged by Redis
// server time, has passed. A saga in progress starts compensating the steps
// that may have taken effect (the one in flight first); a compensation that
// missed its deadline is sent again, up to CompensationAttempts times, then
// the saga is FAILED with an alert. Each action is one transition fenced on
// the version the sweeper read, so any number of sweepers act once per
// deadline: the others get STALE. Workers' clocks play no part.
func (e *Engine) SweepDue(ctx context.Context, p int) (int, error) {
	ids, now, err := e.due(ctx, e.keys.Deadlines(p))
	if err != nil {
		return 0, err
	}
	if err := e.pruneIndexes(ctx, p, now); err != nil {
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
	d := e.defs[st.Type]
	if st.Status == StatusFailed {
		return false, nil // its transition removed the deadline; a retry may be adding one
	}
	if d == nil || terminal(st.Status) {
		// Finished for good: a leftover member would be read on every sweep.
		return false, e.rdb.ZRem(ctx, e.keys.Deadlines(p), id).Err()
	}
	c := newPatch(st.Type, st.SagaID, st.Mode, p, st.Status).of(st)
	why := "step " + stepName(d, st) + " timed out"
	if st.SagaDeadlineAt != nil && st.DeadlineAt != nil && !st.DeadlineAt.Before(*st.SagaDeadlineAt) {
		why = "saga timed out (SAGA_TIMEOUT) in step " + stepName(d, st)
	}
	switch {
	case st.Status == StatusInProgress:
		if err := e.giveUp(c, d, st, why, "deadline", "deadline", true); err != nil {
			return false, err
		}
	case st.Mode == ModeOrchestration:
		// A compensation command is in flight past its deadline: count it as
		// a failed attempt and send it again (it is idempotent).
		j := st.compensating
		if j < 0 || j >= len(st.Steps) {
			c.compensationFailed(d, st, -1, 1, why, "deadline", why)
			break
		}
		if tries := st.Steps[j].tries() + 1; tries >= e.opts.CompensationAttempts {
			c.compensationFailed(d, st, j, 1, why, "deadline", fmt.Sprintf("%s %d times while compensating", why, tries))
			break
		}
		c.compensationTried(j, st.Steps[j], why)
		if err := c.command(e, d.Steps[j].Compensate, st.Context, j, Compensate, "deadline"); err != nil {
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
		j := d.compensatedBy(last)
		if !d.isCompensation(last) || sweeps+1 >= e.opts.CompensationAttempts {
			if j < 0 {
				j = st.compensating
			}
			c.compensationFailed(d, st, j, 1, why, "deadline", fmt.Sprintf("%s %d times while compensating", why, sweeps+1))
			break
		}
		if j >= 0 && j < len(st.Steps) && st.Steps[j].forward() != StepCompensated {
			c.compensationTried(j, st.Steps[j], why)
		}
		c.set("sweeps", strconv.Itoa(sweeps+1)).publish(e, last, st.Context, "deadline")
	}
	args := append([]any{st.Version}, c.args(e)...)
	res, err := e.result(e.batch.Eval(ctx, sweepScript, c.keys(e), append(args, c.fields...)...).Slice())
	if err != nil || res.code != applied {
		return false, err
	}
	e.applied(c)
	switch {
	case c.status == StatusFailed:
		e.stats.sweptFailed.Add(1)
	case st.Status == StatusInProgress:
		e.stats.sweptCompensated.Add(1)
	default:
		e.stats.sweptResent.Add(1)
	}
	e.opts.Logger.InfoContext(ctx, "deadline passed", "saga_id", st.SagaID, "status", st.Status,
		"step", stepName(d, st), "now", c.status)
	return true, nil
}

// giveUp fills c for a saga in progress that cannot wait for its awaited
// message any more (its callers handle a compensating saga's own way): it
// starts compensating, and the step in flight has an unknown outcome:
//   - its message was dead-lettered (timeout false): its service is alive,
//     so the step's own compensation runs first (a no-op when it never took
//     effect, and a barrier against it taking effect later);
//   - its deadline passed (timeout true): its service may be down, so the
//     steps before it are compensated at once, and the service compensates
//     its own effect if it ever lands (a late effect is undone).
//
// what names the cause in the history and the alert; causation is the id
// the published message answers (the dead entry's event, or "deadline").
func (e *Engine) giveUp(c *patch, d *definition, st *State, why, what, causation string, timeout bool) error {
	e.stats.aborted.Add(1)
	st.Reason = why // the first: a saga in progress has none
	if st.Mode == ModeOrchestration {
		k := st.CurrentStep
		if k < 0 || k >= len(d.Steps) {
			c.failed("?", what, why)
			return nil
		}
		c.step(k, StepFailed).reason(why).current(k)
		if timeout || !d.Steps[k].CanCompensate {
			// Nothing undoes the step in flight now: compensate those before it.
			return e.compensateFrom(c, d, st, k-1, causation)
		}
		c.to(StatusCompensating).compensating(k)
		return c.command(e, d.Steps[k].Compensate, st.Context, k, Compensate, causation)
	}
	k := inFlight(st)
	completed := st.Steps[k].forward() == StepCompleted
	if !completed {
		c.step(k, StepFailed)
	}
	c.reason(why).current(k)
	ev := d.abort(k, timeout, completed)
	if ev == "" {
		c.to(StatusCompensated).ends(RecordCancelled, why).publish(e, d.Compensated, st.Context, causation)
		return nil
	}
	c.to(StatusCompensating).compensating(max(d.compensatedBy(ev), 0)).publish(e, ev, st.Context, causation)
	return nil
}

// inFlight is the step a choreographed saga waits on: the first one not
// completed, or the last one when all are (its end is pending).
func inFlight(st *State) int {
	for i, s := range st.Steps {
		if s.forward() != StepCompleted {
			return i
		}
	}
	return len(st.Steps) - 1
}

// terminal reports whether a saga in this status is finished for good
// (FAILED is not: an operator can drive it again).
func terminal(status string) bool {
	return status == StatusCompleted || status == StatusCompensated
}

// due lists up to 100 members of a sorted set scored at or before Redis's
// current time (unix ms), which it returns too.
func (e *Engine) due(ctx context.Context, key string) ([]string, time.Time, error) {
	now, err := e.rdb.Time(ctx).Result()
	if err != nil {
		return nil, now, fmt.Errorf("redis time: %w", err)
	}
	ids, err := e.rdb.ZRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.UnixMilli(), 10), Count: 100,
	}).Result()
	if err != nil {
		return nil, now, fmt.Errorf("due members of %s: %w", key, err)
	}
	return ids, now, nil
}

// pruneIndexes drops from the indexes of finished sagas the entries older
// than Retention, whose hashes have expired: the indexes stay bounded, and
// the transition that finishes a saga does not pay for it.
func (e *Engine) pruneIndexes(ctx context.Context, p int, now time.Time) error {
	upTo := strconv.FormatInt(now.Add(-e.opts.Retention).UnixMilli(), 10)
	pipe := e.rdb.Pipeline()
	for _, status := range []string{StatusCompleted, StatusCompensated} {
		pipe.ZRemRangeByScore(ctx, e.keys.Index(p, status), "-inf", upTo)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("prune the indexes of finished sagas: %w", err)
	}
	return nil
}

// stepName names the step a saga waits on: the step in flight, or on the
// way back the step being compensated.
func stepName(d *definition, st *State) string {
	i := st.CurrentStep
	switch {
	case st.Status != StatusInProgress:
		i = st.compensating
	case st.Mode == ModeChoreography:
		i = inFlight(st)
	}
	if i < 0 || i >= len(d.Steps) {
		return "?"
	}
	return d.Steps[i].Name
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
