// Command chaos runs the fault-injection suite: the real API and worker
// binaries against a redis-server with AOF, a load that keeps a ledger of
// acknowledged orders, one kind of fault per scenario, then the invariants
// C1–C8 of RELIABILITY.md. It exits 1 when any scenario breaks one. Run it
// from the repository's root: it builds cmd/api and cmd/worker first.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/streamsaga/streamsaga/internal/chaos"
)

func main() {
	var o chaos.Options
	scenarios := flag.String("scenarios", "", "comma-separated scenarios to run (default all): "+strings.Join(chaos.Names(), ","))
	flag.DurationVar(&o.Duration, "duration", 20*time.Second, "load and faults per scenario")
	flag.Float64Var(&o.Rate, "rate", 50, "orders per second")
	flag.IntVar(&o.Workers, "workers", 3, "worker processes (at least 3)")
	flag.StringVar(&o.Mode, "mode", "choreography", "saga style: choreography or orchestration")
	flag.StringVar(&o.Dir, "dir", "", "directory for logs and ledgers (default a temporary one)")
	flag.Uint64Var(&o.Seed, "seed", uint64(time.Now().UnixNano()), "random seed of the fault schedule")
	jsonOut := flag.String("json", "", "also write the results as JSON to this file")
	flag.Parse()
	if *scenarios != "" {
		o.Scenarios = strings.Split(*scenarios, ",")
		for _, s := range o.Scenarios {
			if !slices.Contains(chaos.Names(), s) {
				fmt.Fprintf(os.Stderr, "chaos: unknown scenario %q (known: %s)\n", s, strings.Join(chaos.Names(), ","))
				os.Exit(2)
			}
		}
	}
	o.Out = os.Stdout
	fmt.Printf("chaos: seed %d, %s per scenario at %.0f orders/s, %d workers, %s\n", o.Seed, o.Duration, o.Rate, o.Workers, o.Mode)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	results, err := chaos.Run(ctx, o)
	if *jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		if werr := os.WriteFile(*jsonOut, b, 0o644); werr != nil {
			fmt.Fprintln(os.Stderr, "chaos:", werr)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(1)
	}
	failed := 0
	for _, r := range results {
		if !r.OK() {
			failed++
		}
	}
	fmt.Printf("chaos: %d scenarios, %d failed\n", len(results), failed)
	if failed > 0 {
		os.Exit(1)
	}
}
