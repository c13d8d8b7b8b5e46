package svc

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
)

// Option configures a service: its own constructors and routes (fx options
// underneath) or, for tests, its environment and arguments. Options are
// independent of their order.
type Option interface {
	apply(*options)
	String() string
}

type options struct {
	fx      []fx.Option
	getenv  func(string) (string, bool) // nil: os.LookupEnv
	args    []string                    // nil: os.Args[1:] in Run
	stdout  io.Writer
	stderr  io.Writer
	version string
	values  map[string]string // highest layer, for tests
	decls   []config.Decl     // the service's declared keys
	defs    map[string]string // the service's defaults for framework keys
	errs    []error           // options that could not be applied
	started func(*App)        // tests: called by run once the app started
	// background runs on New's background goroutine (Run's signal setup).
	background func()

	// Routes, checks and tasks given as values: the framework takes them
	// without an fx node each (constructors go through fx groups).
	public, private []Routes
	checks          []Check
	tasks           []admin.Task
}

func (o *options) stdoutOr() io.Writer {
	if o.stdout != nil {
		return o.stdout
	}
	return os.Stdout
}

func (o *options) stderrOr() io.Writer {
	if o.stderr != nil {
		return o.stderr
	}
	return os.Stderr
}

type option struct {
	name string
	f    func(*options)
}

func (o option) apply(opts *options) { o.f(opts) }
func (o option) String() string      { return o.name }

func fxOption(name string, opt fx.Option) Option {
	return option{name: name, f: func(o *options) { o.fx = append(o.fx, opt) }}
}

// Fx adds raw fx options: constructors, invokes, decorators, modules.
func Fx(opts ...fx.Option) Option { return fxOption("svc.Fx", fx.Options(opts...)) }

// Provide adds constructors to the service's dependency graph (fx.Provide).
// The framework provides to them *config.Live (the configuration in force;
// reloads reach config.Var, config.Struct and OnChange), *config.Store (a
// snapshot taken at start), *slog.Logger, *Instance, Settings,
// *registry.Discovery, prometheus.Registerer and fx.Lifecycle.
func Provide(constructors ...any) Option { return fxOption("svc.Provide", fx.Provide(constructors...)) }

// Invoke runs fns at assembly, before start (fx.Invoke). Prefer routes,
// checks and tasks; invoke sparingly.
func Invoke(fns ...any) Option { return fxOption("svc.Invoke", fx.Invoke(fns...)) }

// Module groups options under a name, which fx errors mention.
func Module(name string, opts ...Option) Option {
	return option{name: "svc.Module(" + name + ")", f: func(o *options) {
		var inner options
		for _, opt := range opts {
			opt.apply(&inner)
		}
		if len(inner.fx) > 0 { // a module of values only needs no dig scope
			o.fx = append(o.fx, fx.Module(name, inner.fx...))
		}
		mergeNonFx(o, &inner)
	}}
}

func mergeNonFx(dst, src *options) {
	if src.getenv != nil {
		dst.getenv = src.getenv
	}
	if src.args != nil {
		dst.args = src.args
	}
	if src.stdout != nil {
		dst.stdout = src.stdout
	}
	if src.stderr != nil {
		dst.stderr = src.stderr
	}
	if src.version != "" {
		dst.version = src.version
	}
	dst.decls = append(dst.decls, src.decls...)
	if src.defs != nil {
		if dst.defs == nil {
			dst.defs = map[string]string{}
		}
		maps.Copy(dst.defs, src.defs)
	}
	dst.errs = append(dst.errs, src.errs...)
	dst.public = append(dst.public, src.public...)
	dst.private = append(dst.private, src.private...)
	dst.checks = append(dst.checks, src.checks...)
	dst.tasks = append(dst.tasks, src.tasks...)
	if src.values != nil {
		if dst.values == nil {
			dst.values = map[string]string{}
		}
		maps.Copy(dst.values, src.values)
	}
}

const (
	groupPublic  = `group:"svc.public"`
	groupPrivate = `group:"svc.private"`
	groupChecks  = `group:"svc.checks"`
	groupTasks   = `group:"svc.tasks"`
)

// group adds v, a value of type T, with add, or provides v, a constructor
// returning T, into a value group.
func group[T any](name, tag string, v any, add func(*options, T)) Option {
	if t, ok := v.(T); ok {
		return option{name: name, f: func(o *options) { add(o, t) }}
	}
	return fxOption(name, fx.Provide(fx.Annotate(v, fx.ResultTags(tag))))
}

// PublicRoutes adds routes to the public listener. ctor is a Routes value
// (or a func(chi.Router)) or a constructor returning Routes whose parameters
// fx provides. Each gets a router group of its own: its middleware (r.Use)
// applies to its routes only. A method and pattern registered by two of
// them fails New, naming both.
func PublicRoutes(ctor any) Option {
	return group("svc.PublicRoutes", groupPublic, routesOf(ctor), func(o *options, r Routes) { o.public = append(o.public, r) })
}

// PrivateRoutes adds routes to the private listener, beside /healthz,
// /readyz, /metrics and /info.
func PrivateRoutes(ctor any) Option {
	return group("svc.PrivateRoutes", groupPrivate, routesOf(ctor), func(o *options, r Routes) { o.private = append(o.private, r) })
}

func routesOf(v any) any {
	if f, ok := v.(func(chi.Router)); ok {
		return Routes(f)
	}
	return v
}

// Check is a named readiness check: /readyz answers 503 while Func fails.
type Check struct {
	Name string
	Func func(context.Context) error
	// Informational checks are reported in /readyz but do not fail it
	// (the registry's connection to etcd is one).
	Informational bool
}

// Readiness adds a readiness check: a Check or a constructor returning one.
func Readiness(ctor any) Option {
	return group("svc.Readiness", groupChecks, ctor, func(o *options, c Check) { o.checks = append(o.checks, c) })
}

// ReadinessFunc adds a readiness check named name.
func ReadinessFunc(name string, f func(context.Context) error) Option {
	return Readiness(Check{Name: name, Func: f})
}

// AdminTask adds a task to the admin listener: an admin.Task or a
// constructor returning one. POST /admin/tasks/{name} runs it.
func AdminTask(ctor any) Option {
	return group("svc.AdminTask", groupTasks, ctor, func(o *options, t admin.Task) { o.tasks = append(o.tasks, t) })
}

// Config declares the keys of T's tagged fields under prefix (see
// config.Declare for the tags: key, default, doc, secret, live) and
// provides *config.Struct[T], whose Get returns them decoded, kept up to
// date by reloads for keys tagged live:"true". The keys show in --help and
// /admin/config like the framework's; a key under prefix that a file or
// the service's etcd prefix sets but T does not declare fails the start
// with a did-you-mean. If *T has a Validate() error method, it is called
// at start (an error fails it) and at each reload (an error rejects the
// reload's changes under prefix).
//
//	type Hello struct {
//		Greeting string `key:"greeting" default:"hello" doc:"the word before the name" live:"true"`
//	}
//	svc.Config[Hello]("hello") // declares hello.greeting
func Config[T any](prefix string) Option {
	decls, err := config.Declare[T](prefix)
	return option{name: "svc.Config(" + prefix + ")", f: func(o *options) {
		if err != nil {
			o.errs = append(o.errs, fmt.Errorf("svc.Config(%q): %w", prefix, err))
			return
		}
		o.decls = append(o.decls, decls...)
		o.fx = append(o.fx, fx.Provide(func(l *config.Live) (*config.Struct[T], error) {
			return config.Bind[T](l, prefix)
		}), fx.Invoke(func(*config.Struct[T]) {})) // bound, so validated, even if nothing takes it
	}}
}

// Defaults sets the service's own defaults for framework keys (the
// lowest layer, "convention"), such as the uri-spec it registers:
//
//	svc.Defaults(map[string]string{"registry.uri-spec": "/hello/{name}"})
//
// Every layer above still overrides them. A key the framework does not
// declare fails New; declare a service's own keys with [Config].
func Defaults(kv map[string]string) Option {
	m := maps.Clone(kv)
	return option{name: fmt.Sprintf("svc.Defaults(%d keys)", len(m)), f: func(o *options) {
		if o.defs == nil {
			o.defs = map[string]string{}
		}
		maps.Copy(o.defs, m)
	}}
}

// WithVersion sets the version reported in /info, logs and the registry.
// Default: the main module's version from the build info, or "dev".
func WithVersion(v string) Option {
	return option{name: "svc.WithVersion(" + v + ")", f: func(o *options) { o.version = v }}
}

// WithEnv replaces the environment the service reads (default
// os.LookupEnv); tests use it to run several apps in one process.
func WithEnv(env map[string]string) Option {
	m := maps.Clone(env)
	return option{name: "svc.WithEnv", f: func(o *options) {
		o.getenv = func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}}
}

// WithArgs replaces the command-line arguments (default os.Args[1:]).
func WithArgs(args ...string) Option {
	return option{name: "svc.WithArgs", f: func(o *options) { o.args = append([]string{}, args...) }}
}

// WithOutput sets where --help and startup errors go (default os.Stdout
// and os.Stderr); logs go to stderr.
func WithOutput(stdout, stderr io.Writer) Option {
	return option{name: "svc.WithOutput", f: func(o *options) { o.stdout, o.stderr = stdout, stderr }}
}

// WithValues sets configuration values above every layer, shown with the
// layer "option". Tests use it for ephemeral ports ("public.port": "0").
func WithValues(kv map[string]string) Option {
	m := maps.Clone(kv)
	return option{name: fmt.Sprintf("svc.WithValues(%d keys)", len(m)), f: func(o *options) {
		if o.values == nil {
			o.values = map[string]string{}
		}
		maps.Copy(o.values, m)
	}}
}

func (o *options) lookupEnv() func(string) (string, bool) {
	if o.getenv != nil {
		return o.getenv
	}
	return os.LookupEnv
}
