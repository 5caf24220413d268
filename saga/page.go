package saga

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ErrBadQuery: a page query names an unknown status, type or style, a size
// out of range, or a cursor this engine did not issue.
var ErrBadQuery = errors.New("bad page query")

// MaxPageSize is the largest page Page returns.
const MaxPageSize = 200

// pageScanBudget bounds the index entries one call reads when the type or
// style filter keeps few of them: the page then comes back short, with a
// cursor to continue, instead of walking a whole index in one request.
const pageScanBudget = 2000

// PageQuery selects a page of sagas, most recently updated first.
type PageQuery struct {
	// Statuses to list; empty lists them all.
	Statuses []string
	// Type and Mode, when set, keep only the sagas of that type and style.
	Type, Mode string
	// Limit is the page size, 1..MaxPageSize.
	Limit int
	// After is the Next of the previous page; empty for the first page.
	After string
}

// Page is one page of sagas.
type Page struct {
	Sagas []*State
	// Next continues after this page; empty when nothing is left. A page
	// may be short (filters kept few of the entries read) and still have a
	// Next.
	Next string
}

// cursor is a position in the merged status indexes: they are walked by
// score (update time) descending, then member descending, the order
// ZREVRANGEBYSCORE gives members of equal score.
type cursor struct {
	set   bool
	score float64
	id    string
}

func (c cursor) String() string {
	if !c.set {
		return ""
	}
	return strconv.FormatFloat(c.score, 'f', -1, 64) + "_" + c.id
}

// before reports whether (score, id) comes after the cursor in the walk.
func (c cursor) before(score float64, id string) bool {
	return !c.set || score < c.score || (score == c.score && id < c.id)
}

func parseCursor(s string) (cursor, error) {
	if s == "" {
		return cursor{}, nil
	}
	score, id, ok := strings.Cut(s, "_")
	f, err := strconv.ParseFloat(score, 64)
	if !ok || err != nil || math.IsNaN(f) || math.IsInf(f, 0) || !ValidID(id) {
		return cursor{}, fmt.Errorf("%w: cursor %q is not one this listing issued", ErrBadQuery, s)
	}
	return cursor{set: true, score: f, id: id}, nil
}

func (q *PageQuery) check(types []string) error {
	if q.Limit < 1 || q.Limit > MaxPageSize {
		return fmt.Errorf("%w: limit must be 1-%d", ErrBadQuery, MaxPageSize)
	}
	for _, s := range q.Statuses {
		if !slices.Contains(Statuses, s) {
			return fmt.Errorf("%w: unknown status %q", ErrBadQuery, s)
		}
	}
	if q.Type != "" && !slices.Contains(types, q.Type) {
		return fmt.Errorf("%w: unknown saga type %q", ErrBadQuery, q.Type)
	}
	if q.Mode != "" && q.Mode != ModeChoreography && q.Mode != ModeOrchestration {
		return fmt.Errorf("%w: unknown style %q", ErrBadQuery, q.Mode)
	}
	return nil
}

// Types lists the saga types this engine runs, sorted.
func (e *Engine) Types() []string { return slices.Sorted(maps.Keys(e.defs)) }

// Counts returns how many sagas each status index holds, over every
// partition.
func (e *Engine) Counts(ctx context.Context) (map[string]int64, error) {
	pipe := e.rdb.Pipeline()
	cmds := map[string][]*redis.IntCmd{}
	for p := range e.keys.Partitions {
		for _, s := range Statuses {
			cmds[s] = append(cmds[s], pipe.ZCard(ctx, e.keys.Index(p, s)))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("count sagas: %w", err)
	}
	out := make(map[string]int64, len(Statuses))
	for s, cs := range cmds {
		for _, c := range cs {
			out[s] += c.Val()
		}
	}
	return out, nil
}

// Page returns a page of sagas in the given statuses, most recently updated
// first, continuing after q.After. Sagas that change status between two
// pages may be seen twice or not at all: a page is a snapshot of the
// indexes, not of the whole listing.
func (e *Engine) Page(ctx context.Context, q PageQuery) (Page, error) {
	if err := q.check(e.Types()); err != nil {
		return Page{}, err
	}
	cur, err := parseCursor(q.After)
	if err != nil {
		return Page{}, err
	}
	statuses := q.Statuses
	if len(statuses) == 0 {
		statuses = Statuses
	}
	filtered := q.Type != "" || q.Mode != ""
	out := []*State{}
	seen := map[string]bool{}
	for scanned := 0; ; {
		// One more than the page needs tells whether anything is left.
		want := q.Limit - len(out) + 1
		if filtered {
			want = max(want, 64)
		}
		cands, err := e.after(ctx, statuses, cur, want)
		if err != nil {
			return Page{}, err
		}
		states, err := e.readAll(ctx, cands)
		if err != nil {
			return Page{}, err
		}
		for i, c := range cands {
			if len(out) == q.Limit {
				return Page{Sagas: out, Next: cur.String()}, nil
			}
			cur = cursor{set: true, score: c.score, id: c.id}
			scanned++
			st := states[i]
			if st == nil || seen[c.id] || (q.Type != "" && st.Type != q.Type) || (q.Mode != "" && st.Mode != q.Mode) {
				continue
			}
			seen[c.id] = true
			out = append(out, st)
		}
		if len(cands) < want {
			return Page{Sagas: out}, nil
		}
		if scanned >= pageScanBudget {
			return Page{Sagas: out, Next: cur.String()}, nil
		}
	}
}

type candidate struct {
	id    string
	score float64
}

// after returns the first n index entries after the cursor, merged over
// every partition and status: each index's first n after it, sorted, cut.
func (e *Engine) after(ctx context.Context, statuses []string, cur cursor, n int) ([]candidate, error) {
	pipe := e.rdb.Pipeline()
	var ranges []*redis.ZSliceCmd
	for p := range e.keys.Partitions {
		for _, s := range statuses {
			key := e.keys.Index(p, s)
			if !cur.set {
				ranges = append(ranges, pipe.ZRevRangeWithScores(ctx, key, 0, int64(n)-1))
				continue
			}
			score := strconv.FormatFloat(cur.score, 'f', -1, 64)
			// Entries of the cursor's own score (a few updated in the same
			// millisecond), then those below it.
			ranges = append(ranges,
				pipe.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: score, Min: score}),
				pipe.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: "(" + score, Min: "-inf", Count: int64(n)}))
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("page sagas: %w", err)
	}
	var out []candidate
	for _, r := range ranges {
		for _, z := range r.Val() {
			id, _ := z.Member.(string)
			if cur.before(z.Score, id) {
				out = append(out, candidate{id, z.Score})
			}
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		return cmp.Or(cmp.Compare(b.score, a.score), strings.Compare(b.id, a.id))
	})
	return out[:min(n, len(out))], nil
}

// readAll reads the candidates' hashes; a saga whose hash is gone (expired
// after the index was read) is nil.
func (e *Engine) readAll(ctx context.Context, cands []candidate) ([]*State, error) {
	if len(cands) == 0 {
		return nil, nil
	}
	pipe := e.rdb.Pipeline()
	cmds := make([]*redis.MapStringStringCmd, len(cands))
	for i, c := range cands {
		cmds[i] = pipe.HGetAll(ctx, e.keys.Saga(e.keys.PartitionOf(c.id), c.id))
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("page sagas: %w", err)
	}
	out := make([]*State, len(cands))
	for i, c := range cmds {
		if h := c.Val(); len(h) > 0 {
			out[i] = e.parseState(cands[i].id, h)
		}
	}
	return out, nil
}
