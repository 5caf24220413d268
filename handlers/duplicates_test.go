package handlers_test

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

// placeMix places n orders spread over the four paths and returns them with
// the final status each must reach.
func placeMix(t *testing.T, s *sagatest.System, n int) ([]sagatest.Placed, []string) {
	t.Helper()
	var placed []sagatest.Placed
	var want []string
	for i := range n {
		var items []sagatest.Item
		status := handlers.OrderStatusCancelled
		switch i % 4 {
		case 0, 1:
			items = []sagatest.Item{sagatest.I("sku-a", 1+int64(i%3), 500), sagatest.I("sku-b", 1, 250)}
			status = handlers.OrderStatusCompleted
		case 2:
			items = []sagatest.Item{sagatest.I("sku-a", 1, 200000)} // declined
		case 3:
			if i%8 == 3 {
				items = []sagatest.Item{sagatest.I("sku-none", 1, 100)} // stock short
			} else {
				items = []sagatest.Item{sagatest.I("sku-b", 1001, 1)} // shipment fails
			}
		}
		o, err := s.PlaceOrder("c-dup", items...)
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
		want = append(want, status)
	}
	return placed, want
}

// tailer calls fn for every entry published on any stream of partition 0
// (once per event id, so its own copies are skipped) until ctx is done.
type tailer struct {
	mu   sync.Mutex
	seen map[string]bool
}

func tailOriginals(ctx context.Context, s *sagatest.System, fn func(stream string, m redis.XMessage)) *tailer {
	tl := &tailer{seen: map[string]bool{}}
	last := map[string]string{}
	var keys []string
	for _, typ := range s.Product.Engine.MessageTypes() {
		k := s.KS.Stream(0, typ)
		keys = append(keys, k)
		last[k] = "0"
	}
	go func() {
		for ctx.Err() == nil {
			args := append([]string{}, keys...)
			for _, k := range keys {
				args = append(args, last[k])
			}
			res, err := s.RDB.XRead(ctx, &redis.XReadArgs{Streams: args, Count: 100, Block: 100 * time.Millisecond}).Result()
			if err != nil {
				continue
			}
			for _, st := range res {
				for _, m := range st.Messages {
					last[st.Stream] = m.ID
					id, _ := m.Values[event.FieldEventID].(string)
					tl.mu.Lock()
					first := !tl.seen[id]
					tl.mu.Unlock()
					if first {
						fn(st.Stream, m)
						// Seen only once its fate was dealt: waitCaughtUp
						// then knows that every copy was published.
						tl.mu.Lock()
						tl.seen[id] = true
						tl.mu.Unlock()
					}
				}
			}
		}
	}()
	return tl
}

// waitCaughtUp waits until the tailer has seen every event id on the
// streams, so that every original published so far got its fate.
func (tl *tailer) waitCaughtUp(t *testing.T, s *sagatest.System) {
	t.Helper()
	sagatest.WaitFor(t, "the tailer to see every entry", 20*time.Second, func() bool {
		tl.mu.Lock()
		defer tl.mu.Unlock()
		for _, msgs := range streamEntries(t, s) {
			for _, m := range msgs {
				if id, _ := m.Values[event.FieldEventID].(string); !tl.seen[id] {
					return false
				}
			}
		}
		return true
	})
}

// streamEntries reads every entry of every event stream.
func streamEntries(t *testing.T, s *sagatest.System) map[string][]redis.XMessage {
	t.Helper()
	out := map[string][]redis.XMessage{}
	for _, typ := range s.Product.Engine.MessageTypes() {
		key := s.KS.Stream(0, typ)
		msgs, err := s.RDB.XRange(context.Background(), key, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		out[key] = msgs
	}
	return out
}

// Every event type delivered twice — concurrently with the first delivery,
// and again later out of order after the sagas ended — changes nothing: no
// second charge, refund, reservation or release, no saga moved past its end.
func TestDuplicateAndReorderedDeliveryChangeNothing(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			duplicateAndReordered(t, mode)
		})
	}
}

// usedIn reports whether sagas of a mode publish on a stream type.
func usedIn(mode, typ string) bool {
	if typ == handlers.OrderCancelled || typ == handlers.CmdShipmentCancel || typ == handlers.ShipmentAbandoned || typ == handlers.ShipmentCancelled {
		// Nobody consumes order.cancelled; a shipment is only cancelled
		// when its outcome is unknown (a dead letter), not on these paths.
		return false
	}
	if typ == handlers.OrderCompleted {
		return true // both styles end with it
	}
	if typ == handlers.ShipmentCreated {
		return false // the last step's success completes the saga: the saga's event goes out instead
	}
	command := strings.HasPrefix(typ, "cmd.") || typ == saga.ReplyType
	return command == (mode == event.ModeOrchestration)
}

func duplicateAndReordered(t *testing.T, mode string) {
	s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode})
	s.StartAPI(nil)
	s.StartWorker(nil)
	s.StartWorker(nil) // two consumers per group, so duplicates race
	initial := map[string]int64{"sku-a": 10000, "sku-b": 100000}
	for sku, n := range initial {
		s.SetStock(sku, n)
	}

	// A duplicator tails every stream and publishes each entry once more
	// right away, so the copy races the original through the groups.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dupMu sync.Mutex
	duplicated := map[string]int{}
	tl := tailOriginals(ctx, s, func(stream string, m redis.XMessage) {
		if err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: m.Values}).Err(); err == nil {
			dupMu.Lock()
			duplicated[stream]++
			dupMu.Unlock()
		}
	})
	placed, want := placeMix(t, s, 40)
	s.WaitFinished(placed, 30*time.Second)
	// Every original was copied once (the copy is published before the
	// tailer marks the next entry), then every copy was read and handled.
	tl.waitCaughtUp(t, s)
	cancel()
	s.WaitAtRest(10 * time.Second)
	for _, typ := range s.Product.Engine.MessageTypes() {
		if !usedIn(mode, typ) {
			continue
		}
		if duplicated[s.KS.Stream(0, typ)] == 0 {
			t.Errorf("no %s entry was duplicated; the test did not exercise it", typ)
		}
	}
	s.MustCheck(placed, initial)
	s.MustOutcomes(placed, want)

	// Replay the whole history again, shuffled: late and out-of-order copies
	// of every event, long after each saga ended.
	before := map[string]int64{}
	for _, o := range placed {
		st, err := s.Product.Engine.Get(context.Background(), o.SagaID)
		if err != nil {
			t.Fatal(err)
		}
		before[o.SagaID] = st.Version
	}
	type entry struct {
		stream string
		values map[string]any
	}
	var all []entry
	for stream, msgs := range streamEntries(t, s) {
		for _, m := range msgs {
			all = append(all, entry{stream, m.Values})
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for _, e := range all {
		if err := s.RDB.XAdd(context.Background(), &redis.XAddArgs{Stream: e.stream, Values: e.values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	s.WaitAtRest(20 * time.Second) // every replayed copy read and handled
	s.MustCheck(placed, initial)
	s.MustOutcomes(placed, want)
	for _, o := range placed {
		st, err := s.Product.Engine.Get(context.Background(), o.SagaID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Version != before[o.SagaID] {
			t.Errorf("saga %s moved from version %d to %d on replayed events", o.SagaID, before[o.SagaID], st.Version)
		}
	}
}
