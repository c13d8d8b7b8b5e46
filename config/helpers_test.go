package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/svc-dev/svc/config"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// layer is a config.Layer a test changes at will.
type layer struct {
	name string

	mu  sync.Mutex // guards m and err
	m   map[string]string
	err error // returned by Load while set
}

func newLayer(name string, kv ...string) *layer {
	l := &layer{name: name, m: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		l.m[kv[i]] = kv[i+1]
	}
	return l
}

func (l *layer) Name() string { return l.name }

func (l *layer) Load(context.Context) (config.Source, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return nil, l.err
	}
	return config.NewMap(l.name, l.m), nil
}

func (l *layer) set(k, v string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m = maps.Clone(l.m)
	l.m[k] = v
}

func (l *layer) del(k string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m = maps.Clone(l.m)
	delete(l.m, k)
}

func (l *layer) fail(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.err = err
}

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

// lines returns the records whose message contains msg.
func (l *logs) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m, _ := rec["msg"].(string); strings.Contains(m, msg) {
			out = append(out, rec)
		}
	}
	return out
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// reloads returns svc_config_reloads_total by result from reg.
func reloads(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "svc_config_reloads_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "result" {
					out[lp.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
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

// writeFile replaces path's contents the way editors do: write a
// temporary file in the same directory, then rename it over path.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".swp")
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func lookup(s *config.Store, key string) (string, string) {
	v, ok := s.Lookup(key)
	if !ok {
		return "(not set)", ""
	}
	return v.Value, v.Layer
}
