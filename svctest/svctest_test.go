package svctest_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"

	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var hello = svc.PublicRoutes(func(r chi.Router) {
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello, %s", chi.URLParam(r, "name"))
	})
})

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func TestStart(t *testing.T) {
	// The process environment does not leak into the service.
	t.Setenv("PUBLIC_PORT", "not-a-port")
	t.Setenv("ADMIN_HOST", "0.0.0.0")

	var addrs []string
	t.Run("serves", func(t *testing.T) {
		app := svctest.Start(t, "greeter", 10, hello, svc.WithOutput(io.Discard, io.Discard))
		for _, tt := range []struct{ url, want string }{
			{app.PublicURL + "/hello/ann", "hello, ann"},
			{app.PrivateURL + "/healthz", `{"status":"ok"}` + "\n"},
		} {
			if code, body := get(t, tt.url); code != 200 || body != tt.want {
				t.Errorf("GET %s = %d %q; want 200 %q", tt.url, code, body, tt.want)
			}
		}
		if code, _ := get(t, app.AdminURL+"/admin"); code != 200 {
			t.Errorf("GET %s/admin = %d; want 200", app.AdminURL, code)
		}
		for name, addr := range map[string]string{"admin": app.AdminAddr(), "public": app.PublicAddr(), "private": app.PrivateAddr()} {
			host, port, _ := net.SplitHostPort(addr)
			if host != "127.0.0.1" || port == "0" || port == "4010" || port == "8010" || port == "8011" {
				t.Errorf("%s bound to %s; want an ephemeral loopback port", name, addr)
			}
			addrs = append(addrs, addr)
		}
		if got := app.Settings().ShutdownDrain; got != 0 {
			t.Errorf("shutdown.drain = %v; want 0 under svctest", got)
		}
	})
	// The subtest's cleanup stopped the app: its ports are free again.
	for _, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still bound after the test ended: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

func TestStartWith(t *testing.T) {
	app := svctest.StartWith(t, "greeter", 10, svctest.Options{
		Env:    map[string]string{"ENVIRONMENT": "qa", "LOG_LEVEL": "debug"},
		Values: map[string]string{"log.level": "warn"},
	}, hello, svc.WithOutput(io.Discard, io.Discard))
	info := app.Info()
	if info.Environment != "qa" {
		t.Errorf("environment = %q; want qa from Options.Env", info.Environment)
	}
	if got := app.Settings().LogLevel.String(); got != "WARN" {
		t.Errorf("log level = %s; want WARN: Options.Values sit above the environment", got)
	}
	v, _ := app.Config().Lookup("log.level")
	if v.Layer != "option" {
		t.Errorf("log.level layer = %q; want option", v.Layer)
	}
}

// fakeTB records what Start reports; Fatalf ends the calling goroutine as
// testing.T's does.
type fakeTB struct {
	testing.TB
	mu       sync.Mutex // guards fatal, cleanups
	fatal    string
	cleanups []func()
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.mu.Lock()
	f.fatal = fmt.Sprintf(format, args...)
	f.mu.Unlock()
	runtime.Goexit()
}
func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func TestStartFails(t *testing.T) {
	tests := []struct {
		name, svc string
		values    map[string]string
		want      string
	}{
		{"bad name", "Bad", nil, `svctest: svc: service name "Bad" must match`},
		{"bad value", "ok", map[string]string{"public.port": "x"}, `svctest: config: public.port = "x" (from option): not an integer`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				svctest.StartWith(f, tt.svc, 10, svctest.Options{Values: tt.values}, svc.WithOutput(io.Discard, io.Discard))
			}()
			<-done
			if !strings.HasPrefix(f.fatal, tt.want) {
				t.Errorf("Start(%q) failed with %q; want %q...", tt.svc, f.fatal, tt.want)
			}
		})
	}
}

// A test starts the whole service in one line and talks to its listeners;
// Start stops it when the test ends.
func ExampleStart() {
	t := newExampleT() // in a test: func TestHello(t *testing.T) { ... }
	defer t.end()

	app := svctest.Start(t, "greeter", 10, hello, svc.WithOutput(io.Discard, io.Discard))
	for _, url := range []string{app.PublicURL + "/hello/ann", app.PrivateURL + "/healthz"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(body)))
	}
	// app.PrivateURL also serves /readyz, /metrics and /info; app.AdminURL
	// the admin endpoints.

	// Output:
	// 200 hello, ann
	// 200 {"status":"ok"}
}

// exampleT stands in for the *testing.T of a test function so that
// ExampleStart runs: it keeps the cleanups Start registers and runs them,
// last first, at end. Start calls only the methods it defines.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func newExampleT() *exampleT { return &exampleT{} }

func (t *exampleT) Helper()                           {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Errorf(format string, args ...any) { fmt.Printf(format+"\n", args...) }

func (t *exampleT) TempDir() string {
	dir, err := os.MkdirTemp("", "svctest-example")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func (t *exampleT) end() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func TestHasLine(t *testing.T) {
	log := "a=1 b=2\nc=3 d=4\n"
	for _, tt := range []struct {
		subs []string
		want bool
	}{
		{[]string{"a=1", "b=2"}, true},
		{[]string{"c=3"}, true},
		{[]string{"a=1", "d=4"}, false}, // on two lines, not one
		{[]string{"e=5"}, false},
	} {
		if got := svctest.HasLine(log, tt.subs...); got != tt.want {
			t.Errorf("HasLine(%q) = %v; want %v", tt.subs, got, tt.want)
		}
	}
}
