package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/svctest"
)

func TestPs(t *testing.T) {
	t.Parallel()
	alpha := startService(t, "alpha", 10, nil)
	beta := startService(t, "beta", 20, nil)
	env := scanEnv(adminPort(alpha), adminPort(beta), closedPort(t))

	r := svcctl(t, env, "ps")
	want(t, r, 0, "NAME", "OFFSET", "PID", "READY", "alpha", "beta", "v1.2.3", strconv.Itoa(os.Getpid()),
		strconv.Itoa(alpha.Info().Ports.Public), strconv.Itoa(beta.Info().Ports.Private))
	first, second := "alpha ", "beta "
	if adminPort(beta) < adminPort(alpha) {
		first, second = second, first
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], first) || !strings.HasPrefix(lines[2], second) {
		t.Errorf("ps: want a header, then alpha and beta in admin port order:\n%s", r.stdout)
	}

	r = svcctl(t, env, "ps", "--json")
	want(t, r, 0)
	var got []local
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("ps --json: %v\n%s", err, r.stdout)
	}
	if len(got) != 2 {
		t.Fatalf("ps --json: want 2 services, got %d:\n%s", len(got), r.stdout)
	}
	byName := map[string]local{}
	for i, l := range got {
		byName[l.Name] = l
		if i > 0 && got[i-1].AdminPort > l.AdminPort {
			t.Errorf("ps --json: not in admin port order:\n%s", r.stdout)
		}
	}
	for name, app := range map[string]*svctest.App{"alpha": alpha, "beta": beta} {
		l := byName[name]
		if l.Name != name || l.PID != os.Getpid() || !l.Ready || l.Readiness != "ready" || l.Version != "v1.2.3" || l.Environment != "dev" {
			t.Errorf("ps --json %s = %+v; want pid %d, ready, v1.2.3, dev", name, l, os.Getpid())
		}
		if l.GoVersion == "" || l.Uptime == "" || l.StartedAt.IsZero() {
			t.Errorf("ps --json %s = %+v; want go_version, uptime and started_at", name, l)
		}
		if p := app.Info().Ports; l.Ports != (ports{Public: p.Public, Private: p.Private, Admin: p.Admin}) || l.AdminPort != p.Admin {
			t.Errorf("ps --json %s: ports %+v, admin %d; want %+v", name, l.Ports, l.AdminPort, p)
		}
		// Ephemeral admin ports are outside 4000-4998: no offset.
		if p := l.AdminPort; (p < 4000 || p > 4998) && l.Offset != nil {
			t.Errorf("admin port %d: offset = %d; want none", p, *l.Offset)
		}
	}

	// A drained service is listed as draining, not ready.
	want(t, svcctl(t, env, "beta", "drain"), 0, "draining")
	r = svcctl(t, env, "ps", "--json")
	got = nil
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || len(got) != 2 {
		t.Fatalf("ps --json after drain: %v\n%s", err, r)
	}
	for _, l := range got {
		if drained := l.Name == "beta"; l.Ready == drained || (drained && l.Readiness != "draining") {
			t.Errorf("%s after draining beta: ready %v, readiness %q", l.Name, l.Ready, l.Readiness)
		}
	}
}

func TestOffsetOf(t *testing.T) {
	t.Parallel()
	// The offset is the admin port - 4000 within the convention's range.
	for _, tc := range []struct {
		port int
		want string
	}{{4000, "0"}, {4010, "10"}, {4998, "998"}, {4999, "-"}, {3999, "-"}, {40123, "-"}} {
		if got := optInt(offsetOf(tc.port)); got != tc.want {
			t.Errorf("offsetOf(%d) = %s; want %s", tc.port, got, tc.want)
		}
	}
}

func TestPsNothingFound(t *testing.T) {
	t.Parallel()
	r := svcctl(t, scanEnv(closedPort(t)), "ps")
	want(t, r, exitError, "no svc service found on 127.0.0.1 ports ")
	if r.stdout != "" {
		t.Errorf("ps found nothing but printed %q", r.stdout)
	}
	want(t, svcctl(t, scanEnv(closedPort(t)), "ps", "--json"), exitError, "no svc service found")
	want(t, svcctl(t, map[string]string{envPorts: "5-3"}, "ps"), exitUsage, "SVCCTL_PORTS")
}

// TestPsScanIsConcurrent checks what makes ps fast without timing it (a
// loaded machine makes any wall-clock bound flaky): over the whole
// convention range, every port is dialled exactly once, maxDialers dials
// are in flight together and never more, and only a port that accepts is
// asked anything over HTTP.
func TestPsScanIsConcurrent(t *testing.T) {
	t.Parallel()
	var requests atomic.Int64
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		w.Write([]byte(`{"hello":"world"}`)) // not a svc admin listener
	}))
	t.Cleanup(other.Close)
	u, _ := url.Parse(other.URL)
	otherPort, _ := strconv.Atoi(u.Port())

	s, err := newScanner(&env{getenv: func(string) string { return "" }}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(s.ports, otherPort) {
		s.ports = append(s.ports, otherPort)
	}
	var (
		mu       sync.Mutex // guards dials, inflight, peak
		dials    = map[string]int{}
		inflight int
		peak     int
		full     = make(chan struct{}) // closed when maxDialers dials are in flight
	)
	real := (&net.Dialer{}).DialContext
	s.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		mu.Lock()
		dials[addr]++
		inflight++
		peak = max(peak, inflight)
		if inflight == maxDialers {
			select {
			case <-full:
			default:
				close(full)
			}
		}
		mu.Unlock()
		defer func() {
			mu.Lock()
			inflight--
			mu.Unlock()
		}()
		if addr == u.Host {
			return real(ctx, network, addr)
		}
		// Hold the first dials until maxDialers are in flight together:
		// a scan that dialled one port after the other never gets there.
		select {
		case <-full:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, syscall.ECONNREFUSED
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second) // only a broken scan reaches it
	defer cancel()
	if found := s.scan(ctx); len(found) != 0 || ctx.Err() != nil {
		t.Fatalf("scan = %+v, %v; want nothing found, and %d dials in flight at once", found, ctx.Err(), maxDialers)
	}
	if len(dials) != len(s.ports) {
		t.Errorf("dialled %d distinct ports; want %d", len(dials), len(s.ports))
	}
	for addr, n := range dials {
		if n != 1 {
			t.Errorf("%s dialled %d times; want once", addr, n)
		}
	}
	if peak != maxDialers {
		t.Errorf("at most %d dials in flight; want exactly maxDialers = %d", peak, maxDialers)
	}
	if n := requests.Load(); n != 1 {
		t.Errorf("the one open port got %d HTTP requests; want 1 (GET /)", n)
	}
}

// TestPsSkipsOtherListeners: a port that is not a svc admin listener is
// not listed; one that wants a token is, with the reason.
func TestPsSkipsOtherListeners(t *testing.T) {
	t.Parallel()
	var leaked atomic.Bool // the token reached a listener that is not a svc admin
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			leaked.Store(true)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"hello":"world"}`))
	}))
	t.Cleanup(other.Close)
	u, _ := url.Parse(other.URL)
	otherPort, _ := strconv.Atoi(u.Port())
	notHTTP := closedPort(t)
	gamma := startService(t, "gamma", 30, map[string]string{"admin.token": "s3cret"})
	env := scanEnv(otherPort, notHTTP, adminPort(gamma))

	r := svcctl(t, env, "ps")
	want(t, r, 0, "unauthorized: pass --token or set SVC_ADMIN_TOKEN", strconv.Itoa(adminPort(gamma)))
	if strings.Contains(r.stdout, strconv.Itoa(otherPort)) || strings.Contains(r.stdout, "gamma") {
		t.Errorf("ps listed a non-svc listener or a locked service's name:\n%s", r.stdout)
	}

	env["SVC_ADMIN_TOKEN"] = "s3cret"
	want(t, svcctl(t, env, "ps"), 0, "gamma", "ready")
	want(t, svcctl(t, env, "ps", "--token", "wrong"), 0, "the token given was refused")
	if leaked.Load() {
		t.Error("ps sent the admin token to a listener that is not a svc admin listener")
	}
}

func TestParsePortList(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []int
	}{
		{"4000-4002", []int{4000, 4001, 4002}},
		{"4010,4020", []int{4010, 4020}},
		{"4020, 4010,4010-4011", []int{4010, 4011, 4020}},
	} {
		got, err := parsePortList(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parsePortList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "x", "0", "70000", "10-5", "1-", "-3"} {
		if got, err := parsePortList(bad); err == nil {
			t.Errorf("parsePortList(%q) = %v; want an error", bad, got)
		}
	}
}
