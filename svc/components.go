package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/fx"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/config/etcdsource"
	"github.com/svc-dev/svc/internal/accesslog"
	"github.com/svc-dev/svc/internal/httpmw"
	"github.com/svc-dev/svc/internal/tracing"
	"github.com/svc-dev/svc/registry"
)

// framework is the framework's part of the fx graph: two nodes, so that
// assembly pays fx's reflection twice instead of once per component
// (docs/benchmarks.md measures it). core builds every component a
// service's constructors may take, in the order of their start: etcd
// client < etcd config layer < live configuration (and overrides) <
// tracing < discovery < metrics < access-log writer < flight recorder.
// serve, an invoke after the service's module, builds what needs the
// service's groups: admin < listeners < registration < the stop step. The
// service's constructors run in between, so their hooks start after core's
// and before the listeners, and stop in reverse (docs/anatomy-of-main.md
// has the table). Each component appends its own hooks through
// frameworkHooks.
type framework struct {
	l      *layers
	logs   *logs
	hooks  *frameworkHooks
	fatal  *fatal
	reg    *prometheus.Registry
	schema *config.Schema
	id     identity
	inh    inherited
	parts  *parts // what the App's accessors read, set by serve

	collectors *runtimeCollectors // registered in the background

	// Routes, checks and tasks given as values rather than constructors:
	// no fx node each.
	public, private []Routes
	checks          []Check
	tasks           []admin.Task
}

// options are the framework's two nodes. Not an fx.Module: each module is
// a dig scope of its own, with its own allocations, and the framework's
// errors name their component themselves ("svc: metrics: ...").
func (f *framework) options() fx.Option {
	return fx.Options(fx.Provide(f.core), fx.Invoke(f.serve))
}

// coreOut is what the framework gives the service's constructors.
type coreOut struct {
	fx.Out
	Core       *core
	Logger     *slog.Logger
	Registry   *prometheus.Registry
	Registerer prometheus.Registerer
	Schema     *config.Schema
	Client     *clientv3.Client // nil without etcd
	Overrides  *config.Overrides
	Live       *config.Live
	// A snapshot of the configuration at start: it does not follow
	// reloads (config.Struct, config.Var and *config.Live do).
	Store     *config.Store
	Settings  Settings
	Instance  *Instance
	Discovery *registry.Discovery
	Tracing   *tracing.Tracing
	EtcdLayer *etcdsource.Source // nil without etcd
	Flight    *admin.FlightRecorder
}

// core is the components core built, for serve.
type core struct {
	client    *clientv3.Client
	etcdLayer *etcdsource.Source
	live      *config.Live
	overrides *config.Overrides
	settings  Settings
	instance  *Instance
	tracing   *tracing.Tracing
	discovery *registry.Discovery
	metrics   *httpmw.Metrics
	access    *accesslog.Writer // nil without log.access
	flight    *admin.FlightRecorder
	ready     *readiness
	drainer   *drainer
	restarter *restarter
	checks    []Check // the framework's own
}

func (f *framework) core(lc fx.Lifecycle) (coreOut, error) {
	c := &core{ready: newReadiness()}
	c.drainer = newDrainer(c.ready)
	var err error
	if c.client, err = provideEtcdClient(f.l, lc, f.hooks); err != nil {
		return coreOut{}, err
	}
	etcd, err := provideEtcdLayer(c.client, f.l, f.id, f.logs.log, lc, f.hooks)
	if err != nil {
		return coreOut{}, err
	}
	c.etcdLayer = etcd.Layer
	c.checks = append(c.checks, etcd.Checks...)
	c.overrides = config.NewOverrides() // PUT /admin/config/{key}: the top layer
	if c.live, err = provideLive(f.l, etcd.Layer, c.overrides, f.logs, f.reg, lc, f.hooks); err != nil {
		return coreOut{}, err
	}
	if c.settings, err = provideSettings(f.l, f.id, c.live, f.logs); err != nil {
		return coreOut{}, err
	}
	c.instance = provideInstance(f.id, c.settings)
	c.restarter = newRestarter(c.settings, f.logs)
	if c.tracing, err = provideTracing(f.id, f.l, c.settings, c.instance, f.logs.log, lc, f.hooks); err != nil {
		return coreOut{}, err
	}
	disc, err := provideDiscovery(c.client, c.settings, c.live, c.tracing, f.reg, f.logs.log, lc, f.hooks)
	if err != nil {
		return coreOut{}, err
	}
	c.discovery = disc.Discovery
	c.checks = append(c.checks, disc.Checks...)
	if c.metrics, err = provideMetrics(f.reg, c.instance, f.collectors); err != nil {
		return coreOut{}, err
	}
	if c.access, err = provideAccessLog(c.settings, f.logs, f.reg, lc, f.hooks); err != nil {
		return coreOut{}, err
	}
	c.flight = provideFlightRecorder(lc, f.hooks)
	return coreOut{
		Core: c, Logger: f.logs.log, Registry: f.reg, Registerer: f.reg, Schema: f.schema,
		Client: c.client, Overrides: c.overrides, Live: c.live, Store: c.live.Current(),
		Settings: c.settings, Instance: c.instance, Discovery: c.discovery, Tracing: c.tracing,
		EtcdLayer: c.etcdLayer, Flight: c.flight,
	}, nil
}

// serveIn is what serve takes from the graph: core and the service's
// groups.
type serveIn struct {
	fx.In
	Core      *core
	Lifecycle fx.Lifecycle
	Public    []Routes     `group:"svc.public"`
	Private   []Routes     `group:"svc.private"`
	Checks    []Check      `group:"svc.checks"`
	Tasks     []admin.Task `group:"svc.tasks"`
}

func (f *framework) serve(in serveIn) error {
	c, lc, log := in.Core, in.Lifecycle, f.logs.log
	view := newRegistryView(c.instance, c.settings, c.discovery, log)
	adm, err := provideAdmin(adminIn{
		Settings: c.settings, Logs: f.logs, Instance: c.instance, Live: c.live, Drainer: c.drainer,
		Registry: view, Flight: c.flight, Restart: c.restarter, Tasks: slices.Concat(f.tasks, in.Tasks),
		Overrides: c.overrides,
	})
	if err != nil {
		return err
	}
	ls, err := provideListeners(listenersIn{
		Lifecycle: lc, Fatal: f.fatal, Hooks: f.hooks, Settings: c.settings, Logger: log, Logs: f.logs,
		Access: c.access, Admin: adm, Readiness: c.ready, Metrics: c.metrics, Gatherer: f.reg,
		Registerer: f.reg, Instance: c.instance, Tracing: c.tracing, Inherited: f.inh,
		Restarter: c.restarter, Public: slices.Concat(f.public, in.Public), Private: slices.Concat(f.private, in.Private),
	})
	if err != nil {
		return err
	}
	reg := provideRegistration(registrationIn{
		Lifecycle: lc, Hooks: f.hooks, Client: c.client, Settings: c.settings, Instance: c.instance,
		Readiness: c.ready, Drainer: c.drainer, Logger: log, Metrics: f.reg, View: view, Listeners: ls,
	})
	if err := attachChecks(c.ready, slices.Concat(c.checks, reg.Checks, f.checks, in.Checks)); err != nil {
		return err
	}
	// Last, so that its stop hook runs first: readiness 503, deregister,
	// wait shutdown.drain.
	appendStopStep(lc, f.hooks, c.drainer, c.settings, log, ls)
	*f.parts = parts{Settings: c.settings, Live: c.live, Instance: c.instance, Listeners: ls,
		Drainer: c.drainer, Restarter: c.restarter}
	return nil
}

// identity is what Run was called with.
type identity struct {
	name    string
	offset  int
	version string
}

func provideEtcdClient(l *layers, lc fx.Lifecycle, hooks *frameworkHooks) (*clientv3.Client, error) {
	if len(l.boot.Etcd.Endpoints) == 0 {
		return nil, nil
	}
	cli, err := newEtcdClient(l.boot.Etcd)
	if err != nil {
		return nil, err
	}
	hooks.append(lc, fx.Hook{OnStop: func(context.Context) error { return cli.Close() }}, true)
	return cli, nil
}

type etcdLayerOut struct {
	Layer  *etcdsource.Source
	Checks []Check
}

// provideEtcdLayer is the etcd configuration layer, when etcd is
// configured. It lists etcd at construction (waiting up to 2s) and follows
// it until stopped.
func provideEtcdLayer(cli *clientv3.Client, l *layers, id identity, log *slog.Logger, lc fx.Lifecycle, hooks *frameworkHooks) (etcdLayerOut, error) {
	if cli == nil {
		return etcdLayerOut{}, nil
	}
	src, err := etcdsource.New(cli, l.boot.Environment, id.name, etcdsource.Options{Logger: log})
	if err != nil {
		return etcdLayerOut{}, err
	}
	hooks.append(lc, fx.Hook{OnStop: func(context.Context) error { return src.Close() }}, true)
	return etcdLayerOut{Layer: src, Checks: []Check{{Name: "config", Informational: true, Func: src.Check}}}, nil
}

// provideLive is the configuration in force over every layer. Its
// watches start before the listeners bind and stop after they stopped,
// and with them the overrides' expiry timers.
func provideLive(l *layers, etcdLayer *etcdsource.Source, ov *config.Overrides, lg *logs, reg prometheus.Registerer, lc fx.Lifecycle, hooks *frameworkHooks) (*config.Live, error) {
	var el config.Layer // untyped nil without etcd: NewLive skips it
	if etcdLayer != nil {
		el = etcdLayer
	}
	live, err := config.NewLive(config.LiveOptions{Schema: l.schema, Logger: lg.log, Audit: lg.audit, Metrics: reg}, l.stack(el, ov)...)
	if err != nil {
		return nil, err
	}
	hooks.append(lc, fx.Hook{
		OnStart: func(context.Context) error { return live.Start() },
		OnStop:  func(context.Context) error { return errors.Join(live.Close(), ov.Close()) },
	}, false)
	return live, nil
}

// provideSettings decodes the framework's settings once, from the final
// configuration, and puts the log format and level in force.
func provideSettings(l *layers, id identity, live *config.Live, lg *logs) (Settings, error) {
	st, err := decodeSettings(id.name, id.offset, l.boot, live.Current())
	if err != nil {
		return st, err
	}
	lg.setFormat(st.LogFormat)
	lg.level.SetBase(st.LogLevel)
	// A change of log.level is the new base: it takes effect at once, or,
	// during a temporary level set through the admin port, when that ends.
	live.OnChange(KeyLogLevel, func(c config.Change) {
		lvl := slog.LevelInfo
		if c.New != nil {
			if l, err := parseLevel(c.New.Value); err == nil {
				lvl = l
			}
		}
		lg.level.SetBase(lvl)
	})
	return st, nil
}

func provideInstance(id identity, st Settings) *Instance {
	return newInstance(id.name, st.Environment, id.version)
}

type discoveryOut struct {
	Discovery *registry.Discovery
	Checks    []Check
}

// provideDiscovery resolves other services: registry-backed with etcd,
// by override and convention always. It stops after the listeners.
func provideDiscovery(cli *clientv3.Client, st Settings, live *config.Live, tr *tracing.Tracing, reg prometheus.Registerer, log *slog.Logger, lc fx.Lifecycle, hooks *frameworkHooks) (discoveryOut, error) {
	attempt, err := config.NewVar(live, KeyClientAttemptTimeout, 2*time.Second, config.ParseDuration, nil)
	if err != nil {
		return discoveryOut{}, err
	}
	call, err := config.NewVar(live, KeyClientTimeout, 10*time.Second, config.ParseDuration, nil)
	if err != nil {
		return discoveryOut{}, err
	}
	budget := registry.RetryBudget{Percent: float64(st.Discovery.RetryBudget)}
	if st.Discovery.RetryBudget == 0 {
		budget.Percent = -1 // none
	}
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Client:      cli,
		Environment: st.Environment,
		Lookup: func(key string) (string, bool) {
			v, ok := live.Current().Lookup(key)
			return v.Value, ok
		},
		Self:        st.Name,
		SelfOffset:  st.Offset,
		Logger:      log,
		MaxServices: st.Discovery.MaxServices,
		IdleTimeout: st.Discovery.IdleTimeout,
		Metrics:     reg,
		Ejection:    registry.EjectionOptions{Disabled: !st.Discovery.Ejection},
		RetryBudget: budget,
		Calls: registry.ClientOptions{
			Timeouts:    func() (time.Duration, time.Duration) { return attempt.Get(), call.Get() },
			MaxAttempts: st.Discovery.MaxAttempts,
			// Every attempt carries the caller's trace context and
			// request id, and is a client span when tracing exports.
			WrapAttempt: tr.Transport,
		},
	})
	hooks.append(lc, fx.Hook{OnStop: func(context.Context) error { return d.Close() }}, true)
	out := discoveryOut{Discovery: d}
	if cli != nil {
		out.Checks = []Check{{Name: "discovery", Informational: true, Func: d.Check}}
	}
	return out, nil
}

// provideMetrics makes the HTTP metrics and registers svc_info; the
// runtime and process collectors were registered in the background since
// New began (rc).
func provideMetrics(reg *prometheus.Registry, in *Instance, rc *runtimeCollectors) (*httpmw.Metrics, error) {
	m, err := httpmw.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("svc: metrics: %w", err)
	}
	info := in.Info()
	infoGauge := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "svc_info",
		Help:        "Constant 1, labelled with the service's name, environment and version.",
		ConstLabels: prometheus.Labels{"name": info.Name, "environment": info.Environment, "version": info.Version},
	})
	infoGauge.Set(1)
	if err := errors.Join(rc.wait(), reg.Register(infoGauge)); err != nil {
		return nil, fmt.Errorf("svc: metrics: %w", err)
	}
	return m, nil
}

// runtimeCollectors registers the Go runtime and process collectors on
// another goroutine while the configuration loads: building the Go
// collector (runtime/metrics' descriptions) and registering it is a
// tenth of a millisecond or two of a start. It also loads the local
// time zone, which the first log line would otherwise wait for, and then
// runs then (Run's signal setup), if not nil: one goroutine, since each
// may need a thread of its own, and threads are slow to start.
type runtimeCollectors struct {
	done chan struct{}
	err  error
}

func registerRuntimeCollectors(reg prometheus.Registerer, then func()) *runtimeCollectors {
	rc := &runtimeCollectors{done: make(chan struct{})}
	go func() {
		rc.err = errors.Join(
			reg.Register(collectors.NewGoCollector()),
			reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		)
		close(rc.done)
		_ = time.Local.String()
		if then != nil {
			then()
		}
	}()
	return rc
}

// wait returns the registrations' error once they are done.
func (rc *runtimeCollectors) wait() error {
	<-rc.done
	return rc.err
}

// provideTracing is OpenTelemetry tracing from the OTEL_* variables:
// W3C trace context is always extracted and forwarded; spans are exported
// over OTLP/HTTP only when an endpoint is configured. It flushes after the
// servers stopped, so their last spans are in the export.
func provideTracing(id identity, l *layers, st Settings, in *Instance, log *slog.Logger, lc fx.Lifecycle, hooks *frameworkHooks) (*tracing.Tracing, error) {
	tr, err := tracing.New(context.Background(), tracing.Options{
		Service: id.name, Version: id.version, Instance: in.Info().Instance, Environment: st.Environment,
		Getenv: l.getenv, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("svc: tracing: %w", err)
	}
	hooks.append(lc, fx.Hook{OnStop: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return tr.Shutdown(ctx)
	}}, true)
	return tr, nil
}

type adminIn struct {
	Settings Settings
	Logs     *logs
	Instance *Instance
	Live     *config.Live
	Drainer  *drainer
	Registry *registryView
	Flight   *admin.FlightRecorder
	Restart  *restarter
	Tasks    []admin.Task

	Overrides *config.Overrides // a layer of Live
}

func provideAdmin(in adminIn) (*admin.Server, error) {
	return admin.New(admin.Params{
		Info:   func() any { return in.Instance.Info() },
		Level:  in.Logs.level,
		Config: func() []config.Value { return in.Live.Current().All() },
		Reload: func(ctx context.Context) (any, error) {
			rep, err := in.Live.Reload(ctx)
			if rep.Result == "" {
				return nil, err
			}
			return rep, nil
		},
		Drain:    in.Drainer.Drain,
		Undrain:  in.Drainer.Undrain,
		Restart:  in.Restart.restart,
		Tasks:    in.Tasks,
		Registry: in.Registry.status,
		Instance: in.Registry.value,
		Token:    in.Settings.AdminToken.Reveal(),
		Logger:   in.Logs.log,
		Audit:    in.Logs.audit,
		Held:     in.Live.Held,
		Flight:   in.Flight,

		MaxProfileDuration: in.Settings.AdminMaxProfile,
		Overrides:          in.Overrides,
	})
}

// attachChecks gives readiness every check of the one group: the
// service's and the framework's.
func attachChecks(r *readiness, checks []Check) error {
	seen := map[string]bool{}
	for _, c := range checks {
		if c.Name == "" || c.Func == nil {
			return errors.New("svc: a readiness check needs a Name and a Func")
		}
		if seen[c.Name] {
			return fmt.Errorf("svc: two readiness checks are named %q", c.Name)
		}
		seen[c.Name] = true
	}
	r.checks = checks
	return nil
}

// drainer runs the drain hooks (deregistration) for POST /admin/drain and
// at shutdown, and their reverse for POST /admin/undrain.
type drainer struct {
	ready    *readiness
	mu       sync.Mutex // guards drain, undrain
	drain    []func(context.Context) error
	undrain  []func(context.Context) error
	stopping bool // set when shutdown begins; undrain is refused from then on
}

func newDrainer(r *readiness) *drainer { return &drainer{ready: r} }

// on registers hooks run by Drain and Undrain.
func (d *drainer) on(drain, undrain func(context.Context) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.drain = append(d.drain, drain)
	d.undrain = append(d.undrain, undrain)
}

// Drain turns readiness to 503 and runs the drain hooks (the registrar
// deregisters); the servers keep serving.
func (d *drainer) Drain(ctx context.Context) error {
	d.ready.draining.Store(true)
	d.mu.Lock()
	hs := d.drain
	d.mu.Unlock()
	return runAll(ctx, hs)
}

// Undrain reverses Drain: ready again, undrain hooks run (re-register).
// Once shutdown began it refuses: the instance stays draining.
func (d *drainer) Undrain(ctx context.Context) error {
	d.mu.Lock()
	hs, stopping := d.undrain, d.stopping
	d.mu.Unlock()
	if stopping {
		return errors.New("svc: shutting down; cannot undrain")
	}
	d.ready.draining.Store(false)
	return runAll(ctx, hs)
}

func runAll(ctx context.Context, hs []func(context.Context) error) error {
	var errs []error
	for _, h := range hs {
		errs = append(errs, h(ctx))
	}
	return errors.Join(errs...)
}

// appendStopStep appends the first stop step, last of all hooks: readiness
// 503 and the drain hooks (deregistration), then wait shutdown.drain so
// that clients notice.
func appendStopStep(lc fx.Lifecycle, hooks *frameworkHooks, d *drainer, st Settings, log *slog.Logger, ls *listeners) {
	hooks.append(lc, fx.Hook{OnStop: func(ctx context.Context) error {
		ls.drainBegins() // every response says Connection: close from now on
		d.mu.Lock()
		d.stopping = true
		d.mu.Unlock()
		log.Info("shutting down", "drain", st.ShutdownDrain.String(), "timeout", st.ShutdownTimeout.String())
		err := d.Drain(ctx)
		if st.ShutdownDrain > 0 {
			t := time.NewTimer(st.ShutdownDrain)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				err = errors.Join(err, ctx.Err())
			}
		}
		return err
	}}, false)
}

// parseLevel parses debug, info, warn or error.
func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(strings.TrimSpace(s)))
	return l, err
}

// provideFlightRecorder is the admin port's flight recorder (runtime/trace):
// off until POST /admin/flight/start; stopped with the app, since only one
// may run per process.
func provideFlightRecorder(lc fx.Lifecycle, hooks *frameworkHooks) *admin.FlightRecorder {
	fr := &admin.FlightRecorder{}
	hooks.append(lc, fx.Hook{OnStop: func(context.Context) error { fr.Stop(); return nil }}, true)
	return fr
}
