package saga_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
)

// The last step's success completes its saga in its own transition, with
// the Finally operations' writes, except when that step takes and a Finally
// operation acts outside the transition (a checked step's, here): the take
// can still fail in the commit, after the Finally had acted. Then the step
// publishes its completed event and the owner completes the saga, as in
// the first design; a take that fails compensates instead, the Finally
// never run.
func TestLastStepThatTakesCompletesThroughTheOwner(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	finals := saga.InPartition("finals")
	pool := saga.InPartition("pool")
	ok := func(ws ...saga.Write) saga.Operation[Trip] {
		return func(context.Context, *saga.Call[Trip]) (saga.Outcome, error) { return saga.OK(nil, ws...), nil }
	}
	last := saga.Define("LAST_TAKE",
		saga.Step("hold", "desk", ok(), ok()).Checked().Finally(ok(saga.HIncrBy(finals, "n", 1))),
		saga.Step("take", "shop", ok(saga.Take(pool, "a", 1, "pool empty")), nil),
	)
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix()}, last)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := e.Keys()
	rdb.HSet(ctx, ks.InPartition(0, "pool"), "a", 1)
	handle := func(typ, group string) {
		t.Helper()
		if err := e.Handle(ctx, read(t, rdb, ks.Stream(0, typ), group)); err != nil {
			t.Fatal(err)
		}
	}
	flow := func(id string) (*saga.State, string) {
		st, err := e.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		s := ""
		for _, h := range st.History {
			s += h.Type + " "
		}
		return st, s
	}

	first, err := last.Start(ctx, e, Trip{Traveller: "ann"}, saga.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	handle("LAST_TAKE.started", "desk")
	handle("hold.completed", "shop")
	if st, _ := flow(first.SagaID); st.Status != saga.StatusInProgress {
		t.Fatalf("after the take: %s, want IN_PROGRESS until the owner completes it", st.Status)
	}
	handle("take.completed", "desk")
	st, f := flow(first.SagaID)
	if st.Status != saga.StatusCompleted || f != "LAST_TAKE.started hold.completed take.completed LAST_TAKE.completed " {
		t.Fatalf("first saga: %s, flow %q", st.Status, f)
	}
	if n := rdb.HGet(ctx, ks.InPartition(0, "finals"), "n").Val(); n != "1" {
		t.Fatalf("Finally applied %q times, want once", n)
	}

	second, err := last.Start(ctx, e, Trip{Traveller: "bob"}, saga.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	handle("LAST_TAKE.started", "desk")
	handle("hold.completed", "shop") // the pool is empty: the take fails
	handle("take.failed", "desk")
	st, f = flow(second.SagaID)
	if st.Status != saga.StatusCompensated || f != "LAST_TAKE.started hold.completed take.failed LAST_TAKE.compensated " {
		t.Fatalf("second saga: %s, flow %q", st.Status, f)
	}
	if n := rdb.HGet(ctx, ks.InPartition(0, "finals"), "n").Val(); n != "1" {
		t.Fatalf("Finally applied %q times after a failed take, want once in all", n)
	}
	// Every message handled was acknowledged with its transition.
	for _, sg := range [][2]string{{"LAST_TAKE.started", "desk"}, {"hold.completed", "shop"}, {"take.completed", "desk"}, {"take.failed", "desk"}} {
		if p, err := rdb.XPending(ctx, ks.Stream(0, sg[0]), sg[1]).Result(); err != nil || p.Count != 0 {
			t.Fatalf("%s/%s: %+v pending (%v)", sg[0], sg[1], p, err)
		}
	}
}

// A transition's clock is Redis's time, whatever the ids of the stream it
// publishes on: an entry forged with an explicit id far in the future
// carries every later id with it, and must not carry the saga's deadline.
func TestDeadlineIgnoresAForgedFutureEntryID(t *testing.T) {
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	ok := func(context.Context, *saga.Call[Trip]) (saga.Outcome, error) { return saga.OK(nil), nil }
	clock := saga.Define("CLOCK", saga.Step("one", "a", ok, ok), saga.Step("two", "b", ok, nil))
	e, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix(), StepTimeout: time.Minute}, clock)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ks := e.Keys()
	if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: ks.Stream(0, "one.completed"), ID: "9999999999999-0", Values: []any{"forged", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	started, err := clock.Start(ctx, e, Trip{Traveller: "ann"}, saga.StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(ctx, read(t, rdb, ks.Stream(0, "CLOCK.started"), "a")); err != nil {
		t.Fatal(err)
	}
	st, err := e.Get(ctx, started.SagaID)
	if err != nil || st.DeadlineAt == nil {
		t.Fatalf("saga %+v, %v", st, err)
	}
	if d := time.Until(*st.DeadlineAt); d < 50*time.Second || d > 70*time.Second {
		t.Fatalf("deadline in %v, want the step timeout (1m) from now", d)
	}
	if d := time.Since(st.UpdatedAt); d < -10*time.Second || d > 10*time.Second {
		t.Fatalf("updated %v ago, want now", d)
	}
}
