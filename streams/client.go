package streams

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ClientOptions tune a client made by Connect.
type ClientOptions struct {
	// PoolSize is the connection pool size; 0 keeps go-redis's default.
	PoolSize int
	// Name is sent with CLIENT SETNAME so that CLIENT LIST shows who is who.
	Name string
	// TLSCAFile is a PEM file of the certificate authorities trusted for a
	// rediss:// URL (REDIS_TLS_CA_FILE); empty trusts the system's.
	TLSCAFile string
	// ClusterAddrs, when set, makes a Redis Cluster client seeded with
	// these nodes; the URL then gives only credentials and TLS.
	ClusterAddrs []string
	// FailFast makes one dial attempt and no command retries, for a tool a
	// person waits on (sagactl): an unreachable Redis is reported at once
	// rather than after go-redis's retries and their backoff.
	FailFast bool
}

// Connect makes a client from a redis:// or rediss:// URL, or a Redis
// Cluster client when o.ClusterAddrs is set. It does not dial: call Ping to
// find out whether Redis is there.
func Connect(url string, o ClientOptions) (redis.UniversalClient, error) {
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse REDIS_URL: %w", err)
	}
	if o.PoolSize > 0 {
		opts.PoolSize = o.PoolSize
	}
	opts.ClientName = o.Name
	if o.TLSCAFile != "" {
		if opts.TLSConfig == nil {
			return nil, errors.New("REDIS_TLS_CA_FILE needs a rediss:// REDIS_URL")
		}
		pem, err := os.ReadFile(o.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("read REDIS_TLS_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("REDIS_TLS_CA_FILE %s holds no PEM certificate", o.TLSCAFile)
		}
		opts.TLSConfig.RootCAs = pool
	}
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
	if o.FailFast {
		opts.DialerRetries = 1
		opts.MaxRetries = -1
	}
	if len(o.ClusterAddrs) == 0 {
		return redis.NewClient(opts), nil
	}
	if opts.DB != 0 {
		return nil, errors.New("REDIS_URL must use database 0 with REDIS_CLUSTER_ADDRS")
	}
	tlsConfig := opts.TLSConfig
	if tlsConfig != nil {
		// Each node presents its own certificate: verify each against the
		// address dialled, not against REDIS_URL's host.
		tlsConfig = tlsConfig.Clone()
		tlsConfig.ServerName = ""
	}
	addrs := make([]string, 0, len(o.ClusterAddrs))
	for _, a := range o.ClusterAddrs {
		addrs = append(addrs, strings.TrimSpace(a))
	}
	cluster := &redis.ClusterOptions{
		Addrs: addrs, ClientName: opts.ClientName, Username: opts.Username, Password: opts.Password,
		TLSConfig: tlsConfig, PoolSize: opts.PoolSize, DialTimeout: opts.DialTimeout,
		ReadTimeout: opts.ReadTimeout, WriteTimeout: opts.WriteTimeout, ContextTimeoutEnabled: true,
		Protocol: 2, DisableIdentity: true,
		// A failover or a slot migration answers MOVED/ASK or TRYAGAIN for
		// a moment; go-redis follows them up to this many times.
		MaxRedirects: 8,
	}
	if o.FailFast {
		cluster.DialerRetries = 1
		cluster.MaxRetries = -1
	}
	return redis.NewClusterClient(cluster), nil
}

// Ping checks that Redis answers within the context's deadline.
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	if err := rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("ping redis: %w", err)
	}
	return nil
}
