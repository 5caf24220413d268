package ctl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// runEnv runs sagactl with env and no system behind it.
func runEnv(env map[string]string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := ctl.Run(context.Background(), args, env, &out, &errOut)
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
	// --json is a persistent flag: before or after the command, same answer.
	_, jsonFirst, _ := run(t, s, "--json", "ls", "--limit", "10")
	code, jsonLast, errOut := run(t, s, "ls", "--limit", "10", "--json")
	if code != 0 || jsonLast != jsonFirst || !strings.HasPrefix(jsonLast, "[") {
		t.Errorf("ls --json (exit %d, %s) differs from --json ls:\n%s\n%s", code, errOut, jsonLast, jsonFirst)
	}
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
	// --type and --mode filter (every saga here is an orchestrated ORDER_SAGA).
	var typed []struct{ SagaID, Type, Mode string }
	runJSON(t, s, &typed, "ls", "--mode", "Orchestration", "--limit", "2")
	if len(typed) != 2 || typed[0].Mode != event.ModeOrchestration {
		t.Errorf("ls --mode orchestration --limit 2: %+v", typed)
	}
	runJSON(t, s, &typed, "ls", "--mode", "choreography")
	if len(typed) != 0 {
		t.Errorf("ls --mode choreography: %+v", typed)
	}
	runJSON(t, s, &typed, "ls", "--type", "ORDER_SAGA", "--status", "FAILED")
	if len(typed) != 1 || typed[0].SagaID != failed.SagaID || typed[0].Type != "ORDER_SAGA" {
		t.Errorf("ls --type ORDER_SAGA --status FAILED: %+v", typed)
	}
	if code, out, errOut := run(t, s, "ls", "--type", "NOPE"); code != 2 || out != "" || !strings.Contains(errOut, "ORDER_SAGA") {
		t.Errorf("ls --type NOPE: exit %d %q %q; want 2 and the known types", code, out, errOut)
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
	for _, p := range []sagatest.Placed{completed, failed} {
		showsEveryStepField(t, s, p.SagaID)
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
	// By default only streams with entries or work outstanding; --all
	// lists the empty ones too.
	for _, x := range streams {
		busy := x.Length > 0
		for _, g := range x.Groups {
			busy = busy || g.Pending > 0
		}
		if !busy {
			t.Errorf("streams lists the empty %s without --all", x.Stream)
		}
	}
	var all []struct{ Stream string }
	runJSON(t, s, &all, "streams", "--all")
	if len(all) <= len(streams) {
		t.Errorf("streams --all lists %d streams, the default %d: the empty ones are missing", len(all), len(streams))
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

// showsEveryStepField checks that show's table prints every scalar a
// step holds in the JSON (status, result, compensation, reasons: whatever
// saga.State carries), by its dotted path, on one line with its value.
func showsEveryStepField(t *testing.T, s *sagatest.System, id string) {
	t.Helper()
	code, out, errOut := run(t, s, "--json", "show", id)
	if code != 0 {
		t.Fatalf("show --json %s: exit %d %s", id, code, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	dec.UseNumber()
	var st struct {
		Steps []map[string]any
	}
	if err := dec.Decode(&st); err != nil || len(st.Steps) == 0 {
		t.Fatalf("show --json %s: %v %s", id, err, out)
	}
	code, table, errOut := run(t, s, "show", id)
	if code != 0 {
		t.Fatalf("show %s: exit %d %s", id, code, errOut)
	}
	lines := strings.Split(table, "\n")
	var leaves func(path string, v any)
	leaves = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, sub := range x {
				leaves(strings.TrimPrefix(path+"."+k, "."), sub)
			}
		case string, json.Number, bool:
			want := fmt.Sprint(x)
			for _, l := range lines {
				if strings.Contains(l, " "+path+" ") && strings.Contains(l, want) {
					return
				}
			}
			t.Errorf("show %s: no line with %s = %s in\n%s", id, path, want, table)
		}
	}
	for _, step := range st.Steps {
		name, _ := step["name"].(string)
		if !strings.Contains(table, name) {
			t.Errorf("show %s: step %s missing in\n%s", id, name, table)
		}
		delete(step, "name")
		leaves("", step)
	}
}

// Usage errors are found before Redis is dialled: REDIS_URL names a closed
// port, so any of these reaching Redis would exit 1, not 2 or 0.
func TestUsage(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_URL": fmt.Sprintf("redis://127.0.0.1:%d/0", port)}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"ls", "--help"}, {"--json", "dlq", "replay", "-h"}, {"help", "pending"}} {
		code, out, errOut := runEnv(env, args...)
		if code != 0 || errOut != "" || !strings.Contains(out, "Usage:") {
			t.Errorf("sagactl %v: exit %d, stderr %q, stdout %q", args, code, errOut, out)
		}
	}
	if _, out, _ := runEnv(env, "--help"); !strings.Contains(out, "Exit codes") || !strings.Contains(out, "ADMIN_TOKEN") || !strings.Contains(out, "redis://localhost:6379/0") {
		t.Errorf("the root help lacks the exit codes, the ADMIN_TOKEN note or REDIS_URL's default:\n%s", out)
	}
	if _, out, _ := runEnv(env, "ls", "--help"); !strings.Contains(out, "--status") || !strings.Contains(out, "--limit") || !strings.Contains(out, "--json") {
		t.Errorf("ls --help lacks its flags:\n%s", out)
	}
	refused := []struct {
		args   []string
		reason []string // every one of these appears on stderr
	}{
		{[]string{"ls", "--status", "BOGUS"}, saga.Statuses},
		{[]string{"--json", "ls", "--status=bogus"}, saga.Statuses},
		{[]string{"ls", "--mode", "saga"}, []string{"--mode", "choreography, orchestration"}},
		{[]string{"ls", "--limit", "0"}, []string{"--limit", "1 to 1000"}},
		{[]string{"ls", "--limit", "1001"}, []string{"--limit", "1 to 1000"}},
		{[]string{"dlq", "ls", "--limit", "-3"}, []string{"--limit", "1 to 1000"}},
		{[]string{"pending", "--idle", "30"}, []string{"--idle", "unit", "30s"}},
		{[]string{"pending", "--idle", "soon"}, []string{"--idle", "duration"}},
		{[]string{"ls", "extra"}, []string{"no arguments", "extra"}},
		{[]string{"streams", "a", "b"}, []string{"no arguments"}},
		{[]string{"show"}, []string{"one saga id"}},
		{[]string{"show", "0192a000-0000-7000-8000-000000000000", "more"}, []string{"one saga id", "2"}},
		{[]string{"show", "not-a-uuid"}, []string{"invalid saga id", "not-a-uuid"}},
		{[]string{"retry", "0192A000-0000-7000-8000-000000000000"}, []string{"invalid saga id"}},
		{[]string{"dlq", "show", "12"}, []string{"invalid dead-letter id", "12"}},
		{[]string{"dlq", "replay", "1-1", "2-2"}, []string{"one dead-letter id"}},
		{[]string{"dlq", "replay", "1-1", "--partition", "x"}, []string{"--partition", "whole number"}},
		{[]string{"dlq", "show", "1-1", "--partition=-1"}, []string{"--partition", "whole number"}},
		{[]string{"frobnicate"}, []string{"unknown command", "frobnicate"}},
		{[]string{"dlq", "frob"}, []string{"unknown command", "frob"}},
		{[]string{"dlq"}, []string{"missing command"}},
		{[]string{"ls", "--bogus"}, []string{"unknown flag", "--bogus"}},
		{[]string{"completion"}, []string{"missing shell"}},
		{[]string{"completion", "tcsh"}, []string{"unknown command", "tcsh"}},
		{nil, []string{"missing command"}},
	}
	for _, r := range refused {
		code, out, errOut := runEnv(env, r.args...)
		if code != 2 || out != "" {
			t.Errorf("sagactl %v: exit %d, stdout %q; want 2 and nothing on stdout", r.args, code, out)
		}
		for _, want := range r.reason {
			if !strings.Contains(errOut, want) {
				t.Errorf("sagactl %v: stderr %q does not say %q", r.args, errOut, want)
			}
		}
	}
}

func TestVersionAndCompletion(t *testing.T) {
	code, out, errOut := runEnv(nil, "version")
	if code != 0 || !strings.HasPrefix(out, "sagactl ") || len(strings.TrimSpace(out)) <= len("sagactl") || errOut != "" {
		t.Errorf("version: exit %d %q %q", code, out, errOut)
	}
	var v struct{ Version, Go string }
	code, out, _ = runEnv(nil, "version", "--json")
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Errorf("version --json: exit %d %v %q", code, err, out)
	}
	if code, out, _ := runEnv(nil, "--version"); code != 0 || !strings.HasPrefix(out, "sagactl ") {
		t.Errorf("--version: exit %d %q", code, out)
	}
	for shell, marker := range map[string]string{"bash": "complete -o default", "zsh": "#compdef sagactl", "fish": "complete -c sagactl", "powershell": "Register-ArgumentCompleter"} {
		code, out, errOut := runEnv(nil, "completion", shell)
		if code != 0 || !strings.Contains(out, marker) || errOut != "" {
			t.Errorf("completion %s: exit %d, stderr %q, no %q in %d bytes", shell, code, errOut, marker, len(out))
		}
	}
	// The completion script asks sagactl itself; --status completes to the statuses.
	code, out, _ = runEnv(nil, "__complete", "ls", "--status", "")
	for _, st := range saga.Statuses {
		if code != 0 || !strings.Contains(out, st+"\n") {
			t.Errorf("__complete ls --status: exit %d, no %s in %q", code, st, out)
		}
	}
}

// With Redis down, sagactl says so in one line naming REDIS_URL's address,
// exits 1, and does not wait out retries (the time is logged, not asserted).
func TestRedisUnreachable(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := map[string]string{"REDIS_URL": "redis://" + addr + "/0"}
	for _, args := range [][]string{{"ls"}, {"--json", "show", "0192a000-0000-7000-8000-000000000000"}, {"dlq", "ls"}, {"retry", "0192a000-0000-7000-8000-000000000000"}} {
		start := time.Now()
		code, out, errOut := runEnv(env, args...)
		t.Logf("sagactl %v with Redis down: exit %d after %v: %s", args, code, time.Since(start), strings.TrimSpace(errOut))
		if code != 1 || out != "" {
			t.Errorf("sagactl %v: exit %d, stdout %q; want 1 and nothing on stdout", args, code, out)
		}
		if strings.Count(errOut, "\n") != 1 || !strings.HasSuffix(errOut, "\n") || !strings.Contains(errOut, addr) || !strings.Contains(errOut, "unreachable") {
			t.Errorf("sagactl %v: stderr %q; want one line naming %s as unreachable", args, errOut, addr)
		}
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

// Dead letters over two partitions: dlq ls merges them newest first and
// stops at --limit in all; an id both partitions hold is refused (exit 2,
// naming the partitions and --partition) until --partition names one, and
// then only that one is shown or replayed; a partition past SAGA_PARTITIONS
// is exit 2; a truncated dead letter is never replayed (exit 1, why).
func TestDLQPartitions(t *testing.T) {
	s := sagatest.New(t, srv, map[string]string{"SAGA_PARTITIONS": "2"})
	ctx := context.Background()
	for _, d := range []struct {
		p         int
		id        string
		truncated bool
	}{{0, "999-0", false}, {1, "5-0", false}, {0, "1000-0", false}, {1, "1000-0", false}, {1, "1001-0", true}} {
		values := map[string]any{"group": "payment", "error": "boom", "deliveries": "5",
			"source_stream": s.KS.Stream(d.p, handlers.OrderCreated), "source_id": "1-1", "type": handlers.OrderCreated}
		if d.truncated {
			values["truncated"] = "1 fields dropped or cut"
		}
		if err := s.RDB.XAdd(ctx, &redis.XAddArgs{Stream: s.KS.DeadLetter(d.p), ID: d.id, Values: values}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var list []struct {
		Partition int
		ID        string
	}
	runJSON(t, s, &list, "dlq", "ls", "--limit", "3")
	if got := fmt.Sprint(list); got != "[{1 1001-0} {0 1000-0} {1 1000-0}]" {
		t.Errorf("dlq ls --limit 3: %s, want 1001-0, then 1000-0 of both partitions", got)
	}
	if code, out, _ := run(t, s, "dlq", "ls"); code != 0 || !strings.Contains(out, "PARTITION") {
		t.Errorf("dlq ls table: %d %s", code, out)
	}

	for _, cmd := range []string{"show", "replay"} {
		code, out, errOut := run(t, s, "dlq", cmd, "1000-0")
		if code != 2 || out != "" || !strings.Contains(errOut, "partitions 0, 1") || !strings.Contains(errOut, "--partition") {
			t.Errorf("dlq %s of an ambiguous id: exit %d, stdout %q, stderr %q; want 2 naming the partitions and --partition", cmd, code, out, errOut)
		}
		code, _, errOut = run(t, s, "dlq", cmd, "1000-0", "--partition", "2")
		if code != 2 || !strings.Contains(errOut, "SAGA_PARTITIONS") {
			t.Errorf("dlq %s --partition 2: exit %d, stderr %q; want 2", cmd, code, errOut)
		}
	}
	if n := s.RDB.XLen(ctx, s.KS.Stream(0, handlers.OrderCreated)).Val() + s.RDB.XLen(ctx, s.KS.Stream(1, handlers.OrderCreated)).Val(); n != 0 {
		t.Fatalf("refused replays published %d entries", n)
	}
	var one struct{ Partition int }
	runJSON(t, s, &one, "dlq", "show", "1000-0", "--partition", "1")
	if one.Partition != 1 {
		t.Errorf("dlq show --partition 1 showed partition %d's", one.Partition)
	}
	var replayed struct{ Stream string }
	runJSON(t, s, &replayed, "dlq", "replay", "1000-0", "--partition", "1")
	if replayed.Stream != s.KS.Stream(1, handlers.OrderCreated) {
		t.Errorf("dlq replay --partition 1 published on %s", replayed.Stream)
	}
	if s.RDB.XLen(ctx, s.KS.DeadLetter(0)).Val() != 2 {
		t.Error("partition 0's 1000-0 was touched by partition 1's replay")
	}
	runJSON(t, s, &one, "dlq", "show", "1000-0") // unique now
	if one.Partition != 0 {
		t.Errorf("dlq show of a now unique id showed partition %d's", one.Partition)
	}

	code, out, errOut := run(t, s, "dlq", "replay", "1001-0")
	if code != 1 || out != "" || !strings.Contains(errOut, "cannot be replayed") || !strings.Contains(errOut, "cut") {
		t.Errorf("dlq replay of a truncated dead letter: exit %d, stdout %q, stderr %q; want 1 and why", code, out, errOut)
	}
	if n := s.RDB.XLen(ctx, s.KS.Stream(1, handlers.OrderCreated)).Val(); n != 1 {
		t.Errorf("partition 1's stream holds %d entries, want only the one replay", n)
	}
}
