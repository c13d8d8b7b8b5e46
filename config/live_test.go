package config_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/config"
)

func validLevel(s string) error {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return errors.New("must be debug, info, warn or error")
	}
	return nil
}

// fixture is a Live over conventions < files (a layer a test edits) <
// env, with logs and metrics.
type fixture struct {
	live *config.Live
	conv *config.Map
	file *layer
	reg  *prometheus.Registry
	logs *logs
}

func newFixture(t *testing.T, fileKV ...string) *fixture {
	t.Helper()
	f := &fixture{
		conv: config.NewMap("convention", map[string]string{"log.level": "info", "public.port": "8000", "timeout": "1s"}),
		file: newLayer("file config/orders.json", fileKV...),
		reg:  prometheus.NewRegistry(),
		logs: &logs{},
	}
	live, err := config.NewLive(config.LiveOptions{Logger: f.logs.logger(), Metrics: f.reg, Known: []string{"only.env"}},
		f.conv, f.file, config.NewEnv(config.MapLookup(map[string]string{"ONLY_ENV": "e", "PINNED": "env"})))
	if err != nil {
		t.Fatalf("NewLive: %v", err)
	}
	t.Cleanup(func() { live.Close() })
	f.live = live
	return f
}

func (f *fixture) reload(t *testing.T) config.Report {
	t.Helper()
	rep, err := f.live.Reload(t.Context())
	if err != nil {
		t.Fatalf("Reload: %v", err)
	}
	return rep
}

func TestLiveReloadApplies(t *testing.T) {
	f := newFixture(t, "log.level", "warn")
	if v, l := lookup(f.live.Current(), "log.level"); v != "warn" || l != "file config/orders.json" {
		t.Fatalf("initial log.level = %q from %q; want warn from the file", v, l)
	}
	if v, _ := lookup(f.live.Current(), "only.env"); v != "e" {
		t.Errorf("only.env = %q; want e from env", v)
	}

	f.file.set("log.level", "debug")
	f.file.set("feature.x", "on")
	rep := f.reload(t)
	if rep.Result != config.ResultApplied {
		t.Errorf("Result = %q; want applied", rep.Result)
	}
	var got []string
	for _, c := range rep.Changed {
		got = append(got, fmt.Sprintf("%s: %s -> %s", c.Key, str(c.Old), str(c.New)))
	}
	want := []string{
		"feature.x: (not set) -> on (file config/orders.json)",
		"log.level: warn (file config/orders.json) -> debug (file config/orders.json)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Changed = %q; want %q", got, want)
	}
	if v, _ := lookup(f.live.Current(), "log.level"); v != "debug" {
		t.Errorf("log.level = %q after reload; want debug", v)
	}

	f.file.del("log.level")
	rep = f.reload(t)
	if v, l := lookup(f.live.Current(), "log.level"); v != "info" || l != "convention" {
		t.Errorf("log.level = %q from %q after the file dropped it; want info from convention", v, l)
	}
	if rep = f.reload(t); rep.Result != config.ResultUnchanged || len(rep.Changed) != 0 {
		t.Errorf("second reload = %+v; want unchanged", rep)
	}
	if got, want := reloads(t, f.reg), map[string]float64{"applied": 2, "unchanged": 1, "rejected": 0, "restart_required": 0, "failed": 0}; !equalCounts(got, want) {
		t.Errorf("svc_config_reloads_total = %v; want %v", got, want)
	}
	if lines := f.logs.lines(t, "config: value changed"); len(lines) != 3 {
		t.Errorf("logged %d changes; want 3:\n%s", len(lines), f.logs)
	}
}

func str(v *config.Value) string {
	if v == nil {
		return "(not set)"
	}
	return v.Value + " (" + v.Layer + ")"
}

func equalCounts(a, b map[string]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestLiveRejectsBadValues(t *testing.T) {
	f := newFixture(t, "log.level", "warn", "timeout", "2s")
	f.live.Validate("log.level", validLevel)
	timeout, err := config.NewVar(f.live, "timeout", time.Second, config.ParseDuration, func(d time.Duration) error {
		if d <= 0 {
			return errors.New("must be positive")
		}
		return nil
	})
	if err != nil {
		t.Fatalf("NewVar: %v", err)
	}

	tests := []struct {
		key, bad string
		wantErr  string
	}{
		{"log.level", "loud", `config: log.level = "loud" (from file config/orders.json): must be debug, info, warn or error`},
		{"timeout", "soon", `config: timeout = "soon" (from file config/orders.json): not a duration such as "10s"`},
		{"timeout", "-1s", `config: timeout = "-1s" (from file config/orders.json): must be positive`},
	}
	for i, tt := range tests {
		t.Run(tt.key+"="+tt.bad, func(t *testing.T) {
			before, beforeLayer := lookup(f.live.Current(), tt.key)
			f.file.set(tt.key, tt.bad)
			rep := f.reload(t)
			if rep.Result != config.ResultRejected {
				t.Errorf("Result = %q; want rejected", rep.Result)
			}
			if len(rep.Rejected) != 1 || rep.Rejected[0].Key != tt.key || rep.Rejected[0].Value != tt.bad ||
				rep.Rejected[0].Layer != "file config/orders.json" || rep.Rejected[0].Err.Error() != tt.wantErr {
				t.Errorf("Rejected = %+v; want %s = %q from the file: %s", rep.Rejected, tt.key, tt.bad, tt.wantErr)
			}
			if v, l := lookup(f.live.Current(), tt.key); v != before || l != beforeLayer {
				t.Errorf("%s = %q from %q after the rejection; want the previous %q from %q", tt.key, v, l, before, beforeLayer)
			}
			if got := timeout.Get(); got != 2*time.Second {
				t.Errorf("timeout.Get() = %v; want the previous 2s", got)
			}
			lines := f.logs.lines(t, "rejected a new value")
			if len(lines) != i+1 {
				t.Fatalf("logged %d rejections; want %d:\n%s", len(lines), i+1, f.logs)
			}
			last := lines[len(lines)-1]
			if last["key"] != tt.key || last["value"] != tt.bad || last["layer"] != "file config/orders.json" || last["in_force"] != before {
				t.Errorf("rejection logged as %v; want key, value, layer and the value in force", last)
			}

			// The same bad value again: still held back and listed, not
			// logged or counted again.
			rep = f.reload(t)
			if rep.Result != config.ResultUnchanged || len(rep.Rejected) != 1 {
				t.Errorf("reload with the same bad value = %+v; want unchanged, still listing the rejection", rep)
			}
			if n := len(f.logs.lines(t, "rejected a new value")); n != i+1 {
				t.Errorf("logged %d rejections after a repeat; want %d", n, i+1)
			}
			if got := reloads(t, f.reg)["rejected"]; got != float64(i+1) {
				t.Errorf(`reloads_total{result="rejected"} = %v; want %d`, got, i+1)
			}
			f.file.set(tt.key, before) // back to good for the next case
			f.reload(t)
		})
	}

	// A good value after a bad one applies.
	f.file.set("timeout", "5s")
	if rep := f.reload(t); rep.Result != config.ResultApplied {
		t.Errorf("Result = %q; want applied", rep.Result)
	}
	if got := timeout.Get(); got != 5*time.Second {
		t.Errorf("timeout.Get() = %v; want 5s", got)
	}
}

func TestLiveRejectionsAreRedacted(t *testing.T) {
	f := newFixture(t, "api.token", "old-secret")
	f.live.Validate("api.token", func(s string) error {
		if len(s) < 8 {
			return errors.New("must be at least 8 characters")
		}
		return nil
	})
	f.file.set("api.token", "short")
	rep := f.reload(t)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"short", "old-secret"} {
		if strings.Contains(string(b), secret) || strings.Contains(f.logs.String(), secret) {
			t.Errorf("secret %q shown: report %s\nlogs %s", secret, b, f.logs)
		}
	}
	if !strings.Contains(string(b), `"value":"[redacted]"`) {
		t.Errorf("report %s; want the value redacted", b)
	}

	f.file.set("api.token", "new-long-secret")
	rep = f.reload(t)
	b, _ = json.Marshal(rep)
	want := `{"result":"applied","changed":[{"key":"api.token","old":{"value":"[redacted]","layer":"file config/orders.json"},"new":{"value":"[redacted]","layer":"file config/orders.json"}}],"rejected":[],"restart_required":[]}`
	if string(b) != want {
		t.Errorf("report JSON = %s; want %s", b, want)
	}
	if strings.Contains(f.logs.String(), "new-long-secret") {
		t.Errorf("secret logged: %s", f.logs)
	}
}

func TestLiveStaticKeys(t *testing.T) {
	f := newFixture(t, "public.port", "9000")
	f.live.Static("public.port", "etcd.*")

	f.file.set("public.port", "9100")
	f.file.set("etcd.endpoints", "http://e:2379")
	f.file.set("log.level", "debug")
	rep := f.reload(t)
	if rep.Result != config.ResultRestartRequired {
		t.Errorf("Result = %q; want restart_required", rep.Result)
	}
	var keys []string
	for _, c := range rep.RestartRequired {
		keys = append(keys, c.Key)
	}
	if want := []string{"etcd.endpoints", "public.port"}; !slices.Equal(keys, want) {
		t.Errorf("RestartRequired keys = %q; want %q", keys, want)
	}
	if v, l := lookup(f.live.Current(), "public.port"); v != "9000" || l != "file config/orders.json" {
		t.Errorf("public.port = %q from %q; want 9000 from the file (in force until restart)", v, l)
	}
	if v, _ := lookup(f.live.Current(), "etcd.endpoints"); v != "(not set)" {
		t.Errorf("etcd.endpoints = %q; want not set until restart", v)
	}
	if v, _ := lookup(f.live.Current(), "log.level"); v != "debug" {
		t.Errorf("log.level = %q; want debug: live keys still apply", v)
	}
	if lines := f.logs.lines(t, "takes effect at the next start"); len(lines) != 2 {
		t.Errorf("logged %d restart-required lines; want 2:\n%s", len(lines), f.logs)
	}

	// The same pending change is listed again, but not logged again.
	if rep = f.reload(t); rep.Result != config.ResultUnchanged || len(rep.RestartRequired) != 2 {
		t.Errorf("repeat = %+v; want unchanged with 2 pending restart-required keys", rep)
	}
	if lines := f.logs.lines(t, "takes effect at the next start"); len(lines) != 2 {
		t.Errorf("logged %d restart-required lines after a repeat; want 2", len(lines))
	}

	// Back to the value in force: nothing pending.
	f.file.set("public.port", "9000")
	f.file.del("etcd.endpoints")
	if rep = f.reload(t); len(rep.RestartRequired) != 0 || rep.Result != config.ResultUnchanged {
		t.Errorf("after reverting = %+v; want nothing pending", rep)
	}

	// The same value from another layer is no restart.
	g := newFixture(t, "public.port", "8000")
	g.live.Static("public.port")
	g.file.del("public.port")
	rep = g.reload(t)
	if len(rep.RestartRequired) != 0 || len(rep.Changed) != 1 || rep.Result != config.ResultApplied {
		t.Errorf("moving public.port=8000 to the conventions = %+v; want one change of layer, no restart", rep)
	}
	if v, l := lookup(g.live.Current(), "public.port"); v != "8000" || l != "convention" {
		t.Errorf("public.port = %q from %q; want 8000 from convention", v, l)
	}
}

func TestLiveLayerFailures(t *testing.T) {
	f := newFixture(t, "log.level", "warn")
	f.file.set("log.level", "error")
	f.file.fail(&config.SyntaxError{Line: 3, Col: 7, Msg: "invalid character"})
	rep := f.reload(t)
	if rep.Result != config.ResultRejected || len(rep.Rejected) != 1 || rep.Rejected[0].Layer != "file config/orders.json" || rep.Rejected[0].Key != "" {
		t.Errorf("reload of a malformed layer = %+v; want the layer rejected", rep)
	}
	if v, _ := lookup(f.live.Current(), "log.level"); v != "warn" {
		t.Errorf("log.level = %q; want warn: the previous contents stay in force", v)
	}
	if rep = f.reload(t); rep.Result != config.ResultUnchanged {
		t.Errorf("repeat = %q; want unchanged", rep.Result)
	}
	if n := len(f.logs.lines(t, "rejected the new contents of a layer")); n != 1 {
		t.Errorf("logged %d layer rejections; want 1", n)
	}

	io := errors.New("permission denied")
	f.file.fail(io)
	rep, err := f.live.Reload(t.Context())
	if !errors.Is(err, io) || rep.Result != config.ResultFailed {
		t.Errorf("Reload with an unreadable layer = %q, %v; want failed, %v", rep.Result, err, io)
	}

	f.file.fail(nil)
	if rep = f.reload(t); rep.Result != config.ResultApplied {
		t.Errorf("Result = %q after the layer is readable again; want applied", rep.Result)
	}
	if v, _ := lookup(f.live.Current(), "log.level"); v != "error" {
		t.Errorf("log.level = %q; want error", v)
	}
	if got := reloads(t, f.reg); got["rejected"] != 1 || got["failed"] != 1 || got["applied"] != 1 {
		t.Errorf("svc_config_reloads_total = %v; want rejected 1, failed 1, applied 1", got)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.live.Reload(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Reload(canceled) = %v; want context.Canceled", err)
	}
}

func TestLiveOnChange(t *testing.T) {
	f := newFixture(t, "feature.a", "off")
	var mu sync.Mutex
	var seen []string
	f.live.OnChange("feature.*", func(c config.Change) {
		mu.Lock()
		defer mu.Unlock()
		// Subscribers see the new value in force already.
		cur, _ := lookup(f.live.Current(), c.Key)
		seen = append(seen, c.Key+"="+str(c.New)+" current="+cur)
	})
	f.live.OnChange("log.level", func(config.Change) { panic("subscriber bug") })

	f.file.set("feature.a", "on")
	f.file.set("feature.b", "on")
	f.file.set("featurex", "on")
	f.file.set("log.level", "debug")
	f.reload(t)
	f.file.del("feature.b")
	f.reload(t)

	want := []string{
		"feature.a=on (file config/orders.json) current=on",
		"feature.b=on (file config/orders.json) current=on",
		"feature.b=(not set) current=(not set)",
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, want) {
		t.Errorf("OnChange saw %q; want %q", seen, want)
	}
	if n := len(f.logs.lines(t, "subscriber panicked")); n != 1 {
		t.Errorf("logged %d subscriber panics; want 1", n)
	}
	if v, _ := lookup(f.live.Current(), "log.level"); v != "debug" {
		t.Errorf("log.level = %q; want debug despite the panicking subscriber", v)
	}
}

func TestNewVar(t *testing.T) {
	f := newFixture(t, "workers", "4", "name", " svc ", "bad", "many")
	workers, err := config.NewVar(f.live, "workers", 1, config.ParseInt, nil)
	if err != nil || workers.Get() != 4 || workers.Key() != "workers" {
		t.Fatalf("NewVar(workers) = %v, %v; want 4", workers, err)
	}
	name, err := config.NewVar(f.live, "name", "", config.ParseString, nil)
	if err != nil || name.Get() != " svc " {
		t.Errorf("NewVar(name) = %q, %v; want %q", name.Get(), err, " svc ")
	}
	flag, err := config.NewVar(f.live, "flag", true, config.ParseBool, nil)
	if err != nil || !flag.Get() {
		t.Errorf("NewVar(flag) = %v, %v; want the default true", flag.Get(), err)
	}

	_, err = config.NewVar(f.live, "bad", 0, config.ParseInt, nil)
	var te *config.TypeError
	if !errors.As(err, &te) || err.Error() != `config: bad = "many" (from file config/orders.json): not an integer` {
		t.Errorf("NewVar(bad) error = %v; want a TypeError naming key, value and layer", err)
	}
	_, err = config.NewVar(f.live, "workers", 0, config.ParseInt, func(n int) error {
		if n > 2 {
			return errors.New("must be at most 2")
		}
		return nil
	})
	var re *config.RuleError
	if !errors.As(err, &re) || err.Error() != `config: workers = "4" (from file config/orders.json): must be at most 2` {
		t.Errorf("NewVar(workers, max 2) error = %v; want a RuleError", err)
	}

	f.file.set("workers", "8")
	f.file.set("flag", "false")
	f.reload(t)
	if workers.Get() != 8 || flag.Get() {
		t.Errorf("after reload workers = %d, flag = %v; want 8, false", workers.Get(), flag.Get())
	}
	f.file.del("flag")
	f.reload(t)
	if !flag.Get() {
		t.Error("flag = false after its key was removed; want the default true")
	}
	// A value env pins (env wins over files) does not change.
	pinned, err := config.NewVar(f.live, "pinned", "", config.ParseString, nil)
	if err != nil {
		t.Fatal(err)
	}
	f.file.set("pinned", "file")
	f.reload(t)
	if pinned.Get() != "env" {
		t.Errorf("pinned = %q; want env: the environment wins over files", pinned.Get())
	}
}

func TestParsers(t *testing.T) {
	if n, err := config.ParseInt(" 42\n"); n != 42 || err != nil {
		t.Errorf("ParseInt = %d, %v", n, err)
	}
	if _, err := config.ParseInt("4.2"); err == nil || err.Error() != "not an integer" {
		t.Errorf("ParseInt(4.2) error = %v; want not an integer", err)
	}
	if b, err := config.ParseBool("TRUE"); !b || err != nil {
		t.Errorf("ParseBool(TRUE) = %v, %v", b, err)
	}
	if _, err := config.ParseBool("yes"); err == nil || err.Error() != "not a boolean" {
		t.Errorf("ParseBool(yes) error = %v", err)
	}
	if d, err := config.ParseDuration("1m30s"); d != 90*time.Second || err != nil {
		t.Errorf("ParseDuration = %v, %v", d, err)
	}
	if _, err := config.ParseDuration("10"); err == nil || err.Error() != `not a duration such as "10s"` {
		t.Errorf("ParseDuration(10) error = %v", err)
	}
}

func TestNewLiveErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "orders.json")
	if err := os.WriteFile(bad, []byte(`{"log":`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := config.NewLive(config.LiveOptions{}, config.NewFile(bad))
	if err == nil || !strings.Contains(err.Error(), bad+":1:7: unexpected end of JSON input") {
		t.Errorf("NewLive(malformed file) = %v; want the file and line:col", err)
	}

	reg := prometheus.NewRegistry()
	if _, err := config.NewLive(config.LiveOptions{Metrics: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := config.NewLive(config.LiveOptions{Metrics: reg}); err == nil {
		t.Error("a second Live on one registry registered its metrics; want an error")
	}

	var absent *config.Map
	live, err := config.NewLive(config.LiveOptions{}, nil, absent, config.NewFile(filepath.Join(dir, "missing.json")))
	if err != nil || len(live.Current().All()) != 0 {
		t.Errorf("NewLive(nil, nil map, missing file) = %v, %v; want an empty store", live, err)
	}
}

// TestLiveWatchesFiles edits real files the ways people and tools do, with
// Start watching the directory.
func TestLiveWatchesFiles(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "orders.json")
	envFile := filepath.Join(dir, "orders.qa.json")
	writeFile(t, base, `{"log":{"level":"info"},"timeout":"1s"}`)
	lg := &logs{}
	reg := prometheus.NewRegistry()
	live, err := config.NewLive(config.LiveOptions{Logger: lg.logger(), Metrics: reg, Debounce: 20 * time.Millisecond},
		config.NewMap("convention", map[string]string{"log.level": "info"}),
		config.NewFile(base), config.NewFile(envFile))
	if err != nil {
		t.Fatal(err)
	}
	live.Validate("log.level", validLevel)
	timeout, err := config.NewVar(live, "timeout", 0, config.ParseDuration, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := live.Start(); err == nil {
		t.Error("second Start succeeded; want an error")
	}
	level := func() string { v, _ := lookup(live.Current(), "log.level"); return v }

	// An editor's save: write elsewhere, rename over.
	writeFile(t, base, `{"log":{"level":"debug"},"timeout":"2s"}`)
	eventually(t, 5*time.Second, "log.level from a renamed-over file", func() bool { return level() == "debug" })
	if timeout.Get() != 2*time.Second {
		t.Errorf("timeout = %v; want 2s", timeout.Get())
	}

	// An in-place write (echo > file).
	if err := os.WriteFile(base, []byte(`{"log":{"level":"warn"},"timeout":"3s"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "timeout from an in-place write", func() bool { return timeout.Get() == 3*time.Second })

	// A file that did not exist appears, and wins over the base file.
	writeFile(t, envFile, `{"timeout":"4s"}`)
	eventually(t, 5*time.Second, "timeout from a new environment file", func() bool { return timeout.Get() == 4*time.Second })

	// A broken edit: rejected, nothing lost.
	writeFile(t, base, `{"log":{"level":"error"},"timeout":`)
	eventually(t, 5*time.Second, "the broken edit rejected", func() bool { return reloads(t, reg)["rejected"] == 1 })
	if level() != "warn" || timeout.Get() != 4*time.Second {
		t.Errorf("after a broken edit log.level = %q, timeout = %v; want warn and 4s still", level(), timeout.Get())
	}
	rec := lg.lines(t, "rejected the new contents of a layer")
	if len(rec) != 1 || rec[0]["layer"] != "file "+base || !strings.Contains(fmt.Sprint(rec[0]["err"]), base+":1:") {
		t.Errorf("broken edit logged as %v; want the layer and the file's line:col", rec)
	}

	// Fixed: applied.
	writeFile(t, base, `{"log":{"level":"error"},"timeout":"5s"}`)
	eventually(t, 5*time.Second, "the fixed edit applied", func() bool { return level() == "error" })

	// A bad value in a well-formed file: rejected, the rest applies.
	writeFile(t, base, `{"log":{"level":"loud"},"timeout":"5s","extra":"x"}`)
	eventually(t, 5*time.Second, "extra key applied", func() bool { v, _ := lookup(live.Current(), "extra"); return v == "x" })
	if level() != "error" {
		t.Errorf("log.level = %q after a bad value; want error still", level())
	}

	// The file removed: its keys fall back to lower layers.
	if err := os.Remove(envFile); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "fallback after removal", func() bool { return timeout.Get() == 5*time.Second })
}

func TestLiveStartWithoutDirectory(t *testing.T) {
	lg := &logs{}
	live, err := config.NewLive(config.LiveOptions{Logger: lg.logger()},
		config.NewFile(filepath.Join(t.TempDir(), "absent", "orders.json")))
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(lg.lines(t, "not watching a config directory")); n != 1 {
		t.Errorf("logged %d lines about the missing directory; want 1:\n%s", n, lg)
	}
	if err := live.Start(); err == nil {
		t.Error("Start after Close succeeded; want an error")
	}
}

// notifier is a layer that announces its changes, like the etcd layer.
type notifier struct {
	*layer
	ch chan struct{}
}

func (n notifier) Changed() <-chan struct{} { return n.ch }

func TestLiveFollowsNotifiers(t *testing.T) {
	n := notifier{newLayer("etcd", "log.level", "info"), make(chan struct{}, 1)}
	live, err := config.NewLive(config.LiveOptions{}, n)
	if err != nil {
		t.Fatal(err)
	}
	var changes atomic.Int32
	live.OnChange("log.level", func(config.Change) { changes.Add(1) })
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	n.set("log.level", "debug")
	n.ch <- struct{}{}
	eventually(t, time.Second, "a change announced by a Notifier applied", func() bool { return changes.Load() == 1 })
}

// TestLiveConcurrentReads hammers a Var and the store while reloads swap
// values, good and bad; run with -race.
func TestLiveConcurrentReads(t *testing.T) {
	f := newFixture(t, "workers", "1")
	workers, err := config.NewVar(f.live, "workers", 0, config.ParseInt, func(n int) error {
		if n < 1 || n > 1000 {
			return errors.New("must be in 1..1000")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var seen atomic.Int64
	f.live.OnChange("workers", func(c config.Change) { seen.Add(1) })

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if n := workers.Get(); n < 1 || n > 1000 {
					t.Errorf("workers.Get() = %d: a rejected value leaked", n)
					return
				}
				v, ok := f.live.Current().Lookup("workers")
				if !ok || v.Value == "0" || v.Value == "oops" {
					t.Errorf("Current().Lookup(workers) = %+v: a rejected value leaked", v)
					return
				}
			}
		})
	}
	for i := range 300 {
		switch i % 3 {
		case 0:
			f.file.set("workers", fmt.Sprint(i+1))
		case 1:
			f.file.set("workers", "0") // rejected by the rule
		case 2:
			f.file.set("workers", "oops") // rejected by the type
		}
		if _, err := f.live.Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	wg.Wait()
	if got := workers.Get(); got != 298 {
		t.Errorf("workers = %d; want 298, the last good value", got)
	}
	if seen.Load() != 99 { // 1 (unchanged), 4, 7, ..., 298
		t.Errorf("OnChange ran %d times; want 99", seen.Load())
	}
}
