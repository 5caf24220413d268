// Command dev runs the whole product locally with one command: a
// redis-server on a free port, the API and two workers. With -demo it places
// one order of each path, prints their outcomes and exits.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/devrun"
)

func main() {
	demo := flag.Bool("demo", false, "place one order of each path, print the outcomes and exit")
	workers := flag.Int("workers", 2, "number of workers")
	embedded := flag.Bool("embedded", false, "use the embedded Redis-compatible server even when redis-server is installed")
	flag.Parse()
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	err = devrun.Run(ctx, cfg, devrun.Options{Demo: *demo, Workers: *workers, Out: os.Stdout,
		Embedded: *embedded, RedisAddr: os.Getenv("DEV_REDIS_ADDR")})
	if errors.Is(err, devrun.ErrDemoFailed) {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev:", err)
		os.Exit(1)
	}
}
