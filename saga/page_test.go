package saga_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
)

type indexed struct {
	id, status, mode string
	score            float64
}

// seedIndexes writes n saga hashes and their status index entries straight
// into Redis, over every partition, with many equal scores (sagas updated
// in the same millisecond) so that a page boundary falls inside a tie.
func seedIndexes(t *testing.T, rdb *redis.Client, ks saga.Keys, n int) []indexed {
	t.Helper()
	ctx := context.Background()
	statuses := []string{saga.StatusCompleted, saga.StatusFailed, saga.StatusCompensated}
	var all []indexed
	for i := range n {
		s := indexed{id: uuid.NewString(), status: statuses[i%3], mode: saga.ModeChoreography, score: float64(1_700_000_000_000 + i/4)}
		if i%5 == 0 {
			s.mode = saga.ModeOrchestration
		}
		p := ks.PartitionOf(s.id)
		if err := rdb.HSet(ctx, ks.Saga(p, s.id), "type", "TRAVEL_SAGA", "mode", s.mode, "status", s.status,
			"updated_at", strconv.FormatFloat(s.score, 'f', -1, 64)).Err(); err != nil {
			t.Fatal(err)
		}
		rdb.ZAdd(ctx, ks.Index(p, s.status), redis.Z{Score: s.score, Member: s.id})
		all = append(all, s)
	}
	slices.SortFunc(all, func(a, b indexed) int { return cmp.Or(cmp.Compare(b.score, a.score), strings.Compare(b.id, a.id)) })
	return all
}

// walk pages through a query and returns the ids in the order listed.
func walk(t *testing.T, e *saga.Engine, q saga.PageQuery) (ids []string, pages int) {
	t.Helper()
	for {
		p, err := e.Page(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(p.Sagas) > q.Limit {
			t.Fatalf("page of %d, limit %d", len(p.Sagas), q.Limit)
		}
		for _, s := range p.Sagas {
			ids = append(ids, s.SagaID)
		}
		if p.Next == "" {
			return ids, pages
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		q.After = p.Next
	}
}

// Paging by cursor lists every saga once, newest first, across partitions,
// statuses and ties; filters keep only what they name.
func TestPageWalksEveryIndexOnce(t *testing.T) {
	rdb := srv.Client()
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix(), Partitions: 3}, travelSaga(&agency{calls: map[string]int{}}))
	if err != nil {
		t.Fatal(err)
	}
	all := seedIndexes(t, rdb, e.Keys(), 61)
	ids := func(keep func(indexed) bool) []string {
		var out []string
		for _, s := range all {
			if keep(s) {
				out = append(out, s.id)
			}
		}
		return out
	}

	got, pages := walk(t, e, saga.PageQuery{Limit: 7})
	if want := ids(func(indexed) bool { return true }); !slices.Equal(got, want) {
		t.Fatalf("all statuses, pages of 7:\n got %v\nwant %v", got, want)
	}
	if pages != 9 { // 61 = 8*7 + 5
		t.Errorf("%d pages, want 9", pages)
	}
	got, _ = walk(t, e, saga.PageQuery{Limit: 4, Statuses: []string{saga.StatusFailed}})
	if want := ids(func(s indexed) bool { return s.status == saga.StatusFailed }); !slices.Equal(got, want) {
		t.Fatalf("FAILED, pages of 4:\n got %v\nwant %v", got, want)
	}
	got, _ = walk(t, e, saga.PageQuery{Limit: 3, Mode: saga.ModeOrchestration})
	if want := ids(func(s indexed) bool { return s.mode == saga.ModeOrchestration }); !slices.Equal(got, want) || len(want) == 0 {
		t.Fatalf("orchestrated, pages of 3:\n got %v\nwant %v", got, want)
	}
	got, _ = walk(t, e, saga.PageQuery{Limit: 50, Type: "TRAVEL_SAGA", Statuses: []string{saga.StatusCompleted, saga.StatusCompensated}})
	if want := ids(func(s indexed) bool { return s.status != saga.StatusFailed }); !slices.Equal(got, want) {
		t.Fatalf("two statuses of one type:\n got %v\nwant %v", got, want)
	}
	// An exact page: no Next pointing at an empty page.
	p, err := e.Page(context.Background(), saga.PageQuery{Limit: 61})
	if err != nil || len(p.Sagas) != 61 || p.Next != "" {
		t.Errorf("one page of everything: %d sagas, next %q, %v", len(p.Sagas), p.Next, err)
	}

	counts, err := e.Counts(context.Background())
	if err != nil || counts[saga.StatusFailed] != 20 || counts[saga.StatusCompleted] != 21 || counts[saga.StatusInProgress] != 0 {
		t.Errorf("counts %v %v", counts, err)
	}
	if types := e.Types(); !slices.Equal(types, []string{"TRAVEL_SAGA"}) {
		t.Errorf("types %v", types)
	}
}

// A query naming what does not exist is refused, not answered empty.
func TestPageRefusesBadQueries(t *testing.T) {
	e, err := saga.New(srv.Client(), saga.Options{Prefix: redistest.Prefix()}, travelSaga(&agency{calls: map[string]int{}}))
	if err != nil {
		t.Fatal(err)
	}
	for name, q := range map[string]saga.PageQuery{
		"limit 0":        {},
		"limit too big":  {Limit: saga.MaxPageSize + 1},
		"unknown status": {Limit: 5, Statuses: []string{"DONE"}},
		"unknown type":   {Limit: 5, Type: "ORDER"},
		"unknown style":  {Limit: 5, Mode: "both"},
		"cursor garbage": {Limit: 5, After: "yesterday"},
		"cursor no id":   {Limit: 5, After: "17_"},
		"cursor NaN":     {Limit: 5, After: "NaN_" + uuid.NewString()},
		"cursor upper":   {Limit: 5, After: "17_" + strings.ToUpper(uuid.NewString())},
	} {
		if _, err := e.Page(context.Background(), q); !errors.Is(err, saga.ErrBadQuery) {
			t.Errorf("%s: %v, want ErrBadQuery", name, err)
		}
	}
}
