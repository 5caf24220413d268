package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/streamsaga/streamsaga/saga"
)

// SoakOptions shape a soak run: sagas started at a fixed rate (open loop)
// for a while, with Redis sampled as it goes.
type SoakOptions struct {
	Duration time.Duration
	Rate     float64       // sagas started per second
	Sample   time.Duration // time between samples
}

// Sample is one reading during a soak.
type Sample struct {
	Seconds      float64 `json:"seconds"`
	Started      int64   `json:"started"`
	StreamLength int64   `json:"stream_entries"`
	UsedMemory   int64   `json:"used_memory"`
	Keys         int64   `json:"keys"`
	PendingLag   int64   `json:"pending_and_lag"`
	Consumers    int64   `json:"consumers"`
}

// Soak starts sagas at s.Rate for s.Duration and prints a sample of stream
// lengths and memory every s.Sample. With short retentions passed to the
// workers (SAGA_RETENTION, STREAM_RETENTION in o.WorkerEnv), the samples of
// the second half must stay flat: that is what bounded memory means.
func Soak(ctx context.Context, o Options, s SoakOptions, out io.Writer) error {
	r, err := newRig(ctx, &o)
	if err != nil {
		return err
	}
	defer r.close()
	var started, failed atomic.Int64
	var firstErr error
	var errOnce sync.Once
	jobs := make(chan int, 1024)
	var wg sync.WaitGroup
	for range max(o.InFlight, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if _, err := r.place(ctx, i); err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				started.Add(1)
			}
		}()
	}
	begin := time.Now()
	sample := func() (Sample, error) {
		smp, err := readSample(ctx, r.rdb, r.ks)
		smp.Seconds = time.Since(begin).Seconds()
		smp.Started = started.Load()
		return smp, err
	}
	var samples []Sample
	report := func() error {
		smp, err := sample()
		if err != nil {
			return err
		}
		samples = append(samples, smp)
		if o.JSON {
			b, _ := json.Marshal(smp)
			fmt.Fprintln(out, string(b))
		} else {
			fmt.Fprintf(out, "%6.0fs started %8d  stream entries %7d  used_memory %6.1f MB  keys %7d  pending+lag %5d  consumers %d\n",
				smp.Seconds, smp.Started, smp.StreamLength, float64(smp.UsedMemory)/1e6, smp.Keys, smp.PendingLag, smp.Consumers)
		}
		return nil
	}
	// Ticks of 10 ms, each starting the sagas due by then: the rate holds
	// even when one tick runs late.
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	next := time.Now().Add(s.Sample)
	var issued int
	var behind int
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			elapsed := now.Sub(begin)
			if elapsed >= s.Duration {
				break loop
			}
			for due := int(elapsed.Seconds() * s.Rate); issued < due; issued++ {
				select {
				case jobs <- issued:
				default:
					behind++ // the placers cannot keep up: the rate is too high
				}
			}
			if now.After(next) {
				next = next.Add(s.Sample)
				if err := report(); err != nil {
					close(jobs)
					wg.Wait()
					return err
				}
			}
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("%d sagas could not start: %w", failed.Load(), firstErr)
	}
	left := waitNoPending(ctx, r.rdb, r.ks, 30*time.Second)
	if err := report(); err != nil {
		return err
	}
	fmt.Fprintf(out, "soak: %d sagas at %.0f/s over %s (%d not started: placers behind); %s\n",
		started.Load(), s.Rate, s.Duration, behind, flatness(samples))
	if left != 0 {
		return fmt.Errorf("%d entries still pending after the soak", left)
	}
	if unfinished, err := countStatus(ctx, r.rdb, r.ks, saga.StatusInProgress, saga.StatusCompensating); err != nil || unfinished > 0 {
		return fmt.Errorf("%d sagas did not finish (err %v)", unfinished, err)
	}
	if behind > 0 {
		return errors.New("the placers fell behind the rate: lower -rate")
	}
	return nil
}

// flatness compares the second half's samples: growth of stream entries and
// memory from its first to its last sample.
func flatness(samples []Sample) string {
	if len(samples) < 4 {
		return "too few samples to judge flatness"
	}
	half := samples[len(samples)/2:]
	a, b := half[0], half[len(half)-2] // the last one is taken after the drain
	return fmt.Sprintf("second half: stream entries %d → %d, used_memory %.1f → %.1f MB, keys %d → %d",
		a.StreamLength, b.StreamLength, float64(a.UsedMemory)/1e6, float64(b.UsedMemory)/1e6, a.Keys, b.Keys)
}

func readSample(ctx context.Context, rdb redis.UniversalClient, ks saga.Keys) (Sample, error) {
	var smp Sample
	st, err := readRedisStats(ctx, rdb)
	if err != nil {
		return smp, err
	}
	smp.UsedMemory = st.memory
	if smp.Keys, err = rdb.DBSize(ctx).Result(); err != nil {
		return smp, fmt.Errorf("dbsize: %w", err)
	}
	infos, err := inspectAll(ctx, rdb, ks)
	if err != nil {
		return smp, err
	}
	for _, si := range infos {
		smp.StreamLength += si.Length
		for _, g := range si.Groups {
			smp.PendingLag += g.Pending + g.Lag
			smp.Consumers += g.Consumers
		}
	}
	return smp, nil
}
