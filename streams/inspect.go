package streams

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// GroupInfo is one consumer group of a stream.
type GroupInfo struct {
	Name          string `json:"name"`
	Pending       int64  `json:"pending"`
	Lag           int64  `json:"lag"`
	Consumers     int64  `json:"consumers"`
	LastDelivered string `json:"last_delivered"`
}

// StreamInfo is a stream's length and groups.
type StreamInfo struct {
	Stream string      `json:"stream"`
	Length int64       `json:"length"`
	Groups []GroupInfo `json:"groups"`
}

// Inspect reads the length and groups of the streams that exist among keys.
func Inspect(ctx context.Context, rdb redis.UniversalClient, keys []string) ([]StreamInfo, error) {
	var out []StreamInfo
	for _, key := range keys {
		n, err := rdb.Exists(ctx, key).Result()
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", key, err)
		}
		if n == 0 {
			continue
		}
		si := StreamInfo{Stream: key, Groups: []GroupInfo{}}
		if si.Length, err = rdb.XLen(ctx, key).Result(); err != nil {
			return nil, fmt.Errorf("inspect %s: %w", key, err)
		}
		groups, err := rdb.XInfoGroups(ctx, key).Result()
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", key, err)
		}
		for _, g := range groups {
			si.Groups = append(si.Groups, GroupInfo{Name: g.Name, Pending: g.Pending, Lag: max(g.Lag, 0),
				Consumers: g.Consumers, LastDelivered: g.LastDeliveredID})
		}
		out = append(out, si)
	}
	return out, nil
}
