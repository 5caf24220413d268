package main

import (
	"testing"

	"github.com/streamsaga/streamsaga/internal/cli/clitest"
)

// -h lists dev's own flags and variables beside the configuration's;
// --version and usage errors behave as for every binary, and flags that
// contradict each other exit 2 before anything starts.
func TestCommandLine(t *testing.T) {
	clitest.Check(t, "dev", run, []string{"dev runs streamsaga", "-demo", "-fresh", "-data", "-redis-addr", "-workers", "-embedded",
		"127.0.0.1:6390", "  DEV_REDIS_ADDR=127.0.0.1:6390\n", "XDG_STATE_HOME"},
		[]string{"-demo", "-fresh"}, []string{"-demo", "-data", "/tmp/x"}, []string{"-workers", "0"})
}
