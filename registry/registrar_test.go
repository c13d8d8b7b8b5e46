package registry_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

func TestNewRegistrarRejects(t *testing.T) {
	cli := etcdtest.NewClient(t, "http://127.0.0.1:1") // never dialled
	good := record("orders", "a", 8010)
	tests := []struct {
		name string
		rec  func(r *registry.Record)
		opts registry.RegistrarOptions
		want string
	}{
		{"empty name", func(r *registry.Record) { r.Name = "" }, registry.RegistrarOptions{}, "name is empty"},
		{"slash in id", func(r *registry.Record) { r.ID = "a/b" }, registry.RegistrarOptions{}, "contains '/'"},
		{"no host", func(r *registry.Record) { r.Host = "" }, registry.RegistrarOptions{}, "host is empty"},
		{"bad port", func(r *registry.Record) { r.PublicPort = 70000 }, registry.RegistrarOptions{}, "not in 1..65535"},
		{"negative ttl", func(*registry.Record) {}, registry.RegistrarOptions{TTL: -time.Second}, "negative TTL"},
		{"negative attempts", func(*registry.Record) {}, registry.RegistrarOptions{Attempts: -1}, "negative attempts"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := good
			tc.rec(&rec)
			_, err := registry.NewRegistrar(cli, rec, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "registry: ") {
				t.Errorf("NewRegistrar(%+v) error = %v; want one containing %q", rec, err, tc.want)
			}
		})
	}
	if _, err := registry.NewRegistrar(nil, good, registry.RegistrarOptions{}); err == nil {
		t.Error("NewRegistrar(nil client) = nil error; want one")
	}
}

func TestHealthGate(t *testing.T) {
	t.Parallel()
	cli := etcdtest.NewClient(t, "http://127.0.0.1:1") // unreachable: the gate fails first
	errSick := errors.New("database unreachable")
	tests := []struct {
		name      string
		healthyAt int // attempt at which health passes; 0: never
		wantErr   bool
		wantCalls int
	}{
		{"healthy at once", 1, false, 1},
		{"healthy at third attempt", 3, false, 3},
		{"never healthy", 0, true, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRegistrar(t, cli, record("orders", "a", 8010), registry.RegistrarOptions{
				Attempts: 4, Interval: 5 * time.Millisecond,
			})
			calls := 0
			err := r.Register(context.Background(), func(context.Context) error {
				calls++
				if calls == tc.healthyAt {
					return nil
				}
				return errSick
			})
			if calls != tc.wantCalls {
				t.Errorf("health called %d times; want %d", calls, tc.wantCalls)
			}
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Register = %v; want nil", err)
				}
				return
			}
			if !errors.Is(err, errSick) || !strings.Contains(err.Error(), "4 attempts") {
				t.Fatalf("Register = %v; want an error naming 4 attempts and wrapping %q", err, errSick)
			}
			if st := r.Status(); st.Registered || !strings.Contains(st.LastError, "database unreachable") {
				t.Errorf("Status after failed gate = %+v; want not registered with the health error", st)
			}
		})
	}

	t.Run("context canceled", func(t *testing.T) {
		r := newRegistrar(t, cli, record("orders", "a", 8010), registry.RegistrarOptions{
			Attempts: 100, Interval: time.Hour,
		})
		ctx, cancel := context.WithCancel(context.Background())
		err := r.Register(ctx, func(context.Context) error { cancel(); return errSick })
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Register with canceled context = %v; want context.Canceled", err)
		}
	})
}

func TestRegisterDeregister(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	admin := srv.Client(t)
	reg := prometheus.NewRegistry()
	rec := record("orders", "i-1", 8010)
	r := newRegistrar(t, cli, rec, registry.RegistrarOptions{Metrics: reg})

	if got := gaugeValue(t, reg, "svc_registry_registered"); got != 0 {
		t.Errorf("svc_registry_registered before Register = %v; want 0", got)
	}
	st := register(t, r)
	if st.Key != rec.Key() || st.LeaseID == 0 || st.LastError != "" {
		t.Errorf("Status = %+v; want key %s, a lease and no error", st, rec.Key())
	}
	if got := gaugeValue(t, reg, "svc_registry_registered"); got != 1 {
		t.Errorf("svc_registry_registered while registered = %v; want 1", got)
	}
	val, lease, ok := getKey(t, admin, rec.Key())
	if !ok || lease != st.LeaseID {
		t.Fatalf("key %s: present=%v lease=%x; want present with lease %x", rec.Key(), ok, lease, st.LeaseID)
	}
	want, _ := rec.MarshalValue()
	if val != string(want) {
		t.Errorf("value = %s; want %s", val, want)
	}
	// A second Register is a no-op.
	if err := r.Register(context.Background(), nil); err != nil {
		t.Errorf("second Register = %v; want nil", err)
	}

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.Deregister(ctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Deregister took %s; want under 1s", d)
	}
	if _, _, ok := getKey(t, admin, rec.Key()); ok {
		t.Errorf("key %s still present after Deregister", rec.Key())
	}
	ttl, err := admin.TimeToLive(context.Background(), clientv3.LeaseID(st.LeaseID))
	if err == nil && ttl.TTL > 0 {
		t.Errorf("lease %x still alive after Deregister (TTL %d)", st.LeaseID, ttl.TTL)
	}
	if got := r.Status(); got.Registered || got.LeaseID != 0 {
		t.Errorf("Status after Deregister = %+v; want not registered, no lease", got)
	}
	if got := gaugeValue(t, reg, "svc_registry_registered"); got != 0 {
		t.Errorf("svc_registry_registered after Deregister = %v; want 0", got)
	}
	if err := r.Deregister(ctx); err != nil {
		t.Errorf("second Deregister = %v; want nil", err)
	}

	// Undrain: Register again gets a fresh lease.
	st2 := register(t, r)
	if st2.LeaseID == st.LeaseID {
		t.Errorf("lease after re-Register = %x; want a new one", st2.LeaseID)
	}
	if _, _, ok := getKey(t, admin, rec.Key()); !ok {
		t.Errorf("key %s absent after re-Register", rec.Key())
	}
}

// TestKilledInstanceDisappears closes a registrar's client abruptly, as
// kill -9 would: the key must vanish within TTL+1s.
func TestKilledInstanceDisappears(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	cli, err := clientv3.New(etcdtest.ClientConfig(srv.Endpoints()...))
	if err != nil {
		t.Fatal(err)
	}
	rec := record("orders", "doomed", 8010)
	r := newRegistrar(t, cli, rec, registry.RegistrarOptions{})
	register(t, r)

	killed := time.Now()
	cli.Close()
	waitFor(t, testTTL+time.Second, func() bool {
		_, _, ok := getKey(t, admin, rec.Key())
		return !ok
	}, func() string { return "key of killed instance still present" })
	t.Logf("key gone %s after the kill (TTL %s)", time.Since(killed).Round(time.Millisecond), testTTL)
	// The loop notices the closed client and stops by itself, saying why.
	waitFor(t, 5*time.Second, func() bool {
		st := r.Status()
		return !st.Registered && st.LastError == "etcd client closed"
	}, func() string { return "status after the client closed: " + fmtStatus(r.Status()) })
}

func TestLeaseRevokedReRegisters(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	rec := record("orders", "i-1", 8010)
	r := newRegistrar(t, srv.Client(t), rec, registry.RegistrarOptions{})
	old := register(t, r)

	if _, err := admin.Revoke(context.Background(), clientv3.LeaseID(old.LeaseID)); err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	st := waitRegistered(t, r, 5*time.Second, func(st registry.Status) bool { return st.LeaseID != old.LeaseID })
	waitFor(t, 5*time.Second, func() bool {
		_, lease, ok := getKey(t, admin, rec.Key())
		return ok && lease == st.LeaseID
	}, func() string { return "key not back under the new lease" })
}

func TestKeyDeletedIsPutBack(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	rec := record("orders", "i-1", 8010)
	r := newRegistrar(t, srv.Client(t), rec, registry.RegistrarOptions{})
	st := register(t, r)

	if _, err := admin.Delete(context.Background(), rec.Key()); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	waitFor(t, 2*time.Second, func() bool {
		_, lease, ok := getKey(t, admin, rec.Key())
		return ok && lease == st.LeaseID
	}, func() string { return "deleted key not put back under the same lease" })
	if got := r.Status(); !got.Registered || got.LeaseID != st.LeaseID {
		t.Errorf("Status = %+v; want registered with lease %x", got, st.LeaseID)
	}
}

func TestEtcdRestartReRegisters(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	rec := record("orders", "i-1", 8010)
	reg := prometheus.NewRegistry()
	r := newRegistrar(t, srv.Client(t), rec, registry.RegistrarOptions{Metrics: reg})
	register(t, r)

	srv.Stop()
	// No keep-alive answer within the TTL: the registrar knows it is not
	// registered any more.
	waitFor(t, lostLeaseDeadline, func() bool { return !r.Status().Registered },
		func() string { return "still registered with etcd down" })
	if got := gaugeValue(t, reg, "svc_registry_registered"); got != 0 {
		t.Errorf("svc_registry_registered with etcd down = %v; want 0", got)
	}
	srv.Restart(t)
	st := waitRegistered(t, r, 10*time.Second, func(registry.Status) bool { return true })
	waitFor(t, 5*time.Second, func() bool {
		_, lease, ok := getKey(t, admin, rec.Key())
		return ok && lease == st.LeaseID
	}, func() string { return "key not present under the registrar's lease after restart" })
	if got := gaugeValue(t, reg, "svc_registry_registered"); got != 1 {
		t.Errorf("svc_registry_registered after restart = %v; want 1", got)
	}
}

// lostLeaseDeadline bounds the wait for a lost lease to show: the TTL,
// etcd's expiry sweep and the registrar's check (a quarter TTL) take about
// 3s; a loaded 2-core machine running the race detector and a dozen
// embedded etcd servers has been seen to need more. It is a deadline, not
// a measure: the test ends as soon as the condition holds.
const lostLeaseDeadline = 20 * time.Second

// TestPartitionReRegisters holds back the registrar's traffic past the TTL
// (a partition, or a process paused that long): etcd expires the lease;
// when traffic flows again the registrar registers under a new lease.
func TestPartitionReRegisters(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	admin := srv.Client(t)
	proxy := etcdtest.NewProxy(t, srv.Endpoints()[0])
	rec := record("orders", "i-1", 8010)
	r := newRegistrar(t, etcdtest.NewClient(t, proxy.Endpoint()), rec, registry.RegistrarOptions{})
	old := register(t, r)

	proxy.Pause()
	waitFor(t, lostLeaseDeadline, func() bool {
		_, _, ok := getKey(t, admin, rec.Key())
		return !ok
	}, func() string { return "key still present after the lease should have expired" })
	waitFor(t, lostLeaseDeadline, func() bool { return !r.Status().Registered },
		func() string { return "registrar still believes it is registered" })

	proxy.Restore()
	restored := time.Now()
	st := waitRegistered(t, r, 10*time.Second, func(st registry.Status) bool { return st.LeaseID != old.LeaseID })
	waitFor(t, 5*time.Second, func() bool {
		_, lease, ok := getKey(t, admin, rec.Key())
		return ok && lease == st.LeaseID
	}, func() string { return "key not back under the new lease" })
	t.Logf("registered again %s after the partition healed", time.Since(restored).Round(time.Millisecond))
}

// TestEtcdUnreachableAtRegister starts with etcd down: Register returns
// nil, the status says why the instance is not registered, and it
// registers once etcd is up.
func TestEtcdUnreachableAtRegister(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	srv.Stop()
	reg := prometheus.NewRegistry()
	r := newRegistrar(t, srv.Client(t), record("orders", "i-1", 8010), registry.RegistrarOptions{Metrics: reg})
	healthCalls := 0
	if err := r.Register(context.Background(), func(context.Context) error { healthCalls++; return nil }); err != nil {
		t.Fatalf("Register with etcd down = %v; want nil", err)
	}
	if healthCalls != 1 {
		t.Errorf("health called %d times; want 1", healthCalls)
	}
	waitFor(t, 5*time.Second, func() bool {
		st := r.Status()
		return !st.Registered && st.LastError != "" && st.LastError != "not registered yet"
	}, func() string { return "status does not report the etcd error: " + fmtStatus(r.Status()) })
	if got := gaugeValue(t, reg, "svc_registry_registered"); got != 0 {
		t.Errorf("svc_registry_registered with etcd down = %v; want 0", got)
	}

	srv.Restart(t)
	waitRegistered(t, r, 10*time.Second, func(registry.Status) bool { return true })
	if got := gaugeValue(t, reg, "svc_registry_registered"); got != 1 {
		t.Errorf("svc_registry_registered once etcd is up = %v; want 1", got)
	}
}

// TestNoGoroutineLeak runs a registrar and a discovery on their own client
// and checks that nothing of theirs is left once they are stopped and the
// client is closed. It is not parallel: goleak sees every goroutine.
func TestNoGoroutineLeak(t *testing.T) {
	before := goleak.IgnoreCurrent()
	srv := etcdtest.Start(t)

	cli, err := clientv3.New(etcdtest.ClientConfig(srv.Endpoints()...))
	if err != nil {
		t.Fatal(err)
	}
	r, err := registry.NewRegistrar(cli, record("orders", "i-1", 8010), registry.RegistrarOptions{TTL: testTTL})
	if err != nil {
		t.Fatal(err)
	}
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: cli, Environment: "test"})
	register(t, r)
	waitFor(t, 5*time.Second, func() bool { return len(keys(t, d, "orders")) == 1 },
		func() string { return "instance not discovered" })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Deregister(ctx); err != nil {
		t.Fatalf("Deregister: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, fn := range []string{"registry.(*Registrar).run", "registry.(*Discovery).watch"} {
		if goroutinesRunning(fn) {
			t.Errorf("%s still running after Deregister and Close", fn)
		}
	}
	cli.Close()
	srv.Stop()
	goleak.VerifyNone(t, append(etcdtest.IgnoreServerGoroutines(), before)...)
}
