package svc

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/fx"
)

// lockedBuilder is a strings.Builder safe for the service's goroutines to
// write while the test reads.
type lockedBuilder struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunExitCodes drives run, the body of Run, for its exit codes and the
// one line a startup error prints.
func TestRunExitCodes(t *testing.T) {
	tests := []struct {
		name       string
		svc        string
		offset     int
		args       []string
		env        map[string]string
		wantCode   int
		wantStdout []string
		wantStderr []string // one line containing all of these
		noStderr   []string // none of these in it
	}{
		{name: "unknown flag", svc: "ok", args: []string{"--port=9000"}, wantCode: 1,
			wantStderr: []string{`unknown argument "--port=9000"`, "--help"}},
		{name: "positional argument", svc: "ok", args: []string{"serve"}, wantCode: 1,
			wantStderr: []string{`unknown argument "serve"`}},
		{name: "help after a bad flag", svc: "ok", args: []string{"-x", "--help"}, wantCode: 1,
			wantStderr: []string{`unknown argument "-x"`}},
		{name: "bad name", svc: "Bad", args: []string{}, wantCode: 1,
			wantStderr: []string{`service name "Bad" must match`}},
		{name: "bad offset", svc: "ok", offset: 1000, args: []string{}, wantCode: 1,
			wantStderr: []string{"offset 1000 must be an integer in 0..998"}},
		{name: "wrong type", svc: "ok", args: []string{}, env: map[string]string{"PUBLIC_PORT": "abc"}, wantCode: 1,
			wantStderr: []string{`public.port = "abc" (from env PUBLIC_PORT): not an integer`}},
		{name: "admin without token", svc: "ok", args: []string{}, env: map[string]string{"ADMIN_HOST": "0.0.0.0"}, wantCode: 1,
			wantStderr: []string{`admin.host = "0.0.0.0" (from env ADMIN_HOST)`, "ADMIN_TOKEN"}},
		{name: "help", svc: "ok", offset: 20, args: []string{"--help"}, wantCode: 0,
			wantStdout: []string{"4020", "8020", "8021", "ok.json", "ok.dev.json", "PUBLIC_PORT", "ADMIN_TOKEN", "SHUTDOWN_DRAIN"}},
		{name: "-h", svc: "ok", args: []string{"-h"}, wantCode: 0, wantStdout: []string{"LISTENER"}},
		{name: "help with a bad name", svc: "Bad", args: []string{"--help"}, wantCode: 1,
			wantStderr: []string{"must match"}},
		{name: "help with a bad value", svc: "ok", args: []string{"--help"}, env: map[string]string{"PUBLIC_PORT": "abc"}, wantCode: 1,
			wantStderr: []string{`public.port = "abc" (from env PUBLIC_PORT)`, "not an integer"}},
		// With etcd configured, a bad value fails before etcd is dialled:
		// an unreachable etcd would be waited for, and warned about, first.
		{name: "bad value before etcd", svc: "ok", env: map[string]string{"ETCD_ENDPOINTS": "127.0.0.1:1", "PUBLIC_PORT": "abc"},
			wantCode: 1, wantStderr: []string{`public.port = "abc"`}, noStderr: []string{"etcd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"CONFIG_DIR": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			var stdout, stderr lockedBuilder
			o := collect([]Option{WithArgs(tt.args...), WithEnv(env), WithOutput(&stdout, &stderr)})
			got := run(context.Background(), tt.svc, tt.offset, o)
			if got != tt.wantCode {
				t.Fatalf("run(%q, %d, %q) = %d; want %d\nstdout: %s\nstderr: %s", tt.svc, tt.offset, tt.args, got, tt.wantCode, stdout.String(), stderr.String())
			}
			for _, w := range tt.wantStdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout has no %q:\n%s", w, stdout.String())
				}
			}
			if tt.wantStderr == nil {
				return
			}
			errOut := strings.TrimSuffix(stderr.String(), "\n")
			if errOut == "" || strings.Contains(errOut, "\n") {
				t.Errorf("stderr = %q; want exactly one line", stderr.String())
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q; want it to contain %q", errOut, w)
				}
			}
			for _, w := range tt.noStderr {
				if strings.Contains(errOut, w) {
					t.Errorf("stderr %q; want no %q", errOut, w)
				}
			}
		})
	}
}

// TestRunStopsOnCancel: run serves until its context ends (a signal, in
// Run), then stops in order and returns 0.
func TestRunStopsOnCancel(t *testing.T) {
	var stdout, logs lockedBuilder
	o := collect([]Option{
		WithArgs(),
		WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}),
		WithOutput(&stdout, &logs),
		WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"public.host": "127.0.0.1", "private.host": "127.0.0.1", "shutdown.drain": "0s",
		}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, "runner", 80, o) }()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"started"`) {
		if time.Now().After(deadline) {
			t.Fatalf("no started line within 10s; log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A cancel right after "started" may land before Start returns: run
	// then stops what started and returns 0 all the same
	// (TestRunSignalDuringStart).
	cancel()
	select {
	case got := <-code:
		if got != 0 {
			t.Errorf("run after cancel = %d; want 0; log:\n%s", got, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not return within 10s of its context ending")
	}
	for _, want := range []string{`"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log has no %s:\n%s", want, logs.String())
		}
	}
}

// TestRunSignalDuringStart: a signal while the service is still starting
// (with etcd, start waits for registration: up to registry.attempts x
// registry.interval) is a request to stop, not a startup error: what
// started is stopped and the exit code is 0 (contract §1).
func TestRunSignalDuringStart(t *testing.T) {
	var stdout, logs lockedBuilder
	inStart := make(chan struct{})
	o := collect([]Option{
		WithArgs(),
		WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}),
		WithOutput(&stdout, &logs),
		WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"public.host": "127.0.0.1", "private.host": "127.0.0.1", "shutdown.drain": "0s",
		}),
		// A start hook that takes until the signal, as registration does
		// while etcd or the health checks are slow.
		Invoke(func(lc fx.Lifecycle) {
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
				close(inStart)
				<-ctx.Done()
				return ctx.Err()
			}})
		}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { code <- run(ctx, "slowstart", 80, o) }()
	<-inStart
	cancel() // SIGTERM, in Run
	select {
	case got := <-code:
		if got != 0 {
			t.Errorf("run with a signal during start = %d; want 0 (a signal is not a startup error)\nlog: %s", got, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("run did not return within 10s of a signal during start")
	}
}

// A listener that dies while serving stops the whole app: run stops the
// rest and returns 1 with one line naming the listener.
func TestListenerDeathStopsTheApp(t *testing.T) {
	var stderr lockedBuilder
	o := collect([]Option{
		WithEnv(map[string]string{EnvConfigDir: t.TempDir()}),
		WithValues(map[string]string{"admin.port": "0", "public.port": "0", "private.port": "0", "shutdown.drain": "0s"}),
		WithOutput(io.Discard, &stderr),
		WithArgs(),
	})
	// Once serving, the public listener's socket is closed under it:
	// Serve fails with something other than ErrServerClosed.
	o.started = func(a *App) { a.parts.Listeners.servers[1].ln.Close() }
	code := run(context.Background(), "dying", 80, o)
	if code != 1 {
		t.Fatalf("run = %d; want 1", code)
	}
	if !strings.Contains(stderr.String(), "public listener died while serving") {
		t.Errorf("stderr does not name the public listener: %s", stderr.String())
	}
}

// Errors of the service's own constructors are one line naming the
// constructor and what it lacks, not fx's chain of internals.
func TestConstructorErrorsAreOneLine(t *testing.T) {
	type db struct{}
	type store struct{}
	type a struct{}
	type b struct{}
	tests := []struct {
		name string
		opt  Option
		want []string
	}{
		{"missing type", Provide(func(*db) *store { return &store{} }), []string{"needs *svc.db", "nothing provides", "run_test.go"}},
		{"cycle", Provide(func(*b) *a { return &a{} }, func(*a) *b { return &b{} }), []string{"cycle"}},
		{"constructor error", Provide(func() (*db, error) { return nil, errors.New("connect refused") }), []string{"failed", "connect refused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			need := Invoke(func(*store) {})
			switch tt.name {
			case "cycle":
				need = Invoke(func(*a) {})
			case "constructor error":
				need = Invoke(func(*db) {})
			}
			_, err := New("ctors", 80, WithEnv(map[string]string{EnvConfigDir: t.TempDir()}), WithOutput(io.Discard, io.Discard), tt.opt, need)
			if err == nil {
				t.Fatal("New succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") || strings.Contains(msg, "could not build arguments") {
				t.Errorf("not one plain line: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("%q does not contain %q", msg, w)
				}
			}
		})
	}
}
