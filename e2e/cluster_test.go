package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// On a 3-master Redis Cluster: a worker binary killed with SIGKILL under
// load loses nothing (both styles), and a master killed and restarted on its
// AOF in the middle of a load loses no acknowledged order; every saga ends
// with stock and money intact and nothing pending.
func TestOnRedisCluster(t *testing.T) {
	c := redistest.StartClusterT(t, 3)
	for _, mode := range []string{"choreography", "orchestration"} {
		t.Run("worker SIGKILL/"+mode, func(t *testing.T) {
			workerSIGKILLUnderLoadOn(t, sagatest.NewOnCluster(t, c, map[string]string{
				"CLAIM_MIN_IDLE": "1s", "SAGA_MODE": mode, "SAGA_PARTITIONS": "12"}))
		})
	}
	t.Run("master restart", func(t *testing.T) { masterRestart(t, c) })
}

func masterRestart(t *testing.T, c *redistest.Cluster) {
	s := sagatest.NewOnCluster(t, c, map[string]string{"CLAIM_MIN_IDLE": "1s", "SAGA_PARTITIONS": "12", "MAX_DELIVERIES": "20"})
	s.StartAPI(nil)
	initial := map[string]int64{"sku-a": 100000}
	s.SetStock("sku-a", initial["sku-a"])
	for range 2 {
		start(t, "worker", workerEnv(s, map[string]string{"PAYMENT_LATENCY": "5ms"})).waitFor(t, "worker started")
	}
	restarted := make(chan error, 1)
	victim := c.Nodes[1]
	var victimKeys int64
	placed, want, unanswered := placeRetrying(t, s, "cluster", 150, func() {
		vc := victim.Client()
		victimKeys, _ = vc.DBSize(context.Background()).Result()
		vc.Close()
		victim.Kill()
		time.Sleep(500 * time.Millisecond)
		if err := victim.Restart(); err != nil {
			restarted <- err
			return
		}
		restarted <- c.WaitOK(30 * time.Second)
	})
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if victimKeys == 0 {
		t.Fatal("the killed master held no key: the test exercised nothing")
	}
	t.Logf("the killed master held %d keys", victimKeys)
	t.Logf("%d orders, %d requests retried across the master's restart", len(placed), unanswered)
	s.WaitFinished(placed, 90*time.Second)
	s.WaitAtRest(30 * time.Second)
	r := s.MustCheck(placed, initial)
	s.MustOutcomes(placed, want)
	t.Logf("statuses %v", r.ByStatus)
}
