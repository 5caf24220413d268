package saga_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/saga"
)

// Visit is the context of a small saga: every step reads it.
type Visit struct {
	Guest string `json:"guest"`
	Room  string `json:"room"`
}

// keys is the one room per guest, a hash shared by every saga.
var keys = saga.Shared("hotel", "keys")

func handOutKey(_ context.Context, c *saga.Call[Visit]) (saga.Outcome, error) {
	return saga.OK(map[string]string{"room": c.Data.Room},
		saga.Take(keys, c.Data.Room, 1, "no key left for "+c.Data.Room)), nil
}

func takeKeyBack(_ context.Context, c *saga.Call[Visit]) (saga.Outcome, error) {
	return saga.OK(nil, saga.HIncrBy(keys, c.Data.Room, 1)), nil
}

func keepKey(context.Context, *saga.Call[Visit]) (saga.Outcome, error) { return saga.OK(nil), nil }

func serveBreakfast(_ context.Context, c *saga.Call[Visit]) (saga.Outcome, error) {
	if c.Data.Guest == "" {
		return saga.Fail("nobody to serve"), nil
	}
	return saga.OK(nil, saga.Set("breakfast", "served")), nil
}

// The smallest complete saga: two steps, declared once, run by a worker in
// both styles. Its first step takes a key from a hash every saga shares
// (applied once, behind a barrier; kept on completion by Finally); the
// second writes its record into the saga itself.
func Example() {
	visit := saga.Define("VISIT",
		saga.Step("handOutKey", "desk", handOutKey, takeKeyBack).Finally(keepKey),
		saga.Step("serveBreakfast", "kitchen", serveBreakfast, nil),
	)

	rdb := srv.Client() // a *redis.Client of a test's redis-server
	defer rdb.Close()
	engine, err := saga.New(rdb, saga.Options{Prefix: redistest.Prefix()}, visit)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	reader := srv.Client() // blocking reads get a client of their own
	defer reader.Close()
	worker := &saga.Worker{Engine: engine, RDB: rdb, Reader: reader}
	worker.Runner.Consumer = "example-worker"
	go worker.Run(ctx)

	rdb.HSet(ctx, engine.Keys().Shared("hotel", "keys"), "101", 1)
	for _, mode := range []string{saga.ModeChoreography, saga.ModeOrchestration} {
		started, err := visit.Start(ctx, engine, Visit{Guest: "ann", Room: "101"}, saga.StartOptions{Mode: mode})
		if err != nil {
			fmt.Println(err)
			return
		}
		for {
			st, err := engine.Get(ctx, started.SagaID)
			if err == nil && (st.Status == saga.StatusCompleted || st.Status == saga.StatusCompensated) {
				fmt.Println(strings.TrimSpace(mode + " " + st.Status + " " + st.Reason))
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Output:
	// choreography COMPLETED
	// orchestration COMPENSATED no key left for 101
}
