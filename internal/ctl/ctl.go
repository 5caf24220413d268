// Package ctl is sagactl: read-mostly commands over the product's Redis
// data, each with a table output for people and --json for scripts.
//
// Exit codes: 0 done, 1 failed (Redis, a refused action), 2 bad usage or
// configuration, 3 not found.
package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/deadletter"
	"github.com/streamsaga/streamsaga/internal/wiring"
	"github.com/streamsaga/streamsaga/saga"
	"github.com/streamsaga/streamsaga/streams"
)

// Exit codes.
const (
	exitOK       = 0
	exitFailed   = 1
	exitUsage    = 2
	exitNotFound = 3
)

const usage = `usage: sagactl [--json] <command>

  ls [--status S] [--limit N]   sagas, most recently updated first
  show <saga-id>                one saga: state, steps and timeline
  streams                       streams: length, groups, lag, pending
  pending [--idle D]            pending entries idle at least D (default 0)
  dlq ls [--limit N]            dead letters
  dlq show <entry-id>           one dead letter
  dlq replay <entry-id>         publish a dead letter's entry again and remove it
  retry <saga-id>               re-drive a FAILED saga

Reads REDIS_URL, SAGA_PREFIX and SAGA_PARTITIONS.
`

type ctl struct {
	rdb    redis.UniversalClient
	ks     saga.Keys
	engine *saga.Engine
	cfg    *config.Config
	json   bool
	out    io.Writer
}

// Run runs one sagactl command; env replaces the process environment when
// not nil. It returns the exit code.
func Run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sagactl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return exitUsage
	}
	cfg, err := config.LoadFrom(env)
	if err != nil {
		fmt.Fprintln(stderr, "sagactl:", err)
		return exitUsage
	}
	rdb, err := streams.Connect(cfg.RedisURL, streams.ClientOptions{Name: "sagactl", TLSCAFile: cfg.RedisTLSCAFile, ClusterAddrs: cfg.ClusterAddrs})
	if err != nil {
		fmt.Fprintln(stderr, "sagactl:", err)
		return exitUsage
	}
	defer rdb.Close()
	product, err := wiring.New(rdb, cfg, config.NewLogger("error", stderr), nil)
	if err != nil {
		fmt.Fprintln(stderr, "sagactl:", err)
		if errors.Is(err, config.ErrInvalid) {
			return exitUsage
		}
		return exitFailed
	}
	engine := product.Engine
	c := &ctl{rdb: rdb, ks: engine.Keys(), engine: engine, cfg: cfg, json: *asJSON, out: stdout}
	err = c.dispatch(ctx, fs.Args())
	var ue usageError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "sagactl: %v\n%s", err, usage)
		return exitUsage
	case errors.Is(err, saga.ErrNotFound), errors.Is(err, deadletter.ErrNotFound):
		fmt.Fprintln(stderr, "sagactl:", err)
		return exitNotFound
	default:
		fmt.Fprintln(stderr, "sagactl:", err)
		return exitFailed
	}
}

type usageError string

func (u usageError) Error() string { return string(u) }

func (c *ctl) dispatch(ctx context.Context, args []string) error {
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "ls":
		fs := flag.NewFlagSet("ls", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		status := fs.String("status", "", "status")
		limit := fs.Int("limit", 20, "limit")
		if err := fs.Parse(rest); err != nil || *limit < 1 {
			return usageError("ls: bad flags")
		}
		return c.ls(ctx, *status, *limit)
	case "show", "retry":
		if len(rest) != 1 {
			return usageError(cmd + " takes one saga id")
		}
		if cmd == "show" {
			return c.show(ctx, rest[0])
		}
		if err := c.engine.Retry(ctx, rest[0]); err != nil {
			return err
		}
		return c.print(map[string]string{"saga_id": rest[0], "status": saga.StatusCompensating}, func(w io.Writer) {
			fmt.Fprintf(w, "saga %s re-driven: COMPENSATING\n", rest[0])
		})
	case "streams":
		return c.streams(ctx)
	case "pending":
		fs := flag.NewFlagSet("pending", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		idle := fs.Duration("idle", 0, "idle")
		if err := fs.Parse(rest); err != nil {
			return usageError("pending: bad flags")
		}
		return c.pending(ctx, *idle)
	case "dlq":
		if len(rest) == 0 {
			return usageError("dlq needs ls, show or replay")
		}
		switch rest[0] {
		case "ls":
			fs := flag.NewFlagSet("dlq ls", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			limit := fs.Int("limit", 50, "limit")
			if err := fs.Parse(rest[1:]); err != nil || *limit < 1 {
				return usageError("dlq ls: bad flags")
			}
			return c.dlqList(ctx, *limit)
		case "show", "replay":
			if len(rest) != 2 {
				return usageError("dlq " + rest[0] + " takes one entry id")
			}
			if rest[0] == "show" {
				return c.dlqShow(ctx, rest[1])
			}
			return c.dlqReplay(ctx, rest[1])
		}
		return usageError("unknown dlq command " + rest[0])
	}
	return usageError("unknown command " + cmd)
}

// print writes v as JSON with --json, else calls table.
func (c *ctl) print(v any, table func(io.Writer)) error {
	if c.json {
		enc := json.NewEncoder(c.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}

func (c *ctl) ls(ctx context.Context, status string, limit int) error {
	statuses := saga.Statuses
	if status != "" {
		statuses = []string{strings.ToUpper(status)}
	}
	list, err := c.engine.List(ctx, statuses, limit)
	if err != nil {
		return err
	}
	return c.print(list, func(w io.Writer) {
		fmt.Fprintln(w, "SAGA\tTYPE\tMODE\tSTATUS\tSTEP\tUPDATED\tREASON")
		for _, s := range list {
			step := "-"
			if s.CurrentStep >= 0 && s.CurrentStep < len(s.Steps) {
				step = s.Steps[s.CurrentStep].Name
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.SagaID, s.Type, s.Mode, s.Status, step, s.UpdatedAt.Format(time.RFC3339), s.Reason)
		}
	})
}

func (c *ctl) show(ctx context.Context, id string) error {
	st, err := c.engine.Get(ctx, id)
	if err != nil {
		return err
	}
	return c.print(st, func(w io.Writer) {
		fmt.Fprintf(w, "saga\t%s\ntype\t%s\nmode\t%s\nstatus\t%s\nreason\t%s\nversion\t%d\ncreated\t%s\nupdated\t%s\n",
			st.SagaID, st.Type, st.Mode, st.Status, st.Reason, st.Version, st.CreatedAt.Format(time.RFC3339Nano), st.UpdatedAt.Format(time.RFC3339Nano))
		fmt.Fprintln(w, "\nSTEP\tSTATUS\tRESULT")
		for _, s := range st.Steps {
			fmt.Fprintf(w, "%s\t%s\t%s\n", s.Name, s.Status, string(s.Result))
		}
		fmt.Fprintln(w, "\nTIMELINE\tVERSION\tMESSAGE")
		for _, h := range st.History {
			fmt.Fprintf(w, "+%s\t%d\t%s\n", h.At.Sub(st.CreatedAt).Round(time.Microsecond), h.Version, h.Type)
		}
	})
}

func (c *ctl) allStreams() []string {
	events, operator := wiring.Streams(c.engine)
	return append(events, operator...)
}

func (c *ctl) streams(ctx context.Context) error {
	out, err := streams.Inspect(ctx, c.rdb, c.allStreams())
	if err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "STREAM\tLENGTH\tGROUP\tPENDING\tLAG\tCONSUMERS")
		for _, s := range out {
			if len(s.Groups) == 0 {
				fmt.Fprintf(w, "%s\t%d\t-\t-\t-\t-\n", s.Stream, s.Length)
			}
			for _, g := range s.Groups {
				fmt.Fprintf(w, "%s\t%d\t%s\t%d\t%d\t%d\n", s.Stream, s.Length, g.Name, g.Pending, g.Lag, g.Consumers)
			}
		}
	})
}

type pendingEntry struct {
	Stream     string  `json:"stream"`
	Group      string  `json:"group"`
	ID         string  `json:"id"`
	Consumer   string  `json:"consumer"`
	IdleSec    float64 `json:"idle_seconds"`
	Deliveries int64   `json:"deliveries"`
}

func (c *ctl) pending(ctx context.Context, idle time.Duration) error {
	out := []pendingEntry{}
	events, _ := wiring.Streams(c.engine)
	for _, key := range events {
		groups, err := c.rdb.XInfoGroups(ctx, key).Result()
		if err != nil {
			continue
		}
		for _, g := range groups {
			if g.Pending == 0 {
				continue
			}
			list, err := c.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: g.Name, Idle: idle, Start: "-", End: "+", Count: 1000}).Result()
			if err != nil {
				return fmt.Errorf("xpending %s %s: %w", key, g.Name, err)
			}
			for _, p := range list {
				out = append(out, pendingEntry{Stream: key, Group: g.Name, ID: p.ID, Consumer: p.Consumer, IdleSec: p.Idle.Seconds(), Deliveries: p.RetryCount})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].IdleSec > out[j].IdleSec })
	return c.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "STREAM\tGROUP\tID\tCONSUMER\tIDLE\tDELIVERIES")
		for _, p := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.1fs\t%d\n", p.Stream, p.Group, p.ID, p.Consumer, p.IdleSec, p.Deliveries)
		}
	})
}

func (c *ctl) dlqList(ctx context.Context, limit int) error {
	out, err := deadletter.List(ctx, c.rdb, c.ks, limit)
	if err != nil {
		return err
	}
	return c.print(out, func(w io.Writer) {
		fmt.Fprintln(w, "ID\tGROUP\tTYPE\tSAGA\tDELIVERIES\tERROR")
		for _, d := range out {
			f := d.Fields
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, f["group"], f["type"], f["saga_id"], f["deliveries"], f["error"])
		}
	})
}

// findDead finds a dead letter by id in any partition.
func (c *ctl) findDead(ctx context.Context, id string) (*deadletter.Letter, error) {
	d, err := deadletter.Find(ctx, c.rdb, c.ks, id)
	if errors.Is(err, deadletter.ErrBadID) {
		return nil, usageError("not a stream entry id: " + id)
	}
	return d, err
}

func (c *ctl) dlqShow(ctx context.Context, id string) error {
	d, err := c.findDead(ctx, id)
	if err != nil {
		return err
	}
	return c.print(d, func(w io.Writer) {
		keys := make([]string, 0, len(d.Fields))
		for k := range d.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s\t%s\n", k, d.Fields[k])
		}
	})
}

// dlqReplay publishes a dead letter's original entry on its stream again
// and removes it from the dead-letter stream, in one script.
func (c *ctl) dlqReplay(ctx context.Context, id string) error {
	if !deadletter.ValidID(id) {
		return usageError("not a stream entry id: " + id)
	}
	r, err := deadletter.Replay(ctx, c.rdb, c.ks, id)
	if err != nil {
		return err
	}
	return c.print(r, func(w io.Writer) {
		fmt.Fprintf(w, "replayed %s on %s as %s\n", r.Replayed, r.Stream, r.ID)
	})
}
