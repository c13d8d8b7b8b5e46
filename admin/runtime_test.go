package admin

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// serve sends one request to srv and returns the recorded answer.
func serve(t *testing.T, srv http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	req.Host = "127.0.0.1:4010" // as curl sends it: the admin listener refuses other hosts
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

func decodeJSON[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %q: %v", rec.Body.String(), err)
	}
	return v
}

func newRuntimeServer(t *testing.T, p Params) *Server {
	t.Helper()
	s, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProcess(t *testing.T) {
	s := newRuntimeServer(t, Params{})
	rec := serve(t, s, http.MethodGet, "/admin/process")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /admin/process = %d %s", rec.Code, rec.Body)
	}
	p := decodeJSON[Process](t, rec)
	if p.PID != os.Getpid() {
		t.Errorf("pid = %d; want %d", p.PID, os.Getpid())
	}
	if p.GoVersion != runtime.Version() || p.OS != runtime.GOOS || p.Arch != runtime.GOARCH {
		t.Errorf("go = %s %s/%s; want %s %s/%s", p.GoVersion, p.OS, p.Arch, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	if p.Goroutines < 1 || p.GOMAXPROCS < 1 || p.NumCPU < 1 {
		t.Errorf("goroutines, gomaxprocs, num_cpu = %d, %d, %d; want > 0", p.Goroutines, p.GOMAXPROCS, p.NumCPU)
	}
	if p.UptimeSeconds < 0 || p.StartedAt.IsZero() || p.Uptime == "" {
		t.Errorf("uptime %q (%v s) since %v: want a non-negative uptime and a start time", p.Uptime, p.UptimeSeconds, p.StartedAt)
	}
}

func TestStack(t *testing.T) {
	s := newRuntimeServer(t, Params{})
	for _, tc := range []struct {
		query, want string
		code        int
	}{
		{"", "goroutine ", http.StatusOK},
		{"?debug=2", "TestStack", http.StatusOK},
		{"?debug=1", "goroutine profile: total", http.StatusOK},
		{"?debug=3", "want 1 (grouped) or 2", http.StatusBadRequest},
		{"?debug=x", "want 1 (grouped) or 2", http.StatusBadRequest},
	} {
		rec := serve(t, s, http.MethodGet, "/admin/stack"+tc.query)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("GET /admin/stack%s = %d %.200q; want %d containing %q", tc.query, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
	if ct := serve(t, s, http.MethodGet, "/admin/stack").Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q; want text/plain", ct)
	}
}

func TestMemStatsAndGC(t *testing.T) {
	s := newRuntimeServer(t, Params{})
	before := decodeJSON[MemStats](t, serve(t, s, http.MethodGet, "/admin/memstats"))
	if before.HeapSysBytes == 0 || before.SysBytes == 0 || before.Goroutines < 1 {
		t.Errorf("memstats %+v: want heap_sys, sys and goroutines > 0", before)
	}
	if before.GOGC == 0 || before.GOMEMLIMITBytes == 0 {
		t.Errorf("gogc, gomemlimit_bytes = %d, %d; want the runtime's settings", before.GOGC, before.GOMEMLIMITBytes)
	}

	rec := serve(t, s, http.MethodPost, "/admin/gc")
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /admin/gc = %d %s", rec.Code, rec.Body)
	}
	gc := decodeJSON[GC](t, rec)
	if gc.HeapAllocBeforeBytes == 0 || gc.Duration == "" || gc.FreedOSMemory {
		t.Errorf("gc = %+v; want heap before, a duration and no free", gc)
	}
	after := decodeJSON[MemStats](t, serve(t, s, http.MethodGet, "/admin/memstats"))
	if after.NumForcedGC <= before.NumForcedGC || after.LastGC.IsZero() {
		t.Errorf("num_forced_gc %d -> %d, last_gc %v; want one more forced GC", before.NumForcedGC, after.NumForcedGC, after.LastGC)
	}

	if gc := decodeJSON[GC](t, serve(t, s, http.MethodPost, "/admin/gc?free=true")); !gc.FreedOSMemory {
		t.Errorf("gc?free=true = %+v; want freed_os_memory", gc)
	}
	if rec := serve(t, s, http.MethodPost, "/admin/gc?free=maybe"); rec.Code != http.StatusBadRequest {
		t.Errorf("POST /admin/gc?free=maybe = %d; want 400", rec.Code)
	}
	if rec := serve(t, s, http.MethodGet, "/admin/gc"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET /admin/gc = %d; want 405 (a GC is an action)", rec.Code)
	}
}

func TestBuild(t *testing.T) {
	s := newRuntimeServer(t, Params{})
	b := decodeJSON[Build](t, serve(t, s, http.MethodGet, "/admin/build"))
	if b.GoVersion != runtime.Version() {
		t.Errorf("go_version = %q; want %q", b.GoVersion, runtime.Version())
	}
	// A test binary records few modules; compare with what it records.
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build info in the test binary")
	}
	if b.Path != bi.Path || b.Main.Path != bi.Main.Path || len(b.Deps) != len(bi.Deps) {
		t.Errorf("build = %s, main %s, %d deps; want %s, main %s, %d deps", b.Path, b.Main.Path, len(b.Deps), bi.Path, bi.Main.Path, len(bi.Deps))
	}
	if b.Deps == nil {
		t.Error("deps = null; want an array")
	}
	if b.Settings == nil {
		t.Error("settings = null; want an object")
	}
}

func TestRegistryAndInstance(t *testing.T) {
	plain := newRuntimeServer(t, Params{})
	for _, path := range []string{"/admin/registry", "/admin/instance"} {
		if rec := serve(t, plain, http.MethodGet, path); rec.Code != http.StatusNotFound {
			t.Errorf("without Params.%s: GET %s = %d; want 404", path[7:], path, rec.Code)
		}
	}
	s := newRuntimeServer(t, Params{
		Registry: func() any { return map[string]any{"registered": true} },
		Instance: func() any { return map[string]any{"name": "orders", "public_port": 8020} },
	})
	if got := decodeJSON[map[string]any](t, serve(t, s, http.MethodGet, "/admin/registry")); got["registered"] != true {
		t.Errorf("GET /admin/registry = %v; want registered true", got)
	}
	if got := decodeJSON[map[string]any](t, serve(t, s, http.MethodGet, "/admin/instance")); got["name"] != "orders" {
		t.Errorf("GET /admin/instance = %v; want name orders", got)
	}
}

func TestRuntimeIndex(t *testing.T) {
	s := newRuntimeServer(t, Params{Registry: func() any { return nil }, Instance: func() any { return nil }})
	idx := decodeJSON[struct{ Endpoints []entry }](t, serve(t, s, http.MethodGet, "/admin"))
	have := map[string]bool{}
	for _, e := range idx.Endpoints {
		have[e.Method+" "+e.Path] = e.Help != ""
	}
	for _, want := range []string{
		"GET /admin/process", "GET /admin/stack", "GET /admin/memstats", "POST /admin/gc",
		"GET /admin/build", "GET /admin/registry", "GET /admin/instance",
	} {
		if !have[want] {
			t.Errorf("GET /admin does not list %q with a help text", want)
		}
	}
}

func TestRuntimeNeedsToken(t *testing.T) {
	var logs bytes.Buffer
	s := newRuntimeServer(t, Params{Token: "s3cret", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/admin/process"}, {http.MethodGet, "/admin/stack"}, {http.MethodGet, "/admin/memstats"},
		{http.MethodPost, "/admin/gc"}, {http.MethodGet, "/admin/build"},
	} {
		if rec := serve(t, s, tc.method, tc.path); rec.Code != http.StatusUnauthorized {
			t.Errorf("%s %s without a token = %d; want 401", tc.method, tc.path, rec.Code)
		}
		if rec := serve(t, s, tc.method, tc.path, "Authorization", "Bearer s3cret"); rec.Code != http.StatusOK {
			t.Errorf("%s %s with the token = %d; want 200", tc.method, tc.path, rec.Code)
		}
	}
	if !strings.Contains(logs.String(), "method=POST path=/admin/gc remote=192.0.2.1:1234 status=200 outcome=ok") {
		t.Errorf("audit log %q: want the forced GC logged", logs.String())
	}
}
