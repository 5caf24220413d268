package saga_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.RunMain(m, &srv, redistest.Options{})) }

// Trip is the context of a travel saga, unrelated to orders: the engine is
// generic.
type Trip struct {
	Traveller string `json:"traveller"`
	Seats     int64  `json:"seats"`
}

// agency is the travel saga's fake services: fail names a step whose
// execution fails, poison one whose operation keeps erroring. Every effect
// is a Redis write the engine applies: a booking per step in the saga's
// hash, seats taken from a shared pool.
type agency struct {
	fail, poison string
	mu           sync.Mutex
	calls        map[string]int
}

var seatPool = saga.Shared("airline", "seats")

func (a *agency) op(name string) saga.Operation[Trip] {
	return func(_ context.Context, c *saga.Call[Trip]) (saga.Outcome, error) {
		a.mu.Lock()
		a.calls[name]++
		a.mu.Unlock()
		switch {
		case c.Step == a.poison && c.Phase == saga.Execute:
			return saga.Outcome{}, errors.New("this service is broken")
		case c.Step == a.fail && c.Phase == saga.Execute:
			return saga.Fail("refused by " + c.Step), nil
		}
		state := map[saga.Phase]string{saga.Execute: "booked", saga.Compensate: "cancelled", saga.Finalize: "final"}[c.Phase]
		out := saga.OK(map[string]string{"by": name}, saga.Set("status", state))
		if c.Step == "bookFlight" {
			switch c.Phase {
			case saga.Execute:
				out = out.With(saga.Take(seatPool, "free", c.Data.Seats, "no seats left"), saga.HIncrBy(seatPool, "held", c.Data.Seats))
			case saga.Compensate:
				out = out.With(saga.HIncrBy(seatPool, "free", c.Data.Seats), saga.HIncrBy(seatPool, "held", -c.Data.Seats))
			case saga.Finalize:
				out = out.With(saga.HIncrBy(seatPool, "held", -c.Data.Seats), saga.HIncrBy(seatPool, "sold", c.Data.Seats))
			}
		}
		return out, nil
	}
}

func travelSaga(a *agency) *saga.Saga[Trip] {
	return saga.Define("TRAVEL_SAGA",
		saga.Step("bookFlight", "flights", a.op("book flight"), a.op("cancel flight")).Finally(a.op("ticket")),
		saga.Step("payDeposit", "payments", a.op("pay deposit"), nil), // nothing to undo
		saga.Step("bookHotel", "hotels", a.op("book hotel"), a.op("cancel hotel")),
		saga.Step("rentCar", "cars", a.op("rent car"), a.op("return car")),
	).Ends("travel.booked", "travel.cancelled")
}

// travel runs one TRAVEL_SAGA to its end in mode, with the real engine
// behind a real runner, and returns its final state and message flow.
func travel(t *testing.T, mode, fail, poison string) (*saga.State, string, *redis.Client, saga.Keys) {
	t.Helper()
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix()}, travelSaga(&agency{fail: fail, poison: poison, calls: map[string]int{}}))
	if err != nil {
		t.Fatal(err)
	}
	ks := e.Keys()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	all, run := e.Subscriptions(nil, nil)
	if err := streams.EnsureGroups(ctx, rdb, all); err != nil {
		t.Fatal(err)
	}
	rdb.HSet(ctx, ks.Shared("airline", "seats"), "free", 10)
	reader := srv.Client()
	t.Cleanup(func() { reader.Close() })
	r := streams.NewRunner(rdb, reader, run, e, e, streams.RunnerOptions{Consumer: "c", Block: 20 * time.Millisecond,
		ClaimMinIdle: 50 * time.Millisecond, MaxDeliveries: 2})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()
	started, err := travelSaga(nil).Start(ctx, e, Trip{Traveller: "ann", Seats: 2}, saga.StartOptions{Mode: mode})
	if err != nil || !started.Created {
		t.Fatal(started, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var st *saga.State
	for {
		st, err = e.Get(ctx, started.SagaID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == saga.StatusCompleted || st.Status == saga.StatusCompensated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("saga still %s: %+v", st.Status, st.Steps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Until every group read everything (a late duplicate may still be in flight).
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		infos, _ := streams.Inspect(ctx, rdb, streamsOf(e))
		idle := true
		for _, si := range infos {
			for _, g := range si.Groups {
				idle = idle && g.Pending == 0 && g.Lag == 0
			}
		}
		if idle {
			break
		}
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	var flow []string
	for _, h := range st.History {
		flow = append(flow, h.Type)
	}
	return st, strings.Join(flow, " "), rdb, ks
}

func streamsOf(e *saga.Engine) []string {
	var out []string
	for _, typ := range e.MessageTypes() {
		out = append(out, e.Keys().Stream(0, typ))
	}
	return out
}

func stepStatuses(st *saga.State) string {
	var s []string
	for _, x := range st.Steps {
		s = append(s, x.Name+"="+x.Status)
	}
	return strings.Join(s, " ")
}

// Any declared saga runs in both styles: steps in order; on a failure the
// completed steps' compensations in reverse order, skipping a step with
// nothing to undo; a dead-lettered step compensated like a failed one. The
// seats taken from the shared pool are given back, or sold at the end.
func TestAnySagaRunsInBothStyles(t *testing.T) {
	for _, mode := range []string{saga.ModeChoreography, saga.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			seats := func(rdb *redis.Client, ks saga.Keys) map[string]string {
				return rdb.HGetAll(context.Background(), ks.Shared("airline", "seats")).Val()
			}
			st, flow, rdb, ks := travel(t, mode, "", "")
			want := map[string]string{
				// The last step's success completes the saga in its own
				// transition: its completed event gives way to the saga's.
				saga.ModeChoreography:  "TRAVEL_SAGA.started bookFlight.completed payDeposit.completed bookHotel.completed travel.booked",
				saga.ModeOrchestration: "cmd.bookFlight cmd.payDeposit cmd.bookHotel cmd.rentCar travel.booked",
			}[mode]
			if st.Status != saga.StatusCompleted || flow != want {
				t.Fatalf("happy trip: %s, %q, want %q", st.Status, flow, want)
			}
			if s := seats(rdb, ks); s["free"] != "8" || s["held"] != "0" || s["sold"] != "2" {
				t.Fatalf("seats after a trip: %v", s)
			}
			st, flow, rdb, ks = travel(t, mode, "rentCar", "")
			want = map[string]string{
				saga.ModeChoreography:  "TRAVEL_SAGA.started bookFlight.completed payDeposit.completed bookHotel.completed rentCar.failed bookHotel.compensated travel.cancelled",
				saga.ModeOrchestration: "cmd.bookFlight cmd.payDeposit cmd.bookHotel cmd.rentCar cmd.bookHotel.compensate cmd.bookFlight.compensate travel.cancelled",
			}[mode]
			if st.Status != saga.StatusCompensated || st.Reason != "refused by rentCar" || flow != want {
				t.Fatalf("car refused: %s %q, %q, want %q", st.Status, st.Reason, flow, want)
			}
			if got := stepStatuses(st); got != "bookFlight=COMPENSATED payDeposit=COMPLETED bookHotel=COMPENSATED rentCar=FAILED" {
				t.Fatalf("steps %s", got)
			}
			if s := seats(rdb, ks); s["free"] != "10" || s["held"] != "0" || s["sold"] != "" {
				t.Fatalf("seats after a cancelled trip: %v", s)
			}
			// A step with nothing to undo whose message is dead-lettered: the
			// steps before it are compensated all the same.
			st, _, _, _ = travel(t, mode, "", "payDeposit")
			if st.Status != saga.StatusCompensated || !strings.Contains(st.Reason, "dead-lettered") ||
				st.Steps[0].Status != saga.StepCompensated || st.Steps[1].Status != saga.StepFailed {
				t.Fatalf("deposit dead-lettered: %s %q %s", st.Status, st.Reason, stepStatuses(st))
			}
		})
	}
}

// The engine fences every hop on the message its saga waits for: a message
// handled twice commits once, and the second delivery changes nothing.
func TestAHopCommitsOnce(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	a := &agency{calls: map[string]int{}}
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix(), StepTimeout: time.Minute, Retention: time.Hour}, travelSaga(a))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := e.Keys()
	rdb.HSet(ctx, ks.Shared("airline", "seats"), "free", 10)
	started, err := travelSaga(a).Start(ctx, e, Trip{Traveller: "bob", Seats: 3}, saga.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m := read(t, rdb, ks.Stream(0, "TRAVEL_SAGA.started"), "flights")
	for range 3 {
		if err := e.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	st, err := e.Get(ctx, started.SagaID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Version != 2 || st.Steps[0].Status != saga.StepCompleted || len(st.History) != 2 || st.DeadlineAt == nil {
		t.Fatalf("after the same message three times: %+v", st)
	}
	if n := rdb.XLen(ctx, ks.Stream(0, "bookFlight.completed")).Val(); n != 1 {
		t.Fatalf("%d bookFlight.completed events, want 1", n)
	}
	if s := rdb.HGetAll(ctx, ks.Shared("airline", "seats")).Val(); s["free"] != "7" || s["held"] != "3" {
		t.Fatalf("seats taken %v, want 3 once", s)
	}
	if pend, _ := rdb.XPending(ctx, m.Stream, m.Group).Result(); pend.Count != 0 {
		t.Fatalf("consumed entry still pending: %+v", pend)
	}
	if n := e.Stats().Stale; n != 2 {
		t.Fatalf("%d late messages counted, want the 2 redeliveries", n)
	}
}

// read reads the one entry of a stream through group, as a worker would.
func read(t *testing.T, rdb *redis.Client, stream, group string) *streams.Message {
	t.Helper()
	ctx := context.Background()
	if err := streams.EnsureGroup(ctx, rdb, stream, group); err != nil {
		t.Fatal(err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: 1}).Result()
	if err != nil || len(res[0].Messages) != 1 {
		t.Fatalf("read %s: %v %v", stream, res, err)
	}
	x := res[0].Messages[0]
	return streams.NewMessage(stream, group, 0, x.ID, x.Values)
}

// An idempotency key reused with another request is refused and writes
// nothing; with the same request it returns the first answer.
func TestStartIdempotency(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	trip := travelSaga(&agency{calls: map[string]int{}})
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix()}, trip)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	start := func(fp string) (saga.Started, error) {
		p, id, _, err := e.NewIDs("key-1")
		if err != nil {
			t.Fatal(err)
		}
		return trip.Start(ctx, e, Trip{}, saga.StartOptions{Partition: p, SagaID: id,
			IdempotencyKey: "key-1", Fingerprint: fp, Answer: []byte(`"` + id + `"`)})
	}
	first, err := start("a")
	if err != nil || !first.Created {
		t.Fatal(first, err)
	}
	again, err := start("a")
	if err != nil || again.Created || string(again.Answer) != string(first.Answer) {
		t.Fatalf("retry: %+v %v", again, err)
	}
	if _, err := start("b"); !errors.Is(err, saga.ErrIdempotencyMismatch) {
		t.Fatalf("other request with the key: %v", err)
	}
	if n := rdb.XLen(ctx, e.Keys().Stream(0, "TRAVEL_SAGA.started")).Val(); n != 1 {
		t.Fatalf("%d sagas started", n)
	}
}

// The status index stays bounded: the sweeper prunes the entries of sagas
// finished longer ago than the retention (their hashes expired).
func TestStatusIndexIsPruned(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	trip := saga.Define("SHORT_TRIP", saga.Step("go", "travellers", func(context.Context, *saga.Call[Trip]) (saga.Outcome, error) {
		return saga.OK(nil), nil
	}, nil))
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix(), Retention: time.Second}, trip)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := e.Keys()
	finish := func() string {
		started, err := trip.Start(ctx, e, Trip{}, saga.StartOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Handle(ctx, read(t, rdb, ks.Stream(0, "SHORT_TRIP.started"), "travellers")); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.Get(ctx, started.SagaID); st == nil || st.Status != saga.StatusCompleted {
			t.Fatalf("saga %+v", st)
		}
		return started.SagaID
	}
	old := finish()
	time.Sleep(1200 * time.Millisecond)
	recent := finish()
	if _, err := e.SweepDue(ctx, 0); err != nil {
		t.Fatal(err)
	}
	ids, _ := rdb.ZRange(ctx, ks.Index(0, saga.StatusCompleted), 0, -1).Result()
	if len(ids) != 1 || ids[0] != recent {
		t.Fatalf("COMPLETED index %v, want only %s (not %s)", ids, recent, old)
	}
}

// A sweeper that gives up on a step between the orchestrator's read of the
// saga and its commit of that step's successful reply: the fence refuses
// the commit, and the step's effect, which did land, is undone (an undo
// command goes out) instead of being dropped with the reply.
func TestReplyOvertakenBySweeperIsUndone(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	a := &agency{calls: map[string]int{}}
	trip := travelSaga(a)
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix(), StepTimeout: time.Millisecond}, trip)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := e.Keys()
	rdb.HSet(ctx, ks.Shared("airline", "seats"), "free", 10)
	started, err := trip.Start(ctx, e, Trip{Traveller: "cy", Seats: 1}, saga.StartOptions{Mode: saga.ModeOrchestration})
	if err != nil {
		t.Fatal(err)
	}
	// The flight is booked (the effect lands) and the service replies OK.
	if err := e.Handle(ctx, read(t, rdb, ks.Stream(0, "cmd.bookFlight"), "flights")); err != nil {
		t.Fatal(err)
	}
	// While the orchestrator handles the reply, the step's deadline (1 ms)
	// has passed and a sweeper gives up on it.
	swept := 0
	saga.SetBeforeReplyCommit(e, func() {
		time.Sleep(5 * time.Millisecond)
		swept, err = e.SweepDue(ctx, 0)
	})
	reply := read(t, rdb, ks.Stream(0, saga.ReplyType), saga.Orchestrator)
	if err := e.Handle(ctx, reply); err != nil {
		t.Fatal(err)
	}
	if err != nil || swept != 1 {
		t.Fatalf("the sweeper acted on %d sagas (%v), want 1", swept, err)
	}
	undo, err := rdb.XRange(ctx, ks.Stream(0, "cmd.bookFlight.compensate"), "-", "+").Result()
	if err != nil || len(undo) != 1 || !strings.Contains(undo[0].Values[event.FieldData].(string), `"phase":"undo"`) {
		t.Fatalf("the booked flight was not undone: %v %v", undo, err)
	}
	if n, err := rdb.XPending(ctx, reply.Stream, reply.Group).Result(); err != nil || n.Count != 0 {
		t.Fatalf("the reply stays pending: %+v %v", n, err)
	}
	if n := e.Stats().Stale; n != 1 {
		t.Fatalf("%d late messages counted, want the one overtaken reply", n)
	}
	// The flights service undoes it: the seat comes back, once.
	st, _ := e.Get(ctx, started.SagaID)
	for range 2 {
		m := read(t, rdb, ks.Stream(0, "cmd.bookFlight.compensate"), "flights")
		if err := e.Handle(ctx, m); err != nil {
			t.Fatal(err)
		}
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: m.Stream, Values: m.Values}) // and a copy of it
	}
	if s := rdb.HGetAll(ctx, ks.Shared("airline", "seats")).Val(); s["free"] != "10" || s["held"] != "0" {
		t.Fatalf("seats %v after the undo of saga %s (%s)", s, st.SagaID, st.Status)
	}
}

// Writes on shared state that could not be kept once and for all are
// refused as poison (the message is dead-lettered): two slots in one
// outcome (not all or nothing), or an execution with no Finally to release
// its barrier.
func TestSharedWritesMustBeSafe(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	op := func(ws ...saga.Write) saga.Operation[Trip] {
		return func(context.Context, *saga.Call[Trip]) (saga.Outcome, error) { return saga.OK(nil, ws...), nil }
	}
	for name, step := range map[string]*saga.StepDef[Trip]{
		"TWO_SLOTS":  saga.Step("x", "xs", op(saga.HIncrBy(saga.Shared("a", "h"), "f", 1), saga.HIncrBy(saga.Shared("b", "h"), "f", 1)), nil).Finally(op()),
		"NO_FINALLY": saga.Step("x", "xs", op(saga.HIncrBy(saga.Shared("a", "h"), "f", 1)), nil),
	} {
		s := saga.Define(name, step)
		e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix()}, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Start(ctx, e, Trip{}, saga.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		err = e.Handle(ctx, read(t, rdb, e.Keys().Stream(0, name+".started"), "xs"))
		if !streams.IsPermanent(err) {
			t.Errorf("%s: %v, want a permanent error", name, err)
		}
		if n := rdb.HLen(ctx, e.Keys().Shared("a", "h")).Val(); n != 0 {
			t.Errorf("%s: shared state written", name)
		}
	}
}
