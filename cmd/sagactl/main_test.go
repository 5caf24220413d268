package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
)

// TestMain lets a test run this binary's main: the test binary re-executes
// itself with SAGACTL_TEST_MAIN=1.
func TestMain(m *testing.M) {
	if os.Getenv("SAGACTL_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

// The binary as a person runs it, Redis down: go-redis's own lines are
// silenced, so stderr holds sagactl's one line, and the exit code is 1.
// (ctl's tests cannot see this: go-redis logs to the process's stderr.)
func TestRedisDownIsOneLine(t *testing.T) {
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(os.Args[0], "ls")
	cmd.Env = append(os.Environ(), "SAGACTL_TEST_MAIN=1", "REDIS_URL=redis://"+addr+"/0", "REDIS_CLUSTER_ADDRS=")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	start := time.Now()
	err = cmd.Run()
	t.Logf("sagactl ls with Redis down: %v after %v: %s", err, time.Since(start), strings.TrimSpace(errOut.String()))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("exit: %v, want status 1", err)
	}
	lines := strings.Split(strings.TrimSuffix(errOut.String(), "\n"), "\n")
	if out.Len() != 0 || len(lines) != 1 || !strings.Contains(lines[0], addr) || !strings.Contains(lines[0], "unreachable") {
		t.Errorf("stdout %q, stderr %q: want nothing, and one line naming %s as unreachable", out.String(), errOut.String(), addr)
	}
}
