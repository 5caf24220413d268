// Package devrun runs the whole product in one process for local use: a
// redis-server child, the API and N workers (each a full worker with its
// own consumer name and metrics address, as separate processes would be).
//
// Its redis-server listens on a fixed address (DefaultRedisAddr) and keeps
// its data (AOF) in a directory that outlives the run (DefaultDataDir), so
// that a restart finds every saga again; Fresh empties it first. The demo
// uses a free port and a temporary directory instead, so that demo runs
// are independent. Without redis-server on PATH (or with Embedded) an
// in-process Redis-compatible server stands in, keeping nothing.
package devrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/config"
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
	// RedisAddr is where Redis listens (-redis-addr, DEV_REDIS_ADDR);
	// empty: DefaultRedisAddr, or for the demo a free port.
	RedisAddr string
	// DataDir is redis-server's data directory; empty: DefaultDataDir().
	// The demo does not use it.
	DataDir string
	// Fresh removes the Redis data in DataDir before starting.
	Fresh bool
	// Logger of the API and the workers; nil: JSON at WARN on stderr.
	Logger *slog.Logger
	// OnReady, when set, is told the endpoints once everything listens.
	OnReady func(Endpoints)
}

// Endpoints of a running dev instance.
type Endpoints struct {
	// API is the API's base URL; Workers the base URLs of the workers'
	// /metrics, /healthz and /readyz.
	API     string
	Workers []string
	// RedisURL is the REDIS_URL of its Redis.
	RedisURL string
}

const embeddedBanner = `  NOTE: embedded Redis (miniredis) — redis-server was not found on PATH (or -embedded).
        It keeps nothing on disk, stream statistics (lag) are approximate, and a
        stopping worker waits for its short BLOCK instead of CLIENT UNBLOCK.
        Install redis-server for the real thing.
`

// Run starts Redis, the API and the workers, and serves until ctx ends (or,
// with Demo, until the demo orders finished).
func Run(ctx context.Context, cfg *config.Config, o Options) error {
	log := o.Logger
	if log == nil {
		log = config.NewLogger("warn", os.Stderr)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	workers := max(o.Workers, 1)
	rds, err := startRedis(ctx, o)
	if err != nil {
		return err
	}
	defer rds.stop()
	cfg.RedisURL = rds.url
	lns, err := listen(cfg, workers, o.Demo)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return api.Serve(gctx, lns[0], cfg, log) })
	ep := Endpoints{API: baseURL(lns[0]), RedisURL: rds.url}
	for _, ln := range lns[1:] {
		wcfg := *cfg
		wcfg.MetricsAddr = ln.Addr().String()
		g.Go(func() error { return worker.Serve(gctx, ln, &wcfg, log) })
		ep.Workers = append(ep.Workers, baseURL(ln))
	}
	if o.Demo {
		// The demo exits when its orders are done: no URLs to visit.
		fmt.Fprintf(o.Out, "demo: the API on %s, workers %d, Redis %s\n", ep.API, len(ep.Workers), rds.where)
	} else {
		printBanner(o.Out, cfg, ep, rds)
	}
	if o.OnReady != nil {
		o.OnReady(ep)
	}
	var demoErr error
	if o.Demo {
		demoErr = waitReady(gctx, ep)
		if demoErr == nil {
			demoErr = runDemo(gctx, ep.API, cfg.AdminToken, o.Out)
		}
		cancel()
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return demoErr
}

// listen opens the API's listener, then one metrics listener per worker:
// WORKER_METRICS_ADDR's port + i for worker i when it is set, else free
// ports (two workers in one process cannot share one address). The demo
// takes free ports when the chosen ones are busy.
func listen(cfg *config.Config, workers int, demo bool) (lns []net.Listener, err error) {
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	if cfg.HTTPAddr == ":8080" {
		cfg.HTTPAddr = "127.0.0.1:8080" // a laptop's dev server is not for the network
	}
	ln, err := listenOr(cfg.HTTPAddr, demo)
	if err != nil {
		return nil, fmt.Errorf("listen on HTTP_ADDR %s: %w", cfg.HTTPAddr, err)
	}
	lns = append(lns, ln)
	host, port := "127.0.0.1", 0
	if cfg.MetricsAddr != "" {
		h, p, err := net.SplitHostPort(cfg.MetricsAddr)
		if err == nil {
			port, err = strconv.Atoi(p)
		}
		if err != nil {
			return lns, fmt.Errorf("WORKER_METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		host = h
	}
	for i := range workers {
		addr := net.JoinHostPort(host, "0")
		if port != 0 {
			addr = net.JoinHostPort(host, strconv.Itoa(port+i))
		}
		ln, err := listenOr(addr, demo)
		if err != nil {
			return lns, fmt.Errorf("listen on %s for worker %d's metrics (WORKER_METRICS_ADDR's port + %d): %w", addr, i+1, i, err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// listenOr listens on addr; with orFree, on a free loopback port when addr
// is busy.
func listenOr(addr string, orFree bool) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && orFree {
		return net.Listen("tcp", "127.0.0.1:0")
	}
	return ln, err
}

// baseURL is the http:// URL of a listener, on loopback when it listens on
// every interface.
func baseURL(ln net.Listener) string {
	a := ln.Addr().(*net.TCPAddr)
	host := a.IP.String()
	if a.IP.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(a.Port))
}

func printBanner(w io.Writer, cfg *config.Config, ep Endpoints, rds *devRedis) {
	fmt.Fprintf(w, "streamsaga is running\n")
	fmt.Fprintf(w, "  API        %s   (try: curl %s/sagas?status=COMPLETED)\n", ep.API, ep.API)
	fmt.Fprintf(w, "  console    %s/ui/\n", ep.API)
	fmt.Fprintf(w, "  metrics    %s/metrics   (API)\n", ep.API)
	for i, u := range ep.Workers {
		fmt.Fprintf(w, "             %s/metrics   (worker %d; /healthz and /readyz beside it)\n", u, i+1)
	}
	fmt.Fprintf(w, "  Redis      %s\n", rds.where)
	fmt.Fprintf(w, "  workers    %d, all services; new sagas: %s (SAGA_MODE)\n", len(ep.Workers), cfg.Mode)
	fmt.Fprintf(w, "  sagactl    %s go run ./cmd/sagactl ls\n", sagactlEnv(cfg))
	if cfg.AdminToken == "" {
		fmt.Fprintf(w, "  admin      open: ADMIN_TOKEN is not set, anyone can retry, set stock and replay\n")
	} else {
		fmt.Fprintf(w, "  admin      retry, stock and replay need Authorization: Bearer $ADMIN_TOKEN\n")
	}
	if rds.embedded {
		fmt.Fprint(w, embeddedBanner)
	}
	fmt.Fprintln(w, "Stop with Ctrl-C.")
}

// sagactlEnv is the environment sagactl needs to read this instance: its
// REDIS_URL, and the key layout when it is not the default.
func sagactlEnv(cfg *config.Config) string {
	vars := []string{"REDIS_URL=" + cfg.RedisURL}
	if cfg.Prefix != "saga" {
		vars = append(vars, "SAGA_PREFIX="+cfg.Prefix)
	}
	if cfg.Partitions != 1 {
		vars = append(vars, "SAGA_PARTITIONS="+strconv.Itoa(cfg.Partitions))
	}
	return strings.Join(vars, " ")
}

// waitReady waits until the API and every worker answer /readyz.
func waitReady(ctx context.Context, ep Endpoints) error {
	deadline := time.Now().Add(10 * time.Second)
	for _, base := range append([]string{ep.API}, ep.Workers...) {
		for {
			if code, err := call(ctx, "GET", base+"/readyz", nil, nil); err == nil && code == 200 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after 10s", base)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}
