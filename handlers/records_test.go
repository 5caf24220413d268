package handlers_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

func ttl(t *testing.T, s *sagatest.System, parts ...string) time.Duration {
	t.Helper()
	d, err := s.RDB.TTL(context.Background(), s.KS.Prefix+":"+strings.Join(parts, ":")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The services' records of a saga still running never expire (a late
// compensation must find them): the gateway's charge, the shipment's fields
// in the saga hash. Once the saga ends they get their TTL. On one Redis the
// inventory's reservation joins the saga's transitions: it leaves no
// barrier key (a Redis Cluster keeps one, TestFourPathsOnRedisCluster).
func TestLiveRecordsDoNotExpireUntilTheSagaEnds(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	stop := s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	// Without a shipping worker the saga waits after reserving stock.
	ctx := context.Background()
	sagatest.WaitFor(t, "the saga to reach reserveStock", 10*time.Second, func() bool {
		st, err := s.Product.Engine.Get(ctx, o.SagaID)
		return err == nil && st.Steps[2].Status == saga.StepCompleted
	})
	if d := ttl(t, s, "{payment}", "ledger", o.SagaID); d != -1 {
		t.Errorf("live charge has TTL %v", d)
	}
	if d := ttl(t, s, "{inventory}", "barrier:"+o.SagaID); d != -2 {
		t.Errorf("a barrier of the reservation on one Redis (TTL %v)", d)
	}
	_ = stop()
	s.StartWorker(nil)
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	for _, key := range [][]string{{"{payment}", "ledger", o.SagaID}, {"{" + strconv.Itoa(s.KS.PartitionOf(o.SagaID)) + "}", "saga", o.SagaID}} {
		if d := ttl(t, s, key...); d <= 0 {
			t.Errorf("%v of a completed saga has TTL %v", key, d)
		}
	}
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
}

// A copy of an event replayed after its saga and records expired (a
// dead-letter replay, a restored backup) has no effect: no second charge.
// It names a saga that no longer exists: it is dead-lettered and the loss
// alerted (saga.missing), the order, already expired, untouched.
func TestReplayAfterExpiryChargesNothing(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, map[string]string{"SAGA_RETENTION": "1s"})
	s.StartAPI(nil)
	s.StartWorker(nil)
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	ctx := context.Background()
	created, err := s.RDB.XRange(ctx, s.KS.Stream(0, handlers.OrderCreated), "-", "+").Result()
	if err != nil || len(created) != 1 {
		t.Fatalf("order.created: %v %v", created, err)
	}
	before, _ := s.Product.Gateway.Totals(ctx)
	sagatest.WaitFor(t, "the saga and its ledger to expire", 10*time.Second, func() bool {
		return s.RDB.Exists(ctx, s.KS.Saga(0, o.SagaID), s.KS.Shared("payment", "ledger:"+o.SagaID)).Val() == 0
	})
	s.Inject(s.KS.Stream(0, handlers.OrderCreated), created[0].Values)
	s.WaitAtRest(5 * time.Second) // the replay was read and handled
	after, _ := s.Product.Gateway.Totals(ctx)
	if after != before {
		t.Fatalf("replay after expiry moved money: %+v → %+v", before, after)
	}
	dead, _ := s.Checker.Entries(ctx, "deadletter")
	alerts, _ := s.Checker.Entries(ctx, "alerts")
	if len(dead) != 1 || len(alerts) != 1 || alerts[0].Values["type"] != "saga.missing" || alerts[0].Values["saga_id"] != o.SagaID {
		t.Fatalf("dead letters %v, alerts %v: want the replay dead-lettered and one saga.missing alert", dead, alerts)
	}
}
