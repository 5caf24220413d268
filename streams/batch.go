package streams

import (
	"context"
	"sync"

	"github.com/redis/go-redis/v9"
)

// Batcher sends the commands of concurrent callers in pipelines: whatever
// is queued while a pipeline is on the wire goes in the next one. The
// messages of a batch read at once are handled concurrently, and their
// commits reach Redis together, in one round trip, instead of one per
// message; a handler that waits on a slow external call does not hold the
// others back, it only misses the pipeline it was not ready for.
//
// A command's outcome is its own: one failing does not fail the others of
// its pipeline (an error of the connection fails all of them, each caller
// sees it and retries as it would without batching).
type Batcher struct {
	rdb redis.UniversalClient
	// wire bounds the pipelines on the wire at once.
	wire int

	mu       sync.Mutex
	queue    []queued
	inflight int
}

type queued struct {
	ctx  context.Context
	cmd  redis.Cmder
	done chan struct{}
}

// NewBatcher returns a Batcher that sends through rdb, with up to wire
// pipelines on the wire at once (at least 1).
func NewBatcher(rdb redis.UniversalClient, wire int) *Batcher {
	return &Batcher{rdb: rdb, wire: max(wire, 1)}
}

// Do sends cmd with the next pipeline and waits for its reply. A command
// whose ctx is done before its pipeline leaves is not sent; once sent, its
// reply is waited for (the client's timeouts bound it), so that the caller
// knows what it did. The outcome is in cmd, and returned.
func (b *Batcher) Do(ctx context.Context, cmd redis.Cmder) error {
	if err := ctx.Err(); err != nil {
		cmd.SetErr(err)
		return err
	}
	q := queued{ctx: ctx, cmd: cmd, done: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, q)
	start := b.inflight < b.wire
	if start {
		b.inflight++
	}
	b.mu.Unlock()
	if start {
		go b.flush()
	}
	<-q.done
	return cmd.Err()
}

// flush sends what is queued, pipeline after pipeline, until the queue is
// empty.
func (b *Batcher) flush() {
	for {
		b.mu.Lock()
		q := b.queue
		b.queue = nil
		if len(q) == 0 {
			b.inflight--
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		// The pipeline serves callers with contexts of their own; the
		// client's read and write timeouts bound it.
		pipe := b.rdb.Pipeline()
		for _, c := range q {
			if err := c.ctx.Err(); err != nil {
				c.cmd.SetErr(err) // its caller gave up: a late write must not go out
				continue
			}
			_ = pipe.Process(context.Background(), c.cmd)
		}
		if pipe.Len() > 0 {
			_, _ = pipe.Exec(context.Background()) // each command carries its own error
		}
		for _, c := range q {
			close(c.done)
		}
	}
}

// Eval runs script through b: EVALSHA in the next pipeline, and on
// NOSCRIPT (Redis restarted without its scripts) EVAL at once, which loads
// it again.
func (b *Batcher) Eval(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	cmdArgs := make([]any, 0, 3+len(keys)+len(args))
	cmdArgs = append(cmdArgs, "evalsha", script.Hash(), len(keys))
	for _, k := range keys {
		cmdArgs = append(cmdArgs, k)
	}
	cmdArgs = append(cmdArgs, args...)
	cmd := redis.NewCmd(ctx, cmdArgs...)
	if err := b.Do(ctx, cmd); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		return script.Eval(ctx, b.rdb, keys, args...)
	}
	return cmd
}
