// Command dev runs the whole product locally with one command: a
// redis-server that keeps its data between runs, the API and two workers.
// With -demo it places one order of each path, prints their outcomes and
// exits. Run it with -h for its flags and the environment it reads.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/cli"
	"github.com/streamsaga/streamsaga/internal/devrun"
	"github.com/streamsaga/streamsaga/internal/redislog"
)

const summary = `dev runs streamsaga on this machine with one command: a Redis, the API and
two workers in one process, and prints where everything is (API, console,
metrics, Redis, and the sagactl command line that reads it).

Its redis-server listens on 127.0.0.1:6390 (not 6379, where a system Redis
may run) and keeps its data (AOF) in the data directory, so a restart finds
every saga again; -fresh starts empty. A redis-server that an interrupted run
left behind on that directory is taken over; anything else on the port is an
error: choose another with -redis-addr or DEV_REDIS_ADDR. Without
redis-server on PATH (or with -embedded) an in-process Redis-compatible
server stands in and keeps nothing.

-demo places one order of each path, prints how each ended and exits (status
1 if one ended otherwise); it uses a free port and a temporary directory, so
it never touches the data directory.`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	dataDir, dataErr := devrun.DefaultDataDir()
	fs := cli.NewFlagSet("dev")
	demo := fs.Bool("demo", false, "place one order of each path, print the outcomes and exit")
	workers := fs.Int("workers", 2, "number of workers")
	embedded := fs.Bool("embedded", false, "use the embedded Redis-compatible server even when redis-server is installed")
	redisAddr := fs.String("redis-addr", devrun.DefaultRedisAddr, "`address` of dev's Redis, on loopback; DEV_REDIS_ADDR sets it too")
	data := fs.String("data", dataDir, "data `directory` of dev's redis-server, kept between runs")
	fresh := fs.Bool("fresh", false, "remove the Redis data in the data directory first: start empty")
	cmd := cli.Command{Name: "dev", Summary: summary, Flags: fs, Env: []cli.EnvVar{
		{Name: "DEV_REDIS_ADDR", Default: devrun.DefaultRedisAddr, Help: "address of dev's Redis (-redis-addr wins)"},
		{Name: "XDG_STATE_HOME", Default: "~/.local/state", Help: "the data directory defaults to $XDG_STATE_HOME/streamsaga/dev"},
	}, Notes: "dev sets REDIS_URL itself, binds HTTP_ADDR's default to 127.0.0.1:8080, gives each worker\n" +
		"its own metrics address (WORKER_METRICS_ADDR's port + i when set, else free ports)\n" +
		"and logs at warn unless LOG_LEVEL is set."}
	if exit, status := cmd.Parse(args, stdout, stderr); exit {
		return status
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if *demo && (given["data"] || *fresh) {
		fmt.Fprintln(stderr, "dev: -demo uses a temporary directory: -data and -fresh do not apply")
		return 2
	}
	if *workers < 1 || *workers > 64 {
		fmt.Fprintf(stderr, "dev: -workers must be between 1 and 64, got %d\n", *workers)
		return 2
	}
	addr := os.Getenv("DEV_REDIS_ADDR")
	if given["redis-addr"] {
		addr = *redisAddr
	}
	if *data == "" && !*demo {
		fmt.Fprintln(stderr, "dev:", dataErr)
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(stderr, "dev:", err)
		return 2
	}
	level := "warn" // the banner is what a person reads; LOG_LEVEL asks for more
	if _, ok := os.LookupEnv("LOG_LEVEL"); ok {
		level = cfg.LogLevel
	}
	log := config.NewLogger(level, stderr)
	redislog.Use(log)
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = devrun.Run(ctx, cfg, devrun.Options{Demo: *demo, Workers: *workers, Out: stdout, Embedded: *embedded,
		RedisAddr: addr, DataDir: *data, Fresh: *fresh, Logger: log})
	if err != nil {
		fmt.Fprintln(stderr, "dev:", err)
		return 1
	}
	return 0
}
