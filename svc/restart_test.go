package svc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/admin"
)

// testOptions are an app on free loopback ports with no files.
func testOptions(t *testing.T, values map[string]string, opts ...Option) *options {
	v := map[string]string{
		"admin.port": "0", "public.host": "127.0.0.1", "public.port": "0",
		"private.host": "127.0.0.1", "private.port": "0", "shutdown.drain": "0s",
	}
	for k, x := range values {
		v[k] = x
	}
	return collect(append([]Option{
		WithEnv(map[string]string{EnvConfigDir: t.TempDir()}), WithValues(v), WithOutput(discard{}, discard{}),
		PublicRoutes(func(r chi.Router) {
			r.Get("/x", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("x")) })
		}),
	}, opts...))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func socketFile(t *testing.T) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	return f, ln.Addr().String()
}

func TestInheritedOf(t *testing.T) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	file := func(name string) *os.File {
		fd, err := syscall.Dup(int(devnull.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		f := os.NewFile(uintptr(fd), name)
		t.Cleanup(func() { f.Close() })
		return f
	}
	tests := []struct {
		names []string
		err   string
	}{
		{names: nil},
		{names: []string{"admin", "public", "private"}},
		{names: []string{"public"}},
		{names: []string{"web"}, err: `inherited socket "web": want sockets named admin, public or private`},
		{names: []string{"LISTEN_FD_3"}, err: `"LISTEN_FD_3"`},
		{names: []string{"public", "public"}, err: `two inherited sockets are named "public"`},
	}
	for _, tt := range tests {
		var files []*os.File
		for _, n := range tt.names {
			files = append(files, file(n))
		}
		in, err := inheritedOf(files)
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("inheritedOf(%q) = %v; want no error", tt.names, err)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("inheritedOf(%q) = %v; want an error with %q", tt.names, err, tt.err)
		case err == nil && len(in) != len(tt.names):
			t.Errorf("inheritedOf(%q) = %v; want %d sockets", tt.names, in, len(tt.names))
		}
	}
}

// An inherited socket is served instead of binding the configured port;
// the other listeners bind as usual.
func TestInheritedListenerIsServed(t *testing.T) {
	f, addr := socketFile(t)
	a, err := newApp("inh", 0, testOptions(t, map[string]string{"public.port": "9"}), inherited{"public": f})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	if a.PublicAddr() != addr {
		t.Errorf("PublicAddr() = %s; want the inherited %s", a.PublicAddr(), addr)
	}
	resp, err := http.Get(URL(a.PublicAddr()) + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /x = %d; want 200", resp.StatusCode)
	}
}

// Only a process started by Run restarts in place.
func TestRestartNeedsRun(t *testing.T) {
	a, err := newApp("inh", 0, testOptions(t, nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer a.Stop(context.Background())
	_, err = a.parts.Restarter.restart(t.Context())
	if !errors.Is(err, admin.ErrRefused) || !strings.Contains(err.Error(), "svc.Run") {
		t.Errorf("restart = %v; want refused, naming svc.Run", err)
	}
}

// From the start of the drain, every response says Connection: close;
// before, none does.
func TestConnectionCloseFromTheDrain(t *testing.T) {
	a, err := newApp("inh", 0, testOptions(t, map[string]string{"shutdown.drain": "5s"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 5 * time.Second}
	defer c.CloseIdleConnections()
	get := func(url string) *http.Response {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get(URL(a.PublicAddr()) + "/x"); resp.Close {
		t.Errorf("before the drain: Connection: close; want keep-alive")
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for get(URL(a.PrivateAddr())+"/readyz").StatusCode != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("readiness not 503 within 5s of Stop")
		}
	}
	for _, url := range []string{URL(a.PublicAddr()) + "/x", URL(a.PrivateAddr()) + "/healthz", URL(a.AdminAddr()) + "/"} {
		if resp := get(url); !resp.Close {
			t.Errorf("GET %s during the drain: no Connection: close", url)
		}
	}
	cancel() // end the drain
	<-stopped
}
