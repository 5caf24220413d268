// Command sagactl inspects and operates streamsaga from a terminal: sagas,
// streams, pending entries, dead letters, retries. It reads REDIS_URL,
// SAGA_PREFIX and SAGA_PARTITIONS like the other binaries.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamsaga/streamsaga/internal/ctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	os.Exit(ctl.Run(ctx, os.Args[1:], nil, os.Stdout, os.Stderr))
}
