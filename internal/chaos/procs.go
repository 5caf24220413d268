package chaos

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// buildBinaries compiles cmd/api and cmd/worker into dir: the harness runs
// the very binaries a deployment runs.
func buildBinaries(dir string) error {
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/api", "./cmd/worker")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build ./cmd/api ./cmd/worker (run cmd/chaos from the repository's root): %w\n%s", err, out.String())
	}
	return nil
}

// proc is one API or worker process that the harness can kill, pause and
// start again with the same environment.
type proc struct {
	name string
	bin  string
	env  []string
	log  *os.File

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current process has exited
	// expecting is set while the harness kills or stops the process; an
	// exit without it is a crash, and crashes are reported.
	expecting bool
	crashes   []string
}

func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd = cmd
	p.expecting = false
	done := make(chan struct{})
	p.done = done
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		if !p.expecting {
			p.crashes = append(p.crashes, fmt.Sprintf("%s exited by itself: %v", p.name, err))
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.expect()
	p.signal(syscall.SIGKILL)
	p.wait(5 * time.Second)
}

func (p *proc) expect() {
	p.mu.Lock()
	p.expecting = true
	p.mu.Unlock()
}

// exited reports, without waiting, whether the current process is gone.
func (p *proc) exited() bool {
	select {
	case <-p.doneCh():
		return true
	default:
		return false
	}
}

// doneCh is closed once the current process has exited (at once when none
// was started).
func (p *proc) doneCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		ch := make(chan struct{})
		close(ch)
		return ch
	}
	return p.done
}

// crashed returns the exits the harness did not cause.
func (p *proc) crashed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.crashes...)
}

func (p *proc) wait(limit time.Duration) bool {
	select {
	case <-p.doneCh():
		return true
	case <-time.After(limit):
		return false
	}
}

// stop asks for a clean shutdown (SIGTERM) and waits for it, then kills.
func (p *proc) stop() {
	p.expect()
	p.signal(syscall.SIGCONT)
	p.signal(syscall.SIGTERM)
	if !p.wait(15 * time.Second) {
		p.kill()
	}
}
