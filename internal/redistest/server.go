package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options choose how redis-server runs.
type Options struct {
	// AOF turns on appendonly with the given fsync policy ("always",
	// "everysec"); empty means no persistence at all.
	AOF string
	// Args are extra redis-server arguments.
	Args []string
	// Port, when set, is the port to listen on instead of a free one; a
	// server already answering there is an error, not taken for ours.
	Port int
	// Dir, when set, is the data directory (created if missing) instead of
	// a new temporary one; Close leaves it in place, so that its AOF
	// outlives the server.
	Dir string
}

// Server is one redis-server child process.
type Server struct {
	Port int
	Dir  string
	opts Options
	cmd  *exec.Cmd
	done chan struct{}
}

// Start launches redis-server on a free loopback port in a new temporary
// directory and waits until it answers PING.
func Start(opts Options) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server not on PATH (install Debian's redis-server package): %w", err)
	}
	dir := opts.Dir
	if dir == "" {
		d, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			return nil, err
		}
		dir = d
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port := opts.Port
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		port = p
	}
	s := &Server{Port: port, Dir: dir, opts: opts}
	if err := s.launch(); err != nil {
		s.removeDir()
		return nil, err
	}
	return s, nil
}

// StartT starts a server for one test and stops it when the test ends.
func StartT(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func (s *Server) launch() error {
	args := []string{
		"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--dir", s.Dir,
		"--save", "", "--daemonize", "no", "--logfile", "redis.log",
		"--maxmemory-policy", "noeviction",
	}
	if s.opts.AOF != "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", s.opts.AOF)
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	s.cmd = exec.Command("redis-server", args...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
		err := c.Ping(context.Background()).Err()
		if err == nil && s.opts.Port != 0 {
			// On a chosen port another server may be the one answering.
			err = s.checkPID(c)
		}
		c.Close()
		if err == nil {
			return nil
		}
		if errors.Is(err, errNotOurs) {
			s.Kill()
			return fmt.Errorf("port %d: %w", s.Port, err)
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(s.Dir + "/redis.log")
			return fmt.Errorf("redis-server exited at start: %s", log)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return errors.New("redis-server did not answer PING within 10s")
}

var errNotOurs = errors.New("another server answers on this port")

// checkPID tells whether the server answering is this child process.
func (s *Server) checkPID(c *redis.Client) error {
	info, err := c.InfoMap(context.Background(), "server").Result()
	if err != nil {
		return err
	}
	if info["Server"]["process_id"] != strconv.Itoa(s.PID()) {
		return errNotOurs
	}
	return nil
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// URL is the redis:// URL of database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a new client; the caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr(), Protocol: 2, DisableIdentity: true})
}

// PID is the redis-server process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the process to die.
func (s *Server) Kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// Shutdown stops redis-server cleanly (SIGTERM: the AOF is flushed and
// fsynced) and waits for it to exit.
func (s *Server) Shutdown() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
}

// Exited reports whether redis-server has exited (killed or shut down).
func (s *Server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Signal sends sig (SIGSTOP, SIGCONT, …) to redis-server.
func (s *Server) Signal(sig syscall.Signal) error { return s.cmd.Process.Signal(sig) }

// Restart starts redis-server again on the same port and directory, so an
// AOF written before a Kill is loaded back.
func (s *Server) Restart() error {
	select {
	case <-s.done:
	default:
		return errors.New("redis-server is still running")
	}
	return s.launch()
}

// Close stops the server (SIGKILL) and removes its directory, unless the
// directory was given in Options.Dir.
func (s *Server) Close() {
	if s.cmd != nil && s.cmd.Process != nil {
		select {
		case <-s.done:
		default:
			s.Kill()
		}
	}
	s.removeDir()
}

// removeDir removes the directory Start created; a Dir given in Options is
// the caller's.
func (s *Server) removeDir() {
	if s.opts.Dir == "" {
		os.RemoveAll(s.Dir)
	}
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Prefix returns a random key prefix, so that tests sharing one server do
// not see each other's keys.
func Prefix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "t" + hex.EncodeToString(b)
}

// RunMain is the body of a test package's TestMain: it starts one server
// for the package in *srv, runs the tests and stops the server. It returns
// the exit code for os.Exit.
func RunMain(m *testing.M, srv **Server, opts Options) int {
	s, err := Start(opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*srv = s
	defer s.Close()
	return m.Run()
}
