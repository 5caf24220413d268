// Command trip runs the example trip saga: a worker (-worker), or a demo
// that books one trip down each path against REDIS_URL and prints how each
// ended.
//
//	go run ./examples/trip/cmd/trip              # the demo (needs a Redis)
//	go run ./examples/trip/cmd/trip -worker      # a worker; run as many as you like
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/streamsaga/streamsaga/examples/trip"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

func main() {
	worker := flag.Bool("worker", false, "run a worker until SIGTERM")
	mode := flag.String("mode", saga.ModeChoreography, "saga style of the demo's trips")
	flag.Parse()
	url := env("REDIS_URL", "redis://localhost:6379/0")
	opts := saga.Options{Prefix: env("TRIP_PREFIX", "trip"), StepTimeout: 10 * time.Second}
	claim, err := time.ParseDuration(env("CLAIM_MIN_IDLE", "15s"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "trip: CLAIM_MIN_IDLE:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, url, opts, claim, *worker, *mode); err != nil {
		fmt.Fprintln(os.Stderr, "trip:", err)
		os.Exit(1)
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(ctx context.Context, url string, opts saga.Options, claim time.Duration, worker bool, mode string) error {
	rdb, err := streams.Connect(url, streams.ClientOptions{PoolSize: 80, Name: "trip"})
	if err != nil {
		return err
	}
	defer rdb.Close()
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e, s, a, err := trip.New(rdb, opts)
	if err != nil {
		return err
	}
	if worker {
		fmt.Fprintln(os.Stderr, "trip worker started")
		return trip.Work(ctx, url, e, rdb, claim, log)
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- trip.Work(wctx, url, e, rdb, claim, log) }()
	defer func() { cancel(); <-done }()
	keys := e.Keys()
	rdb.HSet(ctx, keys.Shared("airline", "free"), "XY100", 100, "FULL1", 0)
	_ = a.Hotels.Refuse(ctx, "Hotel Nowhere")
	_ = a.Cards.Refuse(ctx, "broke")
	trips := []struct {
		name string
		trip trip.Trip
	}{
		{"booked", trip.Trip{Traveller: "ann", Flight: "XY100", Seats: 2, Hotel: "Grand", Car: true, PriceCents: 90000}},
		{"flight full", trip.Trip{Traveller: "bob", Flight: "FULL1", Seats: 1, Hotel: "Grand", PriceCents: 40000}},
		{"no room", trip.Trip{Traveller: "cy", Flight: "XY100", Seats: 1, Hotel: "Hotel Nowhere", PriceCents: 40000}},
		{"card declined", trip.Trip{Traveller: "broke", Flight: "XY100", Seats: 1, Hotel: "Grand", Car: true, PriceCents: 40000}},
	}
	ids := make([]string, len(trips))
	for i, t := range trips {
		st, err := s.Start(ctx, e, t.trip, saga.StartOptions{Mode: mode})
		if err != nil {
			return err
		}
		ids[i] = st.SagaID
	}
	for i, id := range ids {
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			st, err := e.Get(ctx, id)
			if err != nil {
				return err
			}
			if st.Status == saga.StatusCompleted || st.Status == saga.StatusCompensated || st.Status == saga.StatusFailed {
				fmt.Printf("%-14s %-12s %s\n", trips[i].name, st.Status, st.Reason)
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: still %s", trips[i].name, st.Status)
			}
		}
	}
	return nil
}
