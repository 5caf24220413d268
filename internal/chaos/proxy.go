package chaos

import (
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// proxy forwards TCP connections to Redis and can add latency to every
// chunk it forwards and reset connections at random: a slow, flaky network
// between the workers and Redis.
type proxy struct {
	ln      net.Listener
	target  string
	latency atomic.Int64 // ns added before forwarding each chunk
	// blackhole holds everything read until it is cleared: a partition
	// in which connections stay open but nothing crosses.
	blackhole atomic.Bool
	resets    atomic.Int64 // connections reset so far
	mu        sync.Mutex
	conns     map[net.Conn]struct{}
}

func newProxy(target string) (*proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) close() {
	p.ln.Close()
	p.resetAll(1)
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.pipe(c)
	}
}

func (p *proxy) pipe(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns[client] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.conns, client)
		p.mu.Unlock()
		client.Close()
		server.Close()
	}()
	done := make(chan struct{}, 2)
	forward := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if d := time.Duration(p.latency.Load()); d > 0 {
					time.Sleep(d)
				}
				for p.blackhole.Load() {
					time.Sleep(10 * time.Millisecond)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}
	go forward(server, client)
	go forward(client, server)
	<-done
}

// resetAll closes a share of the open connections abruptly (RST): replies
// in flight are lost, as on a network failure.
func (p *proxy) resetAll(share float64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if rand.Float64() < share {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
			n++
		}
	}
	p.resets.Add(int64(n))
	return n
}
