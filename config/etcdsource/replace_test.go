package etcdsource_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/etcdtest"
)

// TestEtcdReplaced replaces etcd under a running service (wiped and
// started again, a new cluster at the same address, restored from a
// backup) and checks that a key written afterwards reaches the service's
// configuration within seconds, that keys gone with the old etcd go, and
// that Check and the log say what happened.
func TestEtcdReplaced(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		replace func(t *testing.T, srv *etcdtest.Server, backup string)
		wantB   string // value of b after the replacement
	}{
		{"wiped", func(t *testing.T, srv *etcdtest.Server, _ string) { srv.Wipe(t) }, "conv"},
		{"new cluster", func(t *testing.T, srv *etcdtest.Server, _ string) { srv.ReplaceCluster(t) }, "conv"},
		{"restored from backup", func(t *testing.T, srv *etcdtest.Server, b string) { srv.RestoreBackup(t, b) }, "kept"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := etcdtest.Start(t)
			cli := srv.Client(t)
			put(t, cli, own("b"), "kept")
			backup := srv.Backup(t)
			put(t, cli, own("a"), "old", own("c"), "gone")
			for i := range 20 {
				put(t, cli, "unrelated", fmt.Sprint(i))
			}
			s := newService(t, srv.Client(t), "", nil)
			if v, _ := lookup(s.live.Current(), "a"); v != "old" {
				t.Fatalf("a = %q before the replacement; want old", v)
			}

			tc.replace(t, srv, backup)
			replaced := time.Now()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if _, err := cli.Put(ctx, own("a"), "new"); err != nil {
				t.Fatalf("Put after the replacement: %v", err)
			}
			state := func() string {
				cur := s.live.Current()
				a, _ := lookup(cur, "a")
				b, _ := lookup(cur, "b")
				c, _ := lookup(cur, "c")
				return fmt.Sprintf("a=%s b=%s c=%s", a, b, c)
			}
			want := "a=new b=" + tc.wantB + " c=conv"
			// Check says "etcd replaced, listing again" only while the list
			// runs, which may be shorter than any poll: the log is what
			// must say it (below).
			for deadline := time.Now().Add(15 * time.Second); state() != want; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("15s after etcd was %s: %s; want %s", tc.name, state(), want)
				}
			}
			t.Logf("etcd %s: configuration in line after %s", tc.name, time.Since(replaced).Round(time.Millisecond))
			eventually(t, 10*time.Second, "Check passes again", func() bool { return s.src.Check(t.Context()) == nil })
			if log := s.logs.String(); !strings.Contains(log, "listing again") {
				t.Errorf("log does not say that etcd was replaced:\n%s", log)
			}
		})
	}
}
