package main

// Black-box tests of the relay against hostile callers: GET /call/{service}/*
// must not be an open proxy to addresses (the admin listener, the private
// port, etcd, anything on loopback), and a relay calling itself must end
// with 508 Loop Detected instead of holding one more connection per level.

import (
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
	"github.com/svc-dev/svc/svctest"
)

// plainEnv is the environment of a process with no registry: every port
// free, everything on loopback, JSON logs, an empty configuration
// directory; extra is appended.
func plainEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0",
		"PRIVATE_HOST=127.0.0.1", "PRIVATE_PORT=0",
		"ADMIN_PORT=0",
		"LOG_FORMAT=json",
		"CONFIG_DIR=" + t.TempDir(),
	}, extra...)
}

// acceptCounter is a loopback listener that counts and closes the
// connections it accepts: a target the relay must never reach.
type acceptCounter struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

func newAcceptCounter(t *testing.T) *acceptCounter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &acceptCounter{ln: ln}
	a.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.accepted.Add(1)
			c.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); a.wg.Wait() })
	return a
}

func (a *acceptCounter) port() string { return strconv.Itoa(a.ln.Addr().(*net.TCPAddr).Port) }

// TestRelayIsNotAnOpenProxy: /call/{service}/* with an address, localhost
// or anything else that is not a service name in {service} answers 400,
// and nothing at that address sees a connection: not the process's own
// admin and private listeners, not a listener of the test's.
func TestRelayIsNotAnOpenProxy(t *testing.T) {
	s := startService(t, plainEnv(t))
	c := svctest.Client(t)
	s.waitReady(t, c, "http://"+s.private+"/readyz")
	tg := newAcceptCounter(t)
	admin, private, target := strconv.Itoa(portNumber(t, s.admin)), strconv.Itoa(portNumber(t, s.private)), tg.port()

	tests := []struct {
		path   string
		secret string // text of the real answer that must not come back
	}{
		{"/call/127.0.0.1:" + admin + "/admin/config", "public.port"},
		{"/call/localhost:" + admin + "/debug/pprof/cmdline", "example-service"},
		{"/call/localhost:" + private + "/metrics", "go_goroutines"},
		{"/call/127.0.0.1:" + private + "/info", `"ports"`},
		{"/call/127.0.0.1:" + target + "/x", ""},
		{"/call/localhost:" + target + "/x", ""},
		{"/call/[::1]:" + target + "/x", ""},
		{"/call/127.0.0.1%3A" + target + "/x", ""},
		{"/call/user@localhost:" + target + "/x", ""},
		{"/call/localhost/x", ""},
		{"/call/2130706433/x", ""},
		{"/call/Example/hello/x", ""},
		{"/call/example.internal/hello/x", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			r := do(t, c, http.MethodGet, "http://"+s.public+tc.path, "")
			if r.code != http.StatusBadRequest {
				t.Errorf("GET %s = %d %s; want 400 (not a service name)", tc.path, r.code, r.body)
			}
			if tc.secret != "" && strings.Contains(r.body, tc.secret) {
				t.Errorf("GET %s answered the target's content (%q):\n%s", tc.path, tc.secret, r.body)
			}
		})
	}
	if n := tg.accepted.Load(); n != 0 {
		t.Errorf("the relay opened %d connections to an address given in {service}; want 0", n)
	}
}

// TestRelayLoopDetected: a relay that resolves to itself, asked for
// /call/example/call/example/.../hello/x, answers 508 Loop Detected after
// registry.MaxHops relays instead of nesting as deep as the path; its
// open files stay bounded meanwhile. A caller's own Svc-Hops at the limit
// gets 508 at once, and a malformed one 400.
func TestRelayLoopDetected(t *testing.T) {
	port := freePort(t)
	self := "127.0.0.1:" + strconv.Itoa(port)
	s := startService(t, plainEnv(t, "PUBLIC_PORT="+strconv.Itoa(port), "DISCOVERY_OVERRIDE_EXAMPLE=http://"+self))
	c := svctest.Client(t)
	s.waitReady(t, c, "http://"+s.private+"/readyz")

	// One relay to itself works.
	if r := do(t, c, http.MethodGet, "http://"+self+"/call/example/hello/x", ""); r.code != http.StatusOK || !strings.Contains(r.body, "hello, x") {
		t.Fatalf("GET /call/example/hello/x = %d %s; want 200 hello, x", r.code, r.body)
	}
	// So do MaxHops nested relays.
	nested := func(n int) string { return strings.Repeat("/call/example", n) + "/hello/x" }
	if r := do(t, c, http.MethodGet, "http://"+self+nested(registry.MaxHops), ""); r.code != http.StatusOK {
		t.Fatalf("GET with %d nested relays = %d %s; want 200", registry.MaxHops, r.code, r.body)
	}

	fds0 := openFiles(t, s.cmd.Process.Pid)
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if n := int64(openFiles(t, s.cmd.Process.Pid)); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	})
	const depth = 100
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Go(func() {
			code, body, err := fetch(c, "http://"+self+nested(depth))
			if err != nil {
				t.Errorf("GET with %d nested relays: %v (%s)", depth, err, body)
			}
			codes[i] = code
		})
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	for i, code := range codes {
		if code != http.StatusLoopDetected {
			t.Errorf("GET with %d nested relays (caller %d) = %d; want 508 Loop Detected", depth, i, code)
		}
	}
	// Each relay level holds at most an inbound and an outbound connection.
	if limit := int64(fds0 + len(codes)*(2*registry.MaxHops+4)); peak.Load() > limit {
		t.Errorf("open files peaked at %d during %d concurrent %d-deep relays (baseline %d); want at most %d",
			peak.Load(), len(codes), depth, fds0, limit)
	}

	hops := []struct {
		value string
		want  int
	}{
		{strconv.Itoa(registry.MaxHops), http.StatusLoopDetected},
		{"100", http.StatusLoopDetected},
		{"-1", http.StatusBadRequest},
		{"lots", http.StatusBadRequest},
		{strconv.Itoa(registry.MaxHops - 1), http.StatusOK},
	}
	for _, h := range hops {
		r := do(t, c, http.MethodGet, "http://"+self+"/call/example/hello/x", "", registry.HopsHeader, h.value)
		if r.code != h.want {
			t.Errorf("GET /call/example/hello/x with %s: %s = %d %s; want %d", registry.HopsHeader, h.value, r.code, r.body, h.want)
		}
	}
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// openFiles counts the open file descriptors of process pid.
func openFiles(t *testing.T, pid int) int {
	if runtime.GOOS != "linux" {
		return 0
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Errorf("count open files of %d: %v", pid, err)
		return 0
	}
	return len(ents)
}

// TestRelayUnknownNamesBounded: with a registry, relaying to more names
// than registry.DefaultMaxServices, none of them registered, answers 503
// for each, refuses the names past the cap with an error naming it, and
// leaves the process's goroutines bounded by the cap (two per watched
// name) instead of growing with every name asked for.
func TestRelayUnknownNamesBounded(t *testing.T) {
	srv := etcdtest.Start(t)
	s := startService(t, registryEnv(t, srv.Endpoints()[0]))
	c := svctest.Client(t)
	s.waitReady(t, c, "http://"+s.private+"/readyz")
	goroutines := func() float64 {
		return scrape(t, c, "http://"+s.private)["go_goroutines"].GetMetric()[0].GetGauge().GetValue()
	}
	g0 := goroutines()

	const names = registry.DefaultMaxServices + 100
	var next, refused atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= names; i = next.Add(1) {
				code, body, err := fetch(c, "http://"+s.public+"/call/unknown-"+strconv.FormatInt(i, 10)+"/x")
				if err != nil || code != http.StatusServiceUnavailable {
					t.Errorf("GET /call/unknown-%d/x = %d %s, %v; want 503", i, code, body, err)
					return
				}
				if strings.Contains(body, "MaxServices") {
					refused.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("%d of %d unknown names refused past the cap; go_goroutines baseline %v", refused.Load(), names, g0)
	if n := refused.Load(); n < names-registry.DefaultMaxServices {
		t.Errorf("%d of %d unknown names refused naming MaxServices; want at least the %d past the cap of %d",
			n, names, names-registry.DefaultMaxServices, registry.DefaultMaxServices)
	}
	if g1, limit := goroutines(), g0+2*registry.DefaultMaxServices+100; g1 > limit {
		t.Errorf("go_goroutines = %v after %d unknown names (baseline %v); want at most %v", g1, names, g0, limit)
	}
}
