package saga

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamsaga/streamsaga/streams"
)

// Worker runs an engine's services until its context ends: it ensures the
// consumer groups of every saga type, reads the streams of the services it
// runs and hands each message to Engine.Handle, sweeps deadlines and
// re-sends refused compensations. Run as many as you like, in as many
// processes: they share nothing but Redis.
type Worker struct {
	Engine *Engine
	// RDB is the client the engine was made with; Reader a client of its
	// own for the blocking reads (they hold its connections).
	RDB, Reader redis.UniversalClient
	// Services to run (consumer groups); empty runs every one, the
	// orchestrator included. Partitions to read; empty reads all.
	Services   []string
	Partitions []int
	// Runner configures reading: consumer name, concurrency, reclaims,
	// MAX_DELIVERIES. Zero values take the runner's defaults.
	Runner streams.RunnerOptions
	// SweepInterval and RedriveInterval default to a quarter of the step
	// timeout (at most a second) and half the back-off (at most a second).
	SweepInterval, RedriveInterval time.Duration
	Logger                         *slog.Logger
}

// Run works until ctx is done, then stops reading, finishes the messages it
// read and returns.
func (w *Worker) Run(ctx context.Context) error {
	log := w.Logger
	if log == nil {
		log = slog.Default()
	}
	if w.Runner.Logger == nil {
		w.Runner.Logger = log
	}
	if w.Runner.Consumer == "" {
		return fmt.Errorf("worker: Runner.Consumer is required")
	}
	all, run := w.Engine.Subscriptions(w.Services, w.Partitions)
	// Redis may come up after the worker: set up until it answers.
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := w.Engine.LoadScripts(ctx)
		if err == nil {
			err = streams.EnsureGroups(ctx, w.RDB, all)
		}
		if err == nil {
			break
		}
		log.WarnContext(ctx, "waiting for redis", "err", err)
		select {
		case <-ctx.Done():
			return nil // stopped before Redis came up: a clean stop
		case <-time.After(delay):
		}
	}
	o := w.Engine.opts
	sweep := w.SweepInterval
	if sweep <= 0 {
		shortest := o.StepTimeout
		if o.SagaTimeout > 0 {
			shortest = min(shortest, o.SagaTimeout)
		}
		sweep = min(max(shortest/4, 50*time.Millisecond), time.Second)
	}
	redrive := w.RedriveInterval
	if redrive <= 0 {
		redrive = min(o.Backoff/2, time.Second)
	}
	runner := streams.NewRunner(w.RDB, w.Reader, run, w.Engine, w.Engine, w.Runner)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return runner.Run(gctx) })
	// Every worker sweeps deadlines and re-sends due compensations; each
	// is acted on once however many do.
	g.Go(func() error { return (&Sweeper{Engine: w.Engine, Interval: sweep, Logger: log}).Run(gctx) })
	g.Go(func() error { return (&Redriver{Engine: w.Engine, Interval: redrive, Logger: log}).Run(gctx) })
	return g.Wait()
}
