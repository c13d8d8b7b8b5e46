package registry_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// lookup is a configuration of fixed keys.
func lookup(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func TestDiscoveryWithoutRegistry(t *testing.T) {
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Environment: "test",
		Self:        "hello",
		SelfOffset:  30,
		Lookup: lookup(map[string]string{
			"services.orders.offset":             "10",
			"services.orders.uri-spec":           "/1.x/orders/{id}",
			"services.users.offset":              "20",
			"services.users.host":                "users.internal",
			"services.bad.offset":                "ten",
			"discovery.override.orders":          "http://127.0.0.1:9999/",
			"discovery.override.payments":        "http://mock:7000/v2/{territory}/pay/{id}",
			"discovery.override.broken":          "mock:7000",
			"discovery.override.badtpl":          "http://mock:7000/{x",
			"discovery.override.hello":           "", // empty: no override
			"services.hello.offset":              "999",
			"discovery.override.orders-prefixed": "https://api.example:8443/orders",
		}),
	})
	defer d.Close()

	tests := []struct {
		name    string
		wantURL string
		wantErr string
	}{
		{"orders", "http://127.0.0.1:9999", ""}, // override wins over the offset
		{"users", "http://users.internal:8020", ""},
		{"hello", "http://localhost:8030", ""}, // self: own offset, not the key
		{"payments", "http://mock:7000", ""},
		{"orders-prefixed", "https://api.example:8443/orders", ""},
		{"unknown", "", `no instance of service "unknown"`},
		{"bad", "", `services.bad.offset = "ten"`},
		{"broken", "", "not an http:// or https:// URL"},
		{"badtpl", "", "'{' without '}'"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := d.Pick(tc.name, nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Pick(%q) = %q, %v; want error containing %q", tc.name, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.wantURL {
				t.Fatalf("Pick(%q) = %q, %v; want %q", tc.name, got, err, tc.wantURL)
			}
		})
	}

	var noInstance *registry.NoInstanceError
	if _, err := d.Pick("unknown", nil); !errors.As(err, &noInstance) || noInstance.Service != "unknown" {
		t.Errorf("Pick(unknown) error = %v; want a *NoInstanceError for unknown", err)
	}

	urls := []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"payments", map[string]string{"territory": "fr", "id": "a b"}, "http://payments/v2/fr/pay/a%20b"},
		{"users", nil, ""}, // no uri-spec known
	}
	for _, tc := range urls {
		got, err := d.URL(tc.name, tc.values)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "no uri-spec") {
				t.Errorf("URL(%q) = %q, %v; want a no uri-spec error", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("URL(%q, %v) = %q, %v; want %q", tc.name, tc.values, got, err, tc.want)
		}
	}
	if got, err := d.URL("payments", map[string]string{"territory": "fr"}); err == nil || !strings.Contains(err.Error(), "{id}") {
		t.Errorf("URL(payments) without id = %q, %v; want an error naming {id}", got, err)
	}

	if err := d.Check(context.Background()); err != nil {
		t.Errorf("Check = %v; want nil without a registry", err)
	}
	d.Close()
	if _, err := d.Pick("never-seen", nil); !errors.Is(err, registry.ErrClosed) {
		t.Errorf("BaseURL after Close = %v; want ErrClosed", err)
	}
	if got, err := d.Pick("users", nil); err != nil || got != "http://users.internal:8020" {
		t.Errorf("Pick(users) after Close = %q, %v; want the known instance", got, err)
	}
}

// TestDiscoverTwoInstances registers two instances, finds both, reaches both
// round-robin, and sees one go on Deregister.
func TestDiscoverTwoInstances(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	a := newRegistrar(t, srv.Client(t), record("orders", "a", 8010), registry.RegistrarOptions{})
	b := newRegistrar(t, srv.Client(t), record("orders", "b", 8020), registry.RegistrarOptions{})
	// A service whose name extends "orders" must not show up.
	other := newRegistrar(t, srv.Client(t), record("orders-archive", "x", 8030), registry.RegistrarOptions{})
	register(t, a)
	register(t, b)
	register(t, other)

	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(t), Environment: "test", Logger: testLogger(t, nil)})
	defer d.Close()
	want := []string{"svc/test/services/orders/a", "svc/test/services/orders/b"}
	if got := keys(t, d, "orders"); !slices.Equal(got, want) {
		t.Fatalf("Instances(orders) keys = %v; want %v", got, want)
	}
	insts, _ := d.Instances("orders")
	if got := insts[0].Record; got.Name != "orders" || got.PrivatePort != 8011 || !got.StartedAt.Equal(startedAt) || got.Version != "v1.2.3" {
		t.Errorf("Instances(orders)[0].Record = %+v; want the registered record", got)
	}

	seen := map[string]int{}
	for range 10 {
		u, err := d.Pick("orders", nil)
		if err != nil {
			t.Fatalf("BaseURL: %v", err)
		}
		seen[u]++
	}
	if seen["http://127.0.0.1:8010"] != 5 || seen["http://127.0.0.1:8020"] != 5 {
		t.Errorf("BaseURL over 10 calls = %v; want 5 each of :8010 and :8020", seen)
	}
	u, err := d.URL("orders", map[string]string{"territory": "fr", "userid": "42"})
	if err != nil || u != "http://orders/1.x/fr/users/42" {
		t.Errorf("URL(orders) = %q, %v; want http://orders/1.x/fr/users/42 (the service, never an instance)", u, err)
	}
	if b, err := d.BaseURL("orders"); err != nil || b != "http://orders" {
		t.Errorf("BaseURL(orders) = %q, %v; want http://orders", b, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.Deregister(ctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	waitFor(t, time.Second, func() bool { return slices.Equal(keys(t, d, "orders"), want[1:]) },
		func() string { return fmt.Sprintf("instances after Deregister: %v", keys(t, d, "orders")) })
	if err := d.Check(ctx); err != nil {
		t.Errorf("Check = %v; want nil", err)
	}

	if err := b.Deregister(ctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	waitFor(t, time.Second, func() bool { return len(keys(t, d, "orders")) == 0 },
		func() string { return "instances left after both deregistered" })
	var noInstance *registry.NoInstanceError
	if _, err := d.Pick("orders", nil); !errors.As(err, &noInstance) || noInstance.Service != "orders" {
		t.Errorf("Pick(orders) with none registered = %v; want *NoInstanceError for orders", err)
	}
}

// TestOverrideBeatsRegistry checks the order: an override wins even with a
// registry configured.
func TestOverrideBeatsRegistry(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	register(t, newRegistrar(t, srv.Client(t), record("orders", "a", 8010), registry.RegistrarOptions{}))
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Client:      srv.Client(t),
		Environment: "test",
		Lookup:      lookup(map[string]string{"discovery.override.orders": "http://localhost:9000"}),
	})
	defer d.Close()
	if got, err := d.Pick("orders", nil); err != nil || got != "http://localhost:9000" {
		t.Errorf("Pick(orders) = %q, %v; want the override", got, err)
	}
}

// TestMalformedValuesSkipped plants values of other writers in the prefix:
// discovery skips and logs them and keeps serving the good ones.
func TestMalformedValuesSkipped(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	ctx := context.Background()
	prefix := registry.Prefix("test", "orders")
	planted := map[string]string{
		"garbage":  "not json",
		"delete":   `{"Op":1,"Addr":"127.0.0.1:1"}`,
		"no-port":  `{"Op":0,"Addr":"127.0.0.1"}`,
		"bad-port": `{"Op":0,"Addr":"127.0.0.1:http"}`,
		"empty":    ``,
		"array":    `[1,2]`,
		// Other clients of etcd's endpoints format are welcome.
		"foreign": `{"Op":0,"Addr":"127.0.0.1:7070","Metadata":"grpc"}`,
	}
	for id, v := range planted {
		if _, err := admin.Put(ctx, prefix+id, v); err != nil {
			t.Fatal(err)
		}
	}
	register(t, newRegistrar(t, srv.Client(t), record("orders", "good", 8010), registry.RegistrarOptions{}))

	var log syncBuffer
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(t), Environment: "test", Logger: testLogger(t, &log)})
	defer d.Close()
	want := []string{prefix + "foreign", prefix + "good"}
	if got := keys(t, d, "orders"); !slices.Equal(got, want) {
		t.Fatalf("Instances = %v; want %v", got, want)
	}
	if insts, _ := d.Instances("orders"); insts[0].Record.Name != "orders" || insts[0].Record.ID != "foreign" {
		t.Errorf("foreign instance record = %+v; want name and id from its key", insts[0].Record)
	}
	// Planted while watching, and a good value overwritten by garbage.
	if _, err := admin.Put(ctx, prefix+"late", "{"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Put(ctx, prefix+"foreign", "}"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, func() bool { return slices.Equal(keys(t, d, "orders"), want[1:]) },
		func() string { return fmt.Sprintf("instances = %v", keys(t, d, "orders")) })
	waitFor(t, 2*time.Second, func() bool { return strings.Count(log.String(), "malformed") >= 8 },
		func() string { return "log does not name the malformed values:\n" + log.String() })
	if !strings.Contains(log.String(), prefix+"late") {
		t.Errorf("log does not name %s", prefix+"late")
	}
}

// TestWatchCompacted makes the discovery's watch fall behind a compaction:
// the cache lists again and stays correct.
func TestWatchCompacted(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	proxy := etcdtest.NewProxy(t, srv.Endpoints()[0])
	a := newRegistrar(t, srv.Client(t), record("orders", "a", 8010), registry.RegistrarOptions{})
	register(t, a)

	var log syncBuffer
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Client: etcdtest.NewClient(t, proxy.Endpoint()), Environment: "test", Logger: testLogger(t, &log),
	})
	defer d.Close()
	if got := keys(t, d, "orders"); len(got) != 1 {
		t.Fatalf("Instances = %v; want a", got)
	}

	proxy.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	b := newRegistrar(t, srv.Client(t), record("orders", "b", 8020), registry.RegistrarOptions{})
	register(t, b)
	for i := range 5 { // some churn, then compact it all away
		if _, err := admin.Put(ctx, "unrelated", fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := admin.Get(ctx, "unrelated")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatalf("Compact: %v", err)
	}
	proxy.Restore()

	want := []string{"svc/test/services/orders/b"}
	waitFor(t, 10*time.Second, func() bool { return slices.Equal(keys(t, d, "orders"), want) },
		func() string { return fmt.Sprintf("instances = %v; want %v", keys(t, d, "orders"), want) })
	// The follow lists again either because its watch hit the compaction
	// or, first, because the connection came back after the cut.
	if l := log.String(); !strings.Contains(l, "compacted") && !strings.Contains(l, "connection back after a break") {
		t.Errorf("log does not say why the instances were listed again:\n%s", l)
	}
	waitFor(t, 5*time.Second, func() bool { return d.Check(ctx) == nil },
		func() string { return fmt.Sprintf("Check = %v", d.Check(ctx)) })
	// The watch goes on from the new revision.
	register(t, newRegistrar(t, srv.Client(t), record("orders", "c", 8030), registry.RegistrarOptions{}))
	waitFor(t, 2*time.Second, func() bool { return len(keys(t, d, "orders")) == 2 },
		func() string { return fmt.Sprintf("instances = %v; want b and c", keys(t, d, "orders")) })
}

// TestDiscoveryCheckReportsBrokenWatch stops etcd under a discovery: it
// keeps serving the last known instances, Check says why, and both recover.
func TestDiscoveryCheckReportsBrokenWatch(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	register(t, newRegistrar(t, srv.Client(t), record("orders", "a", 8010), registry.RegistrarOptions{}))
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(t), Environment: "test", Logger: testLogger(t, nil)})
	defer d.Close()
	if got := keys(t, d, "orders"); len(got) != 1 {
		t.Fatalf("Instances = %v; want one", got)
	}
	ctx := context.Background()

	srv.Stop()
	waitFor(t, 10*time.Second, func() bool { return d.Check(ctx) != nil },
		func() string { return "Check = nil with etcd down" })
	if got, err := d.Pick("orders", nil); err != nil || got != "http://127.0.0.1:8010" {
		t.Errorf("BaseURL with etcd down = %q, %v; want the last known instance", got, err)
	}
	// A service first asked for while etcd is down: a NoInstanceError
	// saying why.
	var noInstance *registry.NoInstanceError
	if _, err := d.Pick("users", nil); !errors.As(err, &noInstance) || noInstance.Err == nil {
		t.Errorf("Pick(users) with etcd down = %v; want *NoInstanceError with a cause", err)
	}

	srv.Restart(t)
	waitFor(t, 10*time.Second, func() bool { return d.Check(ctx) == nil },
		func() string { return fmt.Sprintf("Check = %v after restart", d.Check(ctx)) })
	register(t, newRegistrar(t, srv.Client(t), record("users", "u", 8040), registry.RegistrarOptions{}))
	waitFor(t, 10*time.Second, func() bool {
		_, err := d.Pick("users", nil)
		return err == nil
	}, func() string { return "users not discovered after restart" })
}

// TestClusterLosesOneMember keeps instances registered and discoverable
// while one member of a 3-member cluster (the leader) is down.
func TestClusterLosesOneMember(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 3)
	ctx := context.Background()
	// A TTL well above the election timeout: the test is about staying
	// registered, not about re-registering.
	opts := registry.RegistrarOptions{TTL: 5 * time.Second}
	register(t, newRegistrar(t, c.Client(t), record("orders", "a", 8010), opts))
	register(t, newRegistrar(t, c.Client(t), record("orders", "b", 8020), opts))
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: c.Client(t), Environment: "test", Logger: testLogger(t, nil)})
	defer d.Close()
	waitFor(t, 5*time.Second, func() bool { return len(keys(t, d, "orders")) == 2 },
		func() string { return fmt.Sprintf("instances = %v", keys(t, d, "orders")) })

	admin := c.Client(t)
	leader := -1
	for i, m := range c.Members {
		st, err := admin.Status(ctx, m.Endpoints()[0])
		if err == nil && st.Leader == st.Header.MemberId {
			leader = i
		}
	}
	if leader < 0 {
		t.Fatal("no leader found")
	}
	c.Members[leader].Stop()

	// For longer than a TTL, both stay visible in the cache and in etcd.
	for end := time.Now().Add(opts.TTL + time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got := keys(t, d, "orders"); len(got) != 2 {
			t.Fatalf("instances with a member down = %v; want both", got)
		}
	}
	for _, id := range []string{"a", "b"} {
		if _, _, ok := getKey(t, admin, registry.Prefix("test", "orders")+id); !ok {
			t.Errorf("key of %s gone with a member down", id)
		}
	}
	// New registrations still propagate.
	register(t, newRegistrar(t, c.Client(t), record("orders", "c", 8030), opts))
	waitFor(t, 5*time.Second, func() bool { return len(keys(t, d, "orders")) == 3 },
		func() string { return fmt.Sprintf("instances = %v; want a, b, c", keys(t, d, "orders")) })
}

// TestEndpointsManagerListsInstances proves the value format: etcd's own
// naming/endpoints manager lists our instances.
func TestEndpointsManagerListsInstances(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	register(t, newRegistrar(t, cli, record("orders", "a", 8010), registry.RegistrarOptions{}))
	register(t, newRegistrar(t, cli, record("orders", "b", 8020), registry.RegistrarOptions{}))

	target := strings.TrimSuffix(registry.Prefix("test", "orders"), "/")
	em, err := endpoints.NewManager(cli, target)
	if err != nil {
		t.Fatal(err)
	}
	eps, err := em.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, tc := range []struct {
		key, addr string
		port      float64 // JSON numbers decode to float64
	}{
		{target + "/a", "127.0.0.1:8010", 8010},
		{target + "/b", "127.0.0.1:8020", 8020},
	} {
		ep, ok := eps[tc.key]
		if !ok || ep.Addr != tc.addr {
			t.Errorf("endpoints %s = %+v (present %v); want Addr %s", tc.key, ep, ok, tc.addr)
			continue
		}
		md, _ := ep.Metadata.(map[string]any)
		if md["name"] != "orders" || md["public_port"] != tc.port || md["private_port"] != tc.port+1 {
			t.Errorf("endpoints %s metadata = %v; want name orders and the public port as a number", tc.key, md)
		}
		if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(md["started_at"])); err != nil {
			t.Errorf("endpoints %s started_at = %v; want RFC 3339", tc.key, md["started_at"])
		}
	}
	if len(eps) != 2 {
		t.Errorf("endpoints = %v; want 2", eps)
	}

	// And an endpoint the manager adds is one we discover.
	if err := em.AddEndpoint(context.Background(), target+"/grpc-1", endpoints.Endpoint{Addr: "127.0.0.1:9090"}); err != nil {
		t.Fatal(err)
	}
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: cli, Environment: "test"})
	defer d.Close()
	if got := keys(t, d, "orders"); !slices.Contains(got, target+"/grpc-1") {
		t.Errorf("Instances = %v; want the manager's endpoint too", got)
	}
}
