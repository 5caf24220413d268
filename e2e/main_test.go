package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamsaga/streamsaga/internal/redistest"
	"github.com/streamsaga/streamsaga/internal/sagatest"
)

var (
	srv    *redistest.Server
	binDir string
)

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "streamsaga-bin-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "../cmd/api", "../cmd/worker")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		return 0, fmt.Errorf("build binaries: %w", err)
	}
	srv, err = redistest.Start(redistest.Options{AOF: "always"})
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	return m.Run(), nil
}

// proc is a running binary.
type proc struct {
	cmd    *exec.Cmd
	stderr *sagatest.SyncBuffer
	done   chan struct{}
	err    error
}

func start(t *testing.T, name string, env map[string]string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name))
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{cmd: cmd, stderr: &sagatest.SyncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", name, p.output())
		}
	})
	return p
}

// output is what the process wrote to stderr so far.
func (p *proc) output() string { return p.stderr.String() }

// waitFor waits until the process has written s to stderr.
func (p *proc) waitFor(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.output(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("process did not log %q within 10s", s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (p *proc) signal(sig syscall.Signal) { _ = p.cmd.Process.Signal(sig) }

// wait waits for exit and returns the exit code (-1 on timeout).
func (p *proc) wait(timeout time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}
