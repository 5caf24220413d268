package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// RunnerOptions configure a Runner. Zero values take the documented defaults.
type RunnerOptions struct {
	// Consumer is this process's consumer name in every group.
	Consumer string
	// Concurrency bounds the messages handled at once. Default 64.
	Concurrency int
	// ReadCount is the COUNT of one XREADGROUP. Default 64.
	ReadCount int
	// Block is the BLOCK of one XREADGROUP; it bounds how long shutdown can
	// wait on a read. Default 1s.
	Block time.Duration
	// ClaimMinIdle is the idle time after which a pending entry is
	// reclaimed. Default 15s.
	ClaimMinIdle time.Duration
	// ConsumerIdle is how long a consumer that holds nothing may stay idle
	// before it is deleted (a worker that died or scaled away). Default
	// 20 × ClaimMinIdle, at least a minute.
	ConsumerIdle time.Duration
	// MaxDeliveries failed deliveries send an entry to the dead letters.
	// Default 5.
	MaxDeliveries int
	// HandleTimeout bounds one delivery, counted from when it was read (the
	// time Redis counts as idle), so that a handler gives up before another
	// worker may reclaim its entry. Default 90% of ClaimMinIdle.
	HandleTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Observer, when set, is told about each handled message.
	Observer Observer
}

// Outcome is what became of one delivered message.
type Outcome string

// Outcomes reported to an Observer.
const (
	OutcomeOK         Outcome = "ok"
	OutcomeRetry      Outcome = "retry"
	OutcomeDeadLetter Outcome = "dead_letter"
	OutcomeClaimed    Outcome = "claimed"
	OutcomeLost       Outcome = "lost"
)

// Observer receives counts from a Runner (metrics hook).
type Observer interface {
	// Observe counts an outcome.
	Observe(group string, o Outcome)
	// Handled reports how long a handled entry took from its read.
	Handled(group, eventType string, took time.Duration)
}

func (o *RunnerOptions) withDefaults() {
	if o.Concurrency <= 0 {
		o.Concurrency = 64
	}
	if o.ReadCount <= 0 {
		o.ReadCount = 64
	}
	if o.Block <= 0 {
		o.Block = time.Second
	}
	if o.ClaimMinIdle <= 0 {
		o.ClaimMinIdle = 15 * time.Second
	}
	if o.ConsumerIdle <= 0 {
		o.ConsumerIdle = max(20*o.ClaimMinIdle, time.Minute)
	}
	if o.MaxDeliveries <= 0 {
		o.MaxDeliveries = 5
	}
	if o.HandleTimeout <= 0 {
		o.HandleTimeout = o.ClaimMinIdle * 9 / 10
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Runner reads the subscriptions' streams through their consumer groups and
// hands each entry to the Handler with bounded concurrency. It also reclaims
// entries that stayed pending too long, from any consumer.
type Runner struct {
	rdb    redis.UniversalClient // commands and scripts
	reader redis.UniversalClient // blocking reads only, so the pool never starves
	subs   []Subscription
	h      Handler
	dl     DeadLetterer
	opts   RunnerOptions
	sem    chan struct{}
	wg     sync.WaitGroup // in-flight handlers
	// jobs feeds handler goroutines that live as long as Run: a goroutine
	// per message would grow a fresh stack through every hop's calls.
	jobs chan job

	mu      sync.Mutex
	blocked map[string]func() // read loop → unblock its connection
}

// NewRunner makes a Runner. reader must be a client of its own: blocking
// XREADGROUP calls hold its connections.
func NewRunner(rdb, reader redis.UniversalClient, subs []Subscription, h Handler, dl DeadLetterer, opts RunnerOptions) *Runner {
	opts.withDefaults()
	return &Runner{rdb: rdb, reader: reader, subs: subs, h: h, dl: dl, opts: opts, sem: make(chan struct{}, opts.Concurrency),
		jobs: make(chan job), blocked: map[string]func(){}}
}

type job struct {
	ctx context.Context
	m   *Message
}

// Run reads until ctx is cancelled, then waits for the handlers in flight to
// finish (they run on a context that shutdown does not cancel) and returns.
// Entries already read are all handled before Run returns, so a SIGTERM
// leaves nothing pending that this process owned.
func (r *Runner) Run(ctx context.Context) error {
	var handlers sync.WaitGroup
	for range r.opts.Concurrency {
		handlers.Go(func() {
			for j := range r.jobs {
				r.run(j)
			}
		})
	}
	defer func() { close(r.jobs); handlers.Wait() }()
	g, gctx := errgroup.WithContext(ctx)
	var readers sync.WaitGroup
	for _, sub := range r.subs {
		readers.Add(1)
		g.Go(func() error { defer readers.Done(); return r.readLoop(gctx, sub) })
		g.Go(func() error { return r.reclaimLoop(gctx, sub) })
		g.Go(func() error { return r.consumerLoop(gctx, sub) })
	}
	g.Go(func() error { r.unblockOnShutdown(gctx, &readers); return nil })
	err := g.Wait()
	r.wg.Wait()
	return err
}

// unblockOnShutdown wakes the readers blocked in XREADGROUP once ctx is done,
// with CLIENT UNBLOCK: the blocked read returns as if its BLOCK had timed
// out, so no entry is delivered to a reader that is going away. Closing the
// connection instead could lose the reply of a read that had just been
// served, leaving its entries pending until a reclaim. It repeats until every
// reader has returned, which covers a read issued just after an unblock.
func (r *Runner) unblockOnShutdown(ctx context.Context, readers *sync.WaitGroup) {
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		r.mu.Lock()
		for _, unblock := range r.blocked {
			unblock()
		}
		r.mu.Unlock()
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// readConn returns a connection of its own for one read loop and a function
// that unblocks it, on the node that holds the stream.
func (r *Runner) readConn(ctx context.Context, stream string) (*redis.Conn, func(), error) {
	var node *redis.Client
	switch c := r.reader.(type) {
	case *redis.Client:
		node = c
	case *redis.ClusterClient:
		var err error
		if node, err = c.MasterForKey(ctx, stream); err != nil {
			return nil, nil, fmt.Errorf("find node of %s: %w", stream, err)
		}
	default:
		return nil, nil, fmt.Errorf("unsupported reader client %T", r.reader)
	}
	conn := node.Conn()
	id, err := conn.ClientID(ctx).Result()
	if err != nil && strings.Contains(strings.ToLower(err.Error()), "unknown") {
		// A Redis-compatible server without CLIENT ID (the embedded one of
		// cmd/dev): shutdown then waits for the short BLOCK instead.
		return conn, func() {}, nil
	}
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("client id: %w", err)
	}
	unblock := func() {
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = node.ClientUnblock(uctx, id).Err()
	}
	return conn, unblock, nil
}

func (r *Runner) readLoop(ctx context.Context, sub Subscription) error {
	args := make([]string, 0, 2*len(sub.Streams))
	args = append(args, sub.Streams...)
	for range sub.Streams {
		args = append(args, ">")
	}
	log := r.opts.Logger.With("group", sub.Group, "partition", sub.Partition)
	backoff := newBackoff(50*time.Millisecond, 2*time.Second)
	var conn *redis.Conn
	key := fmt.Sprintf("%s/%d", sub.Group, sub.Partition)
	release := func() {
		if conn != nil {
			r.mu.Lock()
			delete(r.blocked, key)
			r.mu.Unlock()
			conn.Close()
			conn = nil
		}
	}
	defer release()
	for ctx.Err() == nil {
		// Wait for a free slot before reading, so entries are not read (and
		// left pending) faster than they can be handled.
		select {
		case r.sem <- struct{}{}:
			<-r.sem
		case <-ctx.Done():
			return nil
		}
		if conn == nil {
			c, unblock, err := r.readConn(ctx, sub.Streams[0])
			if err != nil {
				log.WarnContext(ctx, "reader connection", "err", err)
				if !sleepCtx(ctx, backoff.next()) {
					return nil
				}
				continue
			}
			conn = c
			r.mu.Lock()
			r.blocked[key] = unblock
			r.mu.Unlock()
		}
		// Read no more than there are free slots, so entries do not wait in
		// this process while their idle time runs towards a reclaim. The
		// read itself is not cancelled by ctx: a reply Redis has sent must
		// be read, or its entries stay pending. Shutdown unblocks it.
		count := min(r.opts.ReadCount, max(cap(r.sem)-len(r.sem), 1))
		res, err := conn.XReadGroup(context.WithoutCancel(ctx), &redis.XReadGroupArgs{
			Group:    sub.Group,
			Consumer: r.opts.Consumer,
			Streams:  args,
			Count:    int64(count),
			Block:    r.opts.Block,
		}).Result()
		if errors.Is(err, redis.Nil) {
			backoff.reset()
			continue
		}
		if err != nil {
			release() // a fresh connection (and client id) next time
			if ctx.Err() != nil {
				return nil
			}
			if redis.HasErrorPrefix(err, "NOGROUP") {
				// The stream or group vanished (FLUSHALL, a restart without
				// persistence): recreate them instead of spinning.
				if err := EnsureGroups(ctx, r.rdb, []Subscription{sub}); err != nil {
					log.WarnContext(ctx, "recreate groups", "err", err)
				}
			}
			log.WarnContext(ctx, "read stream", "err", err)
			if !sleepCtx(ctx, backoff.next()) {
				return nil
			}
			continue
		}
		backoff.reset()
		for _, s := range res {
			for _, x := range s.Messages {
				r.dispatch(ctx, NewMessage(s.Stream, sub.Group, sub.Partition, x.ID, x.Values))
			}
		}
	}
	return nil
}

// dispatch runs the handler in a goroutine once a slot is free. It waits for
// the slot even after shutdown began: the entry is already ours, and handling
// it now is better than leaving it for a reclaim CLAIM_MIN_IDLE later.
func (r *Runner) dispatch(ctx context.Context, m *Message) {
	r.sem <- struct{}{}
	r.wg.Add(1)
	r.jobs <- job{ctx: ctx, m: m}
}

// run handles one dispatched message on a handler goroutine.
func (r *Runner) run(j job) {
	defer func() { <-r.sem; r.wg.Done() }()
	hctx, cancel := context.WithDeadline(context.WithoutCancel(j.ctx), j.m.ReadAt.Add(r.opts.HandleTimeout))
	defer cancel()
	r.handle(hctx, j.m)
}

func (r *Runner) handle(ctx context.Context, m *Message) {
	// The logger is built only on the paths that log: With formats its
	// attributes at once, which cost more than the hop itself.
	log := func() *slog.Logger {
		l := r.opts.Logger.With("group", m.Group, "stream", m.Stream, "entry_id", m.ID)
		if m.Env != nil {
			l = l.With("saga_id", m.Env.SagaID, "event_type", m.Env.Type)
		}
		return l
	}
	var reason string
	switch {
	case m.DecodeErr != nil:
		reason = m.DecodeErr.Error()
	case m.Deliveries > int64(r.opts.MaxDeliveries):
		reason = fmt.Sprintf("failed %d deliveries (MAX_DELIVERIES=%d)", m.Deliveries-1, r.opts.MaxDeliveries)
	default:
		err := r.safeHandle(ctx, m)
		if r.opts.Observer != nil {
			r.opts.Observer.Handled(m.Group, m.Env.Type, time.Since(m.ReadAt))
		}
		if err == nil {
			r.observe(m.Group, OutcomeOK)
			return
		}
		if !IsPermanent(err) {
			log().WarnContext(ctx, "handler failed; entry stays pending for a retry", "deliveries", m.Deliveries, "err", err)
			r.observe(m.Group, OutcomeRetry)
			return
		}
		reason = err.Error()
	}
	if err := r.dl.DeadLetter(ctx, m, reason); err != nil {
		log().ErrorContext(ctx, "dead-letter entry; it stays pending", "reason", reason, "err", err)
		r.observe(m.Group, OutcomeRetry)
		return
	}
	log().WarnContext(ctx, "entry dead-lettered", "reason", reason, "deliveries", m.Deliveries)
	r.observe(m.Group, OutcomeDeadLetter)
}

// safeHandle turns a handler panic into an error, so one poison entry never
// takes the worker down; after MAX_DELIVERIES it is dead-lettered.
func (r *Runner) safeHandle(ctx context.Context, m *Message) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.opts.Logger.ErrorContext(ctx, "handler panic", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return r.h.Handle(ctx, m)
}

func (r *Runner) observe(group string, o Outcome) {
	if r.opts.Observer != nil {
		r.opts.Observer.Observe(group, o)
	}
}

func (r *Runner) reclaimLoop(ctx context.Context, sub Subscription) error {
	interval := min(max(r.opts.ClaimMinIdle/2, 10*time.Millisecond), 5*time.Second)
	RunEvery(ctx, interval, func(ctx context.Context) {
		for _, stream := range sub.Streams {
			if err := r.reclaim(ctx, sub, stream); err != nil && ctx.Err() == nil {
				r.opts.Logger.WarnContext(ctx, "reclaim", "group", sub.Group, "stream", stream, "err", err)
			}
		}
	})
	return nil
}

// consumerLoop deletes the group's consumers that hold nothing and stayed
// idle past ConsumerIdle. Every worker runs it; the script makes each
// deletion safe, so running it many times over is harmless.
func (r *Runner) consumerLoop(ctx context.Context, sub Subscription) error {
	RunEvery(ctx, r.opts.ConsumerIdle/4, func(ctx context.Context) {
		for _, stream := range sub.Streams {
			n, err := RemoveIdleConsumers(ctx, r.rdb, stream, sub.Group, r.opts.Consumer, r.opts.ConsumerIdle)
			switch {
			case err != nil && ctx.Err() == nil:
				r.opts.Logger.WarnContext(ctx, "remove idle consumers", "group", sub.Group, "stream", stream, "err", err)
			case n > 0:
				r.opts.Logger.InfoContext(ctx, "removed idle consumers", "group", sub.Group, "stream", stream, "removed", n)
			}
		}
	})
	return nil
}

// reclaim claims every entry of one stream idle for CLAIM_MIN_IDLE, from any
// consumer, and handles it here. Once claimed, entries are ours: they are
// dispatched even if shutdown begins or a lookup fails in between.
func (r *Runner) reclaim(ctx context.Context, sub Subscription, stream string) error {
	cursor := "0-0"
	for ctx.Err() == nil {
		res, err := autoClaim(context.WithoutCancel(ctx), r.rdb, stream, sub.Group, r.opts.Consumer, r.opts.ClaimMinIdle, cursor, int64(r.opts.ReadCount))
		if err != nil {
			return err
		}
		for _, id := range res.deleted {
			// Trimmed or deleted while pending: XAUTOCLAIM has already dropped
			// it from the PEL. Record it so that the loss is visible.
			m := &Message{Stream: stream, ID: id, Group: sub.Group, Partition: sub.Partition, Deliveries: 1, ReadAt: time.Now()}
			m.DecodeErr = errors.New("entry deleted while pending (trimmed?)")
			r.observe(sub.Group, OutcomeLost)
			r.dispatch(ctx, m)
		}
		if len(res.messages) > 0 {
			counts := r.deliveryCounts(context.WithoutCancel(ctx), stream, sub.Group, res.messages)
			for _, x := range res.messages {
				m := NewMessage(stream, sub.Group, sub.Partition, x.ID, x.Values)
				// A claimed entry was delivered at least twice; the exact
				// count is only missing when Redis did not answer.
				m.Deliveries = max(counts[x.ID], 2)
				r.observe(sub.Group, OutcomeClaimed)
				r.dispatch(ctx, m)
			}
		}
		if res.cursor == "0-0" {
			return nil
		}
		cursor = res.cursor
	}
	return nil
}

// deliveryCounts reads the delivery counters of entries just claimed by this
// consumer: one XPENDING over their id range (which may also hold entries
// this consumer is handling right now), then one per id still missing.
func (r *Runner) deliveryCounts(ctx context.Context, stream, group string, msgs []redis.XMessage) map[string]int64 {
	counts := make(map[string]int64, len(msgs))
	lookup := func(start, end string, count int64) {
		pending, err := r.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: group, Start: start, End: end, Count: count, Consumer: r.opts.Consumer,
		}).Result()
		if err != nil {
			r.opts.Logger.WarnContext(ctx, "read delivery counts", "stream", stream, "group", group, "err", err)
			return
		}
		for _, p := range pending {
			counts[p.ID] = p.RetryCount
		}
	}
	lookup(msgs[0].ID, msgs[len(msgs)-1].ID, int64(len(msgs)+r.opts.Concurrency+64))
	for _, x := range msgs {
		if _, ok := counts[x.ID]; !ok {
			lookup(x.ID, x.ID, 1)
		}
	}
	return counts
}

type autoClaimResult struct {
	cursor   string
	messages []redis.XMessage
	deleted  []string
}

// autoClaim runs XAUTOCLAIM through Do: go-redis's typed XAutoClaim throws
// away the third reply element, the ids deleted while pending, and those are
// exactly the entries whose loss must be reported.
func autoClaim(ctx context.Context, rdb redis.UniversalClient, stream, group, consumer string, minIdle time.Duration, cursor string, count int64) (autoClaimResult, error) {
	raw, err := rdb.Do(ctx, "XAUTOCLAIM", stream, group, consumer, minIdle.Milliseconds(), cursor, "COUNT", count).Slice()
	if err != nil {
		return autoClaimResult{}, fmt.Errorf("xautoclaim %s: %w", stream, err)
	}
	return parseAutoClaim(raw)
}

func parseAutoClaim(raw []any) (autoClaimResult, error) {
	var res autoClaimResult
	if len(raw) < 2 {
		return res, fmt.Errorf("xautoclaim: unexpected reply of %d elements", len(raw))
	}
	var ok bool
	if res.cursor, ok = raw[0].(string); !ok {
		return res, errors.New("xautoclaim: cursor is not a string")
	}
	entries, _ := raw[1].([]any)
	for _, e := range entries {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		fields, _ := pair[1].([]any)
		if fields == nil {
			res.deleted = append(res.deleted, id)
			continue
		}
		values := make(map[string]any, len(fields)/2)
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			values[k] = fields[i+1]
		}
		res.messages = append(res.messages, redis.XMessage{ID: id, Values: values})
	}
	if len(raw) > 2 {
		deleted, _ := raw[2].([]any)
		for _, d := range deleted {
			if id, ok := d.(string); ok {
				res.deleted = append(res.deleted, id)
			}
		}
	}
	return res, nil
}
