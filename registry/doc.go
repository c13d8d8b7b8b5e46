// Package registry advertises a service's instances in etcd and finds the
// instances of other services.
//
// # Key layout and value
//
// Each instance owns one key, attached to a lease:
//
//	svc/<environment>/services/<name>/<instance id>
//
// whose value is in the JSON format of etcd's own
// go.etcd.io/etcd/client/v3/naming/endpoints package, so that etcd's
// endpoints manager and its gRPC resolver (target
// "etcd:///svc/<environment>/services/<name>") read it too:
//
//	{"Op":0,"Addr":"10.0.0.7:8010","Metadata":{"name":"orders","id":"…",
//	 "environment":"dev","host":"10.0.0.7","public_port":8010,"private_port":8011,
//	 "admin_port":4010,"uri_spec":"/1.x/{territory}/orders/{id}","version":"1.4.2",
//	 "started_at":"2025-01-02T03:04:05.123456789Z"}}
//
// [Prefix] and [Record.Key] build the keys, [Record.MarshalValue] and
// [ParseInstance] the values.
//
// # Registering
//
// A [Registrar] holds one instance's key. [Registrar.Register] waits until
// the service's own health passes, then keeps the key registered in the
// background for as long as the process runs: it re-registers after a lost
// lease (etcd restarted, a partition, a paused process, a revoked lease)
// and puts the key back if someone deletes it. If etcd is unreachable the
// service runs anyway and the registrar keeps retrying;
// [Registrar.Status] and the gauge svc_registry_registered tell whether it
// is registered. [Registrar.Deregister] deletes the key and revokes the
// lease; at shutdown it comes after readiness turns 503 and before the
// servers stop.
//
// # Discovering
//
// A [Discovery] resolves a service name to its base URL
// ([Discovery.BaseURL]: "http://orders") or a full URL ([Discovery.URL]:
// the instance's URI template expanded with [Expand],
// "http://users/1.x/fr/users/42"): the service's name, never an
// instance's address. [NewClient] sends such URLs: [Discovery.Pick] picks
// an instance for every attempt, round-robin across the instances of an
// in-memory cache that an etcd watch keeps current, skipping instances
// ejected for failing ([EjectionOptions]); an attempt that could not reach
// the handler is retried on another instance, an idempotent one also after
// a per-attempt timeout or a 502/503/504 within a [RetryBudget]; calls are
// bounded by timeouts and counted in metrics (docs/calls.md). A
// discovery.override.<name> configuration key takes precedence over the
// registry; without a registry the port convention applies. The transport
// refuses anything that is not a service name ([RefusedError]): it is not
// a proxy. [WithHops] and [MaxHops] bound relay loops.
// [DiscoveryOptions.MaxServices] and [DiscoveryOptions.IdleTimeout] bound
// what names nobody registered cost.
//
//	cli, _ := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}})
//
//	reg, err := registry.NewRegistrar(cli, registry.Record{
//		Name: "orders", ID: instanceID, Environment: "dev",
//		Host: "10.0.0.7", PublicPort: 8010, PrivatePort: 8011, AdminPort: 4010,
//	}, registry.RegistrarOptions{Metrics: promRegistry})
//	if err != nil { ... }
//	if err := reg.Register(ctx, checkHealth); err != nil { ... } // never healthy
//	defer reg.Deregister(shutdownCtx)
//
//	disc := registry.NewDiscovery(registry.DiscoveryOptions{Client: cli, Environment: "dev"})
//	defer disc.Close()
//	client := registry.NewClient(disc, registry.ClientOptions{})
//	u, err := disc.URL("users", map[string]string{"territory": "fr", "userid": "42"})
//	resp, err := client.Get(u) // http://users/1.x/fr/users/42
//
// The package needs the etcd client only: it never starts etcd. Its tests
// run a real embedded etcd through internal/etcdtest.
package registry
