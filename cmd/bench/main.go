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
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

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
	flag.IntVar(&o.Cluster, "cluster", 0, "start a Redis Cluster of this many masters instead of one redis-server")
	flag.IntVar(&o.Partitions, "partitions", 0, "SAGA_PARTITIONS (default 4 per cluster master, else 1)")
	flag.StringVar(&o.RedisURL, "redis-url", "", "use this Redis instead of starting one (it is not flushed)")
	flag.BoolVar(&o.JSON, "json", false, "print one JSON line")
	flag.BoolVar(&o.Verbose, "v", false, "also print Redis calls and time per command")
	var soak bench.SoakOptions
	flag.DurationVar(&soak.Duration, "soak", 0, "soak instead: start sagas at -rate for this long, sampling stream lengths and memory")
	flag.Float64Var(&soak.Rate, "rate", 1000, "soak: sagas started per second")
	flag.DurationVar(&soak.Sample, "sample", 30*time.Second, "soak: time between samples")
	sagaRetention := flag.String("saga-retention", "1m", "soak: SAGA_RETENTION of the workers")
	streamRetention := flag.String("stream-retention", "30s", "soak: STREAM_RETENTION of the workers")
	profile := flag.String("cpuprofile", "", "write CPU profiles of the workers (worker-N.pprof) and the driver (driver.pprof) to this directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	o.WorkerEnv = []string{roleEnv + "=worker"}
	if *profile != "" {
		o.WorkerEnv = append(o.WorkerEnv, profileEnv+"="+*profile)
		stopProfile, err := startProfile(filepath.Join(*profile, "driver.pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		defer stopProfile()
	}
	run := func() error { return bench.Run(ctx, o, os.Stdout) }
	if soak.Duration > 0 {
		o.WorkerEnv = append(o.WorkerEnv, "SAGA_RETENTION="+*sagaRetention, "STREAM_RETENTION="+*streamRetention)
		run = func() error { return bench.Soak(ctx, o, soak, os.Stdout) }
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		stop()
		os.Exit(1)
	}
}

// profileEnv names the directory a worker writes its CPU profile to.
const profileEnv = "STREAMSAGA_BENCH_CPUPROFILE"

func startProfile(path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

func runWorker() {
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		os.Exit(2)
	}
	if dir := os.Getenv(profileEnv); dir != "" {
		stopProfile, err := startProfile(filepath.Join(dir, "worker-"+os.Getenv("STREAMSAGA_BENCH_WORKER")+".pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench worker:", err)
			os.Exit(1)
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := worker.Run(ctx, cfg, config.NewLogger("error", os.Stderr)); err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		os.Exit(1)
	}
}
