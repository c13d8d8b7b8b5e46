package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/config/etcdsource"
	"github.com/svc-dev/svc/internal/httpmw"
	"github.com/svc-dev/svc/registry"
)

// App is one assembled service. Build it with [New]; [Run] builds, starts
// and stops one for a process. Start and Stop may each be called once.
type App struct {
	settings Settings
	live     *config.Live // the configuration in force
	log      *slog.Logger
	level    *slog.LevelVar
	instance *Instance
	metrics  *prometheus.Registry
	ready    *readiness
	fx       *fx.App

	etcd      *clientv3.Client                   // nil without etcd.endpoints
	etcdConf  *etcdsource.Source                 // the etcd config layer; nil without etcd
	discovery *registry.Discovery                // always set; registry-backed with etcd
	registrar atomic.Pointer[registry.Registrar] // set at start, with etcd
	host      func() string                      // the advertised host, looked up once

	servers []*server // admin, public, private

	mu       sync.Mutex                    // guards drain, undrain
	stopping atomic.Bool                   // set when shutdown begins; undrain is refused from then on
	drain    []func(context.Context) error // run when draining begins (deregister)
	undrain  []func(context.Context) error // run when draining ends (register again)
}

// New assembles the service name at offset without starting it. Errors
// (a bad name or offset, malformed config, a value of the wrong type, a
// broken fx graph) are returned as one clear message.
func New(name string, offset int, opts ...Option) (*App, error) {
	o := collect(opts)
	return newApp(name, offset, o)
}

func collect(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt.apply(o)
	}
	return o
}

func newApp(name string, offset int, o *options) (*App, error) {
	if err := validate(name, offset); err != nil {
		return nil, err
	}
	l, err := loadConfig(name, offset, o)
	if err != nil {
		return nil, err
	}
	// First pass, files and environment: etcd's own settings, the log.
	st, err := decodeSettings(name, offset, l.dir, l.store)
	if err != nil {
		return nil, err
	}
	stderr := o.stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	version := o.version
	if version == "" {
		version = buildVersion()
	}
	a := &App{
		level:   new(slog.LevelVar),
		metrics: prometheus.NewRegistry(),
		ready:   &readiness{timeout: 2 * time.Second},
	}
	a.level.Set(st.LogLevel)
	a.log = newLogger(stderr, st.LogFormat, a.level, name)
	if err := a.configure(name, offset, l, st); err != nil {
		a.closeClients()
		return nil, err
	}
	a.instance = newInstance(name, a.settings.Environment, version)
	a.host = sync.OnceValue(func() string { return advertisedHost(a.settings.Registry.Host, a.log) })
	a.discovery = registry.NewDiscovery(registry.DiscoveryOptions{
		Client:      a.etcd,
		Environment: a.settings.Environment,
		Lookup: func(key string) (string, bool) {
			v, ok := a.live.Current().Lookup(key)
			return v.Value, ok
		},
		Self:       name,
		SelfOffset: offset,
		Logger:     a.log,
	})

	a.fx = fx.New(
		fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }),
		fx.StartTimeout(a.startTimeout()),
		fx.StopTimeout(a.stopTimeout()),
		fx.Supply(a.live, a.live.Current(), a.log, a.instance, a.settings, a.discovery),
		fx.Provide(func() prometheus.Registerer { return a.metrics }),
		fx.Options(o.fx...),
		fx.Invoke(a.wire),
	)
	if err := a.fx.Err(); err != nil {
		a.closeClients()
		return nil, fmt.Errorf("svc: assemble %s: %w", name, err)
	}
	return a, nil
}

// startTimeout covers the health-gated registration and an etcd dial.
func (a *App) startTimeout() time.Duration {
	r := a.settings.Registry
	return time.Duration(r.Attempts)*r.Interval + a.settings.Etcd.DialTimeout + 15*time.Second
}

// stopTimeout covers drain and shutdown, with room for stop hooks.
func (a *App) stopTimeout() time.Duration {
	return a.settings.ShutdownDrain + a.settings.ShutdownTimeout + 5*time.Second
}

type wireIn struct {
	fx.In
	Lifecycle fx.Lifecycle
	Public    []Routes     `group:"svc.public"`
	Private   []Routes     `group:"svc.private"`
	Checks    []Check      `group:"svc.checks"`
	Tasks     []admin.Task `group:"svc.tasks"`
}

// wire builds the three servers and appends the lifecycle hooks in order:
// bind, serve, (register), drain. fx runs OnStop hooks in reverse, so a
// stop drains (readiness 503, deregister, wait shutdown.drain) before the
// servers stop accepting and finish in-flight requests.
func (a *App) wire(in wireIn) error {
	for _, c := range in.Checks {
		if c.Name == "" || c.Func == nil {
			return errors.New("svc: a readiness check needs a Name and a Func")
		}
	}
	a.ready.checks = in.Checks

	httpMetrics, err := httpmw.NewMetrics(a.metrics)
	if err != nil {
		return fmt.Errorf("svc: metrics: %w", err)
	}
	a.metrics.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := a.instance.Info()
	infoGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "svc_info",
		Help:        "Constant 1, labelled with the service's name, environment and version.",
		ConstLabels: prometheus.Labels{"name": info.Name, "environment": info.Environment, "version": info.Version},
	})
	infoGauge.Set(1)
	a.metrics.MustRegister(infoGauge)

	adm, err := admin.New(admin.Params{
		Info:     func() any { return a.instance.Info() },
		Level:    a.level,
		Config:   func() []config.Value { return a.live.Current().All() },
		Reload:   a.reload,
		Drain:    a.Drain,
		Undrain:  a.Undrain,
		Tasks:    in.Tasks,
		Registry: a.registryStatus,
		Instance: a.recordValue,
		Token:    a.settings.AdminToken,
		Logger:   a.log,
	})
	if err != nil {
		return err
	}
	a.servers = []*server{
		newServer("admin", a.settings.Admin, adm, a.log),
		newServer("public", a.settings.Public, a.publicRouter(httpMetrics, in.Public), a.log),
		newServer("private", a.settings.Private, a.privateRouter(httpMetrics, in.Private), a.log),
	}

	in.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { return a.bind() },
		// Appended first, so it stops last: discovery and the etcd
		// client outlive the servers' in-flight requests.
		OnStop: func(context.Context) error { return a.closeClients() },
	})
	in.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error { return a.live.Start() },
		OnStop:  func(context.Context) error { return a.live.Close() },
	})
	in.Lifecycle.Append(fx.Hook{
		OnStart: func(context.Context) error {
			for _, s := range a.servers {
				s.serve(a.log)
			}
			a.logStarted()
			return nil
		},
		OnStop: func(context.Context) error {
			defer adm.Close()
			ctx, cancel := context.WithTimeout(context.Background(), a.settings.ShutdownTimeout)
			defer cancel()
			if err := shutdownAll(ctx, a.servers); err != nil {
				return err
			}
			a.log.Info("stopped")
			return nil
		},
	})
	if a.etcd != nil {
		a.wireRegistry(in.Lifecycle)
	}
	in.Lifecycle.Append(fx.Hook{
		OnStop: a.beginShutdown,
	})
	return nil
}

// closeClients stops discovery's watches and the etcd config layer and
// closes the etcd client.
func (a *App) closeClients() error {
	var errs []error
	if a.discovery != nil {
		errs = append(errs, a.discovery.Close())
	}
	if a.etcdConf != nil {
		errs = append(errs, a.etcdConf.Close())
	}
	if a.etcd != nil {
		errs = append(errs, a.etcd.Close())
	}
	return errors.Join(errs...)
}

func (a *App) publicRouter(m *httpmw.Metrics, routes []Routes) http.Handler {
	r := chi.NewRouter()
	r.Use(httpmw.RequestID(),
		httpmw.Observe("public", m, a.log, a.settings.LogAccess),
		httpmw.Recoverer(a.log),
		httpmw.BodyLimit(a.settings.Public.MaxBodyBytes))
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	for _, add := range routes {
		add(r)
	}
	return r
}

func (a *App) privateRouter(m *httpmw.Metrics, routes []Routes) http.Handler {
	r := chi.NewRouter()
	// HEAD answers on GET routes: load balancers probe /healthz with it.
	r.Use(middleware.GetHead, httpmw.Observe("private", m, a.log, false),
		httpmw.Recoverer(a.log),
		httpmw.BodyLimit(a.settings.Private.MaxBodyBytes))
	r.NotFound(notFound)
	r.MethodNotAllowed(methodNotAllowed)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Method(http.MethodGet, "/readyz", a.ready)
	r.Method(http.MethodGet, "/metrics", promhttp.HandlerFor(a.metrics, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}))
	r.Get("/info", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, a.instance.Info())
	})
	for _, add := range routes {
		add(r)
	}
	return r
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method not allowed"})
}

// bind binds the three listeners; on failure it closes those it bound.
func (a *App) bind() error {
	for _, s := range a.servers {
		if err := s.bind(); err != nil {
			closeAll(a.servers)
			return err
		}
	}
	a.instance.setPorts(Ports{Admin: a.servers[0].port(), Public: a.servers[1].port(), Private: a.servers[2].port()})
	return nil
}

func (a *App) logStarted() {
	info := a.instance.Info()
	a.log.Info("started",
		"name", info.Name, "environment", info.Environment, "version", info.Version,
		"instance", info.Instance,
		"admin", a.AdminAddr(), "public", a.PublicAddr(), "private", a.PrivateAddr())
}

// beginShutdown is the first stop step: readiness 503, drain hooks
// (deregistration), then wait shutdown.drain so that clients notice.
func (a *App) beginShutdown(ctx context.Context) error {
	a.stopping.Store(true)
	a.log.Info("shutting down", "drain", a.settings.ShutdownDrain.String(), "timeout", a.settings.ShutdownTimeout.String())
	err := a.Drain(ctx)
	if a.settings.ShutdownDrain > 0 {
		t := time.NewTimer(a.settings.ShutdownDrain)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			err = errors.Join(err, ctx.Err())
		}
	}
	return err
}

// Drain turns readiness to 503 and runs the drain hooks (the registrar
// deregisters); the servers keep serving. POST /admin/drain calls it.
func (a *App) Drain(ctx context.Context) error {
	a.ready.draining.Store(true)
	return a.runHooks(ctx, &a.drain)
}

// Undrain reverses Drain: ready again, undrain hooks run (re-register).
// Once shutdown began it refuses: the instance stays draining.
func (a *App) Undrain(ctx context.Context) error {
	if a.stopping.Load() {
		return errors.New("svc: shutting down; cannot undrain")
	}
	a.ready.draining.Store(false)
	return a.runHooks(ctx, &a.undrain)
}

func (a *App) runHooks(ctx context.Context, hooks *[]func(context.Context) error) error {
	a.mu.Lock()
	hs := *hooks
	a.mu.Unlock()
	var errs []error
	for _, h := range hs {
		errs = append(errs, h(ctx))
	}
	return errors.Join(errs...)
}

// onDrain registers hooks run by Drain and Undrain.
func (a *App) onDrain(drain, undrain func(context.Context) error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drain = append(a.drain, drain)
	a.undrain = append(a.undrain, undrain)
}

// Start binds the listeners and starts serving; it returns once the service
// is serving. A port in use fails with a message naming it.
func (a *App) Start(ctx context.Context) error { return a.fx.Start(ctx) }

// Stop shuts down in order: readiness 503, deregister, wait
// shutdown.drain, stop accepting and finish in-flight requests within
// shutdown.timeout. Errors of several steps are joined.
func (a *App) Stop(ctx context.Context) error { return a.fx.Stop(ctx) }

// Settings returns the decoded framework settings.
func (a *App) Settings() Settings { return a.settings }

// Config returns the configuration in force.
func (a *App) Config() *config.Store { return a.live.Current() }

// Live returns the live configuration: reloads, subscriptions, config.NewVar.
func (a *App) Live() *config.Live { return a.live }

// Info returns the instance's description; ports are set once started.
func (a *App) Info() Info { return a.instance.Info() }

// Logger returns the service's logger.
func (a *App) Logger() *slog.Logger { return a.log }

func (a *App) addr(i int) string {
	if len(a.servers) <= i || a.servers[i].ln == nil {
		return ""
	}
	return a.servers[i].ln.Addr().String()
}

// AdminAddr returns the admin listener's bound address (host:port), or ""
// before Start.
func (a *App) AdminAddr() string { return a.addr(0) }

// PublicAddr returns the public listener's bound address.
func (a *App) PublicAddr() string { return a.addr(1) }

// PrivateAddr returns the private listener's bound address.
func (a *App) PrivateAddr() string { return a.addr(2) }

// URL returns "http://<loopback>:<port>" for a bound address, for clients
// on this host.
func URL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// Run is the whole of a service's main: it assembles the service name at
// offset, serves until SIGINT or SIGTERM, shuts down gracefully and exits
// 0. A startup error prints one line to stderr and exits 1. --help prints
// the conventions in force and exits 0.
func Run(name string, offset int, opts ...Option) {
	os.Exit(run(context.Background(), name, offset, collect(opts)))
}

func run(ctx context.Context, name string, offset int, o *options) int {
	stdout, stderr := o.stdout, o.stderr
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	args := o.args
	if args == nil {
		args = os.Args[1:]
	}
	for _, arg := range args {
		switch arg {
		case "-h", "-help", "--help":
			if err := printHelp(stdout, name, offset, o); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			return 0
		default:
			fmt.Fprintf(stderr, "svc: unknown argument %q: %s takes no flags but --help; configure it with files or environment variables (see --help)\n", arg, name)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	a, err := newApp(name, offset, o)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	startCtx, cancel := context.WithTimeout(ctx, a.startTimeout())
	defer cancel()
	if err := a.Start(startCtx); err != nil {
		if ctx.Err() != nil {
			// A signal during start is a request to stop, not a failure.
			a.abortStart()
			return 0
		}
		fmt.Fprintln(stderr, startError(err))
		return 1
	}
	<-ctx.Done()
	stop() // a second signal terminates at once
	stopCtx, cancelStop := context.WithTimeout(context.Background(), a.stopTimeout())
	defer cancelStop()
	if err := a.Stop(stopCtx); err != nil {
		a.log.Error("shutdown incomplete", "error", err)
		return 1
	}
	return 0
}

// abortStart releases what a start interrupted by a signal left behind: fx
// rolls back with the start context, which the signal cancelled, so it runs
// no stop hook. The framework's own parts stop here (deregister, servers,
// watches, etcd client); the service's own stop hooks do not run, and the
// process exits.
func (a *App) abortStart() {
	a.stopping.Store(true)
	a.log.Info("shutting down", "reason", "signal during start")
	ctx, cancel := context.WithTimeout(context.Background(), a.settings.ShutdownTimeout)
	defer cancel()
	err := errors.Join(a.Drain(ctx), shutdownAll(ctx, a.servers), a.live.Close(), a.closeClients())
	if err != nil {
		a.log.Warn("stopped after an interrupted start", "error", err)
		return
	}
	a.log.Info("stopped")
}

// startError makes fx's start errors one line.
func startError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "svc: start timed out: " + err.Error()
	}
	return err.Error()
}
