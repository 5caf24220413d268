// Package devrun runs the whole product in one process for local use: a
// redis-server child on a free port, the API and N workers (each a full
// worker with its own consumer name, as separate processes would be).
package devrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"time"

	"github.com/alicebob/miniredis/v2"

	"golang.org/x/sync/errgroup"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/worker"
)

// ErrDemoFailed: a demo order did not end as its path says it should.
var ErrDemoFailed = errors.New("demo failed")

// Options for Run.
type Options struct {
	Demo    bool
	Workers int
	Out     io.Writer
	// Embedded forces the embedded Redis-compatible server even when
	// redis-server is installed.
	Embedded bool
	// RedisAddr is where the embedded server listens (DEV_REDIS_ADDR);
	// default 127.0.0.1:6380.
	RedisAddr string
}

const embeddedBanner = `  NOTE: embedded Redis (miniredis) — redis-server was not found on PATH (or -embedded).
        It keeps nothing on disk, stream statistics (lag) are approximate, and a
        stopping worker waits for its short BLOCK instead of CLIENT UNBLOCK.
        Install redis-server for the real thing.
`

// startRedis starts redis-server on a free port, or the embedded server.
func startRedis(o Options) (url, where string, stop func(), embedded bool, err error) {
	if _, lookErr := exec.LookPath("redis-server"); lookErr == nil && !o.Embedded {
		srv, err := redistest.Start(redistest.Options{AOF: "everysec"})
		if err != nil {
			return "", "", nil, false, fmt.Errorf("start redis-server: %w", err)
		}
		return srv.URL(), fmt.Sprintf("%s   (redis-cli -p %d; data in %s)", srv.Addr(), srv.Port, srv.Dir), srv.Close, false, nil
	}
	addr := o.RedisAddr
	if addr == "" {
		addr = "127.0.0.1:6380"
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		// The demo needs no fixed port: take a free one when the default is busy.
		if !o.Demo || o.RedisAddr != "" {
			return "", "", nil, true, fmt.Errorf("start embedded redis on DEV_REDIS_ADDR %s: %w", addr, err)
		}
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return "", "", nil, true, fmt.Errorf("start embedded redis: %w", err)
		}
	}
	return "redis://" + m.Addr() + "/0", fmt.Sprintf("%s   (embedded; redis-cli -h %s -p %s)", m.Addr(), m.Host(), m.Port()), m.Close, true, nil
}

// Run starts Redis, the API and the workers, and serves until ctx ends (or,
// with Demo, until the demo orders finished).
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	url, where, stopRedis, embedded, err := startRedis(o)
	if err != nil {
		return err
	}
	defer stopRedis()
	cfg.RedisURL = url
	if cfg.HTTPAddr == ":8080" {
		cfg.HTTPAddr = "127.0.0.1:8080"
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil && o.Demo {
		ln, err = net.Listen("tcp", "127.0.0.1:0") // the demo needs no fixed port
	}
	if err != nil {
		return fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	log := config.NewLogger("warn", os.Stderr)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return api.Serve(gctx, ln, cfg, log) })
	for range max(o.Workers, 1) {
		g.Go(func() error { return worker.Run(gctx, cfg, log) })
	}
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(o.Out, `streamsaga is running
  API        %s   (try: curl %s/sagas?status=COMPLETED)
  dashboard  %s/ui/
  metrics    %s/metrics
  Redis      %s
  workers    %d, all services; new sagas: %s (SAGA_MODE)
`, base, base, base, base, where, max(o.Workers, 1), cfg.Mode)
	if embedded {
		fmt.Fprint(o.Out, embeddedBanner)
	}
	fmt.Fprintln(o.Out, "Stop with Ctrl-C.")
	var demoErr error
	if o.Demo {
		demoErr = runDemo(gctx, base, o.Out)
		cancel()
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return demoErr
}

func waitReady(ctx context.Context, base string) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if code, err := call(ctx, "GET", base+"/readyz", nil, nil); err == nil && code == 200 {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("API not ready after 10s")
}
