package etcdsource_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/config/etcdsource"
	"github.com/svc-dev/svc/internal/etcdtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, etcdtest.IgnoreServerGoroutines()...)
}

// testOptions retry quickly, so that tests of outages stay short.
func testOptions(log *slog.Logger) etcdsource.Options {
	return etcdsource.Options{
		Logger:         log,
		InitialTimeout: 500 * time.Millisecond,
		ListTimeout:    time.Second,
		MaxBackoff:     300 * time.Millisecond,
	}
}

// newSource returns the layer of service name in environment "dev",
// closed by t.Cleanup.
func newSource(t *testing.T, cli *clientv3.Client, name string, log *slog.Logger) *etcdsource.Source {
	t.Helper()
	src, err := etcdsource.New(cli, "dev", name, testOptions(log))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func put(t *testing.T, cli *clientv3.Client, kv ...string) {
	t.Helper()
	for i := 0; i+1 < len(kv); i += 2 {
		if _, err := cli.Put(t.Context(), kv[i], kv[i+1]); err != nil {
			t.Fatalf("Put %s: %v", kv[i], err)
		}
	}
}

func del(t *testing.T, cli *clientv3.Client, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, err := cli.Delete(t.Context(), k); err != nil {
			t.Fatalf("Delete %s: %v", k, err)
		}
	}
}

// own and all return the etcd keys of service "orders" and of every
// service in "dev".
func own(key string) string { return etcdsource.Prefix("dev", "orders") + key }
func all(key string) string { return etcdsource.Prefix("dev", etcdsource.AllServices) + key }

// logs collects JSON log lines; it is safe for concurrent use.
type logs struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// count returns how many records' message contains msg.
func (l *logs) count(t *testing.T, msg string) int {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m, _ := rec["msg"].(string); strings.Contains(m, msg) {
			n++
		}
	}
	return n
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// eventually polls cond every 10ms until it holds or d passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func lookup(s *config.Store, key string) (string, string) {
	v, ok := s.Lookup(key)
	if !ok {
		return "(not set)", ""
	}
	return v.Value, v.Layer
}

func reloads(t *testing.T, reg *prometheus.Registry, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "svc_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" && lp.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
