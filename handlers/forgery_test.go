package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

// snapshot is everything a forged entry must not change, read raw.
type snapshot struct {
	sagas  map[string]map[string]string
	orders map[string]string
	money  map[string]string
	stock  map[string]string
	ships  map[string]string
}

func take(t *testing.T, s *sagatest.System, placed []sagatest.Placed) snapshot {
	t.Helper()
	ctx := context.Background()
	sn := snapshot{sagas: map[string]map[string]string{}, orders: map[string]string{}}
	for _, o := range placed {
		p := s.KS.PartitionOf(o.SagaID)
		h := s.RDB.HGetAll(ctx, s.KS.Saga(p, o.SagaID)).Val()
		delete(h, "deadline_at") // a sweeper may move it; the version says whether anything happened
		sn.sagas[o.SagaID] = h
		sn.orders[o.OrderID] = s.RDB.HGet(ctx, s.KS.Record(p, "order", o.OrderID), "status").Val()
	}
	sn.money = s.RDB.HGetAll(ctx, s.KS.Shared("payment", "totals")).Val()
	sn.stock = s.RDB.HGetAll(ctx, s.KS.Shared("inventory", "reserved")).Val()
	for k, v := range s.RDB.HGetAll(ctx, s.KS.Shared("inventory", "available")).Val() {
		sn.stock["available."+k] = v
	}
	sn.ships = s.RDB.HGetAll(ctx, s.KS.InPartition(0, "shipping.totals")).Val()
	return sn
}

func (a snapshot) equal(b snapshot) bool {
	for id, h := range a.sagas {
		if !maps.Equal(h, b.sagas[id]) {
			return false
		}
	}
	return maps.Equal(a.orders, b.orders) && maps.Equal(a.money, b.money) && maps.Equal(a.stock, b.stock) && maps.Equal(a.ships, b.ships)
}

// forge writes, for one saga, an entry of every type that has a reader, at
// the saga's current version, the one before and the one after, each with a
// fresh event id: well-formed entries that the saga never published. It
// returns their event ids, each with the number of groups that read it.
func forge(t *testing.T, s *sagatest.System, sagaID string) map[string]int {
	t.Helper()
	ctx := context.Background()
	p := s.KS.PartitionOf(sagaID)
	h := s.RDB.HGetAll(ctx, s.KS.Saga(p, sagaID)).Val()
	version, _ := strconv.ParseInt(h["version"], 10, 64)
	readers := map[string]int{}
	for _, types := range s.Product.Engine.Groups() {
		for _, typ := range types {
			readers[typ]++
		}
	}
	// step and phase of each command of the order saga
	commands := map[string][2]any{
		handlers.CmdPaymentCharge: {1, "execute"}, handlers.CmdPaymentRefund: {1, "compensate"},
		handlers.CmdStockReserve: {2, "execute"}, handlers.CmdStockRelease: {2, "compensate"},
		handlers.CmdShipmentCreate: {3, "execute"}, handlers.CmdShipmentCancel: {3, "compensate"},
		handlers.CmdOrderCancel: {0, "compensate"},
	}
	ids := map[string]int{}
	for _, typ := range s.Product.Engine.MessageTypes() {
		if readers[typ] == 0 {
			continue
		}
		data := h["context"]
		switch {
		case typ == saga.ReplyType:
			// A reply to the command the saga awaits (or to the first one),
			// from a command the saga never sent.
			cmd, _, _ := strings.Cut(strings.SplitN(h["h."+h["version"]], "|", 2)[1], "|")
			if !strings.HasPrefix(cmd, "cmd.") {
				cmd = handlers.CmdPaymentCharge
			}
			data = `{"command":"` + cmd + `","step":1,"phase":"execute","ok":false,"reason":"forged"}`
		case strings.HasPrefix(typ, "cmd."):
			sp := commands[typ]
			var m map[string]any
			if err := json.Unmarshal([]byte(h["context"]), &m); err != nil {
				t.Fatal(err)
			}
			m["step"], m["phase"] = sp[0], sp[1]
			b, _ := json.Marshal(m)
			data = string(b)
		}
		for _, v := range []int64{version - 1, version, version + 1} {
			for _, mode := range []string{h["mode"], otherMode(h["mode"])} {
				if mode != h["mode"] && v != version {
					continue // the wrong style once, at the current version
				}
				id := uuid.NewString()
				s.Inject(s.KS.Stream(p, typ), map[string]any{
					event.FieldEventID: id, event.FieldType: typ, event.FieldSagaID: sagaID, event.FieldSagaMode: mode,
					event.FieldSagaVersion: strconv.FormatInt(v, 10), event.FieldCausationID: uuid.NewString(),
					event.FieldOccurredAt: time.Now().UTC().Format(time.RFC3339Nano), event.FieldData: data,
				})
				ids[id] = readers[typ]
			}
		}
	}
	return ids
}

func otherMode(m string) string {
	if m == event.ModeChoreography {
		return event.ModeOrchestration
	}
	return event.ModeChoreography
}

// Forged events and commands of every type, at a saga's current version, a
// past and a future one, in its style and in the other, against a finished
// saga and one in flight: none changes a saga, an order, money, stock or a
// shipment; each is dead-lettered with an entry.rejected alert naming it;
// and the saga in flight then completes as if nothing had happened.
func TestForgedEntriesChangeNothing(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode})
			s.StartAPI(nil)
			stopAll := s.StartWorker(nil)
			initial := map[string]int64{"sku-a": 100}
			s.SetStock("sku-a", 100)
			done, err := s.PlaceOrder("c-done", sagatest.I("sku-a", 2, 300))
			if err != nil {
				t.Fatal(err)
			}
			done.Want = sagatest.Completed
			s.WaitFinished([]sagatest.Placed{done}, 10*time.Second)
			s.WaitAtRest(5 * time.Second)
			if err := stopAll(); err != nil {
				t.Fatal(err)
			}
			// Without shipping the second saga waits at createShipment,
			// charged and reserved.
			s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory,orchestrator"})
			flying, err := s.PlaceOrder("c-flying", sagatest.I("sku-a", 3, 300))
			if err != nil {
				t.Fatal(err)
			}
			flying.Want = sagatest.Completed
			ctx := context.Background()
			sagatest.WaitFor(t, "the saga to wait at createShipment", 10*time.Second, func() bool {
				st, err := s.Product.Engine.Get(ctx, flying.SagaID)
				return err == nil && st.Steps[2].Status == saga.StepCompleted
			})
			placed := []sagatest.Placed{done, flying}
			before := take(t, s, placed)

			forged := forge(t, s, done.SagaID)
			maps.Copy(forged, forge(t, s, flying.SagaID))
			// Every forged entry on a stream the running services read is
			// read and handled; shipping's (not running) wait.
			sagatest.WaitFor(t, "the forged entries to be dealt with", 20*time.Second, func() bool {
				groups, err := s.Checker.Groups(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, g := range groups {
					if g.Group != handlers.ServiceShipping && (g.Pending > 0 || g.Unread()) {
						return false
					}
				}
				return true
			})
			if after := take(t, s, placed); !before.equal(after) {
				t.Fatalf("forged entries changed state:\nbefore %+v\nafter  %+v", before, after)
			}
			// Shipping comes back: it finds its forged entries and the real
			// stock.reserved (or cmd.shipment.create) waiting.
			s.StartWorker(nil)
			s.WaitFinished(placed, 10*time.Second)
			s.WaitAtRest(10 * time.Second)
			s.MustCheck(placed, initial)

			dead, _ := s.Checker.Entries(ctx, "deadletter")
			alerts, _ := s.Checker.Entries(ctx, "alerts")
			// One dead letter and one alert per forged entry and group that
			// reads it.
			deadFor := map[string]int{} // event id → dead letters
			entryOf := map[string]string{}
			for _, d := range dead {
				id, _ := d.Values[event.FieldEventID].(string)
				deadFor[id]++
				entryOf[fmt.Sprint(d.Values["source_stream"], "/", d.Values["source_id"])] = id
				if reason, _ := d.Values["error"].(string); !strings.HasPrefix(reason, "rejected: ") {
					t.Errorf("forged entry %s dead-lettered for %q", id, reason)
				}
			}
			alertsFor := map[string]int{}
			for _, a := range alerts {
				if a.Values["type"] != "entry.rejected" {
					t.Errorf("unexpected alert %v", a.Values)
				}
				alertsFor[entryOf[fmt.Sprint(a.Values["source_stream"], "/", a.Values["source_id"])]]++
			}
			want := 0
			for id, readers := range forged {
				want += readers
				if deadFor[id] != readers || alertsFor[id] != readers {
					t.Errorf("forged entry %s read by %d groups: %d dead letters, %d alerts", id, readers, deadFor[id], alertsFor[id])
				}
			}
			if len(dead) != want || len(alerts) != want {
				t.Errorf("%d forged entries for %d readers, %d dead letters, %d alerts", len(forged), want, len(dead), len(alerts))
			}
			t.Logf("%d forged entries, each dead-lettered and alerted", len(forged))
		})
	}
}

// A saga's hash deleted while it waits at createShipment (an eviction, a
// stray DEL): the next message for it is dead-lettered, one saga.missing
// alert is raised however many messages and deadlines name it, and its
// order becomes FAILED with the reason, its charge reported in the alert.
// The same when its deadline finds it first.
func TestLostSagaFailsItsOrderAndAlertsOnce(t *testing.T) {
	for _, mode := range []string{event.ModeChoreography, event.ModeOrchestration} {
		for _, foundBy := range []string{"message", "deadline"} {
			t.Run(mode+"/"+foundBy, func(t *testing.T) {
				t.Parallel()
				s := sagatest.New(t, srv, map[string]string{"SAGA_MODE": mode})
				s.StartAPI(nil)
				s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory,orchestrator"})
				s.SetStock("sku-a", 100)
				o, err := s.PlaceOrder("c-lost", sagatest.I("sku-a", 1, 300))
				if err != nil {
					t.Fatal(err)
				}
				ctx := context.Background()
				p := s.KS.PartitionOf(o.SagaID)
				sagaKey := s.KS.Saga(p, o.SagaID)
				// Wait for the charge, then lose the saga before its deadline.
				sagatest.WaitFor(t, "the charge", 10*time.Second, func() bool {
					return s.RDB.HGet(ctx, sagaKey, "step.2.status").Val() == saga.StepCompleted
				})
				if n := s.RDB.Del(ctx, sagaKey).Val(); n != 1 {
					t.Fatal("saga hash not deleted")
				}
				if foundBy == "message" {
					s.StartWorker(nil) // shipping reads the saga's awaited message
				} else {
					// Its deadline passes (the step timeout is 30s: the test
					// moves the deadline instead of waiting).
					s.RDB.ZAdd(ctx, s.KS.Deadlines(p), redis.Z{Score: 1, Member: o.SagaID})
				}
				var v struct{ Status, Reason string }
				sagatest.WaitFor(t, "the order to fail", 10*time.Second, func() bool {
					code, err := s.Do("GET", "/orders/"+o.OrderID, nil, nil, &v)
					return err == nil && code == 200 && v.Status == "FAILED"
				})
				if !strings.Contains(v.Reason, "not found") || !strings.Contains(v.Reason, o.SagaID) {
					t.Errorf("reason %q", v.Reason)
				}
				if code, _ := s.Do("GET", "/sagas/"+o.SagaID, nil, nil, nil); code != 404 {
					t.Errorf("GET /sagas/{id}: %d", code)
				}
				// More messages for the lost saga: dead-lettered, no second alert.
				for range 2 {
					s.Inject(s.KS.Stream(p, handlers.OrderCreated), map[string]any{
						event.FieldEventID: uuid.NewString(), event.FieldType: handlers.OrderCreated, event.FieldSagaID: o.SagaID,
						event.FieldSagaMode: event.ModeChoreography, event.FieldSagaVersion: "1", event.FieldCausationID: "",
						event.FieldOccurredAt: time.Now().UTC().Format(time.RFC3339Nano),
						event.FieldData:       `{"order":{"order_id":"` + o.OrderID + `","items":[{"sku":"sku-a","quantity":1}]}}`,
					})
				}
				if foundBy == "deadline" {
					s.StartWorker(nil)
				}
				s.WaitAtRest(10 * time.Second)
				alerts, _ := s.Checker.Entries(ctx, "alerts")
				var missing []redis.XMessage
				for _, a := range alerts {
					if a.Values["type"] == "saga.missing" && a.Values["saga_id"] == o.SagaID {
						missing = append(missing, a)
					}
				}
				if len(missing) != 1 {
					t.Fatalf("%d saga.missing alerts for the saga, want 1: %v", len(missing), alerts)
				}
				if rec := missing[0].Values["record"]; rec != "order:"+o.OrderID {
					t.Errorf("alert names record %v", rec)
				}
				// The awaited message and the two injected ones.
				dead, _ := s.Checker.Entries(ctx, "deadletter")
				if len(dead) != 3 {
					t.Errorf("%d dead letters, want 3", len(dead))
				}
				for _, d := range dead {
					if reason, _ := d.Values["error"].(string); !strings.HasPrefix(reason, "saga not found") {
						t.Errorf("dead letter for %q", reason)
					}
				}
				// The charge stays, reported: the order is FAILED, not silently
				// PENDING; nothing is left waiting on the lost saga.
				if l, _ := s.Product.Gateway.Ledger(ctx, o.SagaID); l.Charge != "charged" {
					t.Errorf("ledger %+v", l)
				}
				for _, key := range []string{s.KS.Deadlines(p), s.KS.Index(p, saga.StatusInProgress)} {
					if s.RDB.ZScore(ctx, key, o.SagaID).Err() != redis.Nil {
						t.Errorf("the lost saga is still in %s", key)
					}
				}
				if s.RDB.HExists(ctx, s.KS.Records(p), o.SagaID).Val() {
					t.Error("the lost saga is still listed as unfinished")
				}
			})
		}
	}
}

// The fence's verdicts on the messages a test can name: a copy of an
// awaited message is accepted once, a copy of an earlier one is silent,
// a forgery at the current version is refused, on the real workers.
func TestDuplicatesStaySilentForgeriesDoNot(t *testing.T) {
	t.Parallel()
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(nil)
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c-1", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	o.Want = sagatest.Completed
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	ctx := context.Background()
	// Copies of every real entry: all late, all silent.
	copies := 0
	for stream, msgs := range streamEntries(t, s) {
		if stream == s.KS.Stream(0, handlers.OrderCancelled) || stream == s.KS.Stream(0, handlers.OrderCompleted) {
			continue // the saga's end events: no group of the engine reads them
		}
		for _, m := range msgs {
			s.Inject(stream, m.Values)
			copies++
		}
	}
	s.WaitAtRest(5 * time.Second)
	if dead, _ := s.Checker.Entries(ctx, "deadletter"); len(dead) != 0 {
		t.Fatalf("%d copies of real entries dead-lettered: %v", len(dead), dead[0].Values)
	}
	if alerts, _ := s.Checker.Entries(ctx, "alerts"); len(alerts) != 0 {
		t.Fatalf("copies of real entries raised alerts: %v", alerts)
	}
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
	t.Logf("%d copies of real entries acknowledged silently", copies)
}
