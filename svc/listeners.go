package svc

import (
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
	Lifecycle fx.Lifecycle
	Fatal     *fatal
	Hooks     *frameworkHooks
	Settings  Settings
	Logger    *slog.Logger
	Admin     *admin.Server
	Readiness *readiness
	Metrics   *httpmw.Metrics
	Gatherer  *prometheus.Registry
	Instance  *Instance
	Public    []Routes `group:"svc.public"`
	Private   []Routes `group:"svc.private"`
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
			defer in.Admin.Close()
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
	r.Use(httpmw.RequestID(),
		httpmw.Observe("public", in.Metrics, in.Logger, in.Settings.LogAccess),
		httpmw.Recoverer(in.Logger),
		httpmw.BodyLimit(in.Settings.Public.MaxBodyBytes))
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	if err := newRouteTable("public").install(r, in.Public); err != nil {
		return nil, err
	}
	return r, nil
}

func privateRouter(in listenersIn) (http.Handler, error) {
	r := chi.NewRouter()
	// HEAD answers on GET routes: load balancers probe /healthz with it.
	r.Use(middleware.GetHead, httpmw.Observe("private", in.Metrics, in.Logger, false),
		httpmw.Recoverer(in.Logger),
		httpmw.BodyLimit(in.Settings.Private.MaxBodyBytes))
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
