package registry_test

import (
	"bytes"
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, etcdtest.IgnoreServerGoroutines()...)
}

var debugAlways = false

// testTTL is the lease TTL of most tests: etcd's minimum with its default
// timings.
const testTTL = 2 * time.Second

// startedAt is the start time of every test record.
var startedAt = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)

// record returns a record of service name in environment "test".
func record(name, id string, port int) registry.Record {
	return registry.Record{
		Name:        name,
		ID:          id,
		Environment: "test",
		Host:        "127.0.0.1",
		PublicPort:  port,
		PrivatePort: port + 1,
		AdminPort:   port - 4000,
		URISpec:     "/1.x/{territory}/users/{userid}",
		Version:     "v1.2.3",
		StartedAt:   startedAt,
	}
}

// newRegistrar returns a registrar of rec with TTL testTTL and a test log,
// deregistered by t.Cleanup.
func newRegistrar(t testing.TB, cli *clientv3.Client, rec registry.Record, opts registry.RegistrarOptions) *registry.Registrar {
	t.Helper()
	if opts.TTL == 0 {
		opts.TTL = testTTL
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t, nil)
	}
	r, err := registry.NewRegistrar(cli, rec, opts)
	if err != nil {
		t.Fatalf("NewRegistrar(%s): %v", rec.Key(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.Deregister(ctx) // the client may be closed: errors are expected then
	})
	return r
}

// register registers r without a health gate and waits until it is.
func register(t testing.TB, r *registry.Registrar) registry.Status {
	t.Helper()
	if err := r.Register(context.Background(), nil); err != nil {
		t.Fatalf("Register: %v", err)
	}
	return waitRegistered(t, r, 10*time.Second, func(registry.Status) bool { return true })
}

// waitRegistered waits until r is registered and cond holds of its status.
func waitRegistered(t testing.TB, r *registry.Registrar, timeout time.Duration, cond func(registry.Status) bool) registry.Status {
	t.Helper()
	var st registry.Status
	waitFor(t, timeout, func() bool {
		st = r.Status()
		return st.Registered && cond(st)
	}, func() string { return "registrar status " + fmtStatus(st) })
	return st
}

func fmtStatus(st registry.Status) string {
	var b strings.Builder
	b.WriteString("{registered=")
	if st.Registered {
		b.WriteString("true")
	} else {
		b.WriteString("false")
	}
	b.WriteString(" key=" + st.Key + " err=" + st.LastError + "}")
	return b.String()
}

// waitFor polls cond every 10ms until it holds, failing the test with
// what() after timeout.
func waitFor(t testing.TB, timeout time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %s", timeout, what())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// getKey reads key with a short timeout; it returns the value and lease,
// or ok false if the key does not exist.
func getKey(t testing.TB, cli *clientv3.Client, key string) (val string, lease int64, ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("Get(%s): %v", key, err)
	}
	if len(resp.Kvs) == 0 {
		return "", 0, false
	}
	return string(resp.Kvs[0].Value), resp.Kvs[0].Lease, true
}

// keys returns the instance keys d knows of service name.
func keys(t testing.TB, d *registry.Discovery, name string) []string {
	t.Helper()
	insts, err := d.Instances(name)
	if err != nil {
		t.Fatalf("Instances(%s): %v", name, err)
	}
	var ks []string
	for _, in := range insts {
		ks = append(ks, in.Key)
	}
	return ks
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testLogger returns a debug logger writing to buf (if not nil) and, on
// failure, to the test log.
func testLogger(t testing.TB, buf *syncBuffer) *slog.Logger {
	if buf == nil {
		buf = &syncBuffer{}
	}
	t.Cleanup(func() {
		if t.Failed() || debugAlways {
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// gaugeValue returns the value of the gauge name in reg, or -1 if absent.
func gaugeValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// goroutinesRunning reports whether a goroutine has fn in its stack.
func goroutinesRunning(fn string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Contains(buf[:n], []byte(fn))
		}
		buf = make([]byte, 2*len(buf))
	}
}
