package trip

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// New is the trip saga's engine on rdb under prefix (its keys start with
// it), with its partners.
func New(rdb redis.UniversalClient, opts saga.Options) (*saga.Engine, *saga.Saga[Trip], *Agency, error) {
	a := &Agency{
		Hotels: &External{RDB: rdb, Name: opts.Prefix + ":{hotels}"},
		Cards:  &External{RDB: rdb, Name: opts.Prefix + ":{cards}"},
	}
	s := a.Saga()
	e, err := saga.New(rdb, opts, s)
	return e, s, a, err
}

// Work runs a worker of the trip saga until ctx is done: every service and
// the orchestrator, with a reader connection of its own. claimMinIdle is
// how long an entry stays with a worker that died before another reclaims
// it (0: the runner's default).
func Work(ctx context.Context, url string, e *saga.Engine, rdb redis.UniversalClient, claimMinIdle time.Duration, log *slog.Logger) error {
	reader, err := streams.Connect(url, streams.ClientOptions{PoolSize: 64, Name: "trip-reader"})
	if err != nil {
		return err
	}
	defer reader.Close()
	host, _ := os.Hostname()
	w := &saga.Worker{Engine: e, RDB: rdb, Reader: reader, Logger: log,
		Runner: streams.RunnerOptions{Consumer: fmt.Sprintf("%s-%d-%d", host, os.Getpid(), time.Now().UnixNano()%1e6), ClaimMinIdle: claimMinIdle}}
	return w.Run(ctx)
}
