package main

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/svctest"
)

// etcd wiped under a running instance (same cluster id, revision back to
// 1): a greeting written afterwards is served within seconds. The etcd
// client resumed its watches at the revision it had reached, which the
// wiped etcd overtook with other writes before the checks of the revision
// could see it go backwards: the key written was missed for good. Now a
// follow cut off by a broken connection lists again when it is back.
func TestEtcdWipedUnderTheBinary(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	s := startService(t, registryEnv(t, srv.Endpoints()[0]))
	c := svctest.Client(t)
	greeting := func() string { _, body, _ := fetch(c, "http://"+s.public+"/hello/x"); return body }
	ctx := context.Background()
	key := "svc/dev/config/example/hello.greeting"
	if _, err := cli.Put(ctx, key, "before"); err != nil {
		t.Fatal(err)
	}
	svctest.WaitFor(t, 10*time.Second, "the greeting before", func() bool { return strings.Contains(greeting(), "before, x") })
	for i := range 500 {
		if _, err := cli.Put(ctx, "filler", strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for l := range strings.Lines(s.stderr.String()) {
				if !strings.Contains(l, `"route"`) {
					t.Log(l)
				}
			}
		}
	})
	srv.Wipe(t)
	if _, err := cli.Put(ctx, key, "after"); err != nil {
		t.Fatal(err)
	}
	svctest.WaitFor(t, 20*time.Second, "the greeting written after the wipe", func() bool {
		return strings.Contains(greeting(), "after, x")
	})
}
