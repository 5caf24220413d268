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
	"time"

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
}

// Run starts Redis, the API and the workers, and serves until ctx ends (or,
// with Demo, until the demo orders finished).
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	srv, err := redistest.Start(redistest.Options{AOF: "everysec"})
	if err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	defer srv.Close()
	cfg.RedisURL = srv.URL()
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
  Redis      %s   (redis-cli -p %d; data in %s)
  workers    %d, all services; new sagas: %s (SAGA_MODE)
Stop with Ctrl-C.
`, base, base, srv.Addr(), srv.Port, srv.Dir, max(o.Workers, 1), cfg.Mode)
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
