package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/event"
	"github.com/streamsaga/streamsaga/handlers"
	"github.com/streamsaga/streamsaga/internal/ctl"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.RunMain(m, &srv, redistest.Options{})) }

func run(t *testing.T, s *sagatest.System, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := ctl.Run(context.Background(), args, s.Env, &out, &errOut)
	return code, out.String(), errOut.String()
}

func runJSON(t *testing.T, s *sagatest.System, v any, args ...string) {
	t.Helper()
	code, out, errOut := run(t, s, append([]string{"--json"}, args...)...)
	if code != 0 {
		t.Fatalf("sagactl %v: exit %d: %s", args, code, errOut)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("sagactl %v: %v in %s", args, err, out)
	}
}

// sagactl against a real Redis holding sagas in every status, a dead
// letter and a stuck pending entry.
func TestSagactl(t *testing.T) {
	sagactl(t, sagatest.New(t, srv, sagactlEnv))
}

// The same on a 3-master Redis Cluster (REDIS_CLUSTER_ADDRS).
func TestSagactlOnCluster(t *testing.T) {
	sagactl(t, sagatest.NewOnCluster(t, redistest.StartClusterT(t, 3), sagactlEnv))
}

var sagactlEnv = map[string]string{"SAGA_MODE": event.ModeOrchestration, "COMPENSATION_BACKOFF": "10ms", "COMPENSATION_ATTEMPTS": "2"}

func sagactl(t *testing.T, s *sagatest.System) {
	s.StartAPI(nil)
	stop := s.StartWorker(map[string]string{"PAYMENT_REFUND_FAILURES": "1000"})
	s.SetStock("sku-a", 10)
	completed, _ := s.PlaceOrder("c", sagatest.I("sku-a", 1, 100))
	compensated, _ := s.PlaceOrder("c", sagatest.I("sku-a", 1, 999999)) // declined: no refund needed
	failed, _ := s.PlaceOrder("c", sagatest.I("sku-a", 99, 1))          // stock short: the refund always fails
	s.WaitFinished([]sagatest.Placed{completed, compensated, failed}, 10*time.Second)
	_ = stop()
	inProgress, _ := s.PlaceOrder("c", sagatest.I("sku-a", 1, 100)) // no worker now
	ctx := context.Background()
	s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.Stream(0, saga.ReplyType), Values: map[string]any{"junk": "1"}})
	// A consumer that died holding an entry.
	s.RDB.XReadGroup(ctx, &redis.XReadGroupArgs{Group: handlers.ServicePayment, Consumer: "dead-1", Streams: []string{s.KS.Stream(0, handlers.CmdPaymentCharge), ">"}, Count: 1})

	var list []struct{ SagaID, Status string }
	runJSON(t, s, &list, "ls", "--limit", "10")
	got := map[string]string{}
	for _, x := range list {
		got[x.SagaID] = x.Status
	}
	want := map[string]string{completed.SagaID: "COMPLETED", compensated.SagaID: "COMPENSATED", failed.SagaID: "FAILED", inProgress.SagaID: "IN_PROGRESS"}
	for id, st := range want {
		if got[id] != st {
			t.Errorf("ls: saga %s is %q, want %s", id, got[id], st)
		}
	}
	runJSON(t, s, &list, "ls", "--status", "failed")
	if len(list) != 1 || list[0].SagaID != failed.SagaID {
		t.Errorf("ls --status failed: %+v", list)
	}
	var st struct {
		SagaID  string
		Status  string
		History []struct{ Type string }
	}
	runJSON(t, s, &st, "show", failed.SagaID)
	if st.SagaID != failed.SagaID || st.Status != "FAILED" || len(st.History) < 4 {
		t.Errorf("show: %+v", st)
	}
	if code, out, _ := run(t, s, "show", completed.SagaID); code != 0 || !strings.Contains(out, "TIMELINE") || !strings.Contains(out, "cmd.shipment.create") {
		t.Errorf("show table: %d %s", code, out)
	}
	if code, _, _ := run(t, s, "show", "0192a000-0000-7000-8000-000000000000"); code != 3 {
		t.Errorf("show unknown: exit %d, want 3", code)
	}
	var streams []struct {
		Stream string
		Length int64
		Groups []struct {
			Name    string
			Pending int64
		}
	}
	runJSON(t, s, &streams, "streams")
	foundPending := false
	for _, x := range streams {
		for _, g := range x.Groups {
			foundPending = foundPending || (strings.HasSuffix(x.Stream, handlers.CmdPaymentCharge) && g.Name == "payment" && g.Pending == 1)
		}
	}
	if !foundPending {
		t.Errorf("streams: no pending entry shown: %+v", streams)
	}
	var pending []struct{ Consumer string }
	runJSON(t, s, &pending, "pending")
	if len(pending) != 1 || pending[0].Consumer != "dead-1" {
		t.Errorf("pending: %+v", pending)
	}
	// Dead letters: the junk reply, dead-lettered by a running worker.
	s.StartWorker(map[string]string{"WORKER_SERVICES": "orchestrator"})
	var dead []struct {
		ID     string
		Fields map[string]string
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(dead) == 0 && time.Now().Before(deadline) {
		runJSON(t, s, &dead, "dlq", "ls")
		time.Sleep(20 * time.Millisecond)
	}
	if len(dead) != 1 || dead[0].Fields["group"] != "orchestrator" || dead[0].Fields["junk"] != "1" {
		t.Fatalf("dlq ls: %+v", dead)
	}
	var one struct{ Fields map[string]string }
	runJSON(t, s, &one, "dlq", "show", dead[0].ID)
	if one.Fields["error"] == "" {
		t.Errorf("dlq show: %+v", one)
	}
	before := s.RDB.XLen(ctx, s.KS.Stream(0, saga.ReplyType)).Val()
	if code, _, errOut := run(t, s, "dlq", "replay", dead[0].ID); code != 0 {
		t.Fatalf("dlq replay: %d %s", code, errOut)
	}
	if s.RDB.XLen(ctx, s.KS.Stream(0, saga.ReplyType)).Val() != before+1 {
		t.Error("dlq replay did not publish the entry again")
	}
	if code, _, _ := run(t, s, "dlq", "show", dead[0].ID); code != 3 {
		t.Errorf("a replayed dead letter is still there (exit %d)", code)
	}
	// retry: refused for a COMPLETED saga, accepted for the FAILED one.
	if code, _, _ := run(t, s, "retry", completed.SagaID); code != 1 {
		t.Errorf("retry of a COMPLETED saga: exit %d, want 1", code)
	}
	if code, out, errOut := run(t, s, "retry", failed.SagaID); code != 0 || !strings.Contains(out, "COMPENSATING") {
		t.Errorf("retry: %d %s %s", code, out, errOut)
	}
	// Usage and configuration errors.
	if code, _, _ := run(t, s, "frobnicate"); code != 2 {
		t.Errorf("unknown command: exit %d", code)
	}
	if code, _, _ := run(t, s); code != 2 {
		t.Errorf("no command: exit %d", code)
	}
	bad := sagatest.New(t, srv, map[string]string{"SAGA_PARTITIONS": "1"})
	bad.Env["SAGA_PARTITIONS"] = "x"
	if code, _, errOut := run(t, bad, "ls"); code != 2 || !strings.Contains(errOut, "SAGA_PARTITIONS") {
		t.Errorf("bad configuration: exit %d %s", code, errOut)
	}
}

// `sagactl dlq replay` after the identity fence: a replayed dead letter of
// the message its saga waits for is accepted and the saga goes on; a
// replayed earlier message of the saga is acknowledged and changes nothing;
// a replayed entry the saga never published is dead-lettered again, with an
// entry.rejected alert.
func TestDLQReplayAndTheFence(t *testing.T) {
	s := sagatest.New(t, srv, nil)
	s.StartAPI(nil)
	s.StartWorker(map[string]string{"WORKER_SERVICES": "order,payment,inventory"})
	s.SetStock("sku-a", 10)
	o, err := s.PlaceOrder("c", sagatest.I("sku-a", 1, 100))
	if err != nil {
		t.Fatal(err)
	}
	o.Want = sagatest.Completed
	ctx := context.Background()
	sagatest.WaitFor(t, "the saga to wait for shipping", 10*time.Second, func() bool {
		return s.RDB.XLen(ctx, s.KS.Stream(0, handlers.StockReserved)).Val() == 1
	})
	// The awaited stock.reserved reaches the dead letters without its saga
	// giving up on it (as an operator's tool or an old worker might leave
	// it): shipping reads and acknowledges it, and it is filed by hand.
	deadLetter := func(stream string, values map[string]any) string {
		t.Helper()
		fields := map[string]any{"group": handlers.ServiceShipping, "error": "filed by the test", "deliveries": "5",
			"source_stream": stream, "source_id": "0-1"}
		for k, v := range values {
			fields[k] = v
		}
		id, err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(0), Values: fields}).Result()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	reserved := s.KS.Stream(0, handlers.StockReserved)
	got, err := s.RDB.XReadGroup(ctx, &redis.XReadGroupArgs{Group: handlers.ServiceShipping, Consumer: "gone", Streams: []string{reserved, ">"}}).Result()
	if err != nil || len(got[0].Messages) != 1 {
		t.Fatalf("read stock.reserved: %v %v", got, err)
	}
	awaited := got[0].Messages[0]
	s.RDB.XAck(ctx, reserved, handlers.ServiceShipping, awaited.ID)
	created, _ := s.RDB.XRange(ctx, s.KS.Stream(0, handlers.OrderCreated), "-", "+").Result()
	forged := map[string]any{}
	for k, v := range awaited.Values {
		forged[k] = v
	}
	forged[event.FieldEventID] = "0192a000-0000-7000-8000-00000000f00d"
	earlier := deadLetter(s.KS.Stream(0, handlers.OrderCreated), created[0].Values)
	fake := deadLetter(reserved, forged)
	current := deadLetter(reserved, awaited.Values)

	s.StartWorker(nil) // shipping runs from now on
	for _, id := range []string{earlier, fake, current} {
		if code, _, errOut := run(t, s, "dlq", "replay", id); code != 0 {
			t.Fatalf("dlq replay %s: %d %s", id, code, errOut)
		}
	}
	s.WaitFinished([]sagatest.Placed{o}, 10*time.Second)
	s.WaitAtRest(5 * time.Second)
	s.MustCheck([]sagatest.Placed{o}, map[string]int64{"sku-a": 10})
	dead, _ := s.Checker.Entries(ctx, "deadletter")
	alerts, _ := s.Checker.Entries(ctx, "alerts")
	if len(dead) != 1 || dead[0].Values[event.FieldEventID] != forged[event.FieldEventID] ||
		!strings.HasPrefix(dead[0].Values["error"].(string), "rejected: ") {
		t.Fatalf("dead letters after the replays %v: want only the forged one, rejected again", dead)
	}
	if len(alerts) != 1 || alerts[0].Values["type"] != "entry.rejected" {
		t.Fatalf("alerts %v: want one entry.rejected", alerts)
	}
}
