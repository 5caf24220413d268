package streams

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

	"github.com/streamsaga/streamsaga/internal/redistest"
)

// gate holds the first pipeline until released, and counts pipelines and
// the commands they carried.
type gate struct {
	release   chan struct{}
	first     atomic.Bool
	pipelines atomic.Int64
	cmds      atomic.Int64
}

func (g *gate) DialHook(next redis.DialHook) redis.DialHook { return next }
func (g *gate) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return next
}
func (g *gate) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		g.pipelines.Add(1)
		g.cmds.Add(int64(len(cmds)))
		if g.first.CompareAndSwap(false, true) {
			<-g.release
		}
		return next(ctx, cmds)
	}
}

func queueLen(b *Batcher) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

func waitQueued(t *testing.T, b *Batcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for queueLen(b) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d commands queued, want %d", queueLen(b), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// What callers hand the batcher while a pipeline is on the wire goes out
// together in the next one; each command keeps its own reply and error; a
// command whose caller gave up before its pipeline left is not sent.
func TestBatcherSharesRoundTripsNotOutcomes(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	rdb := srv.Client()
	defer rdb.Close()
	g := &gate{release: make(chan struct{})}
	rdb.AddHook(g)
	ctx := context.Background()
	prefix := redistest.Prefix()
	rdb.Set(ctx, prefix+":str", "x", 0)
	b := NewBatcher(rdb, 1)

	firstDone := make(chan error, 1)
	go func() { firstDone <- b.Do(ctx, redis.NewIntCmd(ctx, "incr", prefix+":first")) }()
	for !g.first.Load() {
		time.Sleep(time.Millisecond) // the first pipeline is on the wire, held
	}

	const n = 50
	var wg sync.WaitGroup
	results := make([]*redis.IntCmd, n)
	for i := range n {
		results[i] = redis.NewIntCmd(ctx, "incr", fmt.Sprintf("%s:k%d", prefix, i))
		wg.Add(1)
		go func() { defer wg.Done(); _ = b.Do(ctx, results[i]) }()
	}
	wrong := redis.NewIntCmd(ctx, "incr", prefix+":str") // not an integer: fails alone
	wg.Add(1)
	go func() { defer wg.Done(); _ = b.Do(ctx, wrong) }()
	gaveUp, cancel := context.WithCancel(ctx)
	late := redis.NewIntCmd(gaveUp, "incr", prefix+":late")
	lateErr := make(chan error, 1)
	go func() { lateErr <- b.Do(gaveUp, late) }()
	waitQueued(t, b, n+2)
	cancel()
	close(g.release)
	wg.Wait()
	if err := <-firstDone; err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if v, err := r.Result(); err != nil || v != 1 {
			t.Fatalf("command %d: %d, %v", i, v, err)
		}
	}
	if err := wrong.Err(); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Fatalf("the failing command: %v", err)
	}
	if err := <-lateErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("the abandoned command: %v", err)
	}
	if n := rdb.Exists(ctx, prefix+":late").Val(); n != 0 {
		t.Fatal("a command whose caller gave up before its pipeline left was sent")
	}
	if p, c := g.pipelines.Load(), g.cmds.Load(); p != 2 || c != n+2 {
		t.Fatalf("%d pipelines carried %d commands, want 2 carrying %d", p, c, n+2)
	}
}

// A script unknown to Redis (restarted without it) runs all the same.
func TestBatcherEvalLoadsAMissingScript(t *testing.T) {
	srv := redistest.StartT(t, redistest.Options{})
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	b := NewBatcher(rdb, 2)
	script := redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)
	key := redistest.Prefix() + ":n"
	for want := int64(2); want <= 4; want += 2 {
		rdb.ScriptFlush(ctx)
		if v, err := b.Eval(ctx, script, []string{key}, 2).Int64(); err != nil || v != want {
			t.Fatalf("eval: %d, %v", v, err)
		}
	}
	if v, err := b.Eval(ctx, script, []string{key}, 1).Int64(); err != nil || v != 5 {
		t.Fatalf("evalsha of a loaded script: %d, %v", v, err)
	}
}
