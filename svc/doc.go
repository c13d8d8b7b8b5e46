// Package svc is the anatomy of a service's main. One call,
//
//	func main() { svc.Run("orders", 20, orders.Module) }
//
// assembles a whole service with go.uber.org/fx and runs it the same way on
// a laptop, in CI and in production.
//
// # What Run builds
//
// Three listeners, placed by one number, the offset (see the contract):
//
//	admin    127.0.0.1:4000+offset  /, /admin, /debug/pprof, /admin/loglevel,
//	                                /admin/config (and overrides), /admin/restart,
//	                                /admin/flight, /admin/drain, /admin/tasks, ...
//	public   :8000+offset           the service's routes, behind request ids,
//	                                metrics, access log, panic recovery and a
//	                                body limit
//	private  :8001+offset           /healthz, /readyz, /metrics, /info and the
//	                                service's private routes
//
// Configuration comes from layers (conventions < JSON files < etcd <
// environment < overrides set through the admin port); every key is declared, and a key nobody declared fails the
// start with the nearest declared key. The framework's keys are decoded
// once, from the final layers, into [Settings].
//
// # Writing a module
//
// A service plugs in with options, gathered by [Module]: [Config] declares
// its keys, [Provide] adds its constructors, [PublicRoutes] and
// [PrivateRoutes] its routes (each in a router group of its own; a route
// registered twice fails [New]), [Readiness] its checks and [AdminTask]
// its tasks:
//
//	type HelloConfig struct {
//		Greeting string `key:"greeting" default:"hello" doc:"the word before the name" live:"true"`
//	}
//
//	var Module = svc.Module("example",
//		svc.Config[HelloConfig]("hello"), // declares hello.greeting
//		svc.Provide(NewGreeter),          // func NewGreeter(lc fx.Lifecycle, cfg *config.Struct[HelloConfig]) *Greeter
//		svc.PublicRoutes(func(g *Greeter) svc.Routes { return g.Routes }),
//		svc.Readiness(func(g *Greeter) svc.Check { return svc.Check{Name: "greeter", Func: g.Ready} }),
//	)
//
// The framework supplies to constructors: *config.Live (the configuration
// in force; a *config.Struct[T] for each [Config]), [Settings],
// *slog.Logger, *[Instance], *registry.Discovery, prometheus.Registerer
// (the service's own registry) and fx.Lifecycle. A constructor that needs
// a type nobody provides fails [New] with one line naming it. See
// docs/writing-a-module.md.
//
// # Start order
//
// Each framework component is a constructor that appends its own hooks,
// so the order follows the dependencies (docs/anatomy-of-main.md has
// every step):
//
//  1. before fx: --help is answered; SIGINT, SIGTERM, SIGHUP and SIGUSR2
//     are caught; inherited sockets (LISTEN_FDS, named admin, public,
//     private) are taken; name and offset are checked; CONFIG_DIR, the
//     files (read once, undeclared keys refused), the environment and
//     [WithValues] are read, and only environment and etcd.* are decoded
//     from them;
//  2. fx builds the components: etcd client < etcd config layer < live
//     configuration (the admin override layer, config.Overrides, on top
//     of every layer) < [Settings] (decoded once) < tracing < discovery,
//     the access-log writer, the flight recorder, the service's
//     constructors < listeners (each with its connection cap,
//     <listener>.max-conns, by default derived from RLIMIT_NOFILE) <
//     registration < the stop step. The service's options are an fx
//     module placed before the framework's, so the hooks of its invokes
//     start before the listeners bind and stop after they stopped;
//  3. the configuration watches start, then the service's start hooks;
//  4. the three listeners are bound, or serve their inherited socket (a
//     port in use names the listener, the port and the key that
//     overrides it), then served;
//  5. with etcd, the instance registers once its readiness checks pass;
//  6. Run sends READY=1 to systemd (NOTIFY_SOCKET) once readiness passes,
//     pings its watchdog (WATCHDOG_USEC), and enables in-place restarts.
//
// A start that fails prints one line and exits 1, stopping what started;
// a signal during the start stops what started and exits 0.
//
// # Serving
//
// SIGHUP reloads the configuration; SIGUSR2 (or POST /admin/restart)
// restarts in place: a successor from the executable on disk takes the
// listening sockets, and once it is ready this process sends MAINPID=,
// stops accepting, drains and exits 0. A listener that dies while
// serving stops the app as below and exits 1, after one log line naming
// it: one dies, all stop.
//
// # Stop order (SIGINT or SIGTERM)
//
//  1. STOPPING=1 to systemd; every response says "Connection: close";
//     /readyz answers 503 and the instance deregisters;
//  2. wait shutdown.drain so that load balancers and caches notice;
//  3. the servers stop accepting and finish in-flight requests within
//     shutdown.timeout;
//  4. the service's own stop hooks run; then the flight recorder stops,
//     the access-log writer writes its last lines, discovery closes,
//     tracing flushes its spans (all after the servers), and the
//     watches, the overrides and the etcd client stop;
//  5. exit 0 (1 if a step failed or a listener died).
//
// [New] builds the same application without running it, for tests; the
// svctest package starts one on ephemeral ports in one line.
package svc
