package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

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

// pingTimeout bounds the PING that precedes every command that reads
// Redis: a person is waiting.
const pingTimeout = 1500 * time.Millisecond

// app is one invocation: its environment, its output and --json.
type app struct {
	env    map[string]string
	out    io.Writer
	errOut io.Writer
	json   bool
}

// session is what a command that reads Redis works with.
type session struct {
	*app
	rdb    redis.UniversalClient
	ks     saga.Keys
	engine *saga.Engine
}

// Run runs sagactl with args (without the program name); env replaces the
// process environment when not nil. It returns the exit code.
func Run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	a := &app{env: env, out: stdout, errOut: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	return a.exit(cmd, err)
}

// failure is an error a command returned while running, as opposed to one
// cobra found in the command line; the difference decides the exit code.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

// usageError is a command line a command refused once running.
type usageError struct {
	msg       string
	showUsage bool
}

func (u usageError) Error() string { return u.msg }

// pingError: the first PING failed: Redis unreachable, silent, or
// refusing sagactl (AUTH), or not Redis at all.
type pingError struct {
	where string
	err   error
}

func (u pingError) Error() string {
	var rerr redis.Error
	var nerr net.Error
	switch {
	case errors.As(u.err, &rerr):
		return fmt.Sprintf("%s refused sagactl: %v", u.where, u.err)
	case errors.Is(u.err, context.DeadlineExceeded) || errors.As(u.err, &nerr) && nerr.Timeout():
		return fmt.Sprintf("%s is unreachable: no answer to PING within %s", u.where, pingTimeout)
	case errors.As(u.err, &nerr):
		return fmt.Sprintf("%s is unreachable: %v", u.where, u.err)
	default:
		return fmt.Sprintf("%s does not answer as Redis: %v", u.where, u.err)
	}
}

func (u pingError) Unwrap() error { return u.err }

// exit prints err, if any, as one line (plus a pointer to the help for a
// usage error) and maps it to an exit code.
func (a *app) exit(cmd *cobra.Command, err error) int {
	if err == nil {
		return exitOK
	}
	path := "sagactl"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	var f failure
	if !errors.As(err, &f) {
		return a.usage(cmd, path, err.Error(), false)
	}
	var ue usageError
	switch {
	case errors.As(f.err, &ue):
		return a.usage(cmd, path, ue.msg, ue.showUsage)
	case errors.Is(f.err, config.ErrInvalid):
		fmt.Fprintf(a.errOut, "sagactl: %v\n", f.err)
		return exitUsage
	case errors.Is(f.err, saga.ErrNotFound), errors.Is(f.err, deadletter.ErrNotFound):
		fmt.Fprintf(a.errOut, "sagactl: %v\n", f.err)
		return exitNotFound
	default:
		fmt.Fprintf(a.errOut, "sagactl: %s\n", oneLine(f.err.Error()))
		return exitFailed
	}
}

func (a *app) usage(cmd *cobra.Command, path, msg string, showUsage bool) int {
	fmt.Fprintf(a.errOut, "%s: %s\n", path, msg)
	if showUsage && cmd != nil {
		fmt.Fprint(a.errOut, "\n"+cmd.UsageString())
		return exitUsage
	}
	fmt.Fprintf(a.errOut, "Run '%s --help' for usage.\n", path)
	return exitUsage
}

// oneLine keeps a failure on one line whatever the error text holds.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// withRedis makes a cobra RunE of fn: it loads the configuration, connects,
// pings Redis within pingTimeout and builds the engine, then runs fn. Its
// errors are failures, told apart from cobra's usage errors by exit.
func (a *app) withRedis(fn func(ctx context.Context, s *session, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		s, closeFn, err := a.connect(cmd.Context())
		if err != nil {
			return failure{err}
		}
		defer closeFn()
		if err := fn(cmd.Context(), s, args); err != nil {
			return failure{err}
		}
		return nil
	}
}

// offline makes a cobra RunE of fn for a command that needs no Redis.
func offline(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return failure{err}
		}
		return nil
	}
}

func (a *app) connect(ctx context.Context) (*session, func(), error) {
	cfg, err := config.LoadFrom(a.env)
	if err != nil {
		return nil, nil, err
	}
	rdb, err := streams.Connect(cfg.RedisURL, streams.ClientOptions{
		Name: "sagactl", TLSCAFile: cfg.RedisTLSCAFile, ClusterAddrs: cfg.ClusterAddrs, FailFast: true,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", config.ErrInvalid, err)
	}
	closeFn := func() { _ = rdb.Close() }
	pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
	err = rdb.Ping(pingCtx).Err()
	cancel()
	if err != nil {
		closeFn()
		return nil, nil, pingError{where: redisAddress(cfg), err: err}
	}
	product, err := wiring.New(rdb, cfg, config.NewLogger("error", a.errOut), nil)
	if err != nil {
		closeFn()
		return nil, nil, err
	}
	engine := product.Engine
	return &session{app: a, rdb: rdb, ks: engine.Keys(), engine: engine}, closeFn, nil
}

// redisAddress names the Redis sagactl dials, without credentials.
func redisAddress(cfg *config.Config) string {
	if len(cfg.ClusterAddrs) > 0 {
		return fmt.Sprintf("redis cluster at %s (REDIS_CLUSTER_ADDRS)", strings.Join(cfg.ClusterAddrs, ","))
	}
	opts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return "redis (REDIS_URL)"
	}
	return fmt.Sprintf("redis at %s (REDIS_URL)", opts.Addr)
}

// print writes v as JSON with --json, else calls table.
func (a *app) print(v any, table func(io.Writer)) error {
	if a.json {
		enc := json.NewEncoder(a.out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	w := tabwriter.NewWriter(a.out, 0, 4, 2, ' ', 0)
	table(w)
	return w.Flush()
}
