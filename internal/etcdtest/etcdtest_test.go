package etcdtest_test

import (
	"context"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/etcdtest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, etcdtest.IgnoreServerGoroutines()...)
}

func TestServerRestartKeepsData(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := t.Context()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	srv.Stop()
	if srv.Running() {
		t.Fatal("Running() = true after Stop")
	}
	srv.Restart(t)
	// The client built before the stop reconnects to the same ports.
	resp, err := cli.Get(ctx, "k")
	if err != nil {
		t.Fatalf("Get after Restart: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "v" {
		t.Fatalf("Get after Restart = %v; want k=v", resp.Kvs)
	}
}

func TestClusterSurvivesOneMember(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	cli := c.Client(t)
	ctx := t.Context()
	if _, err := cli.Put(ctx, "k", "1"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	c.Members[0].Stop()
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx2, "k", "2"); err != nil {
		t.Fatalf("Put with one member down: %v", err)
	}
	resp, err := cli.Get(ctx2, "k")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "2" {
		t.Fatalf("Get with one member down = %v, %v; want k=2", resp, err)
	}
}

func TestProxyPauseCutRestore(t *testing.T) {
	srv := etcdtest.Start(t)
	p := etcdtest.NewProxy(t, srv.Endpoints()[0])
	cli := etcdtest.NewClient(t, p.Endpoint())
	ctx := t.Context()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("Put through proxy: %v", err)
	}

	for _, tc := range []struct {
		name string
		do   func()
	}{
		{"pause", p.Pause},
		{"cut", p.Cut},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.do()
			short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			_, err := cli.Get(short, "k")
			cancel()
			if err == nil {
				t.Fatalf("Get while %s succeeded; want an error", tc.name)
			}
			p.Restore()
			long, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if _, err := cli.Get(long, "k"); err != nil {
				t.Fatalf("Get after Restore: %v", err)
			}
		})
	}
}
