package streams_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/streams"
)

// recorder is a DeadLetterer that acknowledges and remembers.
type recorder struct {
	rdb *redis.Client
	mu  sync.Mutex
	got []string // reasons
}

func (r *recorder) DeadLetter(ctx context.Context, m *streams.Message, reason string) error {
	r.mu.Lock()
	r.got = append(r.got, reason)
	r.mu.Unlock()
	return r.rdb.XAck(ctx, m.Stream, m.Group, m.ID).Err()
}

func (r *recorder) reasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

func validEntry(sagaID string) map[string]any {
	env := &event.Envelope{EventID: "e-" + sagaID, Type: "t", SagaID: sagaID, SagaMode: event.ModeChoreography,
		SagaVersion: 1, OccurredAt: time.Now(), Data: []byte(`{}`)}
	f := env.Fields()
	m := map[string]any{}
	for i := 0; i < len(f); i += 2 {
		m[f[i].(string)] = f[i+1]
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func setup(t *testing.T) (rdb, reader *redis.Client, sub streams.Subscription) {
	rdb, reader = srv.Client(), srv.Client()
	t.Cleanup(func() { rdb.Close(); reader.Close() })
	stream := redistest.Prefix() + ":{0}:t"
	sub = streams.Subscription{Group: "g", Streams: []string{stream}}
	if err := streams.EnsureGroups(context.Background(), rdb, []streams.Subscription{sub}); err != nil {
		t.Fatal(err)
	}
	return rdb, reader, sub
}

// A handler error leaves the entry pending; it is reclaimed after
// CLAIM_MIN_IDLE with its delivery count, retried, and after MAX_DELIVERIES
// dead-lettered. A panic counts as an error and the runner keeps going.
func TestRunnerRetriesThenDeadLetters(t *testing.T) {
	rdb, reader, sub := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	deliveries := map[string][]int64{}
	h := streams.HandlerFunc(func(ctx context.Context, m *streams.Message) error {
		mu.Lock()
		deliveries[m.Env.SagaID] = append(deliveries[m.Env.SagaID], m.Deliveries)
		n := len(deliveries[m.Env.SagaID])
		mu.Unlock()
		switch {
		case m.Env.SagaID == "flaky" && n < 3:
			return errors.New("transient")
		case m.Env.SagaID == "panics":
			panic("boom")
		}
		return rdb.XAck(ctx, m.Stream, m.Group, m.ID).Err()
	})
	dl := &recorder{rdb: rdb}
	r := streams.NewRunner(rdb, reader, []streams.Subscription{sub}, h, dl, streams.RunnerOptions{
		Consumer: "c1", ClaimMinIdle: 100 * time.Millisecond, MaxDeliveries: 3, Block: 50 * time.Millisecond,
	})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	for _, id := range []string{"ok", "flaky", "panics"} {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: sub.Streams[0], Values: validEntry(id)})
	}
	rdb.XAdd(ctx, &redis.XAddArgs{Stream: sub.Streams[0], Values: map[string]any{"junk": "1"}})
	waitFor(t, "two dead letters", func() bool { return len(dl.reasons()) == 2 })
	waitFor(t, "empty pending list", func() bool {
		p, _ := rdb.XPending(ctx, sub.Streams[0], "g").Result()
		return p.Count == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := deliveries["flaky"]; len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("flaky deliveries %v, want [1 2 3]", got)
	}
	if got := deliveries["panics"]; len(got) != 3 {
		t.Errorf("panicking entry handled %d times, want MAX_DELIVERIES=3", len(got))
	}
	if got := deliveries["ok"]; len(got) != 1 {
		t.Errorf("ok entry handled %d times", len(got))
	}
}

// An entry trimmed while pending is reported (dead-lettered as lost), not
// silently dropped as go-redis's typed XAutoClaim would.
func TestRunnerReportsEntriesDeletedWhilePending(t *testing.T) {
	rdb, reader, sub := setup(t)
	ctx := context.Background()
	id, _ := rdb.XAdd(ctx, &redis.XAddArgs{Stream: sub.Streams[0], Values: validEntry("lost")}).Result()
	// Another consumer read it and died; then the entry was trimmed.
	rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "dead", Streams: []string{sub.Streams[0], ">"}})
	rdb.XDel(ctx, sub.Streams[0], id)
	var handled atomic.Int64
	h := streams.HandlerFunc(func(context.Context, *streams.Message) error { handled.Add(1); return nil })
	dl := &recorder{rdb: rdb}
	rctx, cancel := context.WithCancel(ctx)
	r := streams.NewRunner(rdb, reader, []streams.Subscription{sub}, h, dl, streams.RunnerOptions{
		Consumer: "c2", ClaimMinIdle: 50 * time.Millisecond, Block: 50 * time.Millisecond,
	})
	done := make(chan error)
	go func() { done <- r.Run(rctx) }()
	waitFor(t, "the lost entry reported", func() bool { return len(dl.reasons()) == 1 })
	cancel()
	<-done
	if handled.Load() != 0 {
		t.Error("a deleted entry reached the handler")
	}
}

// Shutdown does not wait on a BLOCK: a runner blocked in a 30 s read
// returns at once. An entry published while it goes away is either read
// and handled before Run returns, or left unread for another consumer:
// never delivered to the runner and left pending.
func TestRunnerShutdownDoesNotWaitOnBlock(t *testing.T) {
	rdb, _, sub := setup(t)
	name := "blocked-" + redistest.Prefix()
	reader := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port), ClientName: name})
	t.Cleanup(func() { reader.Close() })
	var handled atomic.Int64
	h := streams.HandlerFunc(func(ctx context.Context, m *streams.Message) error {
		handled.Add(1)
		return rdb.XAck(ctx, m.Stream, m.Group, m.ID).Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	r := streams.NewRunner(rdb, reader, []streams.Subscription{sub}, h, &recorder{rdb: rdb}, streams.RunnerOptions{
		Consumer: "c3", Block: 30 * time.Second,
	})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, "the runner's read to block", func() bool {
		list, err := rdb.ClientList(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, "name="+name+" ") && strings.Contains(line, "flags=b ") && strings.Contains(line, "cmd=xreadgroup") {
				return true
			}
		}
		return false
	})
	if n := handled.Load(); n != 0 {
		t.Fatalf("%d entries delivered while nothing was published", n)
	}
	began := time.Now()
	cancel()
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: sub.Streams[0], Values: validEntry("late")}).Result()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still waiting on its BLOCK after 5s")
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	groups, err := rdb.XInfoGroups(context.Background(), sub.Streams[0]).Result()
	if err != nil || len(groups) != 1 {
		t.Fatalf("groups %v %v", groups, err)
	}
	g := groups[0]
	if g.Pending != 0 {
		t.Fatalf("%d entries left pending by a runner that went away", g.Pending)
	}
	read := g.LastDeliveredID == id
	if read != (handled.Load() == 1) {
		t.Fatalf("entry %s: last delivered %s, handled %d: delivered and not handled", id, g.LastDeliveredID, handled.Load())
	}
	t.Logf("the entry published during shutdown was read and handled: %v", read)
}

// WORKER_CONCURRENCY bounds the handlers running at once, and is used.
func TestRunnerBoundsConcurrency(t *testing.T) {
	rdb, reader, sub := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	var active, peak, done atomic.Int64
	h := streams.HandlerFunc(func(ctx context.Context, m *streams.Message) error {
		n := active.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		active.Add(-1)
		done.Add(1)
		return rdb.XAck(ctx, m.Stream, m.Group, m.ID).Err()
	})
	for i := range 30 {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: sub.Streams[0], Values: validEntry(fmt.Sprint(i))})
	}
	r := streams.NewRunner(rdb, reader, []streams.Subscription{sub}, h, &recorder{rdb: rdb}, streams.RunnerOptions{
		Consumer: "c4", Concurrency: 3, ReadCount: 64, Block: 50 * time.Millisecond,
	})
	errc := make(chan error)
	go func() { errc <- r.Run(ctx) }()
	waitFor(t, "30 entries handled", func() bool { return done.Load() == 30 })
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if p := peak.Load(); p != 3 {
		t.Fatalf("peak concurrency %d, want 3", p)
	}
}
