package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
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

// Run runs a worker until ctx is cancelled, then shuts down cleanly. With
// WORKER_METRICS_ADDR it serves /metrics, /healthz and /readyz there.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	var ln net.Listener
	if cfg.MetricsAddr != "" {
		l, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("listen on WORKER_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		ln = l
	}
	return Serve(ctx, ln, cfg, log)
}

// Serve is Run with the metrics listener the caller opened (nil: no HTTP),
// so that several workers in one process (cmd/dev) each get their own
// address. Serve closes ln.
func Serve(ctx context.Context, ln net.Listener, cfg *config.Config, log *slog.Logger) error {
	consumer := ConsumerName()
	log = log.With("consumer", consumer)
	rdb, err := streams.Connect(cfg.RedisURL, streams.ClientOptions{PoolSize: cfg.Concurrency + 16, Name: consumer, TLSCAFile: cfg.RedisTLSCAFile, ClusterAddrs: cfg.ClusterAddrs})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	defer rdb.Close()
	m := metrics.New()
	h := &health{rdb: rdb}
	g, gctx := errgroup.WithContext(ctx)
	// Served from the start: liveness holds while Redis is still down.
	if ln != nil {
		g.Go(func() error { return serveHTTP(gctx, ln, m, h, log) })
	}
	g.Go(func() error { return work(gctx, cfg, log, consumer, rdb, m, h) })
	return g.Wait()
}

// work sets up (waiting for Redis), then reads and handles until ctx ends.
func work(ctx context.Context, cfg *config.Config, log *slog.Logger, consumer string, rdb redis.UniversalClient, m *metrics.Metrics, h *health) error {
	product, err := wiring.New(rdb, cfg, log, m.SagaStatus)
	if err != nil {
		return err
	}
	engine := product.Engine
	services, err := wiring.WorkerServices(cfg, engine)
	if err != nil {
		return err
	}
	all, run := engine.Subscriptions(services, cfg.WorkerPartitions)
	// One blocking connection per subscription, plus slack for reconnects.
	reader, err := streams.Connect(cfg.RedisURL, streams.ClientOptions{PoolSize: len(run) + 4, Name: consumer + "-reader", TLSCAFile: cfg.RedisTLSCAFile, ClusterAddrs: cfg.ClusterAddrs})
	if err != nil {
		return err
	}
	defer reader.Close()
	// The scripts of the fake gateway, an external system of the demo
	// domain, load with the engine's; the groups are made here too, so
	// that /readyz answers 200 only once the worker can read.
	setup := func(ctx context.Context) error {
		if err := handlers.LoadScripts(ctx, rdb); err != nil {
			return err
		}
		if err := engine.LoadScripts(ctx); err != nil {
			return err
		}
		return streams.EnsureGroups(ctx, rdb, all)
	}
	if err := waitForRedis(ctx, rdb, log, setup); err != nil {
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
	h.reading.Store(true)
	g.Go(func() error {
		// A stopping worker reads no more: not ready from the first moment.
		<-gctx.Done()
		h.reading.Store(false)
		return nil
	})
	err = g.Wait()
	st := engine.Stats()
	log.Info("worker stopped", "stale_refused", st.Stale, "rejected", st.Rejected, "missing", st.Missing,
		"dead_lettered", st.DeadLettered, "aborted", st.Aborted, "failed", st.Failed,
		"swept_compensated", st.SweptCompensated, "swept_resent", st.SweptResent,
		"swept_failed", st.SweptFailed, "late_effects_undone", st.Undone)
	return err
}

// health answers /healthz and /readyz.
type health struct {
	rdb redis.UniversalClient
	// reading: set up and reading, not stopping.
	reading atomic.Bool
}

// healthz: the process runs and serves HTTP (liveness; Redis not asked).
func (h *health) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz: the worker's groups are set up, it reads, and Redis answers a
// PING within a second.
func (h *health) readyz(w http.ResponseWriter, r *http.Request) {
	if !h.reading.Load() {
		writeJSON(w, http.StatusServiceUnavailable, notReady("the worker is not reading (setting up, waiting for redis, or stopping)"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := streams.Ping(ctx, h.rdb); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, notReady("redis is not reachable"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// notReady is shaped like the API's error bodies.
func notReady(msg string) map[string]map[string]string {
	return map[string]map[string]string{"error": {"code": "not_ready", "message": msg}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// serveHTTP serves /metrics, /healthz and /readyz on ln until ctx is done.
func serveHTTP(ctx context.Context, ln net.Listener, m *metrics.Metrics, h *health, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.HandleFunc("GET /healthz", h.healthz)
	mux.HandleFunc("GET /readyz", h.readyz)
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
