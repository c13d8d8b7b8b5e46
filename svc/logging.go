package svc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"golang.org/x/term"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/internal/accesslog"
)

// logs is the service's logging: one output, a live level, and a format
// that is settled once the final configuration is decoded. Lines logged
// before that (while etcd is reached) use JSON, or text on a terminal.
type logs struct {
	w     io.Writer
	level *admin.Level                 // the live level: a base from log.level, and PUT /admin/loglevel
	root  atomic.Pointer[slog.Handler] // the handler in force
	log   *slog.Logger                 // the service's logger, following root
	audit *slog.Logger                 // audit lines: every level passes

	access *accesslog.Writer // the public access log, with log.access; nil before or without it
}

func newLogs(w io.Writer, name string) *logs {
	l := &logs{w: w, level: admin.NewLevel(slog.LevelInfo)}
	l.setFormat("auto")
	l.log = slog.New(&switchHandler{root: &l.root, level: l.level}).With("service", name)
	l.audit = admin.AuditLogger(l.log)
	l.level.SetLogger(l.audit)
	return l
}

// setFormat puts format (auto, text or json) in force.
func (l *logs) setFormat(format string) {
	opts := &slog.HandlerOptions{Level: slog.LevelDebug} // the switch applies the level
	var h slog.Handler
	if l.text(format) {
		h = slog.NewTextHandler(l.w, opts)
	} else {
		h = slog.NewJSONHandler(l.w, opts)
	}
	l.root.Store(&h)
}

// text reports whether format (auto, text or json) means text lines:
// text, or auto on a terminal.
func (l *logs) text(format string) bool {
	return format == "text" || (format == "auto" && isTerminal(l.w))
}

// provideAccessLog is the public server's access log when log.access is
// on: one line per request in the service's log format, with the same
// fields slog wrote, encoded without reflection and written to the log's
// output in batches by the writer's own goroutine (at least every 100 ms).
// It is built before the listeners, so its stop step, which writes every
// line left, runs after they stopped; a failed start stops it too. It
// registers svc_access_log_dropped_total in every case.
func provideAccessLog(st Settings, lg *logs, reg prometheus.Registerer, lc fx.Lifecycle, hooks *frameworkHooks) (*accesslog.Writer, error) {
	dropped, err := accesslog.NewDroppedCounter(reg)
	if err != nil {
		return nil, fmt.Errorf("svc: metrics: %w", err)
	}
	if !st.LogAccess {
		return nil, nil
	}
	format := accesslog.JSON
	if lg.text(st.LogFormat) {
		format = accesslog.Text
	}
	w := accesslog.New(lg.w, accesslog.Options{Service: st.Name, Format: format, Dropped: dropped})
	lg.access = w
	hooks.append(lc, fx.Hook{OnStop: func(context.Context) error {
		// A write error (stderr closed) is counted in dropped lines; it
		// does not make the shutdown fail.
		_ = w.Close()
		return nil
	}}, true)
	return w, nil
}

// flushAccess writes the access lines logged so far, before an exit that
// may not reach the stop steps.
func (l *logs) flushAccess() { _ = l.access.Flush() }

// switchHandler sends records to the handler in force, with the attributes
// and groups given to it; the derived handler is rebuilt only when the
// root changes. The live level decides what is enabled; Handle does not
// check it, so admin.AuditLogger lets every level through.
type switchHandler struct {
	root  *atomic.Pointer[slog.Handler]
	level slog.Leveler // the live level
	with  []func(slog.Handler) slog.Handler

	cache atomic.Pointer[derived]
}

type derived struct {
	root *slog.Handler
	h    slog.Handler
}

func (s *switchHandler) handler() slog.Handler {
	root := s.root.Load()
	if c := s.cache.Load(); c != nil && c.root == root {
		return c.h
	}
	h := *root
	for _, f := range s.with {
		h = f(h)
	}
	s.cache.Store(&derived{root: root, h: h})
	return h
}

func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	if l < s.level.Level() {
		return false
	}
	return s.handler().Enabled(ctx, l)
}

func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	return s.handler().Handle(ctx, r)
}

func (s *switchHandler) derive(f func(slog.Handler) slog.Handler) *switchHandler {
	with := append(append([]func(slog.Handler) slog.Handler{}, s.with...), f)
	return &switchHandler{root: s.root, level: s.level, with: with}
}

func (s *switchHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return s.derive(func(h slog.Handler) slog.Handler { return h.WithAttrs(as) })
}

func (s *switchHandler) WithGroup(name string) slog.Handler {
	return s.derive(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

// isTerminal reports whether w is a terminal (an ioctl, not a file-mode
// guess: /dev/null is a character device but no terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
