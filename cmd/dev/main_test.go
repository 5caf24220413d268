package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/streamsaga/streamsaga/config"
)

func runArgs(args ...string) (status int, stdout, stderr string) {
	var out, errb bytes.Buffer
	status = run(context.Background(), args, &out, &errb)
	return status, out.String(), errb.String()
}

// -h lists dev's own flags and variables beside the configuration's.
func TestHelp(t *testing.T) {
	status, out, errOut := runArgs("--help")
	if status != 0 || errOut != "" {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
	for _, want := range []string{"dev runs streamsaga", "-demo", "-fresh", "-data", "-redis-addr", "-workers", "-embedded", "-version",
		"127.0.0.1:6390", "  DEV_REDIS_ADDR=127.0.0.1:6390\n", "XDG_STATE_HOME"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
	for _, v := range config.Vars() {
		if !strings.Contains(out, "\n  "+v.Name+"="+v.Default+"\n") {
			t.Errorf("help lacks %s=%s", v.Name, v.Default)
		}
	}
}

func TestVersion(t *testing.T) {
	status, out, _ := runArgs("--version")
	if status != 0 || !strings.HasPrefix(out, "dev ") {
		t.Fatalf("status %d, stdout %q", status, out)
	}
}

// Bad command lines exit 2 before anything starts.
func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"run"}, {"-demo", "-fresh"}, {"-demo", "-data", "/tmp/x"}, {"-workers", "0"}} {
		status, out, errOut := runArgs(args...)
		if status != 2 || out != "" || !strings.HasPrefix(errOut, "dev: ") {
			t.Errorf("%q: status %d, stdout %q, stderr %q", args, status, out, errOut)
		}
	}
}
