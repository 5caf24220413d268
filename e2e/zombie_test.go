package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/sagatest"
)

// A worker paused with SIGSTOP past CLAIM_MIN_IDLE in the middle of its
// work (a zombie): another worker reclaims its entries and finishes the
// sagas; when the zombie resumes, none of its late work takes effect.
// Normally a handler whose deadline (read time + 90% of CLAIM_MIN_IDLE)
// passed gives up before writing; with that safety off
// (WORKER_HANDLE_TIMEOUT longer than the pause, as a long GC pause inside a
// handler would), its commits reach Redis and the version fence refuses
// them. Both are counted, and no effect happens twice.
func TestZombieWorkerLateWorkHasNoEffect(t *testing.T) {
	for _, mode := range []string{"choreography", "orchestration"} {
		for _, fenceOnly := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/fence_only=%v", mode, fenceOnly), func(t *testing.T) { zombie(t, mode, fenceOnly) })
		}
	}
}

func zombie(t *testing.T, mode string, fenceOnly bool) {
	s := sagatest.New(t, srv, map[string]string{"CLAIM_MIN_IDLE": "1s", "SAGA_MODE": mode})
	s.StartAPI(nil)
	initial := map[string]int64{"sku-a": 1000}
	s.SetStock("sku-a", 1000)
	env := map[string]string{"PAYMENT_LATENCY": "400ms"}
	if fenceOnly {
		env["WORKER_HANDLE_TIMEOUT"] = "30s"
	}
	zombie := start(t, "worker", workerEnv(s, env))
	zombie.waitFor(t, "worker started")
	var placed []sagatest.Placed
	var want []string
	for range 10 {
		o, err := s.PlaceOrder("c-zombie", sagatest.I("sku-a", 1, 100))
		if err != nil {
			t.Fatal(err)
		}
		placed = append(placed, o)
		want = append(want, "COMPLETED")
	}
	time.Sleep(150 * time.Millisecond) // the zombie is inside its charges
	if pendingOf(t, s, zombie.cmd.Process.Pid) == 0 {
		t.Fatal("the worker held nothing when paused: the test exercises nothing")
	}
	zombie.signal(syscall.SIGSTOP)
	rescuer := start(t, "worker", workerEnv(s, nil))
	rescuer.waitFor(t, "worker started")
	s.WaitFinished(placed, 30*time.Second)
	zombie.signal(syscall.SIGCONT)
	time.Sleep(time.Second) // its charges finish and try to commit
	zombie.signal(syscall.SIGTERM)
	if code := zombie.wait(10 * time.Second); code != 0 {
		t.Fatalf("zombie exit %d", code)
	}
	s.WaitAtRest(10 * time.Second)
	s.MustCheck(placed, initial)
	s.MustOutcomes(placed, want)
	var stopped struct {
		Stale int64 `json:"stale_refused"`
	}
	expired := 0
	for _, line := range strings.Split(zombie.output(), "\n") {
		if strings.Contains(line, `"worker stopped"`) {
			_ = json.Unmarshal([]byte(line), &stopped)
		}
		if strings.Contains(line, "context deadline exceeded") {
			expired++
		}
	}
	if stopped.Stale+int64(expired) == 0 || (fenceOnly && stopped.Stale == 0) {
		t.Fatalf("the resumed zombie reported no refused work:\n%s", zombie.output())
	}
	t.Logf("the zombie's late work: %d handlers past their deadline, %d commits refused by the fence", expired, stopped.Stale)
}
