package streams

import (
	"context"
	_ "embed"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed trim.lua
var trimSource string

var trimScript = redis.NewScript(trimSource)

// Trim removes the entries of stream older than retention that every
// consumer group has read and acknowledged. It is safe to run from any number
// of workers at once: the check and the trim are one script.
func Trim(ctx context.Context, rdb redis.UniversalClient, stream string, retention time.Duration) (int64, error) {
	cutoff, err := rdb.Time(ctx).Result()
	if err != nil {
		return 0, fmt.Errorf("redis time: %w", err)
	}
	minID := strconv.FormatInt(cutoff.Add(-retention).UnixMilli(), 10) + "-0"
	n, err := trimScript.Run(ctx, rdb, []string{stream}, minID).Int64()
	if err != nil {
		return 0, fmt.Errorf("trim %s: %w", stream, err)
	}
	return n, nil
}

// Trimmer trims a set of streams periodically.
type Trimmer struct {
	RDB       redis.UniversalClient
	Streams   []string
	Retention time.Duration
	Interval  time.Duration
	Logger    *slog.Logger
}

// Run trims every Interval until ctx is done.
func (t *Trimmer) Run(ctx context.Context) error {
	interval := t.Interval
	if interval <= 0 {
		interval = 10 * time.Second
	}
	log := t.Logger
	if log == nil {
		log = slog.Default()
	}
	RunEvery(ctx, interval, func(ctx context.Context) {
		for _, s := range t.Streams {
			if n, err := Trim(ctx, t.RDB, s, t.Retention); err != nil {
				if ctx.Err() == nil {
					log.WarnContext(ctx, "trim stream", "stream", s, "err", err)
				}
			} else if n > 0 {
				log.DebugContext(ctx, "trimmed stream", "stream", s, "removed", n)
			}
		}
	})
	return nil
}
