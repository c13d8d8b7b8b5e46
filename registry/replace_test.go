package registry_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// replacement is one way to replace the etcd behind a running service.
type replacement struct {
	name string
	do   func(t *testing.T, srv *etcdtest.Server, backup string)
}

var replacements = []replacement{
	{"wiped", func(t *testing.T, srv *etcdtest.Server, _ string) { srv.Wipe(t) }},
	{"new cluster", func(t *testing.T, srv *etcdtest.Server, _ string) { srv.ReplaceCluster(t) }},
	{"restored from backup", func(t *testing.T, srv *etcdtest.Server, b string) { srv.RestoreBackup(t, b) }},
}

// putInstance writes rec's registry key without a lease, retrying while
// etcd comes back.
func putInstance(t *testing.T, cli *clientv3.Client, rec registry.Record) {
	t.Helper()
	val, err := rec.MarshalValue()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, rec.Key(), string(val)); err != nil {
		t.Fatalf("Put %s: %v", rec.Key(), err)
	}
}

// bumpRevision writes an unrelated key n times, so that the revision the
// service has seen is well above the replacement's.
func bumpRevision(t *testing.T, cli *clientv3.Client, n int) {
	t.Helper()
	for i := range n {
		if _, err := cli.Put(t.Context(), "unrelated", fmt.Sprint(i)); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
}

// TestDiscoveryAfterEtcdReplaced replaces etcd under a running discovery
// and checks that instances gone with the old etcd are dropped and
// instances registered in the new one appear within seconds.
func TestDiscoveryAfterEtcdReplaced(t *testing.T) {
	t.Parallel()
	for _, rp := range replacements {
		t.Run(rp.name, func(t *testing.T) {
			t.Parallel()
			srv := etcdtest.Start(t)
			cli := srv.Client(t)
			kept := record("orders", "kept", 8010) // in the backup
			putInstance(t, cli, kept)
			backup := srv.Backup(t)
			putInstance(t, cli, record("orders", "gone", 8020))
			bumpRevision(t, cli, 20)

			buf := &syncBuffer{}
			d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(t), Environment: "test", Logger: testLogger(t, buf)})
			defer d.Close()
			want := []string{"svc/test/services/orders/gone", "svc/test/services/orders/kept"}
			if got := keys(t, d, "orders"); !slices.Equal(got, want) {
				t.Fatalf("Instances(orders) keys = %v; want %v", got, want)
			}

			rp.do(t, srv, backup)
			replaced := time.Now()
			want = []string{"svc/test/services/orders/new"}
			if rp.name == "restored from backup" {
				want = []string{kept.Key(), "svc/test/services/orders/new"}
			}
			putInstance(t, cli, record("orders", "new", 8030))
			// Check says "listing again" only while the list runs, which
			// may be shorter than any poll: the log is what must say it.
			waitFor(t, 15*time.Second, func() bool { return slices.Equal(keys(t, d, "orders"), want) },
				func() string {
					return fmt.Sprintf("Instances(orders) after etcd was %s = %v; want %v", rp.name, keys(t, d, "orders"), want)
				})
			t.Logf("etcd %s: discovery in line after %s", rp.name, time.Since(replaced).Round(time.Millisecond))
			waitFor(t, 10*time.Second, func() bool { return d.Check(t.Context()) == nil },
				func() string { return fmt.Sprintf("Check = %v; want nil", d.Check(t.Context())) })
			if log := buf.String(); !strings.Contains(log, "listing again") {
				t.Errorf("log does not say that etcd was replaced:\n%s", log)
			}
		})
	}
}

// TestRegistrarAfterEtcdReplaced replaces etcd under a running registrar
// and checks that its key is back in the new etcd, under a live lease, and
// that the registrar still puts it back when another client deletes it.
func TestRegistrarAfterEtcdReplaced(t *testing.T) {
	t.Parallel()
	for _, rp := range replacements {
		t.Run(rp.name, func(t *testing.T) {
			t.Parallel()
			srv := etcdtest.Start(t)
			cli := srv.Client(t)
			other := srv.Client(t)
			buf := &syncBuffer{}
			r := newRegistrar(t, cli, record("orders", "a", 8010), registry.RegistrarOptions{Logger: testLogger(t, buf)})
			register(t, r)
			// The backup holds the key and its lease.
			backup := srv.Backup(t)
			waitRegistered(t, r, 10*time.Second, func(registry.Status) bool { return true })
			// Put again after the backup: the registrar now watches its key
			// from a revision the restored etcd has not reached.
			if _, err := other.Delete(t.Context(), r.Key()); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, func() bool { _, _, ok := getKey(t, other, r.Key()); return ok },
				func() string { return "key not put back after a delete" })
			bumpRevision(t, other, 20)

			rp.do(t, srv, backup)
			replaced := time.Now()
			inPlace := func() bool {
				st := r.Status()
				_, lease, ok := getKey(t, other, r.Key())
				return ok && st.Registered && lease == st.LeaseID
			}
			waitFor(t, 15*time.Second, inPlace, func() string { return "registrar status " + fmtStatus(r.Status()) })
			t.Logf("etcd %s: registered again after %s", rp.name, time.Since(replaced).Round(time.Millisecond))

			// A delete by another client in the new etcd is noticed.
			if _, err := other.Delete(t.Context(), r.Key()); err != nil {
				t.Fatal(err)
			}
			deleted := time.Now()
			waitFor(t, 15*time.Second, inPlace, func() string {
				return "key not put back after a delete in the new etcd; registrar status " + fmtStatus(r.Status())
			})
			t.Logf("etcd %s: key put back after a delete in %s", rp.name, time.Since(deleted).Round(time.Millisecond))
			// In a wiped etcd the lease is gone: the keep-alive says so.
			// A restored one kept it: the revision tells.
			if log := buf.String(); rp.name == "restored from backup" && !strings.Contains(log, "revision went backwards") {
				t.Errorf("log does not say that etcd was replaced:\n%s", log)
			}
		})
	}
}
