package devrun

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/streamsaga/streamsaga/internal/redistest"
)

// DefaultRedisAddr is where dev's Redis listens unless told otherwise: a
// fixed port, so that sagactl and redis-cli find it again after a restart,
// and not 6379, where a system Redis may already run.
const DefaultRedisAddr = "127.0.0.1:6390"

// DefaultDataDir is where dev's redis-server keeps its data between runs:
// $XDG_STATE_HOME/streamsaga/dev, else ~/.local/state/streamsaga/dev.
func DefaultDataDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "streamsaga", "dev"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no data directory for dev's Redis (choose one with -data): %w", err)
	}
	return filepath.Join(home, ".local", "state", "streamsaga", "dev"), nil
}

// redisFiles are what -fresh removes: redis-server's data files, and
// nothing else a mistaken -data directory may hold.
var redisFiles = []string{"appendonlydir", "appendonly.aof", "dump.rdb"}

// devRedis is the Redis of one dev run.
type devRedis struct {
	url      string
	where    string // for the banner
	embedded bool
	stop     func()
}

// startRedis starts the Redis of a run: redis-server on the data directory
// (or, for the demo, a temporary one), else the embedded server.
func startRedis(ctx context.Context, o Options) (*devRedis, error) {
	if _, err := exec.LookPath("redis-server"); err != nil || o.Embedded {
		return startEmbedded(o)
	}
	if o.Demo {
		return startTemporary(o)
	}
	return startPersistent(ctx, o)
}

// redisPort is the port of addr, which must be on loopback: dev's
// redis-server listens on 127.0.0.1 only.
func redisPort(addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && host != "" && host != "127.0.0.1" && host != "localhost" {
		err = errors.New("dev's redis-server listens on 127.0.0.1 only")
	}
	p, perr := strconv.Atoi(port)
	if err == nil && (perr != nil || p < 1 || p > 65535) {
		err = errors.New("the port must be 1-65535")
	}
	if err != nil {
		return 0, fmt.Errorf("Redis address %q (-redis-addr, DEV_REDIS_ADDR): %w", addr, err)
	}
	return p, nil
}

// startTemporary runs redis-server in a temporary directory, removed at
// exit, so that demo runs are independent of each other and of the data
// directory. Its port is a free one unless the address was given.
func startTemporary(o Options) (*devRedis, error) {
	opts := redistest.Options{AOF: "everysec"}
	if o.RedisAddr != "" {
		p, err := redisPort(o.RedisAddr)
		if err != nil {
			return nil, err
		}
		opts.Port = p
	}
	srv, err := redistest.Start(opts)
	if err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	return &devRedis{url: srv.URL(), stop: srv.Close,
		where: fmt.Sprintf("%s   (redis-cli -p %d; temporary data, removed at exit)", srv.Addr(), srv.Port)}, nil
}

// startPersistent runs redis-server on the fixed address and the data
// directory, which outlives the run. A redis-server that a killed run left
// behind on that directory is shut down first (its AOF is flushed) and
// replaced; anything else on the address is an error.
func startPersistent(ctx context.Context, o Options) (*devRedis, error) {
	addr := o.RedisAddr
	if addr == "" {
		addr = DefaultRedisAddr
	}
	port, err := redisPort(addr)
	if err != nil {
		return nil, err
	}
	dir := o.DataDir
	if dir == "" {
		if dir, err = DefaultDataDir(); err != nil {
			return nil, err
		}
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory (-data): %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			unlock()
		}
	}()
	addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	if err := freeAddr(ctx, addr, dir); err != nil {
		return nil, err
	}
	if o.Fresh {
		for _, f := range redisFiles {
			if err := os.RemoveAll(filepath.Join(dir, f)); err != nil {
				return nil, fmt.Errorf("-fresh: %w", err)
			}
		}
	}
	srv, err := redistest.Start(redistest.Options{AOF: "everysec", Port: port, Dir: dir})
	if err != nil {
		return nil, fmt.Errorf("start redis-server on %s (choose another address with -redis-addr or DEV_REDIS_ADDR): %w", addr, err)
	}
	ok = true
	return &devRedis{url: srv.URL(),
		where: fmt.Sprintf("%s   (redis-cli -p %d; data kept in %s; -fresh starts empty)", srv.Addr(), srv.Port, dir),
		stop: func() {
			srv.Shutdown() // SIGTERM: the AOF is flushed
			srv.Close()
			unlock()
		}}, nil
}

// lockDir makes sure that one dev run at a time uses dir; the lock goes
// with the process, however it ends.
func lockDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "dev.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory (-data): %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		pid, _ := os.ReadFile(path)
		f.Close()
		return nil, fmt.Errorf("another dev run (pid %s) uses the data directory %s: stop it, or give this one another directory with -data",
			strings.TrimSpace(string(pid)), dir)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// freeAddr returns nil when nothing listens on addr, after shutting down a
// redis-server left there by an earlier run on dir; anything else on addr
// is an error that says how to choose another address.
func freeAddr(ctx context.Context, addr, dir string) error {
	if !listening(addr) {
		return nil
	}
	if !servesDir(ctx, addr, dir) {
		return fmt.Errorf("%s is in use by another program (not the dev Redis of %s): "+
			"choose another address with -redis-addr or DEV_REDIS_ADDR (e.g. -redis-addr 127.0.0.1:6391)", addr, dir)
	}
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second, ReadTimeout: 5 * time.Second})
	defer c.Close()
	_ = c.Shutdown(ctx).Err() // the connection closes as it shuts down
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if !listening(addr) {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the earlier dev Redis on %s did not shut down within 10s", addr)
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 500*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// servesDir tells whether the server on addr is a redis-server whose data
// directory is dir: one an earlier dev run left behind.
func servesDir(ctx context.Context, addr, dir string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second,
		ReadTimeout: time.Second, WriteTimeout: time.Second, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	got, err := c.ConfigGet(ctx, "dir").Result()
	if err != nil {
		return false
	}
	return sameDir(got["dir"], dir)
}

func sameDir(a, b string) bool {
	ra, err1 := filepath.EvalSymlinks(a)
	rb, err2 := filepath.EvalSymlinks(b)
	return err1 == nil && err2 == nil && ra == rb
}

// startEmbedded runs miniredis in process: nothing is kept on disk.
func startEmbedded(o Options) (*devRedis, error) {
	addr := o.RedisAddr
	if addr == "" {
		addr = DefaultRedisAddr
	}
	m := miniredis.NewMiniRedis()
	if err := m.StartAddr(addr); err != nil {
		// The demo needs no fixed port: take a free one when the default is busy.
		if !o.Demo || o.RedisAddr != "" {
			return nil, fmt.Errorf("start embedded Redis on %s (choose another address with -redis-addr or DEV_REDIS_ADDR): %w", addr, err)
		}
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start embedded Redis: %w", err)
		}
	}
	return &devRedis{url: "redis://" + m.Addr() + "/0", embedded: true, stop: m.Close,
		where: fmt.Sprintf("%s   (embedded, nothing kept on disk; redis-cli -p %s)", m.Addr(), m.Port())}, nil
}
