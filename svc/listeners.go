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
	"github.com/svc-dev/svc/internal/httpmw"
)

// listeners are the three servers: admin, public and private, in that
// order. The component binds them at start (a port in use fails the start
// naming it), serves them, and shuts them down at stop. A server that dies
// while serving stops the whole app with exit code 1.
type listeners struct {
	servers []*server // admin, public, private
}

type listenersIn struct {
	fx.In
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
	Public     []Routes `group:"svc.public"`
	Private    []Routes `group:"svc.private"`
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
			log.Info("started",
				"name", info.Name, "environment", info.Environment, "version", info.Version,
				"instance", info.Instance,
				"admin", ls.addr(0), "public", ls.addr(1), "private", ls.addr(2))
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

// addr returns server i's bound address, or "" before it is bound.
func (ls *listeners) addr(i int) string {
	if ls == nil || len(ls.servers) <= i || ls.servers[i].ln == nil {
		return ""
	}
	return ls.servers[i].ln.Addr().String()
}

func publicRouter(in listenersIn) (http.Handler, error) {
	r := chi.NewRouter()
	r.Use(httpmw.New(httpmw.Options{
		Server:       "public",
		CloseChunked: true,
		RequestID:    true,
		Metrics:      in.Metrics,
		Access:       in.Access,
		// TraceID: the tracing middleware's, once it runs before this one.
		Recover:      true,
		Log:          in.Logger,
		MaxBodyBytes: in.Settings.Public.MaxBodyBytes,
	}))
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	if err := newRouteTable("public").install(r, in.Public); err != nil {
		return nil, err
	}
	return r, nil
}

func privateRouter(in listenersIn) (http.Handler, error) {
	r := chi.NewRouter()
	r.Use(httpmw.New(httpmw.Options{
		Server:       "private",
		CloseChunked: true,
		Metrics:      in.Metrics,
		Recover:      true,
		Log:          in.Logger,
		MaxBodyBytes: in.Settings.Private.MaxBodyBytes,
	}),
		// HEAD answers on GET routes: load balancers probe /healthz with it.
		middleware.GetHead)
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
	return r, nil
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
}
