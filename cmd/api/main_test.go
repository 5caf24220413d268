package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/streamsaga/streamsaga/config"
	"github.com/streamsaga/streamsaga/internal/redistest"
)

func runArgs(args ...string) (status int, stdout, stderr string) {
	var out, errb bytes.Buffer
	status = run(context.Background(), args, &out, &errb)
	return status, out.String(), errb.String()
}

// -h and --help print what the binary does and every variable of the
// configuration with its default, on stdout, and exit 0 without starting.
func TestHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help"} {
		status, out, errOut := runArgs(arg)
		if status != 0 || errOut != "" {
			t.Fatalf("%s: status %d, stderr %q", arg, status, errOut)
		}
		if !strings.HasPrefix(out, "api ") || !strings.Contains(out, "-healthcheck") || !strings.Contains(out, "-version") {
			t.Errorf("%s: help does not describe the binary and its flags:\n%s", arg, out)
		}
		for _, v := range config.Vars() {
			if !strings.Contains(out, "\n  "+v.Name+"="+v.Default+"\n") {
				t.Errorf("%s: help lacks %s=%s", arg, v.Name, v.Default)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	status, out, errOut := runArgs("--version")
	if status != 0 || errOut != "" || !strings.HasPrefix(out, "api ") || !strings.Contains(out, "go1.") {
		t.Fatalf("--version: status %d, stdout %q, stderr %q", status, out, errOut)
	}
}

// Anything else is a usage error: status 2, a message on stderr, nothing
// started.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"serve"}, {"-version", "extra"}} {
		status, out, errOut := runArgs(args...)
		if status != 2 || out != "" || !strings.Contains(errOut, "api -h") {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, status, out, errOut)
		}
	}
}

// Nothing listens on HTTP_ADDR: unhealthy (1, the status Docker expects).
func TestHealthcheckFails(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("HTTP_ADDR", fmt.Sprintf(":%d", port))
	status, _, errOut := runArgs("-healthcheck")
	if status != 1 || !strings.Contains(errOut, "not ready") {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
}
