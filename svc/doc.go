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
//	                                /admin/config, /admin/drain, /admin/tasks
//	public   :8000+offset           the service's routes, behind request ids,
//	                                metrics, access log, panic recovery and a
//	                                body limit
//	private  :8001+offset           /healthz, /readyz, /metrics, /info and the
//	                                service's private routes
//
// Configuration comes from layers (conventions < JSON files < etcd <
// environment), decoded once into [Settings]. The service plugs in with
// options: [Provide] for its constructors, [PublicRoutes], [PrivateRoutes],
// [Readiness] checks and [AdminTask]s. The framework provides to those
// constructors: *config.Store, *slog.Logger, *Instance, Settings,
// prometheus.Registerer and fx.Lifecycle.
//
// # Start order
//
//  1. validate name and offset; load and decode configuration (errors here
//     name the file and line:column, or the key, value and layer);
//  2. assemble the fx graph: the service's constructors run;
//  3. bind the three listeners (a port in use names the listener, the port
//     and the key that overrides it), then serve them;
//  4. when etcd is configured, register once readiness passes.
//
// # Stop order (SIGINT or SIGTERM)
//
//  1. /readyz answers 503 and the instance deregisters;
//  2. wait shutdown.drain so that load balancers and caches notice;
//  3. the servers stop accepting and finish in-flight requests within
//     shutdown.timeout; then the service's own stop hooks run;
//  4. exit 0.
//
// [New] builds the same application without running it, for tests; the
// svctest package starts one on ephemeral ports in one line.
package svc
