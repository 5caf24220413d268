package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/streamsaga/streamsaga/config"
)

// EnvVar is a variable a binary reads besides config.Config's.
type EnvVar struct{ Name, Default, Help string }

// Command describes a binary for its help text.
type Command struct {
	// Name is the binary's name; Summary says what it does (a paragraph).
	Name, Summary string
	// Flags are the binary's own flags; Parse adds -version.
	Flags *flag.FlagSet
	// Env are variables read besides config.Config's (printed first).
	Env []EnvVar
	// Notes close the help text.
	Notes string
}

// NewFlagSet returns a flag set whose errors Parse reports itself.
func NewFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// Parse parses args (without the program name). When the process should
// exit at once — it printed the help or the version (status 0), or a usage
// error (status 2) — exit is true with the status to exit with.
func (c *Command) Parse(args []string, stdout, stderr io.Writer) (exit bool, status int) {
	if c.Flags == nil {
		c.Flags = NewFlagSet(c.Name)
	}
	version := c.Flags.Bool("version", false, "print the version and exit")
	err := c.Flags.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		if err := c.WriteHelp(stdout); err != nil {
			return true, 1
		}
		return true, 0
	case err != nil:
		c.usageError(stderr, err.Error())
		return true, 2
	case c.Flags.NArg() > 0:
		c.usageError(stderr, fmt.Sprintf("unexpected argument %q (%s takes flags only)", c.Flags.Arg(0), c.Name))
		return true, 2
	case *version:
		fmt.Fprintln(stdout, Version(c.Name))
		return true, 0
	}
	return false, 0
}

func (c *Command) usageError(stderr io.Writer, msg string) {
	fmt.Fprintf(stderr, "%s: %s\nRun '%s -h' for the flags and environment variables.\n", c.Name, msg, c.Name)
}

// WriteHelp writes what the binary does, its flags and every environment
// variable it reads with its default.
func (c *Command) WriteHelp(w io.Writer) error {
	fmt.Fprintf(w, "%s\n\nUsage: %s [flags]\n\nFlags:\n", c.Summary, c.Name)
	c.Flags.SetOutput(w)
	c.Flags.PrintDefaults()
	c.Flags.SetOutput(io.Discard)
	fmt.Fprintf(w, "  -h, -help\n    \tprint this help and exit\n")
	if len(c.Env) > 0 {
		fmt.Fprintf(w, "\nEnvironment of %s (NAME=default):\n", c.Name)
		for _, v := range c.Env {
			fmt.Fprintf(w, "  %s=%s\n        %s\n", v.Name, v.Default, v.Help)
		}
	}
	fmt.Fprint(w, `
Configuration, from the environment (NAME=default). The api and the worker
share it: each validates every variable (a bad value exits with status 2) and
uses the ones it needs.
`)
	if err := config.WriteEnvHelp(w); err != nil {
		return err
	}
	if c.Notes != "" {
		_, err := fmt.Fprintf(w, "\n%s\n", c.Notes)
		return err
	}
	return nil
}
