package saga_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// A travel saga, unrelated to orders: the orchestrator is generic.
func travelSaga() *saga.Definition {
	return &saga.Definition{
		Type: "TRAVEL_SAGA",
		Steps: []saga.Step{
			{Name: "bookFlight", Execute: "cmd.flight.book", Compensate: "cmd.flight.cancel"},
			{Name: "payDeposit", Execute: "cmd.deposit.pay"}, // nothing to undo
			{Name: "bookHotel", Execute: "cmd.hotel.book", Compensate: "cmd.hotel.cancel"},
			{Name: "rentCar", Execute: "cmd.car.rent", Compensate: "cmd.car.return"},
		},
		Completed:   saga.Final{Event: "travel.booked"},
		Compensated: saga.Final{Event: "travel.cancelled"},
	}
}

// travel runs one TRAVEL_SAGA to its end with fake services (this test
// answers the commands; fail names the command they refuse, poison the one
// whose handler always errors) and the real orchestrator group, and returns
// its final state and command flow.
func travel(t *testing.T, fail, poison string) (*saga.State, string) {
	t.Helper()
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	ks := streams.NewKeyspace(redistest.Prefix(), 1)
	e, err := saga.New(rdb, ks, saga.Options{}, travelSaga())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	commands := []string{"cmd.flight.book", "cmd.flight.cancel", "cmd.deposit.pay", "cmd.hotel.book", "cmd.hotel.cancel", "cmd.car.rent", "cmd.car.return"}
	var cmdStreams []string
	for _, c := range commands {
		cmdStreams = append(cmdStreams, ks.Stream(0, c))
	}
	subs := []streams.Subscription{
		{Group: "orchestrator", Streams: []string{ks.Stream(0, event.Reply)}},
		{Group: "travel", Streams: cmdStreams},
	}
	if err := streams.EnsureGroups(ctx, rdb, subs); err != nil {
		t.Fatal(err)
	}
	services := streams.HandlerFunc(func(ctx context.Context, m *streams.Message) error {
		if m.Group == "orchestrator" {
			return e.HandleReply(ctx, m)
		}
		var cmd event.Command
		if err := json.Unmarshal(m.Env.Data, &cmd); err != nil {
			return err
		}
		if m.Env.Type == poison {
			return errors.New("this service is broken")
		}
		return e.Reply(ctx, m, event.ReplyData{Command: m.Env.Type, Step: cmd.Step, Phase: cmd.Phase,
			OK: m.Env.Type != fail, Reason: "refused by " + m.Env.Type})
	})
	reader := srv.Client()
	t.Cleanup(func() { reader.Close() })
	r := streams.NewRunner(rdb, reader, subs, services, e, streams.RunnerOptions{Consumer: "c", Block: 20 * time.Millisecond,
		ClaimMinIdle: 50 * time.Millisecond, MaxDeliveries: 2})
	done := make(chan error)
	go func() { done <- r.Run(ctx) }()

	p, id, _, err := e.NewIDs("")
	if err != nil {
		t.Fatal(err)
	}
	sagaCtx := json.RawMessage(`{"traveller":"ann"}`)
	first, _ := saga.CommandData(sagaCtx, 0, event.PhaseExecute)
	if _, err := e.Start(ctx, saga.StartRequest{Type: "TRAVEL_SAGA", Mode: event.ModeOrchestration, Partition: p, SagaID: id,
		Context: sagaCtx, Event: "cmd.flight.book", Data: first}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	var st *saga.State
	for {
		st, err = e.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == event.StatusCompleted || st.Status == event.StatusCompensated {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("saga still %s: %+v", st.Status, st.Steps)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	var flow []string
	for _, h := range st.History {
		flow = append(flow, h.Type)
	}
	if n, _ := rdb.XLen(context.Background(), ks.Stream(0, "travel.booked")).Result(); n+rdb.XLen(context.Background(), ks.Stream(0, "travel.cancelled")).Val() != 1 {
		t.Errorf("final events: %d booked", n)
	}
	return st, strings.Join(flow, " ")
}

func stepStatuses(st *saga.State) string {
	var s []string
	for _, x := range st.Steps {
		s = append(s, x.Name+"="+x.Status)
	}
	return strings.Join(s, " ")
}

// The orchestrator runs any saga definition: steps in order, and on a
// failure the completed steps' compensations in reverse order (skipping a
// step with nothing to undo and the steps that never ran).
func TestOrchestratorIsGeneric(t *testing.T) {
	st, flow := travel(t, "", "")
	if st.Status != event.StatusCompleted ||
		flow != "cmd.flight.book cmd.deposit.pay cmd.hotel.book cmd.car.rent travel.booked" {
		t.Fatalf("happy travel: %s, %q", st.Status, flow)
	}
	st, flow = travel(t, "cmd.car.rent", "")
	if st.Status != event.StatusCompensated || st.Reason != "refused by cmd.car.rent" ||
		flow != "cmd.flight.book cmd.deposit.pay cmd.hotel.book cmd.car.rent cmd.hotel.cancel cmd.flight.cancel travel.cancelled" {
		t.Fatalf("car refused: %s %q, %q", st.Status, st.Reason, flow)
	}
	if got := stepStatuses(st); got != "bookFlight=COMPENSATED payDeposit=COMPLETED bookHotel=COMPENSATED rentCar=FAILED" {
		t.Fatalf("steps %s", got)
	}
	// A step with nothing to undo whose command is dead-lettered: the steps
	// before it are compensated all the same.
	st, flow = travel(t, "", "cmd.deposit.pay")
	if st.Status != event.StatusCompensated || !strings.Contains(st.Reason, "dead-lettered cmd.deposit.pay") ||
		flow != "cmd.flight.book cmd.deposit.pay cmd.flight.cancel travel.cancelled" {
		t.Fatalf("deposit dead-lettered: %s %q, %q", st.Status, st.Reason, flow)
	}
}

// A sweeper that gives up on a step between the orchestrator's read of the
// saga and its commit of that step's successful reply: the fence refuses
// the commit, and the step's effect, which did land, is undone (an undo
// command goes out) instead of being dropped with the reply.
func TestReplyOvertakenBySweeperIsUndone(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	ks := streams.NewKeyspace(redistest.Prefix(), 1)
	e, err := saga.New(rdb, ks, saga.Options{StepTimeout: time.Millisecond}, travelSaga())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	book, reply := ks.Stream(0, "cmd.flight.book"), ks.Stream(0, event.Reply)
	subs := []streams.Subscription{{Group: "orchestrator", Streams: []string{reply}}, {Group: "travel", Streams: []string{book}}}
	if err := streams.EnsureGroups(ctx, rdb, subs); err != nil {
		t.Fatal(err)
	}
	p, id, _, err := e.NewIDs("")
	if err != nil {
		t.Fatal(err)
	}
	sagaCtx := json.RawMessage(`{"traveller":"bob"}`)
	first, _ := saga.CommandData(sagaCtx, 0, event.PhaseExecute)
	if _, err := e.Start(ctx, saga.StartRequest{Type: "TRAVEL_SAGA", Mode: event.ModeOrchestration, Partition: p, SagaID: id,
		Context: sagaCtx, Event: "cmd.flight.book", Data: first}); err != nil {
		t.Fatal(err)
	}
	read := func(stream, group string) *streams.Message {
		t.Helper()
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "c", Streams: []string{stream, ">"}, Count: 1, Block: -1}).Result()
		if err != nil || len(res) == 0 || len(res[0].Messages) == 0 {
			t.Fatalf("read %s: %v", stream, err)
		}
		x := res[0].Messages[0]
		return streams.NewMessage(stream, group, p, x.ID, x.Values)
	}
	// The flight is booked (the effect lands) and the service replies OK.
	cmd := read(book, "travel")
	if err := e.Reply(ctx, cmd, event.ReplyData{Command: "cmd.flight.book", Step: 0, Phase: event.PhaseExecute, OK: true}); err != nil {
		t.Fatal(err)
	}
	// While the orchestrator handles the reply, the step's deadline (1 ms)
	// has passed and a sweeper gives up on it.
	swept := 0
	saga.SetBeforeReplyCommit(e, func() {
		time.Sleep(5 * time.Millisecond)
		swept, err = e.SweepDue(ctx, p)
	})
	if err := e.HandleReply(ctx, read(reply, "orchestrator")); err != nil {
		t.Fatal(err)
	}
	if err != nil || swept != 1 {
		t.Fatalf("the sweeper acted on %d sagas (%v), want 1", swept, err)
	}
	undo, err := rdb.XRange(ctx, ks.Stream(0, "cmd.flight.cancel"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	phases := ""
	for _, u := range undo {
		var c event.Command
		_ = json.Unmarshal([]byte(u.Values[event.FieldData].(string)), &c)
		phases += c.Phase + " "
	}
	if !strings.Contains(phases, event.PhaseUndo) {
		t.Fatalf("the booked flight was not undone: cmd.flight.cancel phases %q", phases)
	}
	if n, err := rdb.XPending(ctx, reply, "orchestrator").Result(); err != nil || n.Count != 0 {
		t.Fatalf("the reply stays pending: %+v %v", n, err)
	}
}
