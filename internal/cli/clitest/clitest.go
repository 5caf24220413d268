package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/streamsaga/streamsaga/config"
)

// Run is a binary's testable main: its arguments and outputs, its status.
type Run func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Call runs a binary's main with args.
func Call(run Run, args ...string) (status int, stdout, stderr string) {
	var out, errb bytes.Buffer
	status = run(context.Background(), args, &out, &errb)
	return status, out.String(), errb.String()
}

// Check runs the checks on the binary name; help must also contain each of
// wantHelp (its own flags), and each of badArgs must be refused.
func Check(t *testing.T, name string, run Run, wantHelp []string, badArgs ...[]string) {
	t.Helper()
	for _, arg := range []string{"-h", "--help", "-help"} {
		status, out, errOut := Call(run, arg)
		if status != 0 || errOut != "" {
			t.Fatalf("%s %s: status %d, stderr %q", name, arg, status, errOut)
		}
		for _, want := range append([]string{name + " ", "-version"}, wantHelp...) {
			if !strings.Contains(out, want) {
				t.Errorf("%s %s: help lacks %q", name, arg, want)
			}
		}
		for _, v := range config.Vars() {
			if !strings.Contains(out, "\n  "+v.Name+"="+v.Default+"\n") {
				t.Errorf("%s %s: help lacks %s=%s", name, arg, v.Name, v.Default)
			}
		}
	}
	status, out, errOut := Call(run, "--version")
	if status != 0 || errOut != "" || !strings.HasPrefix(out, name+" ") || !strings.Contains(out, "go1.") {
		t.Errorf("%s --version: status %d, stdout %q, stderr %q", name, status, out, errOut)
	}
	for _, args := range append([][]string{{"--bogus"}, {"serve"}, {"-version", "extra"}}, badArgs...) {
		status, out, errOut := Call(run, args...)
		if status != 2 || out != "" || !strings.HasPrefix(errOut, name+": ") {
			t.Errorf("%s %q: status %d, stdout %q, stderr %q", name, args, status, out, errOut)
		}
	}
}
