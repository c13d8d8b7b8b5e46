package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/fx"
	"go.uber.org/fx/fxevent"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/handover"
)

// App is one assembled service: the fx application and accessors to what
// it built. Build it with [New]; [Run] builds, starts and stops one for a
// process. Start and Stop may each be called once.
type App struct {
	fx    *fx.App
	parts parts           // populated by fx at New
	hooks *frameworkHooks // the framework's started hooks, for abortStart
	logs  *logs
	fatal *fatal
}

// fatal is how a component that fails while serving stops the app: one
// dies, all stop (as oklog/run does). Run waits on it beside the signals.
type fatal struct {
	once sync.Once
	ch   chan error // receives the first failure
}

func newFatal() *fatal { return &fatal{ch: make(chan error, 1)} }

// fail reports err; only the first report counts.
func (f *fatal) fail(err error) { f.once.Do(func() { f.ch <- err }) }

// parts are the components the accessors read.
type parts struct {
	Settings  Settings
	Live      *config.Live
	Instance  *Instance
	Listeners *listeners
	Drainer   *drainer
	Restarter *restarter
}

// New assembles the service name at offset without starting it. Errors
// (a bad name or offset, malformed config, an undeclared key, a value of
// the wrong type, a broken fx graph) are returned as one clear message.
func New(name string, offset int, opts ...Option) (*App, error) {
	return newApp(name, offset, collect(opts), nil)
}

func collect(opts []Option) *options {
	o := &options{}
	for _, opt := range opts {
		opt.apply(o)
	}
	return o
}

// schemaOf declares the framework's keys and the service's.
func schemaOf(offset int, o *options) (*config.Schema, error) {
	decls := frameworkKeys(offset)
	for k, v := range o.defs {
		i := slices.IndexFunc(decls, func(d config.Decl) bool { return d.Key == k })
		if i < 0 {
			return nil, fmt.Errorf("svc.Defaults: %s is not a framework key (declare a service's own keys with svc.Config)", k)
		}
		decls[i].Default = v
	}
	s, err := config.NewSchema(decls...)
	if err != nil {
		return nil, err
	}
	if err := s.Declare(o.decls...); err != nil {
		if strings.Contains(err.Error(), "declared twice") {
			return nil, fmt.Errorf("svc: %w (a service key must not repeat a framework key or another module's)", err)
		}
		return nil, fmt.Errorf("svc: %w", err)
	}
	return s, nil
}

// newApp assembles the app; inh are the sockets inherited by the process
// (Run only), served instead of binding.
func newApp(name string, offset int, o *options, inh inherited) (*App, error) {
	if err := validate(name, offset); err != nil {
		return nil, err
	}
	if err := errors.Join(o.errs...); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	rc := registerRuntimeCollectors(reg, o.background)
	schema, err := schemaOf(offset, o)
	if err != nil {
		return nil, err
	}
	l, err := bootstrap(name, schema, o)
	if err != nil {
		return nil, err
	}
	version := o.version
	if version == "" {
		version = buildVersion()
	}
	a := &App{
		logs:  newLogs(o.stderrOr(), name),
		hooks: &frameworkHooks{},
		fatal: newFatal(),
	}
	if inh == nil {
		inh = inherited{}
	}
	fw := &framework{
		l: l, logs: a.logs, hooks: a.hooks, fatal: a.fatal, reg: reg, collectors: rc, schema: schema,
		id: identity{name: name, offset: offset, version: version}, inh: inh, parts: &a.parts,
		public: o.public, private: o.private, checks: o.checks, tasks: o.tasks,
	}
	opts := []fx.Option{
		fx.WithLogger(func() fxevent.Logger { return fxevent.NopLogger }),
		fx.Logger(nopPrinter{}), // fx's fallback when the graph is broken
	}
	if len(o.fx) > 0 {
		// The service's options in a module of their own, before the
		// framework's: their invokes run first, so whatever they need
		// starts before the listeners and stops after them.
		opts = append(opts, fx.Module("service", o.fx...))
	}
	a.fx = fx.New(append(opts, fw.options())...)
	if err := a.fx.Err(); err != nil {
		a.abortStart()
		if os.Getenv("SVC_DEBUG_FX") != "" {
			fmt.Fprintln(os.Stderr, err)
		}
		return nil, assemblyError(name, err)
	}
	return a, nil
}

// nopPrinter silences fx's own fallback logger: errors reach the caller
// as one line instead.
type nopPrinter struct{}

func (nopPrinter) Printf(string, ...any) {}

// startTimeout covers the health-gated registration and an etcd dial.
func (a *App) startTimeout() time.Duration {
	r := a.parts.Settings.Registry
	return time.Duration(r.Attempts)*r.Interval + a.parts.Settings.Etcd.DialTimeout + 15*time.Second
}

// stopTimeout covers drain and shutdown, with room for stop hooks.
func (a *App) stopTimeout() time.Duration {
	st := a.parts.Settings
	return st.ShutdownDrain + st.ShutdownTimeout + 5*time.Second
}

// Start binds the listeners and starts serving; it returns once the service
// is serving. A port in use fails with a message naming it.
func (a *App) Start(ctx context.Context) error { return a.fx.Start(ctx) }

// Stop shuts down in order: readiness 503, deregister, wait
// shutdown.drain, stop accepting and finish in-flight requests within
// shutdown.timeout, the service's own stop hooks, the configuration
// watches, discovery and the etcd client. Errors of several steps are
// joined. Stop on an app that was never started releases what New made
// (the etcd client and its watches).
func (a *App) Stop(ctx context.Context) error {
	return errors.Join(a.fx.Stop(ctx), a.hooks.stopAll(ctx))
}

// Drain turns readiness to 503 and deregisters the instance; the servers
// keep serving. POST /admin/drain calls it.
func (a *App) Drain(ctx context.Context) error { return a.parts.Drainer.Drain(ctx) }

// Undrain reverses Drain: ready again, registered again. Once shutdown
// began it refuses.
func (a *App) Undrain(ctx context.Context) error { return a.parts.Drainer.Undrain(ctx) }

// Failed receives the error of a listener that died while serving: the
// app must stop, and [Run] then exits 1. It is never closed.
func (a *App) Failed() <-chan error { return a.fatal.ch }

// Settings returns the decoded framework settings.
func (a *App) Settings() Settings { return a.parts.Settings }

// Config returns the configuration in force.
func (a *App) Config() *config.Store { return a.parts.Live.Current() }

// Live returns the live configuration: reloads, subscriptions, config.NewVar.
func (a *App) Live() *config.Live { return a.parts.Live }

// Info returns the instance's description; ports are set once started.
func (a *App) Info() Info { return a.parts.Instance.Info() }

// Logger returns the service's logger.
func (a *App) Logger() *slog.Logger { return a.logs.log }

// AdminAddr returns the admin listener's bound address (host:port), or ""
// before Start.
func (a *App) AdminAddr() string { return a.parts.Listeners.addr(0) }

// PublicAddr returns the public listener's bound address.
func (a *App) PublicAddr() string { return a.parts.Listeners.addr(1) }

// PrivateAddr returns the private listener's bound address.
func (a *App) PrivateAddr() string { return a.parts.Listeners.addr(2) }

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
// 0. A startup error prints one line to stderr and exits 1; so does a
// listener that dies while serving, after stopping the rest. --help prints
// the conventions in force and exits 0.
//
// SIGHUP reloads the configuration. SIGUSR2 (and POST /admin/restart)
// restarts in place: a successor started from the executable on disk
// takes the listening sockets, and once it is ready this process stops
// accepting, drains and exits 0. Sockets passed by systemd socket
// activation (LISTEN_FDS, named admin, public, private) are served
// instead of binding; with NOTIFY_SOCKET set, Run tells systemd READY=1,
// STOPPING=1, MAINPID= and pings its watchdog. See docs/operations.md.
func Run(name string, offset int, opts ...Option) {
	os.Exit(run(context.Background(), name, offset, collect(opts)))
}

func run(ctx context.Context, name string, offset int, o *options) int {
	stdout, stderr := o.stdoutOr(), o.stderrOr()
	args := o.args
	if args == nil {
		args = os.Args[1:]
	}
	for _, arg := range args {
		switch arg {
		case "-h", "-help", "--help":
			if err := printHelp(stdout, name, offset, o); err != nil {
				fmt.Fprintln(stderr, errorLine(err))
				return 1
			}
			return 0
		default:
			fmt.Fprintf(stderr, "svc: unknown argument %q: %s takes no flags but --help; configure it with files or environment variables (see --help)\n", arg, name)
			return 1
		}
	}
	// Signals are caught from before the listeners bind (their default
	// action would end the process), set up on New's background goroutine
	// while the app is assembled: a process's first signal.Notify starts
	// the runtime's signal thread, a few hundred microseconds of a start.
	sigs := newSignals(ctx)
	defer sigs.stop()
	o.background = sigs.catch

	inh, err := handover.Inherit()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	sockets, err := inheritedOf(inh.Listeners)
	if err != nil {
		inh.Close()
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer sockets.close()

	a, err := newApp(name, offset, o, sockets)
	if err != nil {
		fmt.Fprintln(stderr, errorLine(err))
		return 1
	}
	gcPercent(a.parts.Live, a.logs.log, os.LookupEnv)
	ctx, control := sigs.wait()
	startCtx, cancel := context.WithTimeout(ctx, a.startTimeout())
	defer cancel()
	a.parts.Restarter.expect()
	if err := a.Start(startCtx); err != nil {
		if ctx.Err() != nil {
			// A signal during start is a request to stop, not a failure.
			a.logs.log.Info("shutting down", "reason", "signal during start")
			a.abortStart()
			return 0
		}
		a.abortStart()
		fmt.Fprintln(stderr, startError(err))
		return 1
	}
	if o.started != nil {
		o.started(a)
	}
	sd := notifier{log: a.logs.log}
	stopWatchdog := sd.watchdog()
	defer stopWatchdog()
	ready := make(chan struct{})
	go func() {
		defer close(ready)
		if a.waitReady(ctx) {
			sd.send("READY=1")
			if err := inh.Ready(); err != nil {
				a.logs.log.Warn("could not tell the predecessor this process is ready", "error", err)
			}
		}
	}()
	restarts, endRestarts := context.WithCancel(context.Background())
	defer endRestarts()
	rs := a.parts.Restarter
	rs.enable(restarts, sd.send)

	code, handedOver := 0, false
serve:
	for {
		select {
		case <-ctx.Done():
			break serve
		case err := <-a.Failed():
			a.logs.flushAccess() // the stop may outlast a supervisor's patience
			a.logs.log.Error("stopping: a listener died", "error", err)
			code = 1
			break serve
		case <-rs.handedOver():
			handedOver = true
			break serve
		case sig := <-control:
			switch sig {
			case syscall.SIGHUP:
				go a.reload(ctx)
			case syscall.SIGUSR2:
				go func() {
					if _, err := rs.restart(ctx); err != nil && errors.Is(err, admin.ErrRefused) {
						a.logs.log.Warn("SIGUSR2: restart refused", "error", err)
					}
				}()
			}
		}
	}
	sigs.cancel() // a second SIGINT or SIGTERM terminates at once
	endRestarts()
	rs.wait() // a restart in progress stops its successor first
	<-ready
	if handedOver {
		// The successor accepts on the same sockets, queued connections
		// included; this process finishes what it accepted.
		a.parts.Listeners.stopAccepting()
	} else {
		sd.send("STOPPING=1")
	}
	stopCtx, cancelStop := context.WithTimeout(context.Background(), a.stopTimeout())
	defer cancelStop()
	if err := a.Stop(stopCtx); err != nil {
		a.logs.log.Error("shutdown incomplete", "error", err)
		return 1
	}
	return code
}

// waitReady runs the readiness checks until they pass (true) or ctx ends
// (false).
func (a *App) waitReady(ctx context.Context) bool {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		if a.parts.Drainer.ready.healthy(ctx) == nil && ctx.Err() == nil {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// reload reloads the configuration (SIGHUP) and logs what changed.
func (a *App) reload(ctx context.Context) {
	rep, err := a.parts.Live.Reload(ctx)
	keys := func(cs []config.Change) []string {
		ks := make([]string, len(cs))
		for i, c := range cs {
			ks[i] = c.Key
		}
		return ks
	}
	if err != nil {
		a.logs.log.Error("SIGHUP: configuration reload failed", "error", err)
		return
	}
	a.logs.log.Info("SIGHUP: configuration reloaded", "result", rep.Result, "changed", keys(rep.Changed),
		"restart_required", keys(rep.RestartRequired), "rejected", len(rep.Rejected))
}

// abortStart releases what a failed or interrupted start left behind: fx
// rolls back with the start context, which a signal or the start timeout
// cancelled, so it may run no stop hook. The framework's own parts that
// started stop here, in reverse (deregister, servers, watches, etcd
// client); the service's own stop hooks do not run, and the process exits.
func (a *App) abortStart() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.hooks.stopAll(ctx); err != nil {
		a.logs.log.Warn("stopped after an interrupted start", "error", err)
	}
}

// startError makes fx's start errors one line.
func startError(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return "svc: start timed out: " + err.Error()
	}
	return err.Error()
}

// signals are run's: SIGINT and SIGTERM cancel ctx; SIGHUP and SIGUSR2
// arrive on control, once caught.
type signals struct {
	parent  context.Context
	once    sync.Once
	ctx     context.Context
	cancel  context.CancelFunc
	control chan os.Signal
}

func newSignals(parent context.Context) *signals {
	return &signals{parent: parent, control: make(chan os.Signal, 4)}
}

// catch starts catching the signals, once; a call while another is under
// way waits for it.
func (s *signals) catch() {
	s.once.Do(func() {
		s.ctx, s.cancel = signal.NotifyContext(s.parent, os.Interrupt, syscall.SIGTERM)
		signal.Notify(s.control, syscall.SIGHUP, syscall.SIGUSR2)
	})
}

// wait returns once the signals are caught.
func (s *signals) wait() (context.Context, <-chan os.Signal) {
	s.catch()
	return s.ctx, s.control
}

func (s *signals) stop() {
	s.catch()
	s.cancel()
	signal.Stop(s.control)
}
