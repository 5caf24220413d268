package e2e

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// Redis killed with SIGKILL in the middle of a load and restarted on its
// AOF (appendfsync always): no order the API acknowledged is lost, clients
// that retried with their Idempotency-Key got one order each, and every
// order reaches its final state with stock and money intact.
func TestRedisSIGKILLWithAOFAlwaysLosesNoAcknowledgedOrder(t *testing.T) {
	rs, err := redistest.Start(redistest.Options{AOF: "always"})
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	s := sagatest.New(t, rs, map[string]string{"CLAIM_MIN_IDLE": "1s"})
	s.StartAPI(nil)
	initial := map[string]int64{"sku-a": 100000}
	s.SetStock("sku-a", initial["sku-a"])
	for range 2 {
		start(t, "worker", workerEnv(s, map[string]string{"PAYMENT_LATENCY": "5ms"})).waitFor(t, "worker started")
	}

	const n = 150
	restarted := make(chan error, 1)
	placed, want, unanswered := placeRetrying(t, s, "restart", n, func() {
		rs.Kill()
		// Longer than go-redis's own retries (≈ 1.8 s for a command, ≈ 3.3 s
		// for the pipelines the engine batches its commands in), so clients
		// see it.
		time.Sleep(4 * time.Second)
		restarted <- rs.Restart()
	})
	if err := <-restarted; err != nil {
		t.Fatal(err)
	}
	if len(placed) != n {
		t.Fatalf("%d of %d orders acknowledged", len(placed), n)
	}
	seen := map[string]bool{}
	for _, o := range placed {
		if seen[o.OrderID] {
			t.Fatalf("two keys got the same order %s", o.OrderID)
		}
		seen[o.OrderID] = true
	}
	s.WaitFinished(placed, 60*time.Second)
	s.WaitAtRest(20 * time.Second)
	r := s.MustCheck(placed, initial)
	s.MustOutcomes(placed, want)
	t.Logf("%d acknowledged orders after a Redis SIGKILL (%d attempts unanswered and retried): %v", len(placed), unanswered, r.ByStatus)
	if unanswered == 0 {
		t.Error("no request met the dead Redis: the test exercised nothing")
	}
}

// placeRetrying places n orders (one in five declined) from 6 clients, each
// with its own Idempotency-Key and retried until acknowledged, spread over
// time; fault runs in the background once a third are placed. It returns
// the orders, the status each must reach and the unanswered attempts.
func placeRetrying(t *testing.T, s *sagatest.System, keyPrefix string, n int, fault func()) ([]sagatest.Placed, []string, int) {
	t.Helper()
	var mu sync.Mutex
	var placed []sagatest.Placed
	var want []string
	unanswered := 0
	var wg sync.WaitGroup
	jobs := make(chan int)
	deadline := time.Now().Add(90 * time.Second)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				item := sagatest.I("sku-a", 1, 900)
				status := "COMPLETED"
				if i%5 == 4 {
					item.UnitPriceCents = 500000 // declined: a compensation path too
					status = "CANCELLED"
				}
				o, failed, err := s.PlaceOrderRetrying(fmt.Sprintf("%s-%d", keyPrefix, i), deadline, item)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				placed, want, unanswered = append(placed, o), append(want, status), unanswered+failed
				mu.Unlock()
				time.Sleep(10 * time.Millisecond) // spread the load over the fault
			}
		}()
	}
	for i := range n {
		if i == n/3 {
			go fault()
		}
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return placed, want, unanswered
}
