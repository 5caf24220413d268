package redistest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of masters only, each a redis-server child
// process on a free loopback port.
type Cluster struct {
	Nodes    []*Server
	busPorts []int
}

// StartCluster starts n masters with the given AOF fsync policy ("" for no
// persistence), gives each an even share of the slots, joins them and waits
// until every node sees the cluster ok.
func StartCluster(n int, aof string) (*Cluster, error) {
	c := &Cluster{}
	for range n {
		// The bus port defaults to port + 10000, which does not exist for a
		// port above 55535: give it a free port of its own.
		bus, err := FreePort()
		if err != nil {
			c.Close()
			return nil, err
		}
		s, err := Start(Options{AOF: aof, Args: []string{"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}})
		if err != nil {
			c.Close()
			return nil, err
		}
		c.Nodes = append(c.Nodes, s)
		c.busPorts = append(c.busPorts, bus)
	}
	// Slots split evenly, then every node meets the first: what
	// redis-cli --cluster create does, but for any number of masters.
	ctx := context.Background()
	per := 16384 / n
	for i, s := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == n-1 {
			hi = 16383
		}
		cl := s.Client()
		err := cl.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err()
		if err == nil && i > 0 {
			// The bus port must be named: it is not port + 10000 here.
			err = cl.Do(ctx, "CLUSTER", "MEET", "127.0.0.1", c.Nodes[0].Port, c.busPorts[0]).Err()
		}
		cl.Close()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("form the cluster: %w", err)
		}
	}
	if err := c.WaitOK(30 * time.Second); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// StartClusterT starts a cluster for one test, with AOF (appendfsync
// always) so that a master can be killed and restarted, and stops it when
// the test ends.
func StartClusterT(t testing.TB, n int) *Cluster {
	t.Helper()
	c, err := StartCluster(n, "always")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr()
	}
	return out
}

// Client is a cluster client seeded with every node.
func (c *Cluster) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs(), Protocol: 2})
}

// WaitOK waits until every node reports cluster_state:ok and knows every
// other node.
func (c *Cluster) WaitOK(limit time.Duration) error {
	deadline := time.Now().Add(limit)
	ctx := context.Background()
	for {
		ok := true
		for _, s := range c.Nodes {
			cl := s.Client()
			info, err := cl.ClusterInfo(ctx).Result()
			cl.Close()
			if err != nil || !strings.Contains(info, "cluster_state:ok") ||
				!strings.Contains(info, fmt.Sprintf("cluster_known_nodes:%d", len(c.Nodes))) {
				ok = false
				break
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ok within %s", limit)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Close stops every node.
func (c *Cluster) Close() {
	for _, s := range c.Nodes {
		s.Close()
	}
}
