package ctl

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/streamsaga/streamsaga/internal/deadletter"
	"github.com/streamsaga/streamsaga/saga"
)

// maxLimit is the API's bound on GET /sagas?limit, kept for every list here.
const maxLimit = 1000

// exampleSagaID shows the only form of saga id the product issues.
const exampleSagaID = "0192a000-0000-7000-8000-000000000000"

// The flag values below check their input when the flag is parsed, so a
// bad value fails with pflag's `invalid argument "x" for "--flag" flag:
// <reason>` before anything connects.

// statusValue is --status: one of saga.Statuses, in any case, or empty.
type statusValue string

func (s *statusValue) String() string { return string(*s) }
func (s *statusValue) Type() string   { return "status" }

func (s *statusValue) Set(v string) error {
	up := strings.ToUpper(strings.TrimSpace(v))
	if !slices.Contains(saga.Statuses, up) {
		return fmt.Errorf("must be one of %s", strings.Join(saga.Statuses, ", "))
	}
	*s = statusValue(up)
	return nil
}

// modeValue is --mode: a saga style, in any case, or empty.
type modeValue string

// modes are the saga styles, as the API and the console name them.
var modes = []string{saga.ModeChoreography, saga.ModeOrchestration}

func (m *modeValue) String() string { return string(*m) }
func (m *modeValue) Type() string   { return "style" }

func (m *modeValue) Set(v string) error {
	low := strings.ToLower(strings.TrimSpace(v))
	if !slices.Contains(modes, low) {
		return fmt.Errorf("must be one of %s", strings.Join(modes, ", "))
	}
	*m = modeValue(low)
	return nil
}

// limitValue is --limit: 1 to maxLimit, as the API accepts.
type limitValue int

func (l *limitValue) String() string { return strconv.Itoa(int(*l)) }
func (l *limitValue) Type() string   { return "int" }

func (l *limitValue) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 1 || n > maxLimit {
		return fmt.Errorf("must be a whole number from 1 to %d", maxLimit)
	}
	*l = limitValue(n)
	return nil
}

// partitionValue is --partition: a whole number, or unset (every
// partition). Its upper bound is SAGA_PARTITIONS-1, checked once connected
// (deadletter.ErrBadPartition).
type partitionValue int

func (p *partitionValue) String() string {
	if *p == deadletter.AnyPartition {
		return ""
	}
	return strconv.Itoa(int(*p))
}
func (p *partitionValue) Type() string { return "int" }

func (p *partitionValue) Set(v string) error {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 {
		return fmt.Errorf("must be a whole number from 0 to SAGA_PARTITIONS-1")
	}
	*p = partitionValue(n)
	return nil
}

// idleValue is --idle: a Go duration with its unit, not negative.
type idleValue time.Duration

func (d *idleValue) String() string { return time.Duration(*d).String() }
func (d *idleValue) Type() string   { return "duration" }

func (d *idleValue) Set(v string) error {
	v = strings.TrimSpace(v)
	parsed, err := time.ParseDuration(v)
	switch {
	case err != nil && isNumber(v):
		return fmt.Errorf("a duration needs a unit, e.g. %ss, %sm or %sh", v, v, v)
	case err != nil:
		return fmt.Errorf("must be a duration such as 30s, 5m or 1h30m")
	case parsed < 0:
		return fmt.Errorf("must not be negative")
	}
	*d = idleValue(parsed)
	return nil
}

func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil
}

// noArgs refuses any positional argument (cobra.NoArgs calls one an
// "unknown command", which misleads after a leaf command).
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("takes no arguments, got %q", args)
	}
	return nil
}

// sagaIDArg is exactly one canonical saga id.
func sagaIDArg(cmd *cobra.Command, args []string) error {
	if err := cobra.ExactArgs(1)(cmd, args); err != nil {
		return fmt.Errorf("takes one saga id, got %d arguments", len(args))
	}
	if !saga.ValidID(args[0]) {
		return fmt.Errorf("invalid saga id %q: want a canonical (lower-case) UUID such as %s", args[0], exampleSagaID)
	}
	return nil
}

// deadLetterIDArg is exactly one complete stream entry id.
func deadLetterIDArg(cmd *cobra.Command, args []string) error {
	if err := cobra.ExactArgs(1)(cmd, args); err != nil {
		return fmt.Errorf("takes one dead-letter id, got %d arguments", len(args))
	}
	if !deadletter.ValidID(args[0]) {
		return fmt.Errorf("invalid dead-letter id %q: want a complete stream entry id such as 1700000000000-0 (see sagactl dlq ls)", args[0])
	}
	return nil
}

// subcommandArg refuses an unknown subcommand of a command that only
// groups others (cobra checks this for the root command alone).
func subcommandArg(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}
