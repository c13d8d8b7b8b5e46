package connlimit

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Why not golang.org/x/net/netutil.LimitListener: past its cap it stops
// calling Accept until a connection closes. Excess connections then wait in
// the kernel's accept queue, where clients see neither an answer nor a
// refusal and time out (a load balancer or an orchestrator's probe waits
// its whole timeout), and once the queue is full the kernel drops SYNs. A
// full public port should answer at once "busy, retry" so that clients go
// elsewhere, which needs the connection accepted and answered. Listener
// does that, and bounds the work spent answering.

// Defaults of a Listener's options.
const (
	// DefaultMaxShedding is how many shed connections are answered at
	// once; past it, excess connections are closed without an answer.
	DefaultMaxShedding = 16
	// DefaultShedTimeout bounds the whole answer to one shed connection:
	// writing the 503 and waiting for the client to close.
	DefaultShedTimeout = 500 * time.Millisecond
)

// shedBody is the JSON body of the answer to a shed connection.
const shedBody = `{"error":"server busy: too many open connections, retry later"}` + "\n"

// ShedResponse is what a shed connection receives by default: a complete
// HTTP/1.1 503 answer that asks the client to close and to retry in a
// second.
var ShedResponse = []byte("HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\n" +
	"Connection: close\r\n" +
	"Retry-After: 1\r\n" +
	"Content-Length: " + strconv.Itoa(len(shedBody)) + "\r\n" +
	"\r\n" + shedBody)

// Counter counts events. A prometheus.Counter is one.
type Counter interface{ Inc() }

// Option configures a Listener.
type Option interface {
	apply(*Listener) error
	String() string
}

type option struct {
	name string
	fn   func(*Listener) error
}

func (o option) apply(l *Listener) error { return o.fn(l) }
func (o option) String() string          { return o.name }

// WithShedCounter counts every connection shed past the cap, answered or
// not, on c. A nil c is an error.
func WithShedCounter(c Counter) Option {
	return option{"connlimit.WithShedCounter", func(l *Listener) error {
		if c == nil {
			return errors.New("nil counter")
		}
		l.shedCounters = append(l.shedCounters, c)
		return nil
	}}
}

// OnShed calls f, from the accepting goroutine, for every connection shed
// past the cap. f must return quickly. A nil f is an error.
func OnShed(f func()) Option {
	return option{"connlimit.OnShed", func(l *Listener) error {
		if f == nil {
			return errors.New("nil func")
		}
		l.shedCounters = append(l.shedCounters, counterFunc(f))
		return nil
	}}
}

type counterFunc func()

func (f counterFunc) Inc() { f() }

// WithMaxShedding sets how many shed connections may be answered at once
// (default DefaultMaxShedding); past it they are closed with no answer. 0
// never answers: excess connections are closed at once.
func WithMaxShedding(n int) Option {
	return option{"connlimit.WithMaxShedding(" + strconv.Itoa(n) + ")", func(l *Listener) error {
		if n < 0 {
			return fmt.Errorf("%d < 0", n)
		}
		l.maxShedding = n
		return nil
	}}
}

// WithShedTimeout bounds the answer to one shed connection (default
// DefaultShedTimeout), so that a client that does not read cannot hold it.
func WithShedTimeout(d time.Duration) Option {
	return option{"connlimit.WithShedTimeout(" + d.String() + ")", func(l *Listener) error {
		if d <= 0 {
			return fmt.Errorf("%s: want a positive duration", d)
		}
		l.shedTimeout = d
		return nil
	}}
}

// WithShedResponse replaces ShedResponse, for a listener that does not
// speak HTTP/1 in clear text (under TLS, for one, the 503 is noise that
// ends the handshake). nil or empty closes shed connections with no answer.
func WithShedResponse(b []byte) Option {
	return option{"connlimit.WithShedResponse", func(l *Listener) error {
		l.response = b
		return nil
	}}
}

// Listener is a net.Listener that hands at most Max connections at a time
// to its caller. Accept sheds a connection accepted past the cap (see the
// package documentation) and goes on accepting; it never blocks because of
// the cap. A connection counts from Accept until its first Close, whoever
// calls it (the http.Server, a handler that hijacked it).
//
// Its methods are safe for concurrent use.
type Listener struct {
	net.Listener
	max          int
	maxShedding  int
	shedTimeout  time.Duration
	response     []byte
	shedCounters []Counter

	active atomic.Int64 // connections handed out and not yet closed
	shed   atomic.Int64 // connections shed since the start

	mu       sync.Mutex            // guards closed, shedding, and shedders' Add
	closed   bool                  // Close was called
	shedding map[net.Conn]struct{} // shed connections being answered
	shedders sync.WaitGroup        // the goroutines answering them
}

var _ net.Listener = (*Listener)(nil)

// Wrap returns a Listener that caps the connections ln hands out at max.
// max < 1 and invalid options are errors; ln is then left open.
func Wrap(ln net.Listener, max int, opts ...Option) (*Listener, error) {
	if max < 1 {
		return nil, fmt.Errorf("connlimit: max %d: want at least 1", max)
	}
	l := &Listener{
		Listener:    ln,
		max:         max,
		maxShedding: DefaultMaxShedding,
		shedTimeout: DefaultShedTimeout,
		response:    ShedResponse,
		shedding:    map[net.Conn]struct{}{},
	}
	for _, o := range opts {
		if err := o.apply(l); err != nil {
			return nil, fmt.Errorf("connlimit: %s: %w", o, err)
		}
	}
	return l, nil
}

// Listen is net.Listen(network, address) wrapped by Wrap. The listener is
// closed again when an option is invalid.
func Listen(network, address string, max int, opts ...Option) (*Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	l, err := Wrap(ln, max, opts...)
	if err != nil {
		ln.Close()
		return nil, err
	}
	return l, nil
}

// Max returns the cap.
func (l *Listener) Max() int { return l.max }

// Active returns the number of connections handed out and not yet closed.
func (l *Listener) Active() int { return int(l.active.Load()) }

// Shed returns the number of connections shed since the listener started.
func (l *Listener) Shed() int64 { return l.shed.Load() }

// Accept waits for a connection within the cap and returns it; connections
// past the cap are shed meanwhile. Its errors are those of the wrapped
// listener.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.active.Add(1) <= int64(l.max) {
			return &conn{Conn: c, release: func() { l.active.Add(-1) }}, nil
		}
		l.active.Add(-1)
		l.shedConn(c)
	}
}

// shedConn answers c in a goroutine when fewer than maxShedding are busy,
// or closes it at once.
func (l *Listener) shedConn(c net.Conn) {
	l.shed.Add(1)
	for _, sc := range l.shedCounters {
		sc.Inc()
	}
	l.mu.Lock()
	if l.closed || len(l.response) == 0 || len(l.shedding) >= l.maxShedding {
		l.mu.Unlock()
		abort(c)
		return
	}
	l.shedding[c] = struct{}{}
	l.shedders.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.shedders.Done()
		answer(c, l.response, l.shedTimeout)
		l.mu.Lock()
		delete(l.shedding, c)
		l.mu.Unlock()
	}()
}

// answer writes resp to c, half-closes it and reads until the client
// closes or the deadline passes, then closes c. Reading before closing
// keeps the kernel from answering the client's unread request with a RST,
// which could destroy the 503 before the client reads it.
func answer(c net.Conn, resp []byte, timeout time.Duration) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(resp); err != nil {
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// abort closes c without an answer.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0) // a RST: the descriptor and the socket go at once
	}
	c.Close()
}

// Close closes the wrapped listener, ends the answers to shed connections
// still in progress and waits for their goroutines. Connections already
// handed out stay open: their owner (an http.Server) closes them. Close
// may be called more than once; later calls return the wrapped listener's
// error for a second Close.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.mu.Lock()
	l.closed = true
	for c := range l.shedding {
		c.SetDeadline(time.Now()) // answer returns at once
	}
	l.mu.Unlock()
	l.shedders.Wait()
	return err
}

// conn is a connection within the cap. Its first Close releases its slot.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

// Close closes the connection and, the first time, frees its slot.
func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// Unwrap returns the accepted connection.
func (c *conn) Unwrap() net.Conn { return c.Conn }

// ReadFrom lets io.Copy to the connection use the wrapped connection's
// ReadFrom (sendfile and splice for a *net.TCPConn).
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes the connection when the wrapped one can (as
// net/http does before closing a connection it answered with an error).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
