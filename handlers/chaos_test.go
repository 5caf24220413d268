package handlers_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// For many seeds, every message of a load of sagas is delivered duplicated,
// delayed and reordered at random (the seed decides each message's fate),
// in a random style, with step deadlines short enough that the sweeper
// sometimes races the late copies. SPEC section 9 holds every time: every
// saga ends, stock and money balance, nothing is charged or refunded twice,
// nothing stays pending. SAGATEST_SEEDS raises the number of seeds.
func TestRandomizedDeliveryKeepsInvariants(t *testing.T) {
	seeds := 8
	if n, err := strconv.Atoi(os.Getenv("SAGATEST_SEEDS")); err == nil && n > 0 {
		seeds = n
	}
	for seed := range seeds {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			t.Parallel()
			randomizedDelivery(t, uint64(seed))
		})
	}
}

func randomizedDelivery(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x5a6a))
	mode := event.ModeChoreography
	if rng.IntN(2) == 1 {
		mode = event.ModeOrchestration
	}
	timeout := []string{"30s", "400ms"}[rng.IntN(2)]
	latency := fmt.Sprintf("%dms", rng.IntN(600)) // past the 400ms deadline at times
	t.Logf("seed %d: %s, SAGA_STEP_TIMEOUT=%s, PAYMENT_LATENCY=%s", seed, mode, timeout, latency)
	s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode, "SAGA_STEP_TIMEOUT": timeout, "CLAIM_MIN_IDLE": "1s"})
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"PAYMENT_LATENCY": latency})
	s.StartWorker(map[string]string{"PAYMENT_LATENCY": latency})
	initial := map[string]int64{"sku-a": 10000, "sku-b": 100000}
	for sku, n := range initial {
		s.SetStock(sku, n)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var copies sync.WaitGroup
	tl := tailOriginals(ctx, s, func(stream string, m redis.XMessage) {
		// The seed decides: no copy, a copy now, a copy later (after
		// newer messages: reordered), or both.
		now, later := false, time.Duration(0)
		switch r := rng.Float64(); {
		case r < 0.25:
		case r < 0.5:
			now = true
		case r < 0.8:
			later = time.Duration(50+rng.IntN(500)) * time.Millisecond
		default:
			now, later = true, time.Duration(50+rng.IntN(500))*time.Millisecond
		}
		if now {
			s.RDB.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: m.Values})
		}
		if later > 0 {
			copies.Add(1)
			go func() {
				defer copies.Done()
				time.Sleep(later)
				s.RDB.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: m.Values})
			}()
		}
	})
	placed, _ := placeMix(t, s, 12)
	s.WaitFinished(placed, 30*time.Second)
	// Every original got its fate, every delayed copy was published, then
	// every copy was read and handled.
	tl.waitCaughtUp(t, s)
	cancel()
	copies.Wait()
	s.WaitAtRest(20 * time.Second)
	r := s.MustCheck(placed, initial)
	t.Logf("seed %d: %v", seed, r.ByStatus)
}

// FuzzRandomizedDelivery lets the fuzzer choose the seed that decides each
// message's fate (duplicated, delayed, reordered), the style and the
// deadlines: the saga state machine on message sequences nobody wrote down,
// with SPEC section 9 asserted after each. Each input runs a real system
// for a few seconds: go test -run XXX -fuzz FuzzRandomizedDelivery ./handlers
func FuzzRandomizedDelivery(f *testing.F) {
	f.Add(uint64(1 << 40))
	f.Fuzz(func(t *testing.T, seed uint64) { randomizedDelivery(t, seed) })
}
