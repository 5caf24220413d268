package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// On a 3-master Redis Cluster the four paths end as on one Redis, in both
// styles: every transition's keys share the saga's partition (one slot), so
// each is still one script. With 12 partitions the sagas' keys land on
// every master.
func TestFourPathsOnRedisCluster(t *testing.T) {
	c := redistest.StartClusterT(t, 3)
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			s := sagatest.NewOnCluster(t, c, map[string]string{"SAGA_PARTITIONS": "12", "SAGA_MODE": mode})
			placed := fourPathsOn(t, s, mode)
			// More sagas, so that missing a master by chance is unlikely
			// (3 × (2/3)^42).
			for range 30 {
				o, err := s.PlaceOrder("c-spread", sagatest.I("sku-a", 1, 10))
				if err != nil {
					t.Fatal(err)
				}
				placed = append(placed, o)
			}
			ctx := context.Background()
			cc := c.Client()
			defer cc.Close()
			masters := map[string]int{}
			for _, o := range placed {
				node, err := cc.MasterForKey(ctx, s.KS.Saga(s.KS.PartitionOf(o.SagaID), o.SagaID))
				if err != nil {
					t.Fatal(err)
				}
				masters[node.Options().Addr]++
				if n, err := node.Exists(ctx, s.KS.Saga(s.KS.PartitionOf(o.SagaID), o.SagaID)).Result(); err != nil || n != 1 {
					t.Errorf("saga %s is not on the master that owns its slot", o.SagaID)
				}
			}
			if len(masters) != 3 {
				t.Errorf("saga hashes on %d masters, want all 3: %v", len(masters), masters)
			}
			t.Logf("sagas per master: %v", masters)
			s.WaitFinished(placed, 20*time.Second)
			s.WaitAtRest(20 * time.Second) // the finalisers' hops too
			// The reservation is on another slot ({inventory}): on a cluster
			// it goes behind a barrier, which the finaliser of a completed
			// saga leaves to expire.
			for _, o := range placed {
				if o.Want != sagatest.Completed {
					continue
				}
				if d := cc.TTL(ctx, s.KS.Barrier("inventory", o.SagaID)).Val(); d <= 0 {
					t.Errorf("barrier of completed saga %s: TTL %v", o.SagaID, d)
				}
			}
		})
	}
}
