package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
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
	maxConn int                // concurrent connections at most; past it, shed with a 503
	shed    prometheus.Counter // connections shed past maxConn
	done    chan struct{}      // closed when Serve returns

	mu    sync.Mutex             // guards fresh
	fresh map[net.Conn]time.Time // connections that have not sent a byte yet, and when they opened
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
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: cfg.ReadHeaderTimeout,
			ReadTimeout:       cfg.ReadTimeout,
			WriteTimeout:      cfg.WriteTimeout,
			IdleTimeout:       cfg.IdleTimeout,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
	}
	s.srv.ConnState = s.track
	return s
}

// track remembers connections in StateNew until their first request.
func (s *server) track(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		s.mu.Lock()
		s.fresh[c] = time.Now()
		s.mu.Unlock()
	case http.StateActive, http.StateClosed, http.StateHijacked:
		s.mu.Lock()
		delete(s.fresh, c)
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
		s.mu.Unlock()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// bind listens on the configured address. A port in use is reported with
// the listener, the port and the key that overrides it.
func (s *server) bind() error {
	ln, err := net.Listen("tcp", s.cfg.Addr())
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("svc: %s listener: port %d is already in use (set %s or %s to use another port)",
				s.name, s.cfg.Port, s.portKey, config.EnvName(s.portKey))
		}
		return fmt.Errorf("svc: %s listener on %s: %w (set %s / %s)", s.name, s.cfg.Addr(), err,
			s.portKey, config.EnvName(s.portKey))
	}
	cl, err := connlimit.Wrap(ln, s.maxConn, connlimit.WithShedCounter(s.shed))
	if err != nil {
		ln.Close()
		return fmt.Errorf("svc: %s listener: %w", s.name, err)
	}
	s.ln = cl
	return nil
}

// port returns the bound port.
func (s *server) port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// serve serves in a goroutine. If Serve fails while the server is not
// shutting down, died is called with the error: one dies, all stop.
func (s *server) serve(died func(name string, err error)) {
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
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

func closeAll(servers []*server) {
	for _, s := range servers {
		if s.ln != nil {
			_ = s.ln.Close()
		}
	}
}
