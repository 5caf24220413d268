// Command sagactl inspects and operates streamsaga from a terminal: sagas,
// streams, pending entries, dead letters, retries. It reads REDIS_URL,
// SAGA_PREFIX and SAGA_PARTITIONS like the other binaries; `sagactl --help`
// lists its commands, variables and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamsaga/streamsaga/internal/ctl"
	"github.com/streamsaga/streamsaga/internal/redislog"
)

func main() {
	// go-redis would print its own lines (dial failures, pool notices)
	// around sagactl's one-line error; they say nothing that line doesn't.
	redislog.Use(nil)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := ctl.Run(ctx, os.Args[1:], nil, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
