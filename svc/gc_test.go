package svc

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// gcNow returns the process's GC percent without changing it.
func gcNow() int {
	n := debug.SetGCPercent(100)
	debug.SetGCPercent(n)
	return n
}

func TestGCPercent(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	noEnv := func(string) (string, bool) { return "", false }
	gogc := func(k string) (string, bool) {
		if k == "GOGC" {
			return "50", true
		}
		return "", false
	}
	tests := []struct {
		name string
		file string // config/gc.json
		env  func(string) (string, bool)
		want int
		warn bool
	}{
		{"default", "", noEnv, DefaultGCPercent, false},
		{"set", `{"runtime":{"gc-percent":"400"}}`, noEnv, 400, false},
		{"off", `{"runtime":{"gc-percent":"off"}}`, noEnv, -1, false},
		{"GOGC wins and the key is reported ignored", `{"runtime":{"gc-percent":"400"}}`, gogc, 100, true},
		{"GOGC wins over the default silently", "", gogc, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			dir := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, "gc.json"), []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			a, err := New("gc", 90, WithEnv(map[string]string{EnvConfigDir: dir}), WithOutput(io.Discard, io.Discard))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = a.Stop(context.Background()) })
			var logs strings.Builder
			gcPercent(a.Live(), slog.New(slog.NewTextHandler(&logs, nil)), tt.env)
			if got := gcNow(); got != tt.want {
				t.Errorf("GC percent %d; want %d", got, tt.want)
			}
			if warned := strings.Contains(logs.String(), "ignored"); warned != tt.warn {
				t.Errorf("warned %v; want %v: %s", warned, tt.warn, logs.String())
			}
		})
	}
}

// runtime.gc-percent is live: a reload applies it, and removing it
// returns to the default.
func TestGCPercentIsLive(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	dir := t.TempDir()
	file := filepath.Join(dir, "gc.json")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"runtime":{"gc-percent":"300"}}`)
	a, err := New("gc", 91, WithEnv(map[string]string{EnvConfigDir: dir}), WithOutput(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop(context.Background()) })
	gcPercent(a.Live(), slog.New(slog.DiscardHandler), func(string) (string, bool) { return "", false })
	for _, step := range []struct {
		file string
		want int
	}{
		{`{"runtime":{"gc-percent":"300"}}`, 300},
		{`{"runtime":{"gc-percent":"150"}}`, 150},
		{`{"runtime":{"gc-percent":"nope"}}`, 150}, // rejected: kept
		{`{}`, DefaultGCPercent},
	} {
		write(step.file)
		if _, err := a.Live().Reload(context.Background()); err != nil && step.want != 150 {
			t.Fatalf("reload %s: %v", step.file, err)
		}
		if got := gcNow(); got != step.want {
			t.Errorf("after %s: GC percent %d; want %d", step.file, got, step.want)
		}
	}
}

func TestCheckGCPercent(t *testing.T) {
	for v, ok := range map[string]bool{"off": true, "OFF": true, "100": true, " 250 ": true, "1": true,
		"0": false, "-1": false, "abc": false, "": false, "1.5": false} {
		if err := checkGCPercent(v); (err == nil) != ok {
			t.Errorf("checkGCPercent(%q) = %v; want ok %v", v, err, ok)
		}
	}
}

// Run applies runtime.gc-percent (New does not: see gcPercent).
func TestRunAppliesGCPercent(t *testing.T) {
	if _, ok := os.LookupEnv("GOGC"); ok {
		t.Skip("GOGC is set in the environment: Run leaves it alone")
	}
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	o := collect([]Option{
		WithEnv(map[string]string{EnvConfigDir: t.TempDir()}),
		WithValues(map[string]string{"admin.port": "0", "public.port": "0", "private.port": "0", "shutdown.drain": "0s"}),
		WithOutput(io.Discard, io.Discard),
		WithArgs(),
	})
	got := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	o.started = func(*App) { got <- gcNow(); cancel() }
	if code := run(ctx, "gcrun", 92, o); code != 0 {
		t.Fatalf("run = %d", code)
	}
	if n := <-got; n != DefaultGCPercent {
		t.Errorf("GC percent while running %d; want %d", n, DefaultGCPercent)
	}
}
