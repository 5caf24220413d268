package streams_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/streams"
)

// Consumers of workers that went away are deleted once they hold nothing;
// one that still has a pending entry is kept (DELCONSUMER would drop the
// entry for good), and so is the caller.
func TestRemoveIdleConsumersKeepsPending(t *testing.T) {
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	stream := redistest.Prefix() + ":{0}:c"
	if err := streams.EnsureGroup(ctx, rdb, stream, "g"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{"n", 1}})
	}
	read := func(consumer string) []redis.XStream {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: consumer, Streams: []string{stream, ">"}, Count: 1, Block: -1}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	done := read("done")
	rdb.XAck(ctx, stream, "g", done[0].Messages[0].ID)
	read("holding") // stays pending
	rdb.XAck(ctx, stream, "g", read("self")[0].Messages[0].ID)
	time.Sleep(30 * time.Millisecond)
	n, err := streams.RemoveIdleConsumers(ctx, rdb, stream, "g", "self", 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		cs, err := rdb.XInfoConsumers(ctx, stream, "g").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		slices.Sort(out)
		return out
	}
	if got := names(); n != 1 || !slices.Equal(got, []string{"holding", "self"}) {
		t.Fatalf("removed %d, consumers left %v; want 1 removed and [holding self]", n, got)
	}
	pending, err := rdb.XPending(ctx, stream, "g").Result()
	if err != nil || pending.Count != 1 {
		t.Fatalf("pending after cleanup = %+v, %v; want the held entry", pending, err)
	}
	// Not idle long enough: nothing goes.
	if n, err := streams.RemoveIdleConsumers(ctx, rdb, stream, "g", "x", time.Hour); err != nil || n != 0 {
		t.Fatalf("removed %d (%v) consumers idle for less than the limit", n, err)
	}
}
