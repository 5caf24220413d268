package streams

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientOptions tune a client made by Connect.
type ClientOptions struct {
	// PoolSize is the connection pool size; 0 keeps go-redis's default.
	PoolSize int
	// Name is sent with CLIENT SETNAME so that CLIENT LIST shows who is who.
	Name string
}

// Connect makes a client from a redis:// or rediss:// URL. It does not dial:
// call Ping to find out whether Redis is there.
func Connect(url string, o ClientOptions) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	if o.PoolSize > 0 {
		opts.PoolSize = o.PoolSize
	}
	opts.ClientName = o.Name
	// Blocking reads rely on their own BLOCK; short timeouts elsewhere keep a
	// stalled Redis from hanging an HTTP request or a handler for long.
	opts.DialTimeout = 2 * time.Second
	opts.ReadTimeout = 3 * time.Second
	opts.WriteTimeout = 3 * time.Second
	opts.ContextTimeoutEnabled = true
	// RESP2 keeps the reply shapes of XAUTOCLAIM and XINFO the same as the
	// documented ones that scripts and parsers here rely on.
	opts.Protocol = 2
	opts.DisableIdentity = true
	return redis.NewClient(opts), nil
}

// Ping checks that Redis answers within the context's deadline.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}
