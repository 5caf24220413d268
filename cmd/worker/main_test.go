package main

import (
	"strings"
	"testing"

	"github.com/streamsaga/streamsaga/internal/cli/clitest"
)

func runArgs(args ...string) (status int, stdout, stderr string) { return clitest.Call(run, args...) }

// -h/--help, --version and usage errors behave as for every binary.
func TestCommandLine(t *testing.T) {
	clitest.Check(t, "worker", run, []string{"-healthcheck", "WORKER_METRICS_ADDR"})
}

// -healthcheck without WORKER_METRICS_ADDR: unhealthy, and it says why.
func TestHealthcheckNeedsMetricsAddr(t *testing.T) {
	t.Setenv("WORKER_METRICS_ADDR", "")
	status, _, errOut := runArgs("-healthcheck")
	if status != 1 || !strings.Contains(errOut, "WORKER_METRICS_ADDR") {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
}
