package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisStats is one reading of the counters the bench reports per saga.
type redisStats struct {
	// calls sums INFO commandstats: commands run inside scripts count too.
	calls int64
	// reads is total_reads_processed: read events on client sockets, one
	// per round trip (a pipeline sent at once is one).
	reads int64
	// cpu is used_cpu_user + used_cpu_sys of the server process.
	cpu time.Duration
	// memory is used_memory.
	memory int64
	// perCommand maps a command to its calls and microseconds.
	perCommand map[string][2]int64
	// masterCPU is the CPU of each master of a cluster, by address.
	masterCPU map[string]time.Duration
}

// readRedisStats reads the counters of one server, or sums them over every
// master of a cluster.
func readRedisStats(ctx context.Context, rdb redis.UniversalClient) (redisStats, error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return readNodeStats(ctx, rdb)
	}
	var mu sync.Mutex
	sum := redisStats{perCommand: map[string][2]int64{}, masterCPU: map[string]time.Duration{}}
	err := cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		s, err := readNodeStats(ctx, node)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		sum.masterCPU[node.Options().Addr] = s.cpu
		sum.calls += s.calls
		sum.reads += s.reads
		sum.cpu += s.cpu
		sum.memory += s.memory
		for k, v := range s.perCommand {
			w := sum.perCommand[k]
			sum.perCommand[k] = [2]int64{w[0] + v[0], w[1] + v[1]}
		}
		return nil
	})
	return sum, err
}

func readNodeStats(ctx context.Context, rdb redis.Cmdable) (redisStats, error) {
	info, err := rdb.Info(ctx, "commandstats", "stats", "cpu", "memory").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("info: %w", err)
	}
	s := redisStats{perCommand: map[string][2]int64{}}
	var cpu float64
	sc := bufio.NewScanner(strings.NewReader(info))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch {
		case strings.HasPrefix(k, "cmdstat_"):
			// calls=12,usec=34,usec_per_call=...,rejected_calls=0,failed_calls=0
			var calls, usec int64
			for _, f := range strings.Split(v, ",") {
				name, val, _ := strings.Cut(f, "=")
				switch name {
				case "calls":
					calls, _ = strconv.ParseInt(val, 10, 64)
				case "usec":
					usec, _ = strconv.ParseInt(val, 10, 64)
				}
			}
			s.calls += calls
			s.perCommand[strings.TrimPrefix(k, "cmdstat_")] = [2]int64{calls, usec}
		case k == "total_reads_processed":
			s.reads, _ = strconv.ParseInt(v, 10, 64)
		case k == "used_cpu_user" || k == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += f
		case k == "used_memory":
			s.memory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	s.cpu = time.Duration(cpu * float64(time.Second))
	return s, nil
}

// processCPU is the user + system CPU a process has used so far, from
// /proc/<pid>/stat (Linux).
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are plain. utime and stime are fields 14 and 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// selfCPU is this process's user + system CPU, at finer grain than /proc.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuSnapshot is the CPU used so far by each kind of process.
type cpuSnapshot struct {
	redis, workers, driver time.Duration
}

type snapshot struct {
	redis redisStats
	cpu   cpuSnapshot
}

func takeSnapshot(ctx context.Context, rdb redis.UniversalClient, workerPIDs []int) (snapshot, error) {
	rs, err := readRedisStats(ctx, rdb)
	if err != nil {
		return snapshot{}, err
	}
	s := snapshot{redis: rs, cpu: cpuSnapshot{redis: rs.cpu, driver: selfCPU()}}
	for _, pid := range workerPIDs {
		s.cpu.workers += processCPU(pid)
	}
	return s, nil
}
