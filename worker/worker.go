package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/wiring"
	"github.com/streamsaga/streamsaga/metrics"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// ConsumerName is <hostname>-<pid>-<short random>: unique per process and
// still telling an operator where a pending entry sits.
func ConsumerName() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Run runs a worker until ctx is cancelled, then shuts down cleanly.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	consumer := ConsumerName()
	log = log.With("consumer", consumer)
	rdb, err := streams.Connect(cfg.RedisURL, streams.ClientOptions{PoolSize: cfg.Concurrency + 16, Name: consumer, TLSCAFile: cfg.RedisTLSCAFile, ClusterAddrs: cfg.ClusterAddrs})
	if err != nil {
		return err
	}
	defer rdb.Close()
	m := metrics.New()
	product, err := wiring.New(rdb, cfg, log, m.SagaStatus)
	if err != nil {
		return err
	}
	engine := product.Engine
	services, err := wiring.WorkerServices(cfg, engine)
	if err != nil {
		return err
	}
	_, run := engine.Subscriptions(services, cfg.WorkerPartitions)
	// One blocking connection per subscription, plus slack for reconnects.
	reader, err := streams.Connect(cfg.RedisURL, streams.ClientOptions{PoolSize: len(run) + 4, Name: consumer + "-reader", TLSCAFile: cfg.RedisTLSCAFile, ClusterAddrs: cfg.ClusterAddrs})
	if err != nil {
		return err
	}
	defer reader.Close()
	// The scripts of the fake gateway, an external system of the demo
	// domain, load with it.
	if err := waitForRedis(ctx, rdb, log, func(ctx context.Context) error { return handlers.LoadScripts(ctx, rdb) }); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before Redis came up: a clean stop
		}
		return err
	}
	w := &saga.Worker{Engine: engine, RDB: rdb, Reader: reader, Services: services, Partitions: cfg.WorkerPartitions,
		Runner: streams.RunnerOptions{
			Consumer: consumer, Concurrency: cfg.Concurrency, ReadCount: cfg.ReadCount,
			ClaimMinIdle: cfg.ClaimMinIdle, MaxDeliveries: cfg.MaxDeliveries, HandleTimeout: cfg.HandleTimeout,
			ConsumerIdle: cfg.ConsumerIdle, Observer: m,
		}, Logger: log}
	events, operator := wiring.Streams(engine)
	m.Engine(engine)
	m.Pool("commands", rdb)
	m.Pool("reader", reader)
	m.Streams(rdb, append(append([]string{}, events...), operator...))
	trimmer := &streams.Trimmer{RDB: rdb, Streams: events, Retention: cfg.StreamRetention, Logger: log}
	// Dead letters and alerts wait for a person: they are kept as long as
	// finished sagas are.
	operatorTrimmer := &streams.Trimmer{RDB: rdb, Streams: operator, Retention: cfg.SagaRetention, Interval: time.Minute, Logger: log}

	log.InfoContext(ctx, "worker started", "services", services, "partitions", engine.Keys().Partitions,
		"redis", config.RedactURL(cfg.RedisURL), "concurrency", cfg.Concurrency)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return w.Run(gctx) })
	g.Go(func() error { return trimmer.Run(gctx) })
	g.Go(func() error { return operatorTrimmer.Run(gctx) })
	if cfg.MetricsAddr != "" {
		g.Go(func() error { return serveMetrics(gctx, cfg.MetricsAddr, m, log) })
	}
	err = g.Wait()
	st := engine.Stats()
	log.Info("worker stopped", "stale_refused", st.Stale, "rejected", st.Rejected, "missing", st.Missing,
		"dead_lettered", st.DeadLettered, "aborted", st.Aborted, "failed", st.Failed,
		"swept_compensated", st.SweptCompensated, "swept_resent", st.SweptResent,
		"swept_failed", st.SweptFailed, "late_effects_undone", st.Undone)
	return err
}

// serveMetrics serves /metrics until ctx is done.
func serveMetrics(ctx context.Context, addr string, m *metrics.Metrics, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on WORKER_METRICS_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 16 << 10}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	log.InfoContext(ctx, "worker metrics listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve metrics: %w", err)
	}
	return nil
}

// waitForRedis runs setup until it succeeds, retrying while Redis is not
// reachable yet (a worker may start before Redis does).
func waitForRedis(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger, setup func(context.Context) error) error {
	delay := 100 * time.Millisecond
	for {
		err := streams.Ping(ctx, rdb)
		if err == nil {
			if err = setup(ctx); err == nil {
				return nil
			}
		}
		log.WarnContext(ctx, "waiting for redis", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for redis: %w", ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
}
