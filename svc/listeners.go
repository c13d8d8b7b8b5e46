package svc

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/fx"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/internal/accesslog"
	"github.com/svc-dev/svc/internal/connlimit"
	"github.com/svc-dev/svc/internal/handover"
	"github.com/svc-dev/svc/internal/httpmw"
	"github.com/svc-dev/svc/internal/tracing"
)

// listeners are the three servers: admin, public and private, in that
// order. The component binds them at start (a port in use fails the start
// naming it), serves them, and shuts them down at stop. A server that dies
// while serving stops the whole app with exit code 1.
type listeners struct {
	servers []*server // admin, public, private
}

type listenersIn struct {
	Lifecycle  fx.Lifecycle
	Fatal      *fatal
	Hooks      *frameworkHooks
	Settings   Settings
	Logger     *slog.Logger
	Logs       *logs
	Access     *accesslog.Writer // nil without log.access
	Admin      *admin.Server
	Readiness  *readiness
	Metrics    *httpmw.Metrics
	Gatherer   *prometheus.Registry
	Registerer prometheus.Registerer
	Instance   *Instance
	Tracing    *tracing.Tracing
	Inherited  inherited
	Restarter  *restarter
	Public     []Routes
	Private    []Routes
}

func provideListeners(in listenersIn) (*listeners, error) {
	st, log := in.Settings, in.Logger
	pub, err := publicRouter(in)
	if err != nil {
		return nil, err
	}
	priv, err := privateRouter(in)
	if err != nil {
		return nil, err
	}
	ls := &listeners{servers: []*server{
		newServer("admin", st.Admin, in.Admin, log),
		newServer("public", st.Public, pub, log),
		newServer("private", st.Private, priv, log),
	}}
	if err := ls.limit(in.Registerer, st, log); err != nil {
		return nil, err
	}
	for _, s := range ls.servers {
		s.from = in.Inherited[s.name]
	}
	in.Restarter.listeners = ls
	died := func(name string, err error) {
		in.Fatal.fail(fmt.Errorf("svc: %s listener died while serving: %w", name, err))
	}
	in.Hooks.append(in.Lifecycle, fx.Hook{
		OnStart: func(context.Context) error {
			if err := ls.bind(in.Instance); err != nil {
				return err
			}
			for _, s := range ls.servers {
				s.serve(died)
			}
			info := in.Instance.Info()
			attrs := []any{"name", info.Name, "environment", info.Environment, "version", info.Version,
				"instance", info.Instance,
				"admin", ls.addr(0), "public", ls.addr(1), "private", ls.addr(2)}
			if names := in.Inherited.names(); names != "" {
				attrs = append(attrs, "inherited", names)
			}
			log.Info("started", attrs...)
			ls.warnIgnoredPorts(log, in.Inherited)
			return nil
		},
		OnStop: func(context.Context) error {
			defer in.Logs.level.Close()
			ctx, cancel := context.WithTimeout(context.Background(), st.ShutdownTimeout)
			defer cancel()
			if err := shutdownAll(ctx, ls.servers); err != nil {
				return err
			}
			log.Info("stopped")
			return nil
		},
	}, false)
	return ls, nil
}

// limit sets each server's connection cap: its max-conns key, or a share
// of the open-file limit that keeps room for the private and admin
// listeners, so that a flood of public connections cannot make the health
// checks or the admin port fail. Connections shed past a cap are counted
// in svc_connections_shed_total{listener}.
func (ls *listeners) limit(reg prometheus.Registerer, st Settings, log *slog.Logger) error {
	caps, nofile, err := connlimit.ProcessLimits()
	if err != nil {
		caps = connlimit.Limits(1024)
		log.Debug("open-file limit unknown; connection caps assume 1024", "error", err)
	}
	shed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "svc_connections_shed_total",
		Help: "Connections answered 503 and closed because their listener was at its max-conns cap.",
	}, []string{"listener"})
	if err := reg.Register(shed); err != nil {
		return fmt.Errorf("svc: metrics: %w", err)
	}
	for i, cap := range []int{caps.Admin, caps.Public, caps.Private} {
		s := ls.servers[i]
		s.maxConn = cmp.Or(s.cfg.MaxConns, cap)
		s.shed = shed.WithLabelValues(s.name)
	}
	log.Debug("connection caps", "open_files", nofile, "admin", ls.servers[0].maxConn,
		"public", ls.servers[1].maxConn, "private", ls.servers[2].maxConn)
	return nil
}

// bind binds the three listeners; on failure it closes those it bound.
func (ls *listeners) bind(in *Instance) error {
	for _, s := range ls.servers {
		if err := s.bind(); err != nil {
			closeAll(ls.servers)
			return err
		}
	}
	in.setPorts(Ports{Admin: ls.servers[0].port(), Public: ls.servers[1].port(), Private: ls.servers[2].port()})
	return nil
}

// warnIgnoredPorts logs, for each inherited socket on another port than
// its listener's configured one, that the configuration does not apply.
func (ls *listeners) warnIgnoredPorts(log *slog.Logger, inh inherited) {
	for _, s := range ls.servers {
		if inh[s.name] == nil || s.cfg.Port == 0 || s.cfg.Port == s.port() {
			continue
		}
		log.Warn("an inherited socket overrides the configured port",
			"listener", s.name, "configured", s.cfg.Port, "key", s.portKey, "serving", s.ln.Addr().String())
	}
}

// drainBegins makes every response carry "Connection: close" from now on.
func (ls *listeners) drainBegins() {
	for _, s := range ls.servers {
		s.closing.Store(true)
	}
}

// stopAccepting closes the three listening sockets for a handover; the
// successor accepts on them.
func (ls *listeners) stopAccepting() {
	for _, s := range ls.servers {
		s.stopAccepting()
	}
}

// sockets returns the three listening sockets, named, for a successor;
// nil before they are bound.
func (ls *listeners) sockets() []handover.Listener {
	var out []handover.Listener
	for _, s := range ls.servers {
		if s.tcp == nil {
			return nil
		}
		out = append(out, handover.Listener{Name: s.name, Conn: s.tcp})
	}
	return out
}

// addr returns server i's bound address, or "" before it is bound.
func (ls *listeners) addr(i int) string {
	if ls == nil || len(ls.servers) <= i || ls.servers[i].ln == nil {
		return ""
	}
	return ls.servers[i].ln.Addr().String()
}

// publicRouter is the public router behind its one middleware pass. The
// pass goes around the router, not inside it (router.Use): it gives chi
// the route context in the context that carries the request id, so chi
// neither copies the request nor adds a context of its own. Tracing runs
// within the pass, after the request id and the route context and before
// metrics, the access line and recovery: its span is named by route, and
// the access line logs its trace_id.
func publicRouter(in listenersIn) (http.Handler, error) {
	r := chi.NewRouter()
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	if err := newRouteTable("public").install(r, in.Public); err != nil {
		return nil, err
	}
	trace, extract := tracingSteps(in.Tracing, "public")
	return httpmw.New(httpmw.Options{
		Server:       "public",
		CloseChunked: true,
		RequestID:    true,
		Trace:        trace,
		Extract:      extract,
		Metrics:      in.Metrics,
		Access:       in.Access,
		TraceID:      tracing.TraceID,
		Recover:      true,
		Log:          in.Logger,
		MaxBodyBytes: in.Settings.Public.MaxBodyBytes,
	})(r), nil
}

// privateRouter is the private router behind its pass, as publicRouter's.
func privateRouter(in listenersIn) (http.Handler, error) {
	r := chi.NewRouter()
	// HEAD answers on GET routes: load balancers probe /healthz with it.
	r.Use(middleware.GetHead)
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	t := newRouteTable("private")
	own := func(r chi.Router) {
		r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		})
		r.Method(http.MethodGet, "/readyz", in.Readiness)
		r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(in.Gatherer, promhttp.HandlerOpts{
			ErrorLog: slog.NewLogLogger(in.Logger.Handler(), slog.LevelWarn),
		}))
		r.Get("/info", func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, in.Instance.Info())
		})
	}
	own(&recorder{Router: r, table: t, who: "svc (the private port's own routes)"})
	if err := t.install(r, in.Private); err != nil {
		return nil, fmt.Errorf("%w (/healthz, /readyz, /metrics and /info are the framework's)", err)
	}
	trace, extract := tracingSteps(in.Tracing, "private")
	return httpmw.New(httpmw.Options{
		Server:       "private",
		CloseChunked: true,
		Trace:        trace,
		Extract:      extract,
		Metrics:      in.Metrics,
		Recover:      true,
		Log:          in.Logger,
		MaxBodyBytes: in.Settings.Private.MaxBodyBytes,
	})(r), nil
}

// tracingSteps returns the pass's tracing: a middleware that records
// server spans when spans are exported, or else only the extraction of
// the caller's trace context, so that calls made with the request's
// context forward it (a function call rather than a handler per request).
func tracingSteps(tr *tracing.Tracing, server string) (func(http.Handler) http.Handler, func(context.Context, http.Header) context.Context) {
	if tr.Exporting() {
		return tr.Middleware(server), nil
	}
	return nil, tr.ExtractHeaders
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
}
