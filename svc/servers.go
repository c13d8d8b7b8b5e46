package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/connlimit"
)

// server is one of the three listeners: bound synchronously in OnStart,
// served in a goroutine, shut down in OnStop.
type server struct {
	name    string // admin, public, private
	portKey string // the key that overrides its port
	cfg     ServerSettings
	srv     *http.Server
	ln      net.Listener
	tcp     *net.TCPListener   // the socket under ln, handed to a successor by a restart
	from    *os.File           // an inherited socket to serve on instead of binding; nil: bind
	maxConn int                // concurrent connections at most; past it, shed with a 503
	shed    prometheus.Counter // connections shed past maxConn
	done    chan struct{}      // closed when Serve returns

	// closing is set when the drain begins: every response from then on
	// carries "Connection: close", so that a client keeping its
	// connection open learns to close it before the server does.
	closing atomic.Bool
	// handedOff is set when the server stops accepting because a
	// successor serves its socket: Serve's error is then expected.
	handedOff atomic.Bool

	mu     sync.Mutex             // guards fresh
	fresh  map[net.Conn]time.Time // connections that have not sent a byte yet, and when they opened
	nfresh atomic.Int64           // len(fresh), read without mu: a request on a kept connection takes no lock
}

// freshGrace is how long shutdown lets a connection that has sent nothing
// live. net/http's Shutdown waits up to 5s for such a connection (clients
// pre-dial them); one that stayed silent this long during the drain is not
// about to carry a request.
const freshGrace = 500 * time.Millisecond

func newServer(name string, cfg ServerSettings, h http.Handler, log *slog.Logger) *server {
	s := &server{
		name:    name,
		portKey: name + ".port",
		cfg:     cfg,
		fresh:   make(map[net.Conn]time.Time),
	}
	s.srv = &http.Server{
		Handler:           s.closeWhenDraining(h),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState:         s.track,
	}
	return s
}

// closeWhenDraining adds "Connection: close" to every response once the
// drain began (s.closing): net/http then closes the connection after the
// response, cleanly, and a client that keeps connections open and never
// retries opens a new one (to this process while it still accepts, to
// the successor or another instance after) instead of meeting an EOF when
// the server closes a kept connection under its next request.
//
// Why not http.Server.SetKeepAlivesEnabled(false): it also closes every
// idle connection at once, and a client about to send its next request on
// one meets exactly that EOF.
func (s *server) closeWhenDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.closing.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// track remembers connections in StateNew until their first request.
func (s *server) track(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.mu.Lock()
		s.fresh[c] = time.Now()
		s.nfresh.Store(int64(len(s.fresh)))
		s.mu.Unlock()
	case http.StateActive, http.StateClosed, http.StateHijacked:
		// c's StateNew happened before (net/http sets it before c's
		// goroutine starts), so if c is in fresh, nfresh is not 0.
		if s.nfresh.Load() == 0 {
			return
		}
		s.mu.Lock()
		delete(s.fresh, c)
		s.nfresh.Store(int64(len(s.fresh)))
		s.mu.Unlock()
	}
}

// closeSilent closes the connections that have sent nothing for
// freshGrace, every tick until stop is closed.
func (s *server) closeSilent(stop <-chan struct{}) {
	t := time.NewTicker(freshGrace / 5)
	defer t.Stop()
	for {
		s.mu.Lock()
		for c, opened := range s.fresh {
			if time.Since(opened) >= freshGrace {
				_ = c.Close()
				delete(s.fresh, c)
			}
		}
		s.nfresh.Store(int64(len(s.fresh)))
		s.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// bind listens on the configured address, or serves the inherited socket
// when there is one. A port in use is reported with the listener, the
// port and the key that overrides it.
func (s *server) bind() error {
	if s.from != nil {
		return s.inherit()
	}
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("svc: %s listener: port %d is already in use (set %s or %s to use another port)",
				s.name, s.cfg.Port, s.portKey, config.EnvName(s.portKey))
		}
		return fmt.Errorf("svc: %s listener on %s: %w (set %s / %s)", s.name, s.cfg.Addr(), err,
			s.portKey, config.EnvName(s.portKey))
	}
	return s.wrap(ln.(*net.TCPListener))
}

// inherit serves the inherited socket s.from: a TCP socket, listening.
func (s *server) inherit() error {
	f := s.from
	s.from = nil
	defer f.Close() // FileListener made its own descriptor
	ln, err := net.FileListener(f)
	if err != nil {
		return fmt.Errorf("svc: %s listener: inherited socket %s: %w", s.name, f.Name(), err)
	}
	tcp, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return fmt.Errorf("svc: %s listener: inherited socket %s is %s, not a TCP listener", s.name, f.Name(), ln.Addr().Network())
	}
	return s.wrap(tcp)
}

// wrap caps the connections of ln.
func (s *server) wrap(ln *net.TCPListener) error {
	cl, err := connlimit.Wrap(ln, s.maxConn, connlimit.WithShedCounter(s.shed))
	if err != nil {
		ln.Close()
		return fmt.Errorf("svc: %s listener: %w", s.name, err)
	}
	s.ln, s.tcp = cl, ln
	return nil
}

// stopAccepting closes the listening socket, for a handover: the
// successor holds the same socket and accepts every new connection, even
// those already queued. Connections already accepted are served on.
func (s *server) stopAccepting() {
	if s.ln == nil {
		return
	}
	s.handedOff.Store(true)
	_ = s.ln.Close()
}

// port returns the bound port.
func (s *server) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// serve serves in a goroutine. If Serve fails while the server is not
// shutting down, died is called with the error: one dies, all stop.
func (s *server) serve(died func(name string, err error)) {
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !s.handedOff.Load() {
			died(s.name, err)
		}
	}()
}

// shutdown stops accepting and waits for in-flight requests until ctx ends,
// then closes what is left.
func (s *server) shutdown(ctx context.Context) error {
	if s.ln == nil { // never bound
		return nil
	}
	if s.done == nil { // bound, never served
		return s.ln.Close()
	}
	stop := make(chan struct{})
	go s.closeSilent(stop)
	err := s.srv.Shutdown(ctx)
	close(stop)
	if err != nil {
		_ = s.srv.Close()
		err = fmt.Errorf("svc: %s server: requests still in flight when shutdown.timeout ran out; closed them: %w", s.name, err)
	}
	<-s.done
	return err
}

// shutdownAll shuts servers down concurrently and joins their errors.
func shutdownAll(ctx context.Context, servers []*server) error {
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Go(func() { errs[i] = s.shutdown(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// closeAll closes the servers' listeners, and inherited sockets not
// served.
func closeAll(servers []*server) {
	for _, s := range servers {
		if s.ln != nil {
			_ = s.ln.Close()
		}
		if s.from != nil {
			_ = s.from.Close()
			s.from = nil
		}
	}
}
