package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// Two workers that split the partitions (WORKER_PARTITIONS) finish every
// saga between them, and each partition's streams are read by one of them
// only.
func TestWorkersSplitPartitions(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_PARTITIONS": "4"})
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"WORKER_PARTITIONS": "0,1"})
	s.StartWorker(map[string]string{"WORKER_PARTITIONS": "2,3"})
	initial := map[string]int64{"sku-a": 1000}
	s.SetStock("sku-a", initial["sku-a"])
	var placed []sagatest.Placed
	for range 40 {
		o, err := s.PlaceOrder("c-split", sagatest.I("sku-a", 1, 100))
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
	}
	s.WaitFinished(placed, 20*time.Second)
	s.WaitAtRest(5 * time.Second)
	s.MustCheck(placed, initial)
	ctx := context.Background()
	readers := map[int]map[string]bool{}
	for p := range 4 {
		readers[p] = map[string]bool{}
		cs, err := s.RDB.XInfoConsumers(ctx, s.KS.Stream(p, handlers.OrderCreated), handlers.ServicePayment).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			readers[p][c.Name] = true
		}
		if len(cs) != 1 {
			t.Errorf("partition %d read by %d consumers, want 1", p, len(cs))
		}
	}
	for a := range 2 {
		for b := 2; b < 4; b++ {
			for name := range readers[a] {
				if readers[b][name] {
					t.Errorf("consumer %s reads partitions %d and %d", name, a, b)
				}
			}
		}
	}
}
