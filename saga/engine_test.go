package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
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

// A second, made-up saga type: the engine knows no order domain.
func tripSaga() *saga.Definition {
	return &saga.Definition{
		Type:  "TRIP_SAGA",
		Steps: []saga.Step{{Name: "bookFlight"}, {Name: "bookHotel", Abort: "hotel.failed"}},
		Events: map[string]saga.Effect{
			"trip.requested": {Step: 0, StepStatus: event.StepPending},
			"flight.booked":  {Step: 0, StepStatus: event.StepCompleted},
			"hotel.failed":   {Step: 1, StepStatus: event.StepFailed, Status: event.StatusCompensating},
			"trip.done":      {Step: saga.NoStep, Status: event.StatusCompleted},
		},
	}
}

func TestDefinitionValidate(t *testing.T) {
	if err := tripSaga().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := tripSaga()
	bad.Events["x"] = saga.Effect{Step: 7, Status: "DONE"}
	bad.Steps[0].Abort = "nope"
	err := bad.Validate()
	if err == nil {
		t.Fatal("an inconsistent definition validated")
	}
	for _, want := range []string{"names step 7", "unknown status", "abort event nope"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
}

func newEngine(t *testing.T) (*saga.Engine, *redis.Client, streams.Keyspace) {
	t.Helper()
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	ks := streams.NewKeyspace(redistest.Prefix(), 1)
	e, err := saga.New(rdb, ks, saga.Options{StepTimeout: time.Minute, Retention: time.Hour}, tripSaga())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.LoadScripts(context.Background()); err != nil {
		t.Fatal(err)
	}
	return e, rdb, ks
}

// read reads the one entry of a stream through a group, as a worker would.
func read(t *testing.T, rdb *redis.Client, stream string) *streams.Message {
	t.Helper()
	ctx := context.Background()
	if err := streams.EnsureGroup(ctx, rdb, stream, "g"); err != nil {
		t.Fatal(err)
	}
	res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, ">"}, Count: 1}).Result()
	if err != nil || len(res[0].Messages) != 1 {
		t.Fatalf("read %s: %v %v", stream, res, err)
	}
	x := res[0].Messages[0]
	env, err := event.Decode(x.Values)
	if err != nil {
		t.Fatal(err)
	}
	return &streams.Message{Stream: stream, ID: x.ID, Group: "g", Env: env, Values: x.Values, Deliveries: 1}
}

// The transition commits once: the same message again, or a message of an
// older version, is refused as STALE and only acknowledged.
func TestCommitIsFencedOnVersion(t *testing.T) {
	e, rdb, ks := newEngine(t)
	ctx := context.Background()
	p, sagaID, _, err := e.NewIDs("")
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Start(ctx, saga.StartRequest{Type: "TRIP_SAGA", Mode: event.ModeChoreography, Partition: p, SagaID: sagaID,
		Context: json.RawMessage(`{"who":"ann"}`), Event: "trip.requested", Data: json.RawMessage(`{}`)})
	if err != nil || !res.Created {
		t.Fatal(res, err)
	}
	m := read(t, rdb, ks.Stream(p, "trip.requested"))
	r1, err := e.Commit(ctx, m, saga.Transition{Emit: "flight.booked", Data: json.RawMessage(`{}`), StepResult: json.RawMessage(`{"pnr":"X1"}`)})
	if err != nil || r1.Code != saga.Applied || r1.Version != 2 {
		t.Fatalf("first commit: %+v %v", r1, err)
	}
	r2, err := e.Commit(ctx, m, saga.Transition{Emit: "flight.booked", Data: json.RawMessage(`{}`)})
	if err != nil || r2.Code != saga.Stale || r2.Version != 2 {
		t.Fatalf("second commit: %+v %v", r2, err)
	}
	if n, _ := rdb.XLen(ctx, ks.Stream(p, "flight.booked")).Result(); n != 1 {
		t.Fatalf("%d flight.booked events, want 1", n)
	}
	if pend, _ := rdb.XPending(ctx, m.Stream, "g").Result(); pend.Count != 0 {
		t.Fatalf("consumed entry still pending: %+v", pend)
	}
	st, err := e.Get(ctx, sagaID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Steps[0].Status != event.StepCompleted || string(st.Steps[0].Result) != `{"pnr":"X1"}` || st.Version != 2 ||
		len(st.History) != 2 || st.History[1].Type != "flight.booked" || st.DeadlineAt == nil {
		t.Fatalf("state %+v", st)
	}
	// The next message finishes the saga: no deadline, a TTL, indexed.
	m2 := read(t, rdb, ks.Stream(p, "flight.booked"))
	if r, err := e.Commit(ctx, m2, saga.Transition{Emit: "trip.done", Data: json.RawMessage(`{}`)}); err != nil || r.Code != saga.Applied {
		t.Fatalf("final commit: %+v %v", r, err)
	}
	st, _ = e.Get(ctx, sagaID)
	if st.Status != event.StatusCompleted || st.DeadlineAt != nil {
		t.Fatalf("final state %+v", st)
	}
	if ttl := rdb.TTL(ctx, ks.Saga(p, sagaID)).Val(); ttl <= 0 || ttl > time.Hour {
		t.Fatalf("final TTL %v", ttl)
	}
	if n := rdb.ZCard(ctx, ks.Deadlines(p)).Val(); n != 0 {
		t.Fatalf("%d deadlines left", n)
	}
	list, err := e.List(ctx, []string{event.StatusCompleted}, 10)
	if err != nil || len(list) != 1 || list[0].SagaID != sagaID {
		t.Fatalf("index: %v %v", list, err)
	}
	if list, _ := e.List(ctx, []string{event.StatusInProgress}, 10); len(list) != 0 {
		t.Fatalf("still indexed IN_PROGRESS: %v", list)
	}
}

// An Idempotency-Key reused with another request is refused and writes
// nothing; with the same request it returns the first answer.
func TestStartIdempotency(t *testing.T) {
	e, rdb, ks := newEngine(t)
	ctx := context.Background()
	start := func(fp string) (saga.StartResult, error) {
		p, id, _, err := e.NewIDs("key-1")
		if err != nil {
			t.Fatal(err)
		}
		return e.Start(ctx, saga.StartRequest{Type: "TRIP_SAGA", Mode: event.ModeChoreography, Partition: p, SagaID: id,
			Context: json.RawMessage(`{}`), Event: "trip.requested", Data: json.RawMessage(`{}`),
			IdempotencyKey: "key-1", Fingerprint: fp, Answer: json.RawMessage(`"` + id + `"`)})
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
	if n := rdb.XLen(ctx, ks.Stream(0, "trip.requested")).Val(); n != 1 {
		t.Fatalf("%d sagas started", n)
	}
}

// The status index stays bounded: a terminal transition prunes the entries
// of sagas finished longer ago than the retention (their hashes expired).
func TestStatusIndexIsPruned(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	ks := streams.NewKeyspace(redistest.Prefix(), 1)
	e, err := saga.New(rdb, ks, saga.Options{Retention: time.Second}, tripSaga())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	finish := func() string {
		p, id, _, _ := e.NewIDs("")
		if _, err := e.Start(ctx, saga.StartRequest{Type: "TRIP_SAGA", Mode: event.ModeChoreography, Partition: p, SagaID: id,
			Context: json.RawMessage(`{}`), Event: "trip.requested", Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
		m := read(t, rdb, ks.Stream(p, "trip.requested"))
		if r, err := e.Commit(ctx, m, saga.Transition{Emit: "trip.done", Data: json.RawMessage(`{}`)}); err != nil || r.Code != saga.Applied {
			t.Fatalf("commit: %+v %v", r, err)
		}
		return id
	}
	old := finish()
	time.Sleep(1200 * time.Millisecond)
	recent := finish()
	ids, _ := rdb.ZRange(ctx, ks.Index(0, event.StatusCompleted), 0, -1).Result()
	if len(ids) != 1 || ids[0] != recent {
		t.Fatalf("COMPLETED index %v, want only %s (not %s)", ids, recent, old)
	}
}
