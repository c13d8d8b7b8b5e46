package config_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/config"
)

// overridesLive is a Live over declared defaults, a file-like layer and
// an override layer on top, with a rule on log.level and a group rule on
// limits.*.
func overridesLive(t *testing.T) (*config.Live, *config.Overrides, *layer) {
	t.Helper()
	schema, err := config.NewSchema(
		config.Decl{Key: "log.level", Default: "info", Live: true, Check: func(v string) error {
			if v != "debug" && v != "info" && v != "warn" && v != "error" {
				return errors.New("must be debug, info, warn or error")
			}
			return nil
		}},
		config.Decl{Key: "hello.greeting", Default: "hello", Live: true},
		config.Decl{Key: "hello.count", Type: config.Int, Default: "1", Live: true},
		config.Decl{Key: "public.port", Type: config.Int, Default: "8010"},
		config.Decl{Key: "limits.low", Type: config.Int, Default: "1", Live: true},
		config.Decl{Key: "limits.high", Type: config.Int, Default: "10", Live: true},
	)
	if err != nil {
		t.Fatal(err)
	}
	file := newLayer("file config/x.json", "hello.greeting", "hi")
	ov := config.NewOverrides()
	t.Cleanup(func() { ov.Close() })
	live, err := config.NewLive(config.LiveOptions{Schema: schema}, schema.Defaults("convention"), file, ov)
	if err != nil {
		t.Fatal(err)
	}
	live.ValidateGroup("limits.", func(s *config.Store) error {
		lo, _ := s.Int("limits.low", 0)
		hi, _ := s.Int("limits.high", 0)
		if lo > hi {
			return errors.New("limits.low must not exceed limits.high")
		}
		return nil
	})
	return live, ov, file
}

func TestOverridesPut(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		key, value string
		ttl        time.Duration
		result     string // "" : refused
		err        string // in the refusal
		inForce    string // the key's value in force afterwards
		layer      string // ... and its layer
	}{
		{"hello.greeting", "hey", 0, config.ResultApplied, "", "hey", "admin"},
		{"hello.greeting", "hi", 0, config.ResultApplied, "", "hi", "admin"}, // same value, another layer
		{"log.level", "debug", time.Hour, config.ResultApplied, "", "debug", "admin"},
		{"log.level", "loud", 0, "", `log.level = "loud" (from admin): must be debug, info, warn or error`, "info", "convention"},
		{"hello.count", "many", 0, "", `hello.count = "many" (from admin): not an integer`, "1", "convention"},
		{"hello.greting", "x", 0, "", "unknown key hello.greting (did you mean hello.greeting?)", "(not set)", ""},
		{"Hello.Greeting", "x", 0, "", `config: key "Hello.Greeting"`, "(not set)", ""},
		{"limits.low", "20", 0, "", "limits.low must not exceed limits.high", "1", "convention"},
		{"public.port", "9000", 0, config.ResultRestartRequired, "", "8010", "convention"},
	} {
		t.Run(tc.key+"="+tc.value, func(t *testing.T) {
			live, ov, _ := overridesLive(t)
			res, err := ov.Put(ctx, tc.key, tc.value, tc.ttl)
			if tc.result == "" {
				var re *config.RefusedError
				if !errors.As(err, &re) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Put(%s, %q) = %+v, %v; want a RefusedError containing %q", tc.key, tc.value, res, err, tc.err)
				}
				if _, ok := ov.Expiry(tc.key); ok {
					t.Errorf("Put refused, but %s still has an override", tc.key)
				}
				// The rejection is not held: the next reload is clean.
				rep, err := live.Reload(ctx)
				if err != nil || rep.Result != config.ResultUnchanged || len(rep.Rejected) != 0 {
					t.Errorf("reload after a refused Put = %+v, %v; want unchanged, nothing rejected", rep, err)
				}
			} else if err != nil || res.Result != tc.result {
				t.Fatalf("Put(%s, %q) = %+v, %v; want result %s", tc.key, tc.value, res, err, tc.result)
			}
			if v, l := lookup(live.Current(), tc.key); v != tc.inForce || l != tc.layer {
				t.Errorf("%s in force = %q from %q; want %q from %q", tc.key, v, l, tc.inForce, tc.layer)
			}
			if tc.result == config.ResultRestartRequired && (res.Value == nil || res.Value.Value != tc.value || res.Value.Layer != "admin") {
				t.Errorf("restart required: Value = %+v; want the held %q from admin", res.Value, tc.value)
			}
			exp, _ := ov.Expiry(tc.key)
			if tc.result != "" && (exp.IsZero() != (tc.ttl == 0) || !res.Expires.Equal(exp)) {
				t.Errorf("Expiry = %v, result's Expires %v; want a time with ttl %v", exp, res.Expires, tc.ttl)
			}
		})
	}
}

func TestOverridesPreviousAndRemove(t *testing.T) {
	ctx := context.Background()
	live, ov, file := overridesLive(t)
	res, err := ov.Put(ctx, "hello.greeting", "hey", 0)
	if err != nil || res.Previous == nil || res.Previous.Value != "hi" || res.Previous.Layer != "file config/x.json" {
		t.Fatalf("Put = %+v, %v; want previous hi from the file", res, err)
	}
	// A value the layer below now holds does not show while overridden.
	file.set("hello.greeting", "bonjour")
	if _, err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if v, l := lookup(live.Current(), "hello.greeting"); v != "hey" || l != "admin" {
		t.Fatalf("in force %q from %q; want hey from admin", v, l)
	}
	res, err = ov.Remove(ctx, "hello.greeting")
	if err != nil || res.Result != config.ResultApplied || res.Value == nil || res.Value.Value != "bonjour" || res.Previous.Value != "hey" {
		t.Fatalf("Remove = %+v, %v; want bonjour back, previous hey", res, err)
	}
	if _, err := ov.Remove(ctx, "hello.greeting"); !errors.Is(err, config.ErrNoOverride) {
		t.Errorf("second Remove: %v; want ErrNoOverride", err)
	}

	// Removing an override whose lower value is rejected keeps it.
	if _, err := ov.Put(ctx, "hello.count", "5", 0); err != nil {
		t.Fatal(err)
	}
	file.set("hello.count", "lots")
	if _, err := live.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	var re *config.RefusedError
	if _, err := ov.Remove(ctx, "hello.count"); !errors.As(err, &re) || !strings.Contains(err.Error(), "the override of hello.count stays") {
		t.Errorf("Remove over a bad lower value: %v; want a refusal keeping the override", err)
	}
	if v, l := lookup(live.Current(), "hello.count"); v != "5" || l != "admin" {
		t.Errorf("hello.count in force %q from %q; want 5 from admin", v, l)
	}
}

func TestOverridesRefusedKeepsEarlierOverride(t *testing.T) {
	ctx := context.Background()
	live, ov, _ := overridesLive(t)
	if _, err := ov.Put(ctx, "log.level", "warn", time.Hour); err != nil {
		t.Fatal(err)
	}
	exp, _ := ov.Expiry("log.level")
	if _, err := ov.Put(ctx, "log.level", "loud", 0); err == nil {
		t.Fatal("Put loud: want a refusal")
	}
	if v, l := lookup(live.Current(), "log.level"); v != "warn" || l != "admin" {
		t.Errorf("log.level in force %q from %q; want warn from admin", v, l)
	}
	if got, ok := ov.Expiry("log.level"); !ok || !got.Equal(exp) {
		t.Errorf("Expiry after a refused Put = %v, %v; want the earlier %v", got, ok, exp)
	}
}

// TestOverridesExpire: an override set for a while ends by itself, and a
// started Live reloads when it does.
func TestOverridesExpire(t *testing.T) {
	ctx := context.Background()
	live, ov, _ := overridesLive(t)
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if _, err := ov.Put(ctx, "hello.greeting", "hey", 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the override expired and hi came back from the file", func() bool {
		v, l := lookup(live.Current(), "hello.greeting")
		return v == "hi" && l == "file config/x.json"
	})
	if _, ok := ov.Expiry("hello.greeting"); ok {
		t.Error("the expired override is still listed")
	}
}

// TestOverridesSetDelete: the asynchronous path, through the Notifier.
func TestOverridesSetDelete(t *testing.T) {
	live, ov, _ := overridesLive(t)
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := ov.Set("hello.greeting", "yo", 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "yo in force", func() bool {
		v, _ := lookup(live.Current(), "hello.greeting")
		return v == "yo"
	})
	if got := ov.List(); len(got) != 1 || got[0].Value.Key != "hello.greeting" || got[0].Value.Value != "yo" || !got[0].Expires.IsZero() {
		t.Errorf("List = %+v; want hello.greeting=yo without expiry", got)
	}
	if !ov.Delete("hello.greeting") || ov.Delete("hello.greeting") {
		t.Error("Delete: want true, then false")
	}
	eventually(t, 5*time.Second, "hi back", func() bool {
		v, _ := lookup(live.Current(), "hello.greeting")
		return v == "hi"
	})
}

func TestOverridesBounds(t *testing.T) {
	ov := config.NewOverrides()
	defer ov.Close()
	if _, err := ov.Put(context.Background(), "a", "b", 0); err == nil || !strings.Contains(err.Error(), "not a layer of a Live") {
		t.Errorf("Put without a Live: %v", err)
	}
	for i := range config.MaxOverrides {
		if err := ov.Set("k"+strings.Repeat("x", i), "v", 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := ov.Set("one.more", "v", 0); err == nil {
		t.Error("Set beyond MaxOverrides: want an error")
	}
	if err := ov.Set("k", "replaced", 0); err != nil {
		t.Errorf("replacing an override at the bound: %v", err)
	}
	if _, err := config.NewLive(config.LiveOptions{}, ov); err != nil {
		t.Fatal(err)
	}
	if _, err := config.NewLive(config.LiveOptions{}, ov); err == nil {
		t.Error("an Overrides in two Lives: want an error")
	}
}
