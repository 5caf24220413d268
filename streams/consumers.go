package streams

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed consumers.lua
var consumersSource string

var consumersScript = redis.NewScript(consumersSource)

// RemoveIdleConsumers deletes the consumers of group on stream that hold no
// pending entry and have been idle for at least minIdle, except self. It
// keeps XINFO CONSUMERS bounded as workers come and go.
func RemoveIdleConsumers(ctx context.Context, rdb redis.UniversalClient, stream, group, self string, minIdle time.Duration) (int64, error) {
	n, err := consumersScript.Run(ctx, rdb, []string{stream}, group, minIdle.Milliseconds(), self).Int64()
	if err != nil {
		return 0, fmt.Errorf("remove idle consumers of %s/%s: %w", stream, group, err)
	}
	return n, nil
}
