package ctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/deadletter"
	"github.com/streamsaga/streamsaga/internal/wiring"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// lsQuery is ls's flags, checked as they were parsed (but the type, which
// only the engine knows).
type lsQuery struct {
	status, typ, mode string
	limit             int
}

func (s *session) ls(ctx context.Context, q lsQuery) error {
	statuses := saga.Statuses
	if q.status != "" {
		statuses = []string{q.status}
	}
	var list []*saga.State
	var err error
	if q.typ == "" && q.mode == "" {
		list, err = s.engine.List(ctx, statuses, q.limit)
	} else {
		list, err = s.filtered(ctx, statuses, q)
	}
	if err != nil {
		return err
	}
	return s.print(list, func(w io.Writer) {
		fmt.Fprintln(w, "SAGA\tTYPE\tMODE\tSTATUS\tSTEP\tUPDATED\tREASON")
		for _, st := range list {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.SagaID, st.Type, st.Mode, st.Status, stepName(st), st.UpdatedAt.Format(time.RFC3339), st.Reason)
		}
	})
}

// filtered lists with a type or style filter, page by page (the engine's
// pages are smaller than --limit may be, and a filter may leave them short).
func (s *session) filtered(ctx context.Context, statuses []string, q lsQuery) ([]*saga.State, error) {
	if q.typ != "" && !slices.Contains(s.engine.Types(), q.typ) {
		return nil, usageError{msg: fmt.Sprintf("invalid argument %q for \"--type\" flag: must be one of %s", q.typ, strings.Join(s.engine.Types(), ", "))}
	}
	pq := saga.PageQuery{Statuses: statuses, Type: q.typ, Mode: q.mode}
	out := []*saga.State{}
	for len(out) < q.limit {
		pq.Limit = min(q.limit-len(out), saga.MaxPageSize)
		page, err := s.engine.Page(ctx, pq)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Sagas...)
		if page.Next == "" {
			break
		}
		pq.After = page.Next
	}
	return out, nil
}

// stepName is the saga's current step for a table.
func stepName(st *saga.State) string { return cmp.Or(st.StepName(st.CurrentStep), "-") }

func (s *session) show(ctx context.Context, id string) error {
	st, err := s.engine.Get(ctx, id)
	if err != nil {
		return fmt.Errorf("saga %s: %w", id, err)
	}
	return s.print(st, func(w io.Writer) { writeSaga(w, st) })
}

func (s *session) retry(ctx context.Context, id string) error {
	if err := s.engine.Retry(ctx, id); err != nil {
		return fmt.Errorf("retry saga %s: %w", id, err)
	}
	return s.print(map[string]string{"saga_id": id, "status": saga.StatusCompensating}, func(w io.Writer) {
		fmt.Fprintf(w, "saga %s re-driven: COMPENSATING\n", id)
	})
}

func (s *session) allStreams() []string {
	events, operator := wiring.Streams(s.engine)
	return append(events, operator...)
}

func (s *session) streams(ctx context.Context, all bool) error {
	out, err := streams.Inspect(ctx, s.rdb, s.allStreams())
	if err != nil {
		return err
	}
	if !all {
		// Most of the streams a deployment declares are empty at any time
		// (a path nobody took, trimmed entries): show those with entries or
		// work outstanding, as the console does.
		out = slices.DeleteFunc(out, func(x streams.StreamInfo) bool {
			if x.Length > 0 {
				return false
			}
			for _, g := range x.Groups {
				if g.Pending > 0 || g.Lag > 0 {
					return false
				}
			}
			return true
		})
	}
	return s.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "STREAM\tLENGTH\tGROUP\tPENDING\tLAG\tCONSUMERS")
		for _, x := range out {
			if len(x.Groups) == 0 {
				fmt.Fprintf(w, "%s\t%d\t-\t-\t-\t-\n", x.Stream, x.Length)
			}
			for _, g := range x.Groups {
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%d\n", x.Stream, x.Length, g.Name, g.Pending, g.Lag, g.Consumers)
			}
		}
	})
}

type pendingEntry struct {
	Stream     string  `json:"stream"`
	Group      string  `json:"group"`
	ID         string  `json:"id"`
	Consumer   string  `json:"consumer"`
	IdleSec    float64 `json:"idle_seconds"`
	Deliveries int64   `json:"deliveries"`
}

func (s *session) pending(ctx context.Context, idle time.Duration) error {
	out := []pendingEntry{}
	events, _ := wiring.Streams(s.engine)
	for _, key := range events {
		groups, err := s.rdb.XInfoGroups(ctx, key).Result()
		if err != nil {
			// A stream nothing has written to yet has no groups either;
			// anything else is a real failure, not an empty answer.
			if strings.Contains(err.Error(), "no such key") {
				continue
			}
			return fmt.Errorf("xinfo groups %s: %w", key, err)
		}
		for _, g := range groups {
			if g.Pending == 0 {
				continue
			}
			list, err := s.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: g.Name, Idle: idle, Start: "-", End: "+", Count: 1000}).Result()
			if err != nil {
				return fmt.Errorf("xpending %s %s: %w", key, g.Name, err)
			}
			for _, p := range list {
				out = append(out, pendingEntry{Stream: key, Group: g.Name, ID: p.ID, Consumer: p.Consumer, IdleSec: p.Idle.Seconds(), Deliveries: p.RetryCount})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IdleSec > out[j].IdleSec })
	return s.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "STREAM\tGROUP\tID\tCONSUMER\tIDLE\tDELIVERIES")
		for _, p := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1fs\t%d\n", p.Stream, p.Group, p.ID, p.Consumer, p.IdleSec, p.Deliveries)
		}
	})
}

func (s *session) dlqList(ctx context.Context, limit int) error {
	out, err := deadletter.List(ctx, s.rdb, s.ks, limit)
	if err != nil {
		return err
	}
	return s.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tPARTITION\tGROUP\tTYPE\tSAGA\tDELIVERIES\tERROR")
		for _, d := range out {
			f := d.Fields
			fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Partition, f["group"], f["type"], f["saga_id"], f["deliveries"], f["error"])
		}
	})
}

// findDeadLetter finds dead letter id in partition p (or any). An
// ambiguous id or a partition past SAGA_PARTITIONS is the command line's
// fault (exit 2).
func (s *session) findDeadLetter(ctx context.Context, id string, p int) (*deadletter.Letter, error) {
	d, err := deadletter.Find(ctx, s.rdb, s.ks, id, p)
	switch {
	case errors.Is(err, deadletter.ErrAmbiguous):
		return nil, usageError{msg: err.Error() + "; pass --partition to name one"}
	case errors.Is(err, deadletter.ErrBadPartition):
		return nil, usageError{msg: "invalid --partition: " + err.Error()}
	case err != nil:
		return nil, fmt.Errorf("dead letter %s: %w", id, err)
	}
	return d, nil
}

func (s *session) dlqShow(ctx context.Context, id string, p int) error {
	d, err := s.findDeadLetter(ctx, id, p)
	if err != nil {
		return err
	}
	return s.print(d, func(w io.Writer) {
		keys := make([]string, 0, len(d.Fields))
		for k := range d.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\n", k, d.Fields[k])
		}
	})
}

// dlqReplay publishes a dead letter's original entry on its stream again
// and removes it from the dead-letter stream, in one script.
func (s *session) dlqReplay(ctx context.Context, id string, p int) error {
	d, err := s.findDeadLetter(ctx, id, p)
	if err != nil {
		return err
	}
	r, err := deadletter.Replay(ctx, s.rdb, s.ks, d)
	if errors.Is(err, deadletter.ErrCannotReplay) {
		return err // it names the dead letter and why
	}
	if err != nil {
		return fmt.Errorf("replay dead letter %s: %w", id, err)
	}
	return s.print(r, func(w io.Writer) {
		fmt.Fprintf(w, "replayed %s on %s as %s\n", r.Replayed, r.Stream, r.ID)
	})
}
