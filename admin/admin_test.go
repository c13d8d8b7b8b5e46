package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/svctest"
)

// fixture is an admin server over fake service state.
type fixture struct {
	srv      *admin.Server
	level    *admin.Level
	drained  atomic.Int32 // Drain calls
	undrains atomic.Int32 // Undrain calls
}

func newFixture(t *testing.T, token string, tasks ...admin.Task) *fixture {
	t.Helper()
	f := &fixture{level: admin.NewLevel(slog.LevelInfo)}
	t.Cleanup(f.level.Close)
	store := config.NewStore(nil,
		config.NewMap("convention", map[string]string{"public.port": "8010", "admin.token": "", "log.level": "info"}),
		config.NewMap("env", map[string]string{"admin.token": "s3cret", "etcd.password": "hunter2", "etcd.tls.key": "/k.pem"}),
	)
	srv, err := admin.New(admin.Params{
		Info:     func() any { return map[string]any{"name": "example", "instance": "abc"} },
		Level:    f.level,
		Config:   store.All,
		Drain:    func(context.Context) error { f.drained.Add(1); return nil },
		Undrain:  func(context.Context) error { f.undrains.Add(1); return nil },
		Tasks:    tasks,
		Registry: func() any { return map[string]bool{"registered": false} },
		Token:    token,
	})
	if err != nil {
		t.Fatalf("admin.New: %v", err)
	}
	f.srv = srv
	return f
}

// do serves one request as curl to 127.0.0.1:4010 would send it; hdr
// adds header name, value pairs ("Host" sets the Host).
func (f *fixture) do(t *testing.T, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	t.Helper()
	return serve(f.srv, method, target, body, hdr...)
}

func serve(h http.Handler, method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Host = "127.0.0.1:4010"
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func decode[T any](t *testing.T, rec *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return v
}

var echoTask = admin.Task{
	Name: "echo", Help: "print the arguments",
	Run: func(_ context.Context, args url.Values, w io.Writer) error {
		for _, k := range slices.Sorted(maps.Keys(args)) {
			fmt.Fprintf(w, "%s=%s\n", k, strings.Join(args[k], ","))
		}
		return nil
	},
}

var failTask = admin.Task{
	Name: "fail", Help: "fails at once",
	Run: func(context.Context, url.Values, io.Writer) error { return errors.New("disk full") },
}

var halfTask = admin.Task{
	Name: "half", Help: "writes, then fails",
	Run: func(_ context.Context, _ url.Values, w io.Writer) error {
		_, _ = io.WriteString(w, "step 1 done\n")
		return errors.New("step 2 broke")
	},
}

func TestEndpoints(t *testing.T) {
	f := newFixture(t, "", echoTask, failTask, halfTask)
	tests := []struct {
		method, target, body string
		wantCode             int
		wantBody             []string // substrings
		notBody              []string
	}{
		{"GET", "/", "", 200, []string{`"name": "example"`, `"instance": "abc"`}, nil},
		{"GET", "/admin", "", 200, []string{`"/admin/loglevel"`, `"/debug/pprof/"`, `"/admin/tasks/{name}"`, `"/admin/registry"`}, nil},
		{"GET", "/debug/pprof/", "", 200, []string{"goroutine", "heap"}, nil},
		{"GET", "/debug/pprof/goroutine?debug=1", "", 200, []string{"goroutine profile:"}, nil},
		{"GET", "/debug/pprof/cmdline", "", 404, nil, []string{"admin.test"}},
		{"GET", "/admin/loglevel", "", 200, []string{`"level": "info"`}, nil},
		{"GET", "/admin/registry", "", 200, []string{`"registered": false`}, nil},
		{"GET", "/admin/tasks", "", 200, []string{`"name": "echo"`, `"help": "print the arguments"`, `"name": "fail"`}, nil},
		{"POST", "/admin/tasks/echo?a=1&b=2", "", 200, []string{"a=1\nb=2\n"}, nil},
		{"POST", "/admin/tasks/echo?a=1", `{"b":"two","n":3,"l":[1,2]}`, 200, []string{"a=1\nb=two\nl=[1,2]\nn=3\n"}, nil},
		{"POST", "/admin/tasks/echo", `[1,2]`, 400, []string{"JSON object"}, nil},
		{"POST", "/admin/tasks/fail", "", 500, []string{"task fail: disk full"}, nil},
		{"POST", "/admin/tasks/half", "", 200, []string{"step 1 done\n", "error: task half: step 2 broke"}, nil},
		{"POST", "/admin/tasks/nope", "", 404, []string{`no task \"nope\"`}, nil},
		{"GET", "/admin/tasks/echo", "", 405, nil, nil},
		{"GET", "/no/such", "", 404, []string{"GET /admin lists them"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			rec := f.do(t, tt.method, tt.target, tt.body)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s: status %d; want %d; body %q", tt.method, tt.target, rec.Code, tt.wantCode, rec.Body.String())
			}
			for _, s := range tt.wantBody {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("%s %s: body %q; want it to contain %q", tt.method, tt.target, rec.Body.String(), s)
				}
			}
			for _, s := range tt.notBody {
				if strings.Contains(rec.Body.String(), s) {
					t.Errorf("%s %s: body %q; want it not to contain %q", tt.method, tt.target, rec.Body.String(), s)
				}
			}
		})
	}
}

func TestConfigRedactsSecrets(t *testing.T) {
	f := newFixture(t, "")
	rec := f.do(t, "GET", "/admin/config", "")
	if rec.Code != 200 {
		t.Fatalf("GET /admin/config: status %d", rec.Code)
	}
	got := decode[struct{ Keys []config.Value }](t, rec)
	want := []config.Value{
		{Key: "admin.token", Value: "[redacted]", Layer: "env"},
		{Key: "etcd.password", Value: "[redacted]", Layer: "env"},
		{Key: "etcd.tls.key", Value: "[redacted]", Layer: "env"},
		{Key: "log.level", Value: "info", Layer: "convention"},
		{Key: "public.port", Value: "8010", Layer: "convention"},
	}
	if !slices.Equal(got.Keys, want) {
		t.Errorf("GET /admin/config keys = %+v\nwant %+v", got.Keys, want)
	}
	for _, secret := range []string{"s3cret", "hunter2", "/k.pem"} {
		if strings.Contains(rec.Body.String(), secret) {
			t.Errorf("GET /admin/config shows the secret %q: %s", secret, rec.Body.String())
		}
	}
}

func TestLogLevel(t *testing.T) {
	tests := []struct {
		body     string
		wantCode int
		want     slog.Level
	}{
		{"debug", 200, slog.LevelDebug},
		{"warn\n", 200, slog.LevelWarn},
		{`"error"`, 200, slog.LevelError},
		{"INFO", 200, slog.LevelInfo},
		{"", 400, slog.LevelInfo},
		{"loud", 400, slog.LevelInfo},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.body), func(t *testing.T) {
			f := newFixture(t, "")
			rec := f.do(t, "PUT", "/admin/loglevel", tt.body)
			if rec.Code != tt.wantCode {
				t.Fatalf("PUT /admin/loglevel %q: status %d; want %d; %s", tt.body, rec.Code, tt.wantCode, rec.Body.String())
			}
			if got := f.level.Level(); got != tt.want {
				t.Errorf("level after PUT %q = %v; want %v", tt.body, got, tt.want)
			}
			if tt.wantCode != 200 {
				return
			}
			resp := decode[map[string]string](t, rec)
			if resp["previous"] != "info" || resp["level"] != strings.ToLower(tt.want.String()) {
				t.Errorf("PUT response = %v; want level %s, previous info", resp, strings.ToLower(tt.want.String()))
			}
			get := decode[map[string]string](t, f.do(t, "GET", "/admin/loglevel", ""))
			if get["level"] != strings.ToLower(tt.want.String()) {
				t.Errorf("GET /admin/loglevel = %v; want %s", get, strings.ToLower(tt.want.String()))
			}
		})
	}
}

func TestLogLevelForReverts(t *testing.T) {
	f := newFixture(t, "")
	rec := f.do(t, "PUT", "/admin/loglevel?for=20ms", "debug")
	if rec.Code != 200 {
		t.Fatalf("PUT ?for=20ms: status %d; %s", rec.Code, rec.Body.String())
	}
	if resp := decode[map[string]string](t, rec); resp["reverts_at"] == "" {
		t.Errorf("PUT ?for=20ms response %v; want reverts_at", resp)
	}
	if got := f.level.Level(); got != slog.LevelDebug {
		t.Fatalf("level right after PUT = %v; want DEBUG", got)
	}
	svctest.WaitFor(t, 5*time.Second, "the level to revert to info", func() bool { return f.level.Level() == slog.LevelInfo })

	for _, bad := range []string{"soon", "-1s", "0s"} {
		if rec := f.do(t, "PUT", "/admin/loglevel?for="+bad, "debug"); rec.Code != 400 {
			t.Errorf("PUT ?for=%s: status %d; want 400", bad, rec.Code)
		}
	}
}

// Two overlapping ?for= periods over HTTP: the last wins, and when it
// ends the level is the base, not the first temporary level. (Real
// timers; admin's TestLevel drives the same rules with a fake clock.)
func TestLogLevelOverlappingFor(t *testing.T) {
	f := newFixture(t, "")
	if rec := f.do(t, "PUT", "/admin/loglevel?for=1h", "debug"); rec.Code != 200 {
		t.Fatalf("PUT debug ?for=1h: %d", rec.Code)
	}
	rec := f.do(t, "PUT", "/admin/loglevel?for=20ms", "warn")
	if rec.Code != 200 {
		t.Fatalf("PUT warn ?for=20ms: %d", rec.Code)
	}
	if resp := decode[map[string]string](t, rec); resp["previous"] != "debug" || resp["reverts_to"] != "info" || resp["reverts_at"] == "" {
		t.Errorf("PUT warn ?for=20ms response %v; want previous debug, reverts_to info, reverts_at", resp)
	}
	if get := decode[map[string]string](t, f.do(t, "GET", "/admin/loglevel", "")); get["level"] != "warn" || get["base"] != "info" || get["reverts_at"] == "" {
		t.Errorf("GET /admin/loglevel = %v; want level warn, base info, reverts_at", get)
	}
	svctest.WaitFor(t, 5*time.Second, "the warn period to end", func() bool { return f.level.Level() != slog.LevelWarn })
	if got := f.level.Level(); got != slog.LevelInfo {
		t.Errorf("level after the last temporary period = %v; want INFO (the base), not a stale temporary level", got)
	}
}

func TestDrainUndrain(t *testing.T) {
	f := newFixture(t, "")
	for _, tt := range []struct {
		path, state string
		drains      int32
		undrains    int32
	}{
		{"/admin/drain", "draining", 1, 0},
		{"/admin/undrain", "serving", 1, 1},
	} {
		rec := f.do(t, "POST", tt.path, "")
		if rec.Code != 200 {
			t.Fatalf("POST %s: status %d", tt.path, rec.Code)
		}
		if got := decode[map[string]string](t, rec)["state"]; got != tt.state {
			t.Errorf("POST %s: state %q; want %q", tt.path, got, tt.state)
		}
		if f.drained.Load() != tt.drains || f.undrains.Load() != tt.undrains {
			t.Errorf("after POST %s: drains, undrains = %d, %d; want %d, %d", tt.path, f.drained.Load(), f.undrains.Load(), tt.drains, tt.undrains)
		}
	}
	if rec := f.do(t, "GET", "/admin/drain", ""); rec.Code != 405 {
		t.Errorf("GET /admin/drain: status %d; want 405", rec.Code)
	}
}

func TestToken(t *testing.T) {
	f := newFixture(t, "t0ken", echoTask)
	tests := []struct {
		name     string
		method   string
		path     string
		auth     string
		wantCode int
	}{
		{"no header", "GET", "/", "", 401},
		{"no header, pprof", "GET", "/debug/pprof/", "", 401},
		{"no header, unknown path", "GET", "/nope", "", 401},
		{"no header, drain", "POST", "/admin/drain", "", 401},
		{"wrong token", "GET", "/", "Bearer nope", 401},
		{"token prefix", "GET", "/", "Bearer t0ke", 401},
		{"basic scheme", "GET", "/", "Basic t0ken", 401},
		{"right token", "GET", "/", "Bearer t0ken", 200},
		{"right token, pprof", "GET", "/debug/pprof/", "Bearer t0ken", 200},
		{"right token, task", "POST", "/admin/tasks/echo", "Bearer t0ken", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"Authorization", tt.auth}
			}
			rec := f.do(t, tt.method, tt.path, "", hdr...)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s with Authorization %q: status %d; want %d", tt.method, tt.path, tt.auth, rec.Code, tt.wantCode)
			}
			if tt.wantCode == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a WWW-Authenticate: Bearer challenge")
			}
		})
	}
	if f.drained.Load() != 0 {
		t.Errorf("an unauthenticated POST /admin/drain drained")
	}
}

func TestNewRejectsBadTasks(t *testing.T) {
	run := func(context.Context, url.Values, io.Writer) error { return nil }
	tests := []struct {
		name  string
		tasks []admin.Task
	}{
		{"empty name", []admin.Task{{Name: "", Run: run}}},
		{"upper case", []admin.Task{{Name: "Reset", Run: run}}},
		{"slash", []admin.Task{{Name: "a/b", Run: run}}},
		{"too long", []admin.Task{{Name: strings.Repeat("a", 64), Run: run}}},
		{"no Run", []admin.Task{{Name: "reset"}}},
		{"duplicate", []admin.Task{{Name: "reset", Run: run}, {Name: "reset", Run: run}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := admin.New(admin.Params{Tasks: tt.tasks})
			if err == nil || !strings.HasPrefix(err.Error(), "admin: task ") {
				t.Errorf("admin.New(%s) error = %v; want an \"admin: task ...\" error", tt.name, err)
			}
		})
	}
}

// Nil Params functions leave their endpoints out.
func TestNilParamsDisableEndpoints(t *testing.T) {
	srv, err := admin.New(admin.Params{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 404},
		{"GET", "/admin/loglevel", 404},
		{"GET", "/admin/config", 404},
		{"POST", "/admin/drain", 404},
		{"GET", "/admin", 200},
		{"GET", "/admin/tasks", 200},
	} {
		rec := serve(srv, tt.method, tt.path, "")
		if rec.Code != tt.want {
			t.Errorf("%s %s with empty Params: status %d; want %d", tt.method, tt.path, rec.Code, tt.want)
		}
	}
}

// Admin actions (anything but GET) are logged with method, path and status.
func TestAuditLog(t *testing.T) {
	var logs strings.Builder
	srv, err := admin.New(admin.Params{
		Drain:  func(context.Context) error { return nil },
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	serve(srv, http.MethodGet, "/admin", "")
	serve(srv, http.MethodPost, "/admin/drain", "")
	got := strings.TrimSpace(logs.String())
	if strings.Count(got, "\n") != 0 {
		t.Fatalf("audit log %q; want exactly one line (GETs are not audited)", got)
	}
	for _, want := range []string{`"msg":"admin action"`, `"method":"POST"`, `"path":"/admin/drain"`, `"status":200`} {
		if !strings.Contains(got, want) {
			t.Errorf("audit log %s; want it to contain %s", got, want)
		}
	}
}
