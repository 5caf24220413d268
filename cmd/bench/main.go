// Command bench measures sagas per second and latency from start to final
// state. It starts its own redis-server (or uses REDIS_URL with -redis-url),
// spawns K worker processes and drives a closed loop of W sagas in flight
// through the same code path as POST /orders (or through the HTTP API with
// -http).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/bench"
	"github.com/streamsaga/streamsaga/worker"
)

// roleEnv marks a child process started by bench to run a worker.
const roleEnv = "STREAMSAGA_BENCH_ROLE"

func main() {
	if os.Getenv(roleEnv) == "worker" {
		runWorker()
		return
	}
	var o bench.Options
	flag.IntVar(&o.Workers, "workers", 2, "worker processes")
	flag.IntVar(&o.Sagas, "sagas", 20000, "sagas to run, warm-up included")
	flag.IntVar(&o.InFlight, "inflight", 200, "sagas in flight (closed loop)")
	flag.BoolVar(&o.HTTP, "http", false, "place orders through the HTTP API instead of the order service")
	flag.BoolVar(&o.Mix, "mix", false, "make 10% of the sagas compensate")
	flag.StringVar(&o.Mode, "mode", "choreography", "saga style: choreography or orchestration")
	flag.StringVar(&o.RedisURL, "redis-url", "", "use this Redis instead of starting one (it is not flushed)")
	flag.BoolVar(&o.JSON, "json", false, "print one JSON line")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	o.WorkerEnv = []string{roleEnv + "=worker"}
	if err := bench.Run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func runWorker() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := worker.Run(ctx, cfg, config.NewLogger("error", os.Stderr)); err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		os.Exit(1)
	}
}
