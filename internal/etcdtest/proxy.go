package etcdtest

import (
	"net"
	"strings"
	"sync"
	"testing"
)

// proxyState is what a [Proxy] does with traffic.
type proxyState int

const (
	forwarding proxyState = iota // bytes flow both ways
	paused                       // connections stay open, bytes are held back
	cut                          // connections are closed, new ones refused
)

// Proxy is a TCP proxy on loopback in front of one target address, which a
// test can pause, cut and restore to simulate a stalled process or a network
// partition between a client and etcd.
//
// Its methods are safe for concurrent use. It runs one goroutine for
// accepting and two per proxied connection, all ended by Close, which
// t.Cleanup calls.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // counts accept and pipe goroutines

	mu      sync.Mutex // guards the fields below
	state   proxyState
	resumed chan struct{} // closed when the proxy leaves the paused state
	conns   map[net.Conn]struct{}
	closed  bool
}

// NewProxy starts a proxy on a free loopback port forwarding to target, an
// address "host:port" or a URL "http://host:port" such as an element of
// [Server.Endpoints]. It is closed by t.Cleanup.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	if _, hostport, ok := strings.Cut(target, "://"); ok {
		target = hostport
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("etcdtest: proxy listen: %v", err)
	}
	p := &Proxy{
		ln:      ln,
		target:  target,
		resumed: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Endpoint returns the proxy's URL, "http://127.0.0.1:<port>", to give a
// client instead of the target's.
func (p *Proxy) Endpoint() string { return "http://" + p.ln.Addr().String() }

// Pause holds back all traffic: open connections stay open and new ones are
// accepted, but no byte is delivered until Restore. To the client it looks
// like a peer that stopped answering (a paused process, a silent
// partition).
func (p *Proxy) Pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == paused || p.closed {
		return
	}
	p.state = paused
	p.resumed = make(chan struct{})
}

// Cut closes every proxied connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leavePausedLocked()
	p.state = cut
	p.closeConnsLocked()
}

// Restore forwards traffic again; bytes held back by Pause are delivered.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.leavePausedLocked()
	p.state = forwarding
}

// Close stops the proxy, closes its connections and waits for its
// goroutines. It is idempotent.
func (p *Proxy) Close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		p.leavePausedLocked()
		p.state = cut
		p.closeConnsLocked()
		p.ln.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) leavePausedLocked() {
	if p.state == paused {
		close(p.resumed)
	}
}

func (p *Proxy) closeConnsLocked() {
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		down, err := p.ln.Accept()
		if err != nil {
			return // listener closed
		}
		p.mu.Lock()
		refuse := p.state == cut
		p.mu.Unlock()
		if refuse {
			down.Close()
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			down.Close()
			continue
		}
		p.mu.Lock()
		if p.state == cut {
			p.mu.Unlock()
			down.Close()
			up.Close()
			continue
		}
		p.conns[down] = struct{}{}
		p.conns[up] = struct{}{}
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(up, down)
		go p.pipe(down, up)
	}
}

// pipe copies src to dst until either fails or the proxy is cut, holding
// bytes back while the proxy is paused.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, src)
		delete(p.conns, dst)
		p.mu.Unlock()
		src.Close()
		dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitForwarding() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitForwarding blocks while the proxy is paused and reports whether
// traffic may flow.
func (p *Proxy) waitForwarding() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.state == paused {
		ch := p.resumed
		p.mu.Unlock()
		<-ch
		p.mu.Lock()
	}
	return p.state == forwarding
}
