// Command worker runs streamsaga's services, reclaimer and trimmer. Run as
// many copies as you like; they share nothing but Redis. Run it with -h for
// its flags and the environment variables it reads.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/cli"
	"github.com/streamsaga/streamsaga/internal/redislog"
	"github.com/streamsaga/streamsaga/worker"
)

const summary = `worker runs streamsaga's services: the consumer groups of WORKER_SERVICES
(the orchestrator included), the reclaimer of pending entries, the deadline
sweeper and the stream trimmers. Run as many copies as you like; they share
nothing but Redis. With WORKER_METRICS_ADDR set it serves /metrics, /healthz
(liveness) and /readyz (Redis answers within 1s and its consumer groups are
set up) there. SIGTERM or Ctrl-C stops reading, drains the entries in hand
and stops it.`

const notes = `Container healthcheck (the image has no curl): set WORKER_METRICS_ADDR (for
example :9091) and run worker -healthcheck. Without WORKER_METRICS_ADDR the
worker serves no HTTP and -healthcheck always fails.`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := cli.NewFlagSet("worker")
	healthcheck := fs.Bool("healthcheck", false, "GET /readyz of the worker on WORKER_METRICS_ADDR and exit 0 if it is ready, 1 if not")
	cmd := cli.Command{Name: "worker", Summary: summary, Flags: fs, Notes: notes}
	if exit, status := cmd.Parse(args, stdout, stderr); exit {
		return status
	}
	cfg, err := config.Load()
	if *healthcheck {
		var addr string
		if err == nil {
			addr = cfg.MetricsAddr
			if addr == "" {
				err = errors.New("WORKER_METRICS_ADDR is not set: the worker serves /readyz only there")
			}
		}
		return cli.HealthcheckStatus(ctx, "worker", addr, err, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "worker:", err)
		return 2
	}
	log := config.NewLogger(cfg.LogLevel, stderr)
	redislog.Use(log)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := worker.Run(ctx, cfg, log); err != nil {
		log.Error("worker failed", "err", err)
		if errors.Is(err, config.ErrInvalid) {
			return 2
		}
		return 1
	}
	return 0
}
