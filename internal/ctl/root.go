package ctl

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/cli"
	"github.com/streamsaga/streamsaga/internal/deadletter"
	"github.com/streamsaga/streamsaga/saga"
)

// environment names the variables sagactl reads; their defaults and
// descriptions come from config.Config (config.Vars), as in the other
// binaries' help.
var environment = []string{"REDIS_URL", "REDIS_CLUSTER_ADDRS", "REDIS_TLS_CA_FILE", "SAGA_PREFIX", "SAGA_PARTITIONS"}

const rootLong = `sagactl inspects and operates streamsaga from a terminal: sagas, streams,
pending entries and dead letters; it re-drives FAILED sagas and replays dead
letters. Every command prints a table, or JSON with --json (anywhere on the
command line).

sagactl talks to Redis directly, not through the API: ADMIN_TOKEN does not
apply to it. Anyone with access to Redis can do what sagactl does, so
protect Redis itself (network, AUTH/ACL, TLS).

Environment (the same variables as the API and the worker):
%s
Exit codes:
  0  done
  1  failed: Redis unreachable or failing, or the action was refused
     (e.g. retry of a saga that is not FAILED, replay of a truncated
     dead letter)
  2  bad usage or configuration: unknown command, flag or argument, an
     invalid value, a bad environment variable, a dead-letter id that
     more than one partition holds (name one with --partition)
  3  not found: no such saga or dead letter`

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "sagactl",
		Short: "Inspect and operate streamsaga's sagas, streams and dead letters",
		Long:  fmt.Sprintf(rootLong, environmentHelp()),
		Example: `  REDIS_URL=redis://localhost:6379/0 sagactl ls --status FAILED
  sagactl show 0192a000-0000-7000-8000-000000000000 --json
  sagactl dlq ls`,
		Version:       cli.Version("sagactl"),
		SilenceErrors: true,
		SilenceUsage:  true,
		// A missing command is a usage error (exit 2), as for go and git;
		// --help asks for the help and exits 0.
		RunE: func(cmd *cobra.Command, args []string) error {
			return failure{usageError{msg: "missing command", showUsage: true}}
		},
	}
	// Before the completion command is made: it keeps the writer it sees.
	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetUsageTemplate(usageTemplate)
	root.PersistentFlags().BoolVar(&a.json, "json", false, "print JSON instead of a table")
	root.AddCommand(a.lsCommand(), a.showCommand(), a.streamsCommand(), a.pendingCommand(),
		a.dlqCommand(), a.retryCommand(), a.versionCommand())
	refuseBareCompletion(root)
	return root
}

// refuseBareCompletion makes cobra's completion command, which only groups
// one command per shell, refuse a missing or unknown shell (exit 2) rather
// than print its help and exit 0.
func refuseBareCompletion(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args = subcommandArg
			c.RunE = func(*cobra.Command, []string) error {
				return failure{usageError{msg: "missing shell: bash, zsh, fish or powershell", showUsage: true}}
			}
		}
	}
}

// usageTemplate is cobra's, without command groups and with one usage
// line: a command that groups others is run as "<command>", never alone.
const usageTemplate = `Usage:{{if .HasAvailableSubCommands}}
  {{.CommandPath}} <command> [flags]{{else}}
  {{.UseLine}}{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .Name .NamePadding }} {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} <command> --help" for more information about a command.{{end}}
`

func environmentHelp() string {
	var b strings.Builder
	for _, v := range config.Vars() {
		if slices.Contains(environment, v.Name) {
			fmt.Fprintf(&b, "  %s=%s\n        %s\n", v.Name, v.Default, v.Help)
		}
	}
	return b.String()
}

func (a *app) lsCommand() *cobra.Command {
	var (
		status statusValue
		mode   modeValue
		typ    string
	)
	limit := limitValue(20)
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List sagas, most recently updated first",
		Example: `  sagactl ls
  sagactl ls --status FAILED --limit 100 --json
  sagactl ls --type ORDER_SAGA --mode orchestration`,
		Args: noArgs,
		RunE: a.withRedis(func(ctx context.Context, s *session, _ []string) error {
			return s.ls(ctx, lsQuery{status: string(status), typ: typ, mode: string(mode), limit: int(limit)})
		}),
	}
	cmd.Flags().Var(&status, "status", "only sagas in this status: "+strings.Join(saga.Statuses, ", ")+" (any case)")
	cmd.Flags().StringVar(&typ, "type", "", "only sagas of this type (e.g. ORDER_SAGA)")
	cmd.Flags().Var(&mode, "mode", "only sagas of this style: "+strings.Join(modes, ", "))
	cmd.Flags().Var(&limit, "limit", fmt.Sprintf("at most this many sagas, 1-%d", maxLimit))
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(saga.Statuses, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions(modes, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (a *app) showCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "show <saga-id>",
		Short:             "Show one saga: state, context, steps (results, compensations), timeline",
		Example:           "  sagactl show " + exampleSagaID,
		Args:              sagaIDArg,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.withRedis(func(ctx context.Context, s *session, args []string) error {
			return s.show(ctx, args[0])
		}),
	}
}

func (a *app) streamsCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "streams",
		Short: "List streams with entries or work outstanding: length, and each group's pending entries, lag and consumers",
		Args:  noArgs,
		RunE: a.withRedis(func(ctx context.Context, s *session, _ []string) error {
			return s.streams(ctx, all)
		}),
	}
	cmd.Flags().BoolVar(&all, "all", false, "list every stream, empty ones too")
	return cmd
}

func (a *app) pendingCommand() *cobra.Command {
	var idle idleValue
	cmd := &cobra.Command{
		Use:   "pending",
		Short: "List pending (read, unacknowledged) entries, longest idle first",
		Example: `  sagactl pending
  sagactl pending --idle 30s`,
		Args: noArgs,
		RunE: a.withRedis(func(ctx context.Context, s *session, _ []string) error {
			return s.pending(ctx, time.Duration(idle))
		}),
	}
	cmd.Flags().Var(&idle, "idle", "only entries idle at least this long, with a unit: 30s, 5m, 1h")
	return cmd
}

func (a *app) dlqCommand() *cobra.Command {
	dlq := &cobra.Command{
		Use:   "dlq <command>",
		Short: "List, show and replay dead letters",
		Args:  subcommandArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			return failure{usageError{msg: "missing command: ls, show or replay", showUsage: true}}
		},
	}
	limit := limitValue(50)
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List dead letters, newest first",
		Args:  noArgs,
		RunE: a.withRedis(func(ctx context.Context, s *session, _ []string) error {
			return s.dlqList(ctx, int(limit))
		}),
	}
	ls.Flags().Var(&limit, "limit", fmt.Sprintf("at most this many dead letters, 1-%d", maxLimit))
	partition := partitionValue(deadletter.AnyPartition)
	show := &cobra.Command{
		Use:   "show <id>",
		Short: "Show one dead letter: failing group, error, deliveries, original entry",
		Long: `Show one dead letter: failing group, error, deliveries, original entry.
An id is unique only within a partition's dead-letter stream: when more than
one partition holds it, name one with --partition (exit 2 until you do).`,
		Example: `  sagactl dlq show 1700000000000-0
  sagactl dlq show 1700000000000-0 --partition 1`,
		Args:              deadLetterIDArg,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.withRedis(func(ctx context.Context, s *session, args []string) error {
			return s.dlqShow(ctx, args[0], int(partition))
		}),
	}
	replay := &cobra.Command{
		Use:   "replay <id>",
		Short: "Publish a dead letter's entry on its stream again and remove the letter",
		Long: `Publish a dead letter's entry on its stream again and remove the letter.
An id is unique only within a partition's dead-letter stream: when more than
one partition holds it, name one with --partition (exit 2 until you do).
Refused (exit 1) when the letter's copy of the entry was cut (truncated) or
names no stream of its partition.`,
		Example: `  sagactl dlq replay 1700000000000-0
  sagactl dlq replay 1700000000000-0 --partition 1`,
		Args:              deadLetterIDArg,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.withRedis(func(ctx context.Context, s *session, args []string) error {
			return s.dlqReplay(ctx, args[0], int(partition))
		}),
	}
	for _, c := range []*cobra.Command{show, replay} {
		c.Flags().Var(&partition, "partition", "the partition whose dead letter this is, 0 to SAGA_PARTITIONS-1 (default: the one that holds the id)")
	}
	dlq.AddCommand(ls, show, replay)
	return dlq
}

func (a *app) retryCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "retry <saga-id>",
		Short: "Re-drive a FAILED saga: compensate what is left again",
		Long: `Re-drive a FAILED saga: its compensations run again from where they
stopped, as POST /sagas/{id}/retry does. Refused (exit 1) unless the saga is
FAILED and its definition can undo what is left.`,
		Example:           "  sagactl retry " + exampleSagaID,
		Args:              sagaIDArg,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: a.withRedis(func(ctx context.Context, s *session, args []string) error {
			return s.retry(ctx, args[0])
		}),
	}
}

func (a *app) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print sagactl's module version, VCS revision and Go version",
		Args:  noArgs,
		RunE: offline(func(*cobra.Command, []string) error {
			v := readVersion()
			return a.print(v, func(w io.Writer) { fmt.Fprintln(w, cli.Version("sagactl")) })
		}),
	}
}
