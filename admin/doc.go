// Package admin is the control plane every svc service carries on its admin
// listener (4000+offset, loopback by default): the running service's info,
// pprof, the live log level, the effective configuration, drain and
// undrain, and tasks the service registers.
//
// Security: the listener binds to loopback unless configured otherwise;
// when a token is set every request needs "Authorization: Bearer <token>"
// (compared in constant time). The svc package refuses to bind the admin
// listener off loopback without a token. Loopback is not enough against a
// browser: state-changing requests a browser marks cross-origin are refused
// (http.CrossOriginProtection), and without a token a request whose Host
// is not localhost, 127.0.0.0/8 or [::1] is refused (DNS rebinding), both
// with 403. pprof's seconds parameter is capped (Params.MaxProfileDuration).
// Actions and refusals are audit lines whatever the log level
// (Params.Audit). Values of secret keys are redacted in /admin/config.
// pprof and config are never served on the public or private listeners.
//
//	level := admin.NewLevel(slog.LevelInfo)
//	srv, err := admin.New(admin.Params{Level: level, Config: store.All})
//	http.ListenAndServe("127.0.0.1:4010", srv)
//
// Endpoints (GET /admin lists them):
//
//	GET  /                    the service's info (same JSON as /info)
//	GET  /admin               this index
//	GET  /debug/pprof/...     net/http/pprof (no cmdline)
//	POST /admin/flight/start  start the flight recorder: ?period=10s&size=16MiB, capped (Params.Flight)
//	GET  /admin/flight        dump its last seconds of execution trace (go tool trace); 409 when not recording
//	GET  /admin/flight/status whether it records; POST /admin/flight/stop stops it
//	GET  /admin/loglevel      current level, base level, end of a temporary level
//	PUT  /admin/loglevel      body debug|info|warn|error; ?for=5m returns to the base level after 5 minutes
//	GET  /admin/config        effective keys, values and layers, secrets redacted; overrides and their expiry;
//	                          what the last reload held back (rejected, restart_required)
//	PUT  /admin/config/{key}  override a key above every layer (body the value, ?for=5m); 202 if startup-only
//	DELETE /admin/config/{key} drop the override
//	POST /admin/config/reload re-read files and etcd now: changed, rejected, restart_required
//	POST /admin/restart       restart in place (Params.Restart); 409 when refused
//	POST /admin/drain         readiness 503 and deregister; serving continues
//	POST /admin/undrain       the reverse
//	GET  /admin/tasks         registered tasks
//	POST /admin/tasks/{name}  run a task; arguments from the query or a JSON object body; output streamed
//	GET  /admin/process       pid, uptime, Go version, goroutines
//	GET  /admin/stack         every goroutine's stack (?debug=1 groups them)
//	GET  /admin/memstats      memory and GC statistics
//	POST /admin/gc            force a garbage collection (?free=true returns memory to the OS)
//	GET  /admin/build         module versions from runtime/debug
//	GET  /admin/registry      registration status (when configured), and the instances ejected from calls
//	GET  /admin/instance      this instance's registry record
//
// docs/admin.md shows each with real output.
package admin
