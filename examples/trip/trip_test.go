package trip_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/examples/trip"
	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
	"github.com/streamsaga/streamsaga/saga"
)

var srv *redistest.Server

func TestMain(m *testing.M) { os.Exit(redistest.RunMain(m, &srv, redistest.Options{})) }

// world is one test's trip saga, on its own prefix.
type world struct {
	t      *testing.T
	rdb    *redis.Client
	e      *saga.Engine
	saga   *saga.Saga[trip.Trip]
	agency *trip.Agency
	prefix string
}

const seats = 1000

func newWorld(t *testing.T) *world {
	t.Helper()
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	prefix := redistest.Prefix()
	e, s, a, err := trip.New(rdb, saga.Options{Prefix: prefix, StepTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rdb.HSet(ctx, e.Keys().Shared("airline", "free"), "XY100", seats, "FULL1", 0)
	if err := a.Hotels.Refuse(ctx, "Hotel Nowhere"); err != nil {
		t.Fatal(err)
	}
	if err := a.Cards.Refuse(ctx, "broke"); err != nil {
		t.Fatal(err)
	}
	return &world{t: t, rdb: rdb, e: e, saga: s, agency: a, prefix: prefix}
}

// workers runs n workers in this process until the test ends.
func (w *world) workers(n int) {
	for range n {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- trip.Work(ctx, srv.URL(), w.e, w.rdb, time.Second, slog.New(slog.DiscardHandler)) }()
		w.t.Cleanup(func() { cancel(); <-done })
	}
}

// paths are the four ways a trip ends.
var paths = []struct {
	name   string
	trip   trip.Trip
	status string
}{
	{"booked", trip.Trip{Traveller: "ann", Flight: "XY100", Seats: 2, Hotel: "Grand", Car: true, PriceCents: 90000}, saga.StatusCompleted},
	{"flight full", trip.Trip{Traveller: "bob", Flight: "FULL1", Seats: 1, Hotel: "Grand", Car: true, PriceCents: 40000}, saga.StatusCompensated},
	{"no room", trip.Trip{Traveller: "cy", Flight: "XY100", Seats: 1, Hotel: "Hotel Nowhere", Car: true, PriceCents: 40000}, saga.StatusCompensated},
	{"card declined", trip.Trip{Traveller: "broke", Flight: "XY100", Seats: 3, Hotel: "Grand", Car: true, PriceCents: 40000}, saga.StatusCompensated},
}

type placed struct {
	id   string
	trip trip.Trip
	want string
}

func (w *world) start(t trip.Trip, mode, want string) placed {
	w.t.Helper()
	st, err := w.saga.Start(context.Background(), w.e, t, saga.StartOptions{Mode: mode})
	if err != nil {
		w.t.Fatal(err)
	}
	return placed{st.SagaID, t, want}
}

// waitEnded waits until every trip's saga has ended and everything was
// read and acknowledged.
func (w *world) waitEnded(trips []placed, timeout time.Duration) {
	w.t.Helper()
	ctx := context.Background()
	sagatest.WaitFor(w.t, "every trip to end", timeout, func() bool {
		for _, p := range trips {
			st, err := w.e.Get(ctx, p.id)
			if err != nil || (st.Status != saga.StatusCompleted && st.Status != saga.StatusCompensated) {
				return false
			}
		}
		return true
	})
	chk := sagatest.NewChecker(w.rdb, w.prefix)
	sagatest.WaitFor(w.t, "every message read and acknowledged", timeout, func() bool {
		p, groups, err := chk.AtRest(ctx)
		return err == nil && groups > 0 && len(p) == 0
	})
}

// check verifies the trips' outcomes and the partners' books: every booked
// trip holds its seats (sold), its room, its car and its charge, once; no
// cancelled trip holds anything; nothing was booked twice.
func (w *world) check(trips []placed) {
	w.t.Helper()
	ctx := context.Background()
	keys := w.e.Keys()
	sold, cars := map[string]int64{}, int64(0)
	booked := map[string]bool{}
	for _, p := range trips {
		st, err := w.e.Get(ctx, p.id)
		if err != nil {
			w.t.Fatal(err)
		}
		if p.want != "" && st.Status != p.want {
			w.t.Errorf("trip %s of %s ended %s (%s), want %s", p.id, p.trip.Traveller, st.Status, st.Reason, p.want)
		}
		if st.Status == saga.StatusCompleted {
			booked[p.id] = true
			sold[p.trip.Flight] += p.trip.Seats
			if p.trip.Car {
				cars++
			}
		}
	}
	for flight, initial := range map[string]int64{"XY100": seats, "FULL1": 0} {
		free := w.rdb.HGet(ctx, keys.Shared("airline", "free"), flight).Val()
		held := w.rdb.HGet(ctx, keys.Shared("airline", "held"), flight).Val()
		got := w.rdb.HGet(ctx, keys.Shared("airline", "sold"), flight).Val()
		if num(free) != initial-sold[flight] || num(held) != 0 || num(got) != sold[flight] {
			w.t.Errorf("flight %s: free %s held %s sold %s, want %d free, 0 held, %d sold", flight, free, held, got, initial-sold[flight], sold[flight])
		}
	}
	var out int64
	for p := range keys.Partitions {
		out += num(w.rdb.HGet(ctx, keys.InPartition(p, "cars"), "out").Val())
	}
	if out != cars {
		w.t.Errorf("%d cars out for %d booked trips with a car", out, cars)
	}
	for _, x := range []*trip.External{w.agency.Hotels, w.agency.Cards} {
		books, _ := x.Bookings(ctx)
		counters, _ := x.Counters(ctx)
		live, made := 0, 0
		for key, state := range books {
			sagaID, _, _ := strings.Cut(key, ":")
			switch state {
			case "booked":
				live++
				made++
				if !booked[sagaID] {
					w.t.Errorf("%s: trip %s was cancelled but still holds a booking", x.Name, sagaID)
				}
			case "cancelled":
				made++
			}
		}
		if num(counters["booked"]) != int64(made) || num(counters["cancelled"]) != int64(made-live) {
			w.t.Errorf("%s: counters %v for %d bookings made, %d live: something was booked twice", x.Name, counters, made, live)
		}
		if live != len(booked) {
			w.t.Errorf("%s: %d live bookings for %d booked trips", x.Name, live, len(booked))
		}
	}
}

func num(s string) int64 {
	n, _ := strconv.ParseInt(s, 10, 64)
	return n
}

// The trip saga's four paths, in both styles.
func TestFourPaths(t *testing.T) {
	for _, mode := range []string{saga.ModeChoreography, saga.ModeOrchestration} {
		t.Run(mode, func(t *testing.T) {
			w := newWorld(t)
			w.workers(2)
			var trips []placed
			for range 3 {
				for _, p := range paths {
					trips = append(trips, w.start(p.trip, mode, p.status))
				}
			}
			w.waitEnded(trips, 20*time.Second)
			w.check(trips)
			ctx := context.Background()
			for i, p := range trips {
				st, _ := w.e.Get(ctx, p.id)
				want := map[string]string{
					"booked":        "",
					"flight full":   "flight FULL1 is full",
					"no room":       "no room at Hotel Nowhere",
					"card declined": "card declined for broke",
				}[paths[i%len(paths)].name]
				if st.Reason != want || st.FirstReason != want {
					t.Errorf("%s: reason %q, first %q, want %q", paths[i%len(paths)].name, st.Reason, st.FirstReason, want)
				}
				checkSteps(t, paths[i%len(paths)].name, st)
			}
		})
	}
}

// checkSteps checks what GET /sagas/{id} says of a trip's steps: the step
// it failed at, each step's status, and that a compensated step keeps its
// own result beside its compensation's.
func checkSteps(t *testing.T, path string, st *saga.State) {
	t.Helper()
	want := map[string]struct {
		current int
		steps   string
	}{
		"booked":        {3, "COMPLETED COMPLETED COMPLETED COMPLETED"},
		"flight full":   {0, "FAILED PENDING PENDING PENDING"},
		"no room":       {1, "COMPENSATED FAILED PENDING PENDING"},
		"card declined": {3, "COMPENSATED COMPENSATED COMPENSATED FAILED"},
	}[path]
	var got []string
	for _, s := range st.Steps {
		got = append(got, s.Status)
		switch s.Status {
		case saga.StepCompensated:
			if len(s.Result) == 0 || s.Compensation == nil || s.Compensation.Status != saga.CompensationCompleted {
				t.Errorf("%s: step %s compensated with result %s, compensation %+v", path, s.Name, s.Result, s.Compensation)
			}
		case saga.StepFailed, saga.StepPending:
			if s.Compensation != nil {
				t.Errorf("%s: step %s %s with a compensation %+v: none ran", path, s.Name, s.Status, s.Compensation)
			}
		}
	}
	if st.CurrentStep != want.current || strings.Join(got, " ") != want.steps {
		t.Errorf("%s: current step %d, steps %v; want %d, %s", path, st.CurrentStep, got, want.current, want.steps)
	}
}

// Worker processes of the example, one SIGKILLed in the middle of a load:
// every trip ends, and nothing is booked twice or left booked.
func TestWorkerSIGKILLUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs worker processes")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "trip")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/trip").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	w := newWorld(t)
	startWorker := func() *exec.Cmd {
		cmd := exec.Command(bin, "-worker")
		cmd.Env = append(os.Environ(), "REDIS_URL="+srv.URL(), "TRIP_PREFIX="+w.prefix, "CLAIM_MIN_IDLE=1s")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		return cmd
	}
	victim := startWorker()
	startWorker()
	// The victim is killed while it holds entries: read, not acknowledged.
	killed := make(chan int64, 1)
	go func() {
		tag := "-" + strconv.Itoa(victim.Process.Pid) + "-"
		ctx := context.Background()
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			var held int64
			for group, types := range w.e.Groups() {
				for _, typ := range types {
					p, err := w.rdb.XPending(ctx, w.e.Keys().Stream(0, typ), group).Result()
					if err != nil {
						continue
					}
					for consumer, n := range p.Consumers {
						if strings.Contains(consumer, tag) {
							held += n
						}
					}
				}
			}
			if held > 0 {
				_ = victim.Process.Signal(syscall.SIGKILL)
				killed <- held
				return
			}
		}
		killed <- 0
	}()
	var trips []placed
	var mu sync.Mutex
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				p := paths[(c+i)%len(paths)]
				mode := []string{saga.ModeChoreography, saga.ModeOrchestration}[i%2]
				placed := w.start(p.trip, mode, p.status)
				mu.Lock()
				trips = append(trips, placed)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	if held := <-killed; held == 0 {
		t.Fatal("the victim never held an entry: the test exercised nothing")
	} else {
		t.Logf("killed a worker holding %d entries", held)
	}
	wg.Wait()
	w.waitEnded(trips, 60*time.Second)
	w.check(trips)
	t.Logf("%d trips across a worker SIGKILL", len(trips))
}
