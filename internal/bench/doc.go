// Package bench holds the baselines and the load tooling behind
// docs/benchmarks.md: programs that serve the same trivial handler
// ([Hello]) with and without svc, and the startup benchmark that builds and
// times them.
//
//	barehttp   a bare net/http server: GET / on :8090
//	barechi    bare chi: GET /hello/{name} on :8092
//	svchello   svc.Run("svchello", 20, ...): GET /hello/{name} on :8020
//	fairbase   the fair baseline: bare chi with svc's server limits, linking
//	           fx, client_golang and the etcd client unused: :8096
//	load       a client sending a fixed number of requests
//
// None takes flags; like a service, each starts with no configuration.
// BenchmarkStartup (go test -bench Startup) builds the example service and
// barehttp and times process start to the first 200; throughput.sh runs
// wrk against barechi, fairbase and svchello in alternating rounds;
// instructions.sh counts each one's instructions per request under
// valgrind, which other load on the machine does not disturb; gate (make
// bench-gate) compares svchello with fairbase and fails under the targets.
package bench
