// Command api serves streamsaga's HTTP API. Run it with -h for its flags
// and the environment variables it reads.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamsaga/streamsaga/api"
	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/cli"
	"github.com/streamsaga/streamsaga/internal/redislog"
)

const summary = `api serves streamsaga's HTTP API: orders, sagas, inventory and dead letters,
the console at /ui/, Prometheus metrics at /metrics, and /healthz (liveness)
and /readyz (Redis answers) — all on HTTP_ADDR. It starts even when Redis is
down and answers 503 until Redis is back. SIGTERM or Ctrl-C drains the
requests in flight and stops it.`

const notes = `Container healthcheck (the image has no curl): api -healthcheck`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("api")
	healthcheck := fs.Bool("healthcheck", false, "GET /readyz of the API on HTTP_ADDR and exit 0 if it is ready, 1 if not")
	cmd := cli.Command{Name: "api", Summary: summary, Flags: fs, Notes: notes}
	if exit, status := cmd.Parse(args, stdout, stderr); exit {
		return status
	}
	cfg, err := config.Load()
	if *healthcheck {
		var addr string
		if err == nil {
			addr = cfg.HTTPAddr
		}
		return cli.HealthcheckStatus(ctx, "api", addr, err, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "api:", err)
		return 2
	}
	log := config.NewLogger(cfg.LogLevel, stderr)
	redislog.Use(log)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := api.Run(ctx, cfg, log); err != nil {
		log.Error("api failed", "err", err)
		if errors.Is(err, config.ErrInvalid) {
			return 2
		}
		return 1
	}
	return 0
}
