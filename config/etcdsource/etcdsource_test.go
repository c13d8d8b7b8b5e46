package etcdsource_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/config/etcdsource"
	"github.com/svc-dev/svc/internal/etcdtest"
)

func validLevel(s string) error {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return errors.New("must be debug, info, warn or error")
	}
	return nil
}

// service is one instance of "orders": a Live over conventions < its JSON
// file < etcd < env, as svc builds it.
type service struct {
	live *config.Live
	src  *etcdsource.Source
	file string
	reg  *prometheus.Registry
	logs *logs
}

func newService(t *testing.T, cli *clientv3.Client, fileJSON string, env map[string]string) *service {
	t.Helper()
	s := &service{file: filepath.Join(t.TempDir(), "orders.json"), reg: prometheus.NewRegistry(), logs: &logs{}}
	if fileJSON != "" {
		if err := os.WriteFile(s.file, []byte(fileJSON), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s.src = newSource(t, cli, "orders", s.logs.logger())
	live, err := config.NewLive(config.LiveOptions{Logger: s.logs.logger(), Metrics: s.reg, Debounce: 20 * time.Millisecond},
		config.NewMap("convention", map[string]string{"log.level": "info", "public.port": "8010", "a": "conv", "b": "conv", "c": "conv", "d": "conv"}),
		config.NewFile(s.file),
		s.src,
		config.NewEnv(config.MapLookup(env)),
	)
	if err != nil {
		t.Fatalf("NewLive: %v", err)
	}
	live.Validate("log.level", validLevel)
	live.Static("public.port")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.Close() })
	s.live = live
	return s
}

func TestNewErrors(t *testing.T) {
	if _, err := etcdsource.New(nil, "dev", "orders", etcdsource.Options{}); err == nil {
		t.Error("New(nil client) succeeded")
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	for _, bad := range [][2]string{{"", "orders"}, {"dev", ""}, {"dev", "a/b"}, {"d ev", "orders"}} {
		if _, err := etcdsource.New(cli, bad[0], bad[1], etcdsource.Options{}); err == nil {
			t.Errorf("New(%q, %q) succeeded", bad[0], bad[1])
		}
	}
	if got, want := etcdsource.Prefix("prod", "orders"), "svc/prod/config/orders/"; got != want {
		t.Errorf("Prefix = %q; want %q", got, want)
	}
}

// TestKeys checks which etcd keys become which configuration keys.
func TestKeys(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	put(t, cli,
		all("log.level"), "warn",
		all("shared.only"), "shared",
		own("log.level"), "debug", // the service's own key wins over _all
		own("orders.workers"), "4",
		own("empty"), "", // an empty value is unset, like an empty variable
		own("environment"), "prod", // locates the configuration: ignored
		own("etcd.endpoints"), "http://x:2379",
		own("Upper.Case"), "x",
		own("a/b"), "x",
		etcdsource.Prefix("dev", "orders-v2")+"other", "x", // another service
		etcdsource.Prefix("qa", "orders")+"other.env", "x", // another environment
		"svc/dev/config/ordersx", "x",
	)
	lg := &logs{}
	src := newSource(t, cli, "orders", lg.logger())
	if got, want := src.Keys(), []string{"log.level", "orders.workers", "shared.only"}; !slices.Equal(got, want) {
		t.Errorf("Keys() = %q; want %q", got, want)
	}
	for key, want := range map[string]string{"log.level": "debug", "shared.only": "shared", "orders.workers": "4"} {
		if got, _ := src.Lookup(key); got != want {
			t.Errorf("Lookup(%q) = %q; want %q", key, got, want)
		}
	}
	if src.Name() != "etcd" {
		t.Errorf("Name() = %q; want etcd", src.Name())
	}
	if err := src.Check(t.Context()); err != nil {
		t.Errorf("Check() = %v; want nil", err)
	}
	if n := lg.count(t, "ignoring a key"); n != 4 {
		t.Errorf("logged %d ignored keys; want 4:\n%s", n, lg)
	}
	// The own key removed: _all shows through.
	del(t, cli, own("log.level"))
	eventually(t, time.Second, "_all's log.level after the own key's removal", func() bool {
		v, _ := src.Lookup("log.level")
		return v == "warn"
	})
	put(t, cli, own("Upper.Case"), "y") // still ignored, not logged again
	put(t, cli, own("new.key"), "1")
	eventually(t, time.Second, "new.key", func() bool { _, ok := src.Lookup("new.key"); return ok })
	if n := lg.count(t, "ignoring a key"); n != 4 {
		t.Errorf("logged %d ignored keys; want still 4", n)
	}
}

// TestPrecedence checks all four layers: conventions < file < etcd < env,
// and _all < the service's own prefix inside etcd.
func TestPrecedence(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	put(t, cli, all("c"), "etcd-all", all("d"), "etcd-all", all("e"), "etcd-all", own("d"), "etcd-own", own("f"), "etcd-own")
	s := newService(t, cli, `{"b":"file","c":"file","d":"file","e":"file","f":"file","g":"file"}`, map[string]string{"F": "env", "G": "env"})
	tests := []struct{ key, value, layer string }{
		{"a", "conv", "convention"},
		{"b", "file", "file " + s.file},
		{"c", "etcd-all", "etcd"},
		{"d", "etcd-own", "etcd"},
		{"e", "etcd-all", "etcd"},
		{"f", "env", "env"},
		{"g", "env", "env"},
	}
	for _, tt := range tests {
		if v, l := lookup(s.live.Current(), tt.key); v != tt.value || l != tt.layer {
			t.Errorf("%s = %q from %q; want %q from %q", tt.key, v, l, tt.value, tt.layer)
		}
	}
	if got, want := s.live.Current().Layers(), []string{"convention", "file " + s.file, "etcd", "env"}; !slices.Equal(got, want) {
		t.Errorf("Layers() = %q; want %q", got, want)
	}
}

// TestLiveChange changes log.level in etcd and watches two instances
// switch within a second, from every etcd prefix and back to the file.
func TestLiveChange(t *testing.T) {
	srv := etcdtest.Start(t)
	var instances []*service
	var level [2]slog.LevelVar
	for i := range 2 {
		s := newService(t, srv.Client(t), `{"log":{"level":"warn"}}`, nil)
		s.live.OnChange("log.level", func(c config.Change) {
			var l slog.Level
			if c.New != nil && l.UnmarshalText([]byte(c.New.Value)) == nil {
				level[i].Set(l)
			}
		})
		instances = append(instances, s)
	}
	cli := srv.Client(t)
	workers, err := config.NewVar(instances[0].live, "orders.workers", 1, config.ParseInt, nil)
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name   string
		change func()
		want   slog.Level
		layer  string
	}{
		{"own key", func() { put(t, cli, own("log.level"), "debug") }, slog.LevelDebug, "etcd"},
		{"_all below own", func() { put(t, cli, all("log.level"), "error") }, slog.LevelDebug, "etcd"},
		{"own removed: _all", func() { del(t, cli, own("log.level")) }, slog.LevelError, "etcd"},
		{"_all removed: file", func() { del(t, cli, all("log.level")) }, slog.LevelWarn, "file"},
	}
	for _, st := range steps {
		began := time.Now()
		st.change()
		eventually(t, time.Second, st.name+": both instances switch log level", func() bool {
			return level[0].Level() == st.want && level[1].Level() == st.want
		})
		for _, s := range instances {
			if _, l := lookup(s.live.Current(), "log.level"); !strings.HasPrefix(l, st.layer) {
				t.Errorf("%s: log.level from %q; want %s", st.name, l, st.layer)
			}
		}
		t.Logf("%s: applied in %v", st.name, time.Since(began))
	}

	put(t, cli, own("orders.workers"), "8")
	eventually(t, time.Second, "a Var follows etcd", func() bool { return workers.Get() == 8 })
}

// TestRejectedKeepsOld writes bad values to etcd: the old value, and its
// layer, stay in force; the rejection is counted once; a good value then
// applies.
func TestRejectedKeepsOld(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	put(t, cli, own("log.level"), "debug", own("orders.workers"), "4")
	s := newService(t, cli, "", nil)
	workers, err := config.NewVar(s.live, "orders.workers", 1, config.ParseInt, nil)
	if err != nil {
		t.Fatal(err)
	}

	put(t, cli, own("log.level"), "loud")
	eventually(t, 2*time.Second, "the bad log.level rejected", func() bool { return reloads(t, s.reg, config.ResultRejected) == 1 })
	if v, l := lookup(s.live.Current(), "log.level"); v != "debug" || l != "etcd" {
		t.Errorf("log.level = %q from %q; want the previous debug from etcd", v, l)
	}
	put(t, cli, own("orders.workers"), "lots")
	eventually(t, 2*time.Second, "the bad orders.workers rejected", func() bool { return reloads(t, s.reg, config.ResultRejected) == 2 })
	if workers.Get() != 4 {
		t.Errorf("workers = %d; want the previous 4", workers.Get())
	}
	if n := s.logs.count(t, "rejected a new value"); n != 2 {
		t.Errorf("logged %d rejections; want 2:\n%s", n, s.logs)
	}
	// A restart-required key from etcd: reported, not applied.
	put(t, cli, own("public.port"), "9999")
	eventually(t, 2*time.Second, "public.port restart required", func() bool {
		return reloads(t, s.reg, config.ResultRestartRequired) == 1
	})
	if v, _ := lookup(s.live.Current(), "public.port"); v != "8010" {
		t.Errorf("public.port = %q; want 8010 until restart", v)
	}

	put(t, cli, own("log.level"), "warn", own("orders.workers"), "6")
	eventually(t, 2*time.Second, "good values applied", func() bool {
		v, _ := lookup(s.live.Current(), "log.level")
		return v == "warn" && workers.Get() == 6
	})
	if got := reloads(t, s.reg, config.ResultRejected); got != 2 {
		t.Errorf(`reloads_total{result="rejected"} = %v; want 2`, got)
	}
}

// TestDownAtStart starts with etcd unreachable: the service starts from
// files and environment, says so once, and picks up etcd's values when it
// is back.
func TestDownAtStart(t *testing.T) {
	srv := etcdtest.Start(t)
	put(t, srv.Client(t), own("log.level"), "debug")
	srv.Stop()

	cli := srv.Client(t)
	s := newService(t, cli, `{"log":{"level":"warn"}}`, nil)
	if v, l := lookup(s.live.Current(), "log.level"); v != "warn" || !strings.HasPrefix(l, "file ") {
		t.Errorf("log.level = %q from %q; want warn from the file", v, l)
	}
	err := s.src.Check(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "etcd config layer: unreachable, retrying") {
		t.Errorf("Check() = %v; want etcd config layer: unreachable, retrying", err)
	}
	// Several retries, each logged at debug level only.
	eventually(t, 15*time.Second, "several retries", func() bool { return s.logs.count(t, "etcd config layer still unreachable") >= 3 })
	if n := s.logs.count(t, "etcd config layer unreachable"); n != 1 {
		t.Errorf("logged %d lines about etcd being unreachable; want 1:\n%s", n, s.logs)
	}

	srv.Restart(t)
	eventually(t, 15*time.Second, "log.level from etcd once it is back", func() bool {
		v, l := lookup(s.live.Current(), "log.level")
		return v == "debug" && l == "etcd"
	})
	// The values are published by the list, a moment before the loop
	// records the recovery: wait for it.
	eventually(t, 5*time.Second, "Check passing and one line about etcd being back", func() bool {
		return s.src.Check(t.Context()) == nil && s.logs.count(t, "etcd config layer connected") >= 1
	})
	if n := s.logs.count(t, "etcd config layer connected"); n != 1 {
		t.Errorf("logged %d lines about etcd being back; want 1", n)
	}
	// And it follows changes from now on.
	put(t, cli, own("log.level"), "error")
	eventually(t, 2*time.Second, "a change after recovery", func() bool {
		v, _ := lookup(s.live.Current(), "log.level")
		return v == "error"
	})
}

// TestResumeAfterCompaction cuts the client off, changes and compacts
// etcd meanwhile, and checks that the layer lists again and resumes.
func TestResumeAfterCompaction(t *testing.T) {
	srv := etcdtest.Start(t)
	direct := srv.Client(t)
	proxy := etcdtest.NewProxy(t, srv.Endpoints()[0])
	cli := etcdtest.NewClient(t, proxy.Endpoint())
	put(t, direct, own("k"), "1")
	lg := &logs{}
	src := newSource(t, cli, "orders", lg.logger())
	if v, _ := src.Lookup("k"); v != "1" {
		t.Fatalf("k = %q; want 1", v)
	}

	proxy.Cut()
	put(t, direct, own("k"), "2", own("gone"), "x")
	del(t, direct, own("gone"))
	resp, err := direct.Put(t.Context(), "unrelated", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := direct.Compact(t.Context(), resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	proxy.Restore()

	eventually(t, 15*time.Second, "k = 2 after compaction", func() bool { v, _ := src.Lookup("k"); return v == "2" })
	if _, ok := src.Lookup("gone"); ok {
		t.Error("a key deleted during the outage is still there")
	}
	select {
	case <-src.Changed():
	default:
		t.Error("no change announced")
	}
	put(t, direct, own("k"), "3")
	eventually(t, 2*time.Second, "k = 3 after resuming", func() bool { v, _ := src.Lookup("k"); return v == "3" })
	t.Logf("log:\n%s", lg)
}

// TestConcurrentReads hammers a live value and the store while etcd
// changes it, with good and bad values; run with -race.
func TestConcurrentReads(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	put(t, cli, own("orders.workers"), "1")
	s := newService(t, cli, "", nil)
	workers, err := config.NewVar(s.live, "orders.workers", 0, config.ParseInt, func(n int) error {
		if n < 1 {
			return errors.New("must be at least 1")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var reads atomic.Int64
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if n := workers.Get(); n < 1 {
					t.Errorf("workers.Get() = %d: a rejected value leaked", n)
					return
				}
				if v, ok := s.live.Current().Lookup("orders.workers"); !ok || v.Value == "0" || v.Value == "x" {
					t.Errorf("Lookup = %+v: a rejected value leaked", v)
					return
				}
				reads.Add(1)
			}
		})
	}
	const writes = 60
	for i := 1; i <= writes; i++ {
		v := strconv.Itoa(i)
		switch i % 3 {
		case 1:
			v = "0"
		case 2:
			v = "x"
		}
		put(t, cli, own("orders.workers"), v)
	}
	eventually(t, 5*time.Second, "the last value", func() bool { return workers.Get() == writes })
	cancel()
	wg.Wait()
	t.Logf("%d reads during %d writes", reads.Load(), writes)
}
