package streams_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/streams"
)

func ids(t *testing.T, rdb *redis.Client, stream string) map[string]bool {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range msgs {
		out[m.ID] = true
	}
	return out
}

// Trimming never removes an entry a group still has pending or has not read
// yet, whatever the retention; it removes what every group is done with.
func TestTrimKeepsPendingAndUnread(t *testing.T) {
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	stream := redistest.Prefix() + ":{0}:s"
	for i := 1; i <= 10; i++ {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: fmt.Sprintf("%d-0", i), Values: []any{"n", i}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	for _, g := range []string{"fast", "slow"} {
		if err := streams.EnsureGroup(ctx, rdb, stream, g); err != nil {
			t.Fatal(err)
		}
	}
	// fast reads 1..5 and acks 1..3; slow reads nothing.
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "fast", Consumer: "c", Streams: []string{stream, ">"}, Count: 5}).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.XAck(ctx, stream, "fast", "1-0", "2-0", "3-0")
	n, err := streams.Trim(ctx, rdb, stream, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 || len(ids(t, rdb, stream)) != 10 {
		t.Fatalf("trimmed %d entries the slow group has not read", n)
	}
	// slow reads and acks everything: now only fast's pending 4, 5 and its
	// unread 6..10 must stay.
	if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "slow", Consumer: "c", Streams: []string{stream, ">"}, Count: 100}).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 10; i++ {
		rdb.XAck(ctx, stream, "slow", fmt.Sprintf("%d-0", i))
	}
	if n, err = streams.Trim(ctx, rdb, stream, 0); err != nil || n != 3 {
		t.Fatalf("trimmed %d (%v), want the 3 entries both groups are done with", n, err)
	}
	left := ids(t, rdb, stream)
	pending, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: "fast", Start: "-", End: "+", Count: 100}).Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pending {
		if !left[p.ID] {
			t.Errorf("pending entry %s was trimmed", p.ID)
		}
	}
	// Retention still applies: entries younger than it stay even when done.
	fresh := redistest.Prefix() + ":{0}:fresh"
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: fresh, Values: []any{"n", 1}})
	if n, _ := streams.Trim(ctx, rdb, fresh, time.Hour); n != 0 {
		t.Errorf("trimmed %d entries younger than the retention", n)
	}
}
