package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/wiring"
	"github.com/streamsaga/streamsaga/metrics"
	"github.com/streamsaga/streamsaga/streams"
)

// Run serves the API on cfg.HTTPAddr until ctx is cancelled, then drains
// requests in flight. It starts even when Redis is down: /readyz and the
// calls that need Redis answer 503 until it is back.
func Run(ctx context.Context, cfg *config.Config, log *slog.Logger) error {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR: %w", err)
	}
	return Serve(ctx, ln, cfg, log)
}

// Serve is Run on a listener the caller opened.
func Serve(ctx context.Context, ln net.Listener, cfg *config.Config, log *slog.Logger) error {
	rdb, err := streams.Connect(cfg.RedisURL, streams.ClientOptions{Name: "api", TLSCAFile: cfg.RedisTLSCAFile, ClusterAddrs: cfg.ClusterAddrs})
	if err != nil {
		return err
	}
	defer rdb.Close()
	// The product's own log lines about a request carry its id too.
	log = withRequestID(log)
	m := metrics.New()
	product, err := wiring.New(rdb, cfg, log, m.SagaStatus)
	if err != nil {
		return err
	}
	engine := product.Engine
	lctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := engine.LoadScripts(lctx); err != nil {
		// Scripts also load on first use (EVALSHA falls back to EVAL).
		log.WarnContext(ctx, "redis not reachable at start; serving 503 until it is", "err", err)
	}
	cancel()
	events, operator := wiring.Streams(engine)
	all := append(append([]string{}, events...), operator...)
	m.Pool("api", rdb)
	m.Streams(rdb, all)
	a := New(rdb, engine, product.Orders, product.Services.Inventory(), log)
	a.Metrics = m.Handler()
	a.ObserveRequests(m)
	a.ProtectAdmin(cfg.AdminToken)
	if cfg.AdminToken == "" {
		log.WarnContext(ctx, "ADMIN_TOKEN is not set: admin actions (saga retry, stock, dead-letter replay) are open to anyone who reaches the API")
	}
	a.UI = NewUI(rdb, engine, product.Orders, all, log)
	srv := NewServer(cfg.HTTPAddr, a.Handler())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.InfoContext(ctx, "api listening", "addr", ln.Addr().String(), "redis", config.RedactURL(cfg.RedisURL), "mode", cfg.Mode)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("api stopped")
	return nil
}
