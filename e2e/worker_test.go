package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// placeLoad places n orders over all four paths from 8 clients and returns
// them with the final status each must reach; kill, if set, runs once half
// of them are placed.
func placeLoad(t *testing.T, s *sagatest.System, n int, kill func()) ([]sagatest.Placed, []string) {
	t.Helper()
	var mu sync.Mutex
	var placed []sagatest.Placed
	var want []string
	var wg sync.WaitGroup
	var once sync.Once
	jobs := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				items := []sagatest.Item{{SKU: "sku-a", Quantity: 1 + int64(i%3), UnitPriceCents: 700}}
				status := "CANCELLED"
				switch i % 10 {
				case 7:
					items[0].UnitPriceCents = 200000 // declined
				case 8:
					items = append(items, sagatest.Item{SKU: "sku-none", Quantity: 1, UnitPriceCents: 1})
				case 9:
					items = []sagatest.Item{{SKU: "sku-b", Quantity: 1001, UnitPriceCents: 1}}
				default:
					status = "COMPLETED"
				}
				o, err := s.PlaceOrder("c-load", items...)
				if err != nil {
					t.Error(err)
					continue
				}
				mu.Lock()
				placed = append(placed, o)
				want = append(want, status)
				half := len(placed) == n/2
				mu.Unlock()
				if half && kill != nil {
					once.Do(kill)
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	return placed, want
}

func workerEnv(s *sagatest.System, extra map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range s.Env {
		env[k] = v
	}
	env["LOG_LEVEL"] = "info" // the tests wait for "worker started"
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// A worker killed with SIGKILL in the middle of a load loses nothing: its
// pending entries are reclaimed by the other worker, every order reaches its
// final state, the invariants hold and nothing stays pending.
func TestWorkerSIGKILLUnderLoad(t *testing.T) {
	for _, mode := range []string{"choreography", "orchestration"} {
		t.Run(mode, func(t *testing.T) { workerSIGKILLUnderLoad(t, mode) })
	}
}

// In orchestration mode both workers run the orchestrator group too, so the
// kill takes out an orchestrator in the middle of driving sagas.
func workerSIGKILLUnderLoad(t *testing.T, mode string) {
	workerSIGKILLUnderLoadOn(t, sagatest.New(t, srv, map[string]string{"CLAIM_MIN_IDLE": "1s", "SAGA_MODE": mode}))
}

func workerSIGKILLUnderLoadOn(t *testing.T, s *sagatest.System) {
	s.StartAPI(nil)
	initial := map[string]int64{"sku-a": 100000, "sku-b": 100000}
	for sku, n := range initial {
		s.SetStock(sku, n)
	}
	// Slow services keep entries in flight, so the kill hits some.
	env := workerEnv(s, map[string]string{"PAYMENT_LATENCY": "20ms", "SHIPPING_LATENCY": "10ms"})
	victim := start(t, "worker", env)
	survivor := start(t, "worker", env)
	victim.waitFor(t, "worker started")
	survivor.waitFor(t, "worker started")
	// The victim is killed while it holds entries it read and has not
	// acknowledged: polled, not timed, so a fast machine cannot make the
	// test exercise nothing.
	var killedWithPending int64
	placed, want := placeLoad(t, s, 240, func() {
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			if n := pendingOf(t, s, victim.cmd.Process.Pid); n > 0 {
				victim.signal(syscall.SIGKILL)
				killedWithPending = n
				return
			}
		}
	})
	if code := victim.wait(5 * time.Second); code != -1 && victim.cmd.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("victim exited %d, not by SIGKILL", code)
	}
	t.Logf("killed a worker that held %d pending entries", killedWithPending)
	if killedWithPending == 0 {
		t.Error("the killed worker held no pending entry: the test exercised nothing")
	}
	s.WaitFinished(placed, 60*time.Second)
	s.WaitAtRest(15 * time.Second)
	r := s.MustCheck(placed, initial)
	s.MustOutcomes(placed, want)
	t.Logf("%d orders: %v", len(placed), r.ByStatus)
	survivor.signal(syscall.SIGTERM)
	if code := survivor.wait(10 * time.Second); code != 0 {
		t.Errorf("survivor exit %d after SIGTERM", code)
	}
}

// SIGTERM during a load: the worker stops reading, finishes what it read and
// exits 0 within 10 s, leaving nothing pending; another worker finishes the
// rest.
func TestWorkerSIGTERMDrains(t *testing.T) {
	s := sagatest.New(t, srv, map[string]string{"CLAIM_MIN_IDLE": "30s"})
	s.StartAPI(nil)
	initial := map[string]int64{"sku-a": 100000, "sku-b": 100000}
	for sku, n := range initial {
		s.SetStock(sku, n)
	}
	w := start(t, "worker", workerEnv(s, map[string]string{"PAYMENT_LATENCY": "30ms"}))
	w.waitFor(t, "worker started")
	placed, want := placeLoad(t, s, 120, func() { w.signal(syscall.SIGTERM) })
	began := time.Now()
	if code := w.wait(10 * time.Second); code != 0 {
		t.Fatalf("worker exit %d after SIGTERM (took %s)", code, time.Since(began))
	}
	// No reclaim can have happened (CLAIM_MIN_IDLE is 30s): an empty
	// pending list means the worker handled everything it had read.
	groups, err := s.Checker.Groups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		if g.Pending != 0 {
			t.Errorf("SIGTERM left %d entries pending in %s/%s", g.Pending, g.Stream, g.Group)
		}
	}
	if !strings.Contains(w.output(), "worker stopped") {
		t.Errorf("no clean stop logged")
	}
	start(t, "worker", workerEnv(s, nil))
	s.WaitFinished(placed, 30*time.Second)
	s.WaitAtRest(10 * time.Second)
	s.MustCheck(placed, initial)
	s.MustOutcomes(placed, want)
}

// pendingOf counts the entries pending for the consumers of one worker
// process (consumer names carry the pid).
func pendingOf(t *testing.T, s *sagatest.System, pid int) int64 {
	t.Helper()
	ctx := context.Background()
	tag := fmt.Sprintf("-%d-", pid)
	var n int64
	for part := range s.KS.Partitions {
		for _, typ := range s.Product.Engine.MessageTypes() {
			stream := s.KS.Stream(part, typ)
			groups, err := s.RDB.XInfoGroups(ctx, stream).Result()
			if err != nil {
				continue
			}
			for _, g := range groups {
				p, err := s.RDB.XPending(ctx, stream, g.Name).Result()
				if err != nil {
					t.Fatal(err)
				}
				for consumer, c := range p.Consumers {
					if strings.Contains(consumer, tag) {
						n += c
					}
				}
			}
		}
	}
	return n
}
