package main

import (
	"fmt"
	"strings"
	"testing"

	"github.com/streamsaga/streamsaga/internal/cli/clitest"
	"github.com/streamsaga/streamsaga/internal/redistest"
)

func runArgs(args ...string) (status int, stdout, stderr string) { return clitest.Call(run, args...) }

// -h/--help, --version and usage errors behave as for every binary.
func TestCommandLine(t *testing.T) {
	clitest.Check(t, "api", run, []string{"-healthcheck", "HTTP_ADDR"})
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
