package svc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

// testRoutes are public routes that exercise the middleware.
func testRoutes(r chi.Router) {
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello, "+chi.URLParam(r, "name"))
	})
	r.Get("/trace", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, trace.SpanContextFromContext(r.Context()).TraceID().String()+" "+baggage.FromContext(r.Context()).String())
	})
	r.Get("/id", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, middleware.GetReqID(r.Context()))
	})
	r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	r.Get("/abort", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "partial")
		panic(http.ErrAbortHandler)
	})
	r.Post("/upload", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, "too big", http.StatusRequestEntityTooLarge)
			return
		}
		_, _ = fmt.Fprintf(w, "%d bytes", len(b))
	})
}

// start runs a service named "test" with testRoutes on ephemeral ports and
// returns it with its log.
func start(t *testing.T, o svctest.Options, opts ...svc.Option) (*svctest.App, *svctest.LogBuffer) {
	t.Helper()
	logs := &svctest.LogBuffer{}
	all := append([]svc.Option{svc.PublicRoutes(testRoutes), svc.WithOutput(io.Discard, logs)}, opts...)
	return svctest.StartWith(t, "test", 30, o, all...), logs
}

func TestPublicMiddleware(t *testing.T) {
	app, logs := start(t, svctest.Options{Values: map[string]string{"public.max-body-bytes": "16"}})
	c := svctest.Client(t)

	t.Run("panic is a 500 and the server goes on", func(t *testing.T) {
		r := do(t, c, "GET", app.PublicURL+"/panic", "", "X-Request-Id", "panic-1")
		if r.code != http.StatusInternalServerError || !strings.Contains(r.body, "internal server error") {
			t.Errorf("GET /panic = %d %q; want 500 internal server error", r.code, r.body)
		}
		if r := do(t, c, "GET", app.PublicURL+"/hello/ann", ""); r.code != 200 || r.body != "hello, ann" {
			t.Errorf("GET /hello/ann after a panic = %d %q; want 200 \"hello, ann\"", r.code, r.body)
		}
		svctest.WaitFor(t, 5*time.Second, "the panic in the log", func() bool {
			return strings.Contains(logs.String(), `"msg":"panic in handler"`)
		})
		for _, want := range []string{`"panic":"boom"`, `"request_id":"panic-1"`, `"path":"/panic"`, `"stack":"goroutine`} {
			if !strings.Contains(logs.String(), want) {
				t.Errorf("log has no %s:\n%s", want, logs.String())
			}
		}
	})

	t.Run("ErrAbortHandler aborts the connection", func(t *testing.T) {
		resp, err := c.Get(app.PublicURL + "/abort")
		if err == nil {
			_, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil {
				t.Fatalf("GET /abort = %d, complete body; want the connection aborted, not a response", resp.StatusCode)
			}
		}
		if r := do(t, c, "GET", app.PublicURL+"/hello/bob", ""); r.code != 200 {
			t.Errorf("GET /hello/bob after an abort = %d; want 200", r.code)
		}
		if strings.Contains(logs.String(), `"panic":"net/http: abort Handler"`) {
			t.Errorf("ErrAbortHandler logged as a panic:\n%s", logs.String())
		}
	})

	t.Run("request id", func(t *testing.T) {
		tests := []struct {
			name, given string
			echo        bool
		}{
			{"given", "abc-123", true},
			{"absent", "", false},
			{"not a token", "two words", false},
		}
		var generated []string
		for _, tt := range tests {
			var hdr []string
			if tt.given != "" {
				hdr = []string{"X-Request-Id", tt.given}
			}
			r := do(t, c, "GET", app.PublicURL+"/id", "", hdr...)
			got := r.header.Get("X-Request-Id")
			if got == "" || got != r.body {
				t.Errorf("%s: X-Request-Id %q, id in the handler's context %q; want equal and not empty", tt.name, got, r.body)
			}
			if tt.echo && got != tt.given {
				t.Errorf("%s: X-Request-Id = %q; want the given %q echoed", tt.name, got, tt.given)
			}
			if !tt.echo {
				if got == tt.given {
					t.Errorf("%s: X-Request-Id = %q; want a generated id", tt.name, got)
				}
				generated = append(generated, got)
			}
		}
		if len(generated) == 2 && generated[0] == generated[1] {
			t.Errorf("two generated ids are both %q", generated[0])
		}
	})

	// With export off (no OTEL_* variables), the handler's context still
	// carries the caller's trace context and baggage, for the calls it
	// makes, and the access line its trace_id.
	t.Run("caller's trace context with export off", func(t *testing.T) {
		const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		tests := []struct {
			name, want string
			hdr        []string
		}{
			{"traceparent and baggage", traceID + " user=alice", []string{"Traceparent", "00-" + traceID + "-00f067aa0ba902b7-01", "Baggage", "user=alice"}},
			{"neither", "00000000000000000000000000000000 ", nil},
		}
		for _, tt := range tests {
			r := do(t, c, "GET", app.PublicURL+"/trace", "", tt.hdr...)
			if r.code != http.StatusOK || r.body != tt.want {
				t.Errorf("%s: GET /trace = %d %q; want 200 %q", tt.name, r.code, r.body, tt.want)
			}
		}
		svctest.WaitFor(t, 5*time.Second, "the access line with the caller's trace_id", func() bool {
			return svctest.HasLine(logs.String(), `"path":"/trace"`, `"trace_id":"`+traceID+`"`)
		})
	})

	t.Run("body limit", func(t *testing.T) {
		tests := []struct {
			name     string
			body     string
			chunked  bool
			wantCode int
		}{
			{"under", "0123456789", false, 200},
			{"at the limit", "0123456789abcdef", false, 200},
			{"declared over", strings.Repeat("x", 17), false, 413},
			{"streamed over", strings.Repeat("x", 1000), true, 413},
		}
		for _, tt := range tests {
			req, _ := http.NewRequest("POST", app.PublicURL+"/upload", strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
				req.Body = io.NopCloser(strings.NewReader(tt.body))
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s: POST /upload: %v", tt.name, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.wantCode {
				t.Errorf("%s: POST /upload with %d bytes, limit 16 = %d; want %d", tt.name, len(tt.body), resp.StatusCode, tt.wantCode)
			}
		}
	})
}

// The public and private listeners never fall back to
// http.DefaultServeMux, where importing net/http/pprof registers pprof.
func TestNoDebugOffAdmin(t *testing.T) {
	app, _ := start(t, svctest.Options{})
	c := svctest.Client(t)
	tests := []struct{ base, path string }{
		{app.PublicURL, "/debug/pprof/"},
		{app.PublicURL, "/debug/pprof/heap"},
		{app.PublicURL, "/debug/pprof/cmdline"},
		{app.PublicURL, "/debug/vars"},
		{app.PublicURL, "/metrics"},
		{app.PublicURL, "/admin/config"},
		{app.PrivateURL, "/debug/pprof/"},
		{app.PrivateURL, "/debug/pprof/goroutine"},
		{app.PrivateURL, "/admin/config"},
	}
	for _, tt := range tests {
		r := do(t, c, "GET", tt.base+tt.path, "")
		if r.code != http.StatusNotFound || !strings.Contains(r.body, `"error":"not found"`) {
			t.Errorf("GET %s%s = %d %q; want 404 not found", tt.base, tt.path, r.code, r.body)
		}
	}
	if r := do(t, c, "GET", app.AdminURL+"/debug/pprof/", ""); r.code != 200 {
		t.Errorf("GET admin /debug/pprof/ = %d; want 200", r.code)
	}
}

type readyBody struct {
	Status string
	Checks map[string]struct {
		Status, Error string
		DurationMS    *float64 `json:"duration_ms"`
	}
}

func TestReadiness(t *testing.T) {
	errDown := errors.New("db down")
	tests := []struct {
		name       string
		checks     []svc.Check
		wantCode   int
		wantStatus string
		wantChecks map[string]string // name -> ok, fail, warn
	}{
		{"no checks", nil, 200, "ready", map[string]string{}},
		{"all pass",
			[]svc.Check{{Name: "db", Func: func(context.Context) error { return nil }}, {Name: "cache", Func: func(context.Context) error { return nil }}},
			200, "ready", map[string]string{"db": "ok", "cache": "ok"}},
		{"one fails",
			[]svc.Check{{Name: "db", Func: func(context.Context) error { return errDown }}, {Name: "cache", Func: func(context.Context) error { return nil }}},
			503, "not ready", map[string]string{"db": "fail", "cache": "ok"}},
		{"informational fails",
			[]svc.Check{{Name: "etcd", Informational: true, Func: func(context.Context) error { return errDown }}},
			200, "ready", map[string]string{"etcd": "warn"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []svc.Option
			for _, c := range tt.checks {
				opts = append(opts, svc.Readiness(c))
			}
			app, _ := start(t, svctest.Options{}, opts...)
			r := do(t, svctest.Client(t), "GET", app.PrivateURL+"/readyz", "")
			if r.code != tt.wantCode {
				t.Fatalf("GET /readyz = %d %s; want %d", r.code, r.body, tt.wantCode)
			}
			body := decode[readyBody](t, r)
			if body.Status != tt.wantStatus {
				t.Errorf("/readyz status %q; want %q", body.Status, tt.wantStatus)
			}
			got := make(map[string]string)
			for name, c := range body.Checks {
				got[name] = c.Status
				if c.DurationMS == nil {
					t.Errorf("check %s has no duration_ms", name)
				}
				if c.Status != "ok" && c.Error != errDown.Error() {
					t.Errorf("check %s error %q; want %q", name, c.Error, errDown)
				}
			}
			if !maps.Equal(got, tt.wantChecks) {
				t.Errorf("/readyz checks = %v; want %v", got, tt.wantChecks)
			}
		})
	}
}

func TestDrain(t *testing.T) {
	app, _ := start(t, svctest.Options{})
	c := svctest.Client(t)
	ready := func() (int, string) {
		r := do(t, c, "GET", app.PrivateURL+"/readyz", "")
		return r.code, decode[readyBody](t, r).Status
	}
	steps := []struct {
		name       string
		act        func()
		wantCode   int
		wantStatus string
	}{
		{"started", func() {}, 200, "ready"},
		{"App.Drain", func() { _ = app.Drain(context.Background()) }, 503, "draining"},
		{"App.Undrain", func() { _ = app.Undrain(context.Background()) }, 200, "ready"},
		{"POST /admin/drain", func() { do(t, c, "POST", app.AdminURL+"/admin/drain", "") }, 503, "draining"},
		{"POST /admin/undrain", func() { do(t, c, "POST", app.AdminURL+"/admin/undrain", "") }, 200, "ready"},
	}
	for _, s := range steps {
		s.act()
		if code, status := ready(); code != s.wantCode || status != s.wantStatus {
			t.Errorf("after %s: /readyz = %d %q; want %d %q", s.name, code, status, s.wantCode, s.wantStatus)
		}
	}
	// Draining stops nothing: requests are still served.
	_ = app.Drain(context.Background())
	if r := do(t, c, "GET", app.PublicURL+"/hello/ann", ""); r.code != 200 {
		t.Errorf("GET /hello/ann while drained = %d; want 200", r.code)
	}
	if r := do(t, c, "GET", app.PrivateURL+"/healthz", ""); r.code != 200 {
		t.Errorf("GET /healthz while drained = %d; want 200", r.code)
	}
}

// scrape parses the private /metrics.
func scrape(t *testing.T, c *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	r := do(t, c, "GET", base+"/metrics", "")
	if r.code != 200 {
		t.Fatalf("GET /metrics = %d", r.code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, r.body)
	}
	return mfs
}

// series returns the metrics of family name as "label=value,..." (sorted
// label names) -> the metric.
func series(mfs map[string]*dto.MetricFamily, name string) map[string]*dto.Metric {
	out := make(map[string]*dto.Metric)
	for _, m := range mfs[name].GetMetric() {
		var parts []string
		for _, lp := range m.GetLabel() {
			parts = append(parts, lp.GetName()+"="+lp.GetValue())
		}
		slices.Sort(parts)
		out[strings.Join(parts, ",")] = m
	}
	return out
}

func TestMetrics(t *testing.T) {
	app, _ := start(t, svctest.Options{Env: map[string]string{"ENVIRONMENT": "qa"}}, svc.WithVersion("1.2.3"))
	c := svctest.Client(t)
	for _, p := range []string{"/hello/ann", "/hello/bob", "/hello/ann", "/nope"} {
		do(t, c, "GET", app.PublicURL+p, "")
	}
	do(t, c, "GET", app.PrivateURL+"/healthz", "")
	mfs := scrape(t, c, app.PrivateURL)

	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_open_fds", "http_requests_total", "http_request_duration_seconds", "svc_info"} {
		if mfs[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	reqs := series(mfs, "http_requests_total")
	for k, want := range map[string]float64{
		"code=200,method=GET,route=/hello/{name},server=public": 3,
		"code=404,method=GET,route=unmatched,server=public":     1,
		"code=200,method=GET,route=/healthz,server=private":     1,
	} {
		if got := reqs[k].GetCounter().GetValue(); got != want {
			t.Errorf("http_requests_total{%s} = %v; want %v", k, got, want)
		}
	}
	for k := range reqs {
		if strings.Contains(k, "/hello/ann") || strings.Contains(k, "/nope") {
			t.Errorf("http_requests_total{%s}: a raw path as route label", k)
		}
	}
	durs := series(mfs, "http_request_duration_seconds")
	if got := durs["method=GET,route=/hello/{name},server=public"].GetHistogram().GetSampleCount(); got != 3 {
		t.Errorf("http_request_duration_seconds{public GET /hello/{name}} count = %d; want 3 (series: %v)", got, slices.Collect(maps.Keys(durs)))
	}
	info := series(mfs, "svc_info")
	if m := info["environment=qa,name=test,version=1.2.3"]; m.GetGauge().GetValue() != 1 {
		t.Errorf("svc_info{environment=qa,name=test,version=1.2.3} = %v; want 1 (series: %v)", m.GetGauge().GetValue(), slices.Collect(maps.Keys(info)))
	}
	if mfs["svc_registry_registered"] != nil {
		t.Errorf("svc_registry_registered present without a registry")
	}
}

func TestInfo(t *testing.T) {
	app, _ := start(t, svctest.Options{}, svc.WithVersion("v0.1.0"))
	c := svctest.Client(t)
	r := do(t, c, "GET", app.PrivateURL+"/info", "")
	if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /info = %d %s; want 200 application/json", r.code, r.header.Get("Content-Type"))
	}
	got := decode[svc.Info](t, r)
	port := func(addr string) int {
		_, p, _ := net.SplitHostPort(addr)
		n, _ := strconv.Atoi(p)
		return n
	}
	want := svc.Info{
		Name: "test", Environment: "dev", Version: "v0.1.0",
		Instance: app.Info().Instance, StartedAt: app.Info().StartedAt,
		Ports: svc.Ports{Public: port(app.PublicAddr()), Private: port(app.PrivateAddr()), Admin: port(app.AdminAddr())},
	}
	if !got.StartedAt.Equal(want.StartedAt) {
		t.Errorf("/info started_at = %v; want %v", got.StartedAt, want.StartedAt)
	}
	got.StartedAt = want.StartedAt
	if got != want {
		t.Errorf("GET /info = %+v; want %+v", got, want)
	}
	if len(got.Instance) < 8 || got.Ports.Public == 0 {
		t.Errorf("GET /info: instance %q, public port %d; want an id and a bound port", got.Instance, got.Ports.Public)
	}
	for _, field := range []string{`"name"`, `"environment"`, `"version"`, `"instance"`, `"started_at"`, `"ports"`, `"public"`, `"private"`, `"admin"`} {
		if !strings.Contains(r.body, field) {
			t.Errorf("GET /info body %s has no %s", r.body, field)
		}
	}
	adm := do(t, c, "GET", app.AdminURL+"/", "")
	if got := decode[svc.Info](t, adm); got != decode[svc.Info](t, r) {
		t.Errorf("admin GET / = %+v; want the same as /info %+v", got, decode[svc.Info](t, r))
	}
}

func TestAdminToken(t *testing.T) {
	app, _ := start(t, svctest.Options{Values: map[string]string{"admin.host": "0.0.0.0", "admin.token": "t0ken"}})
	c := svctest.Client(t)
	tests := []struct {
		name, method, path, auth string
		want                     int
	}{
		{"no token", "GET", "/", "", 401},
		{"no token, pprof", "GET", "/debug/pprof/", "", 401},
		{"no token, drain", "POST", "/admin/drain", "", 401},
		{"wrong token", "GET", "/admin/config", "Bearer wrong", 401},
		{"token", "GET", "/", "Bearer t0ken", 200},
		{"token, config", "GET", "/admin/config", "Bearer t0ken", 200},
	}
	for _, tt := range tests {
		var hdr []string
		if tt.auth != "" {
			hdr = []string{"Authorization", tt.auth}
		}
		if r := do(t, c, tt.method, app.AdminURL+tt.path, "", hdr...); r.code != tt.want {
			t.Errorf("%s: %s %s = %d; want %d", tt.name, tt.method, tt.path, r.code, tt.want)
		}
	}
	if r := do(t, c, "GET", app.PrivateURL+"/readyz", ""); r.code != 200 {
		t.Errorf("an unauthenticated POST /admin/drain drained: /readyz = %d", r.code)
	}
}

// helloConfig is a service's own declared configuration.
type helloConfig struct {
	Greeting string   `key:"greeting" default:"hello" doc:"greeting" live:"true"`
	Upstream *url.URL `key:"upstream" doc:"where to call"`
	Token    string   `key:"api-token" doc:"the upstream's token" secret:"true"`
}

func TestAdminConfig(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "test.json", `{"log":{"format":"json"},"hello":{"greeting":"hi","upstream":"http://app:pa55@db:5432/x"}}`)
	app, _ := start(t, svctest.Options{
		Env: map[string]string{
			"CONFIG_DIR":    dir,
			"LOG_LEVEL":     "warn",
			"ETCD_PASSWORD": "hunter2",
		},
		Values: map[string]string{"admin.token": "t0ken"},
	}, svc.Config[helloConfig]("hello"))
	r := do(t, svctest.Client(t), "GET", app.AdminURL+"/admin/config", "", "Authorization", "Bearer t0ken")
	if r.code != 200 {
		t.Fatalf("GET /admin/config = %d %s", r.code, r.body)
	}
	got := make(map[string][2]string) // key -> value, layer
	for _, v := range decode[struct {
		Keys []struct{ Key, Value, Layer string }
	}](t, r).Keys {
		got[v.Key] = [2]string{v.Value, v.Layer}
	}
	file := "file " + dir + "/test.json"
	for key, want := range map[string][2]string{
		"admin.token":      {"[redacted]", "option"},
		"etcd.password":    {"[redacted]", "env"},
		"log.level":        {"warn", "env"},
		"log.format":       {"json", file},
		"hello.greeting":   {"hi", file},
		"hello.upstream":   {"http://app:[redacted]@db:5432/x", file},
		"hello.api-token":  {"", ""},
		"public.port":      {"0", "option"},
		"shutdown.timeout": {"10s", "convention"},
	} {
		if got[key] != want {
			t.Errorf("/admin/config %s = %q; want %q", key, got[key], want)
		}
	}
	for _, secret := range []string{"t0ken", "hunter2", "pa55"} {
		if strings.Contains(r.body, secret) {
			t.Errorf("/admin/config shows the secret %q", secret)
		}
	}
}

func TestLogLevelIsLive(t *testing.T) {
	app, logs := start(t, svctest.Options{})
	c := svctest.Client(t)
	ctx := context.Background()
	if app.Logger().Enabled(ctx, -4) {
		t.Fatalf("debug enabled at start; want info")
	}
	if r := do(t, c, "PUT", app.AdminURL+"/admin/loglevel", "debug"); r.code != 200 {
		t.Fatalf("PUT /admin/loglevel debug = %d %s", r.code, r.body)
	}
	if !app.Logger().Enabled(ctx, -4) {
		t.Errorf("after PUT debug: debug not enabled")
	}
	if r := do(t, c, "PUT", app.AdminURL+"/admin/loglevel?for=50ms", "error"); r.code != 200 {
		t.Fatalf("PUT /admin/loglevel?for=50ms error = %d %s", r.code, r.body)
	}
	// With access logging at info, a request at level error logs nothing.
	before := strings.Count(logs.String(), `"msg":"request"`)
	do(t, c, "GET", app.PublicURL+"/hello/ann", "")
	if after := strings.Count(logs.String(), `"msg":"request"`); after != before {
		t.Errorf("access log written at level error")
	}
	svctest.WaitFor(t, 5*time.Second, "the level to revert to debug", func() bool {
		return decode[map[string]string](t, do(t, c, "GET", app.AdminURL+"/admin/loglevel", ""))["level"] == "debug"
	})
}

func TestAdminTasks(t *testing.T) {
	var runs atomic.Int32
	task := admin.Task{Name: "flush", Help: "flush caches", Run: func(_ context.Context, args url.Values, w io.Writer) error {
		runs.Add(1)
		_, err := fmt.Fprintf(w, "flushed %s\n", args.Get("cache"))
		return err
	}}
	app, _ := start(t, svctest.Options{}, svc.AdminTask(task))
	c := svctest.Client(t)
	if r := do(t, c, "GET", app.AdminURL+"/admin/tasks", ""); !strings.Contains(r.body, `"name": "flush"`) {
		t.Errorf("GET /admin/tasks = %s; want the flush task", r.body)
	}
	r := do(t, c, "POST", app.AdminURL+"/admin/tasks/flush?cache=users", "")
	if r.code != 200 || r.body != "flushed users\n" || runs.Load() != 1 {
		t.Errorf("POST /admin/tasks/flush = %d %q, runs %d; want 200 \"flushed users\\n\", 1 run", r.code, r.body, runs.Load())
	}
}

// Stop lets an in-flight request finish after the listeners stopped
// accepting, and /readyz answers 503 during shutdown.drain.
func TestStopFinishesInFlight(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	slow := svc.PublicRoutes(func(r chi.Router) {
		r.Get("/slow", func(w http.ResponseWriter, _ *http.Request) {
			close(entered)
			<-release
			_, _ = io.WriteString(w, "done")
		})
	})
	a, err := svc.New("slow", 40,
		svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}),
		svc.WithOutput(io.Discard, io.Discard),
		svc.WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"admin.host": "127.0.0.1", "public.host": "127.0.0.1", "private.host": "127.0.0.1",
			"shutdown.drain": "500ms",
		}),
		slow)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := svctest.Client(t)
	got := make(chan response, 1)
	go func() {
		resp, err := c.Get(svc.URL(a.PublicAddr()) + "/slow")
		if err != nil {
			got <- response{body: err.Error()}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- response{code: resp.StatusCode, body: string(b)}
	}()
	<-entered
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(ctx) }()

	readyz := svc.URL(a.PrivateAddr()) + "/readyz"
	svctest.WaitFor(t, 5*time.Second, "/readyz 503 while draining", func() bool {
		resp, err := c.Get(readyz)
		if err != nil {
			t.Fatalf("GET /readyz during the drain: %v (listeners must serve until the drain ends)", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	// Release the request only once the listeners stopped accepting, so
	// that it is Shutdown, not the drain, that waits for it.
	svctest.WaitFor(t, 5*time.Second, "the private listener to stop accepting", func() bool {
		resp, err := c.Get(readyz)
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	close(release)
	if r := <-got; r.code != 200 || r.body != "done" {
		t.Errorf("in-flight GET /slow = %d %q; want 200 \"done\"", r.code, r.body)
	}
	if err := <-stopped; err != nil {
		t.Errorf("Stop = %v; want nil", err)
	}
}

// A request still running when shutdown.timeout runs out is cut, and Stop
// says so.
func TestStopTimeout(t *testing.T) {
	entered := make(chan struct{})
	hang := svc.PublicRoutes(func(r chi.Router) {
		r.Get("/hang", func(w http.ResponseWriter, r *http.Request) {
			close(entered)
			<-r.Context().Done()
		})
	})
	a, err := svc.New("hang", 50,
		svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}),
		svc.WithOutput(io.Discard, io.Discard),
		svc.WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"admin.host": "127.0.0.1", "public.host": "127.0.0.1", "private.host": "127.0.0.1",
			"shutdown.drain": "0s", "shutdown.timeout": "100ms",
		}),
		hang)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := svctest.Client(t)
	done := make(chan error, 1)
	go func() {
		resp, err := c.Get(svc.URL(a.PublicAddr()) + "/hang")
		if err == nil {
			resp.Body.Close()
		}
		done <- err
	}()
	<-entered
	err = a.Stop(context.Background())
	if err == nil || !strings.Contains(err.Error(), "public server") || !strings.Contains(err.Error(), "shutdown.timeout") {
		t.Errorf("Stop with a hung request = %v; want an error naming the public server and shutdown.timeout", err)
	}
	if err := <-done; err == nil {
		t.Errorf("hung request completed; want its connection closed")
	}
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// From the moment shutdown begins /readyz answers 503 (contract §4): an
// undrain during shutdown.drain must not make the instance ready (and
// re-register it) while it is going away.
func TestUndrainDuringShutdownStaysDraining(t *testing.T) {
	a, err := svc.New("undrain", 90,
		svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}),
		svc.WithOutput(io.Discard, io.Discard),
		svc.WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"public.host": "127.0.0.1", "private.host": "127.0.0.1",
			"shutdown.drain": "500ms",
		}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	c := svctest.Client(t)
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop(ctx) }()
	defer func() {
		if err := <-stopped; err != nil {
			t.Errorf("Stop = %v", err)
		}
	}()
	readyz := svc.URL(a.PrivateAddr()) + "/readyz"
	svctest.WaitFor(t, 5*time.Second, "/readyz 503 once Stop began", func() bool {
		return do(t, c, "GET", readyz, "").code == http.StatusServiceUnavailable
	})
	do(t, c, "POST", svc.URL(a.AdminAddr())+"/admin/undrain", "")
	if r := do(t, c, "GET", readyz, ""); r.code != http.StatusServiceUnavailable {
		t.Errorf("after POST /admin/undrain during shutdown: /readyz = %d %s; want 503 until the process exits", r.code, r.body)
	}
}
