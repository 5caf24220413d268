package streams

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// EnsureGroup creates a consumer group at the start of a stream, creating the
// stream too. An existing group is left as it is.
func EnsureGroup(ctx context.Context, rdb redis.UniversalClient, stream, group string) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP") {
		return fmt.Errorf("create group %s on %s: %w", group, stream, err)
	}
	return nil
}

// Subscription says which streams a group reads in one partition.
type Subscription struct {
	Group     string
	Partition int
	Streams   []string
}

// EnsureGroups creates the groups of all subscriptions.
func EnsureGroups(ctx context.Context, rdb redis.UniversalClient, subs []Subscription) error {
	for _, s := range subs {
		for _, stream := range s.Streams {
			if err := EnsureGroup(ctx, rdb, stream, s.Group); err != nil {
				return err
			}
		}
	}
	return nil
}
