package etcdtest_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
)

// get reads key through cli, retrying while the member comes back, and
// returns the response.
func get(t *testing.T, cli *clientv3.Client, key string) *clientv3.GetResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get %s: %v", key, err)
	}
	return resp
}

func TestReplace(t *testing.T) {
	for _, tc := range []struct {
		name        string
		replace     func(t *testing.T, srv *etcdtest.Server, backup string)
		sameCluster bool
		keep        bool // the key written before the backup is still there
	}{
		{"Wipe", func(t *testing.T, srv *etcdtest.Server, _ string) { srv.Wipe(t) }, true, false},
		{"ReplaceCluster", func(t *testing.T, srv *etcdtest.Server, _ string) { srv.ReplaceCluster(t) }, false, false},
		{"RestoreBackup", func(t *testing.T, srv *etcdtest.Server, b string) { srv.RestoreBackup(t, b) }, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := etcdtest.Start(t)
			cli := srv.Client(t)
			if _, err := cli.Put(t.Context(), "k", "before"); err != nil {
				t.Fatalf("Put: %v", err)
			}
			backup := srv.Backup(t)
			for range 10 {
				if _, err := cli.Put(t.Context(), "other", "x"); err != nil {
					t.Fatalf("Put: %v", err)
				}
			}
			old := get(t, cli, "k").Header
			tc.replace(t, srv, backup)
			resp := get(t, cli, "k") // the client built before reconnects
			if got := resp.Header.ClusterId == old.ClusterId; got != tc.sameCluster {
				t.Errorf("cluster id %x -> %x: same = %v; want %v", old.ClusterId, resp.Header.ClusterId, got, tc.sameCluster)
			}
			if resp.Header.Revision >= old.Revision {
				t.Errorf("revision %d -> %d; want it lower", old.Revision, resp.Header.Revision)
			}
			if got := len(resp.Kvs) == 1; got != tc.keep {
				t.Errorf("key written before the backup present = %v; want %v", got, tc.keep)
			}
		})
	}
}
