package deadletter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/deadletter"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.RunMain(m, &srv, redistest.Options{})) }

// setup returns a client and the keys of a fresh two-partition prefix.
func setup(t *testing.T) (*redis.Client, saga.Keys) {
	t.Helper()
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	return rdb, saga.NewKeys("dl-"+strings.ReplaceAll(t.Name(), "/", "-"), 2)
}

// write adds a dead letter with an explicit id to partition p, its source
// the order.created stream of partition p; set adds or replaces fields.
func write(t *testing.T, rdb *redis.Client, ks saga.Keys, p int, id string, set ...string) {
	t.Helper()
	values := map[string]any{"group": "payment", "error": "boom", "deliveries": "5",
		"source_stream": ks.Stream(p, "order.created"), "source_id": "1-1", "type": "order.created", "marker": id}
	for i := 0; i+1 < len(set); i += 2 {
		values[set[i]] = set[i+1]
	}
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: ks.DeadLetter(p), ID: id, Values: values}).Err(); err != nil {
		t.Fatal(err)
	}
}

// List merges the partitions newest first (ids compared as numbers, not
// strings) and returns at most limit in all, each with its partition and
// the time its id carries.
func TestListMergesPartitions(t *testing.T) {
	rdb, ks := setup(t)
	ctx := context.Background()
	for _, d := range []struct {
		p  int
		id string
	}{{0, "999-0"}, {1, "5-0"}, {1, "1000-0"}, {0, "1000-1"}, {0, "1001-0"}, {1, "1001-0"}} {
		write(t, rdb, ks, d.p, d.id)
	}
	got, err := deadletter.List(ctx, rdb, ks, 4)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		ids = append(ids, fmt.Sprintf("%s@%d", d.ID, d.Partition))
	}
	if want := []string{"1001-0@0", "1001-0@1", "1000-1@0", "1000-0@1"}; !slices.Equal(ids, want) {
		t.Errorf("List(4) = %v, want %v", ids, want)
	}
	if !got[2].At.Equal(time.UnixMilli(1000)) || got[2].Fields["marker"] != "1000-1" {
		t.Errorf("letter %+v", got[2])
	}
	all, err := deadletter.List(ctx, rdb, ks, 100)
	if err != nil || len(all) != 6 || all[5].ID != "5-0" {
		t.Errorf("List(100) = %v %v, want all 6, oldest 5-0 last", all, err)
	}
}

// An id two partitions hold is ambiguous unless the partition is named; a
// partition past SAGA_PARTITIONS is refused; an id missing from the named
// partition is not found even when another partition has it.
func TestFindByPartition(t *testing.T) {
	rdb, ks := setup(t)
	ctx := context.Background()
	write(t, rdb, ks, 0, "7-0")
	write(t, rdb, ks, 1, "7-0")
	write(t, rdb, ks, 1, "8-0")

	_, err := deadletter.Find(ctx, rdb, ks, "7-0", deadletter.AnyPartition)
	if !errors.Is(err, deadletter.ErrAmbiguous) || !strings.Contains(err.Error(), "partitions 0, 1") {
		t.Errorf("Find(7-0, any) = %v, want ErrAmbiguous naming partitions 0, 1", err)
	}
	for p := range 2 {
		d, err := deadletter.Find(ctx, rdb, ks, "7-0", p)
		if err != nil || d.Partition != p || d.Fields["source_stream"] != ks.Stream(p, "order.created") {
			t.Errorf("Find(7-0, %d) = %+v %v", p, d, err)
		}
	}
	if d, err := deadletter.Find(ctx, rdb, ks, "8-0", deadletter.AnyPartition); err != nil || d.Partition != 1 {
		t.Errorf("Find(8-0, any) = %+v %v, want partition 1's", d, err)
	}
	if _, err := deadletter.Find(ctx, rdb, ks, "8-0", 0); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("Find(8-0, 0) = %v, want ErrNotFound", err)
	}
	for _, p := range []int{2, -2} {
		if _, err := deadletter.Find(ctx, rdb, ks, "7-0", p); !errors.Is(err, deadletter.ErrBadPartition) {
			t.Errorf("Find(7-0, %d) = %v, want ErrBadPartition", p, err)
		}
	}
	if _, err := deadletter.Find(ctx, rdb, ks, "7", 0); !errors.Is(err, deadletter.ErrBadID) {
		t.Errorf("Find(7) = %v, want ErrBadID", err)
	}
}

// Replay publishes the letter it is given, from its own partition, and
// leaves the twin on the other partition alone.
func TestReplayTheLetterFound(t *testing.T) {
	rdb, ks := setup(t)
	ctx := context.Background()
	write(t, rdb, ks, 0, "7-0")
	write(t, rdb, ks, 1, "7-0")
	d, err := deadletter.Find(ctx, rdb, ks, "7-0", 1)
	if err != nil {
		t.Fatal(err)
	}
	r, err := deadletter.Replay(ctx, rdb, ks, d)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream != ks.Stream(1, "order.created") || r.Replayed != "7-0" {
		t.Errorf("Replay = %+v, want on partition 1's stream", r)
	}
	entries, err := rdb.XRange(ctx, r.Stream, r.ID, r.ID).Result()
	if err != nil || len(entries) != 1 || entries[0].Values["type"] != "order.created" || entries[0].Values["group"] != nil {
		t.Errorf("replayed entry %v %v: want the original fields only", entries, err)
	}
	if n := rdb.XLen(ctx, ks.DeadLetter(1)).Val(); n != 0 {
		t.Errorf("partition 1 still holds %d dead letters", n)
	}
	if n := rdb.XLen(ctx, ks.DeadLetter(0)).Val(); n != 1 {
		t.Errorf("partition 0 holds %d dead letters, want its own, untouched", n)
	}
	if _, err := deadletter.Replay(ctx, rdb, ks, d); !errors.Is(err, deadletter.ErrNotFound) {
		t.Errorf("second Replay = %v, want ErrNotFound", err)
	}
}

// A letter whose copy was cut, or that names no stream of its partition,
// is refused with ErrCannotReplay and nothing changes.
func TestReplayRefuses(t *testing.T) {
	rdb, ks := setup(t)
	ctx := context.Background()
	write(t, rdb, ks, 0, "7-0", "truncated", "1 fields dropped or cut")
	write(t, rdb, ks, 0, "8-0", "source_stream", ks.Stream(1, "order.created"))
	for id, why := range map[string]string{"7-0": "cut", "8-0": "no stream of its partition"} {
		d, err := deadletter.Find(ctx, rdb, ks, id, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = deadletter.Replay(ctx, rdb, ks, d)
		if !errors.Is(err, deadletter.ErrCannotReplay) || !strings.Contains(err.Error(), why) {
			t.Errorf("Replay(%s) = %v, want ErrCannotReplay saying %q", id, err, why)
		}
	}
	for p := range 2 {
		if n := rdb.XLen(ctx, ks.Stream(p, "order.created")).Val(); n != 0 {
			t.Errorf("a refused replay published %d entries on partition %d", n, p)
		}
	}
	if n := rdb.XLen(ctx, ks.DeadLetter(0)).Val(); n != 2 {
		t.Errorf("%d dead letters left, want both", n)
	}
}

func TestCompareIDsAndIDTime(t *testing.T) {
	ids := []string{"1000-0", "999-1", "999-0", "1000-10", "1000-9"}
	slices.SortFunc(ids, deadletter.CompareIDs)
	if want := []string{"999-0", "999-1", "1000-0", "1000-9", "1000-10"}; !slices.Equal(ids, want) {
		t.Errorf("sorted %v, want %v", ids, want)
	}
	if got := deadletter.IDTime("1700000000123-4"); !got.Equal(time.UnixMilli(1700000000123)) || got.Location() != time.UTC {
		t.Errorf("IDTime = %v", got)
	}
	if got := deadletter.IDTime("yesterday"); !got.IsZero() {
		t.Errorf("IDTime(yesterday) = %v, want zero", got)
	}
}
