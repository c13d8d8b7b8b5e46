package main

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

// TestEndpoints runs the example in process on ephemeral ports and asks
// every endpoint of the contract.
func TestEndpoints(t *testing.T) {
	logs := &svctest.LogBuffer{}
	app := svctest.Start(t, "example", 10, Module, svc.WithOutput(io.Discard, logs))
	c := svctest.Client(t)
	info := app.Info()

	t.Run("public", func(t *testing.T) {
		for i, want := range []int{1, 2} {
			r := do(t, c, "GET", app.PublicURL+"/hello/ann", "")
			if r.code != 200 || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("GET /hello/ann #%d = %d %s; want 200 application/json", i+1, r.code, r.header.Get("Content-Type"))
			}
			got := decode[struct {
				Message, Instance string
				Count, Port       int
			}](t, r)
			if got.Message != "hello, ann" || got.Count != want || got.Instance != info.Instance || got.Port != info.Ports.Public {
				t.Errorf("GET /hello/ann #%d = %+v; want message \"hello, ann\", count %d, instance %s, port %d",
					i+1, got, want, info.Instance, info.Ports.Public)
			}
		}
		for _, tt := range []struct {
			query    string
			wantCode int
		}{
			{"ms=5", 200}, {"ms=0", 200}, {"ms=abc", 400}, {"ms=-1", 400}, {"ms=60001", 400}, {"", 400},
		} {
			r := do(t, c, "GET", app.PublicURL+"/work?"+tt.query, "")
			if r.code != tt.wantCode {
				t.Errorf("GET /work?%s = %d %s; want %d", tt.query, r.code, r.body, tt.wantCode)
			}
			if r.code == 200 {
				if got := decode[struct {
					SleptMS  int `json:"slept_ms"`
					Instance string
				}](t, r); got.Instance != info.Instance {
					t.Errorf("GET /work?%s instance %q; want %q", tt.query, got.Instance, info.Instance)
				}
			}
		}
		if r := do(t, c, "GET", app.PublicURL+"/hello", ""); r.code != 404 {
			t.Errorf("GET /hello = %d; want 404", r.code)
		}
		if r := do(t, c, "POST", app.PublicURL+"/hello/ann", ""); r.code != 405 {
			t.Errorf("POST /hello/ann = %d; want 405", r.code)
		}
	})

	t.Run("public has no debug, metrics or admin", func(t *testing.T) {
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/heap", "/metrics", "/admin", "/healthz", "/info"} {
			if r := do(t, c, "GET", app.PublicURL+p, ""); r.code != 404 {
				t.Errorf("public GET %s = %d; want 404", p, r.code)
			}
		}
		if r := do(t, c, "GET", app.PrivateURL+"/debug/pprof/", ""); r.code != 404 {
			t.Errorf("private GET /debug/pprof/ = %d; want 404", r.code)
		}
	})

	t.Run("healthz", func(t *testing.T) {
		r := do(t, c, "GET", app.PrivateURL+"/healthz", "")
		if r.code != 200 || decode[map[string]string](t, r)["status"] != "ok" {
			t.Errorf("GET /healthz = %d %s; want 200 status ok", r.code, r.body)
		}
	})

	t.Run("readyz", func(t *testing.T) {
		r := do(t, c, "GET", app.PrivateURL+"/readyz", "")
		got := decode[readyBody](t, r)
		if r.code != 200 || got.Status != "ready" || got.Checks["greeter"].Status != "ok" {
			t.Errorf("GET /readyz = %d %s; want 200 ready with check greeter ok", r.code, r.body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		mfs := scrape(t, c, app.PrivateURL)
		for _, name := range []string{"go_goroutines", "go_gc_duration_seconds", "process_cpu_seconds_total", "process_resident_memory_bytes",
			"http_requests_total", "http_request_duration_seconds", "svc_info"} {
			if mfs[name] == nil {
				t.Errorf("/metrics has no %s", name)
			}
		}
		reqs := series(mfs, "http_requests_total")
		if got := reqs["code=200,method=GET,route=/hello/{name},server=public"].GetCounter().GetValue(); got != 2 {
			t.Errorf(`http_requests_total{server="public",method="GET",route="/hello/{name}",code="200"} = %v; want 2`, got)
		}
		if got := reqs["code=400,method=GET,route=/work,server=public"].GetCounter().GetValue(); got != 4 {
			t.Errorf(`http_requests_total{route="/work",code="400"} = %v; want 4`, got)
		}
		for k := range reqs {
			if strings.Contains(k, "/hello/ann") {
				t.Errorf("http_requests_total{%s}: the raw path as route", k)
			}
		}
		durs := series(mfs, "http_request_duration_seconds")
		if got := durs["method=GET,route=/hello/{name},server=public"].GetHistogram().GetSampleCount(); got != 2 {
			t.Errorf(`http_request_duration_seconds{server="public",method="GET",route="/hello/{name}"} count = %d; want 2`, got)
		}
		wantInfo := "environment=dev,name=example,version=" + info.Version
		if got := series(mfs, "svc_info")[wantInfo].GetGauge().GetValue(); got != 1 {
			t.Errorf("svc_info{%s} = %v; want 1 (series %v)", wantInfo, got, slices.Collect(maps.Keys(series(mfs, "svc_info"))))
		}
	})

	t.Run("info", func(t *testing.T) {
		r := do(t, c, "GET", app.PrivateURL+"/info", "")
		got := decode[svc.Info](t, r)
		if got.Name != "example" || got.Environment != "dev" || got.Instance != info.Instance || got.Version == "" ||
			got.StartedAt.IsZero() || got.Ports != info.Ports || got.Ports.Public == 0 || got.Ports.Private == 0 || got.Ports.Admin == 0 {
			t.Errorf("GET /info = %+v; want example, dev, instance %s, ports %+v", got, info.Instance, info.Ports)
		}
		adm := do(t, c, "GET", app.AdminURL+"/", "")
		if adm.code != 200 || decode[svc.Info](t, adm) != got {
			t.Errorf("admin GET / = %d %s; want the same JSON as /info %s", adm.code, adm.body, r.body)
		}
	})

	t.Run("admin index and pprof", func(t *testing.T) {
		r := do(t, c, "GET", app.AdminURL+"/admin", "")
		for _, p := range []string{"/admin/loglevel", "/admin/config", "/admin/drain", "/admin/undrain", "/admin/tasks", "/debug/pprof/"} {
			if !strings.Contains(r.body, `"`+p+`"`) {
				t.Errorf("GET /admin does not list %s: %s", p, r.body)
			}
		}
		if r := do(t, c, "GET", app.AdminURL+"/debug/pprof/", ""); r.code != 200 || !strings.Contains(r.body, "goroutine") {
			t.Errorf("GET /debug/pprof/ = %d; want 200 with the profiles", r.code)
		}
		if r := do(t, c, "GET", app.AdminURL+"/debug/pprof/heap?debug=1", ""); r.code != 200 || !strings.Contains(r.body, "heap profile") {
			t.Errorf("GET /debug/pprof/heap?debug=1 = %d; want 200 heap profile", r.code)
		}
	})

	t.Run("loglevel", func(t *testing.T) {
		level := func() string {
			return decode[map[string]string](t, do(t, c, "GET", app.AdminURL+"/admin/loglevel", ""))["level"]
		}
		if got := level(); got != "info" {
			t.Fatalf("GET /admin/loglevel = %q; want info", got)
		}
		if r := do(t, c, "PUT", app.AdminURL+"/admin/loglevel", "debug"); r.code != 200 {
			t.Fatalf("PUT /admin/loglevel debug = %d %s", r.code, r.body)
		}
		if got := level(); got != "debug" || !app.Logger().Enabled(context.Background(), slog.LevelDebug) {
			t.Errorf("after PUT debug: GET = %q, logger debug enabled %v; want debug, true", got, app.Logger().Enabled(context.Background(), slog.LevelDebug))
		}
		if r := do(t, c, "PUT", app.AdminURL+"/admin/loglevel?for=50ms", "warn"); r.code != 200 {
			t.Fatalf("PUT /admin/loglevel?for=50ms warn = %d %s", r.code, r.body)
		}
		svctest.WaitFor(t, 5*time.Second, "the level to revert to debug", func() bool { return level() == "debug" })
		if r := do(t, c, "PUT", app.AdminURL+"/admin/loglevel", "info"); r.code != 200 {
			t.Fatalf("PUT /admin/loglevel info = %d", r.code)
		}
		if r := do(t, c, "PUT", app.AdminURL+"/admin/loglevel", "chatty"); r.code != 400 {
			t.Errorf("PUT /admin/loglevel chatty = %d; want 400", r.code)
		}
	})

	t.Run("config", func(t *testing.T) {
		got := configOf(t, do(t, c, "GET", app.AdminURL+"/admin/config", ""))
		for key, want := range map[string][2]string{
			"public.port":    {"0", "option"},
			"environment":    {"dev", "convention"},
			"shutdown.drain": {"0s", "option"},
			"log.access":     {"true", "convention"},
		} {
			if got[key] != want {
				t.Errorf("/admin/config %s = %q; want %q", key, got[key], want)
			}
		}
	})

	t.Run("tasks", func(t *testing.T) {
		r := do(t, c, "GET", app.AdminURL+"/admin/tasks", "")
		if !strings.Contains(r.body, `"name": "reset-counts"`) {
			t.Fatalf("GET /admin/tasks = %s; want reset-counts", r.body)
		}
		do(t, c, "GET", app.PublicURL+"/hello/bob", "")
		r = do(t, c, "POST", app.AdminURL+"/admin/tasks/reset-counts", "")
		if r.code != 200 || !strings.Contains(r.body, "ann\t2\n") || !strings.Contains(r.body, "bob\t1\n") || !strings.HasSuffix(r.body, "reset 2 names\n") {
			t.Errorf("POST /admin/tasks/reset-counts = %d %q; want the counts ann 2, bob 1 and \"reset 2 names\"", r.code, r.body)
		}
		if got := decode[struct{ Count int }](t, do(t, c, "GET", app.PublicURL+"/hello/ann", "")).Count; got != 1 {
			t.Errorf("GET /hello/ann after the reset: count %d; want 1", got)
		}
		if r := do(t, c, "POST", app.AdminURL+"/admin/tasks/no-such", ""); r.code != 404 {
			t.Errorf("POST /admin/tasks/no-such = %d; want 404", r.code)
		}
	})

	t.Run("drain and undrain", func(t *testing.T) {
		for _, step := range []struct {
			path       string
			wantCode   int
			wantStatus string
		}{
			{"/admin/drain", 503, "draining"},
			{"/admin/undrain", 200, "ready"},
		} {
			if r := do(t, c, "POST", app.AdminURL+step.path, ""); r.code != 200 {
				t.Fatalf("POST %s = %d %s", step.path, r.code, r.body)
			}
			r := do(t, c, "GET", app.PrivateURL+"/readyz", "")
			if got := decode[readyBody](t, r).Status; r.code != step.wantCode || got != step.wantStatus {
				t.Errorf("after POST %s: /readyz = %d %q; want %d %q", step.path, r.code, got, step.wantCode, step.wantStatus)
			}
		}
	})

	t.Run("access log", func(t *testing.T) {
		do(t, c, "GET", app.PublicURL+"/hello/zoe", "", "X-Request-Id", "trace-42")
		svctest.WaitFor(t, 5*time.Second, "the access log line", func() bool { return strings.Contains(logs.String(), `"request_id":"trace-42"`) })
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, `"request_id":"trace-42"`) {
				for _, want := range []string{`"msg":"request"`, `"route":"/hello/{name}"`, `"path":"/hello/zoe"`, `"status":200`} {
					if !strings.Contains(line, want) {
						t.Errorf("access log %s; want %s", line, want)
					}
				}
			}
		}
	})
}

// TestAdminOffLoopback: an admin listener off loopback needs the token on
// every request, and /admin/config never shows secrets.
func TestAdminOffLoopback(t *testing.T) {
	app := svctest.StartWith(t, "example", 10, svctest.Options{
		Values: map[string]string{"admin.host": "0.0.0.0", "admin.token": "t0ken-value", "etcd.password": "hunter2-value"},
	}, Module, svc.WithOutput(io.Discard, io.Discard))
	c := svctest.Client(t)
	bearer := []string{"Authorization", "Bearer t0ken-value"}
	for _, tt := range []struct {
		method, path string
		hdr          []string
		want         int
	}{
		{"GET", "/", nil, 401},
		{"GET", "/admin/config", nil, 401},
		{"GET", "/debug/pprof/", nil, 401},
		{"POST", "/admin/tasks/reset-counts", nil, 401},
		{"POST", "/admin/drain", nil, 401},
		{"GET", "/", []string{"Authorization", "Bearer wrong"}, 401},
		{"GET", "/", bearer, 200},
		{"GET", "/debug/pprof/", bearer, 200},
	} {
		if r := do(t, c, tt.method, app.AdminURL+tt.path, "", tt.hdr...); r.code != tt.want {
			t.Errorf("%s %s with %q = %d; want %d", tt.method, tt.path, tt.hdr, r.code, tt.want)
		}
	}
	r := do(t, c, "GET", app.AdminURL+"/admin/config", "", bearer...)
	got := configOf(t, r)
	for key, want := range map[string][2]string{
		"admin.host":    {"0.0.0.0", "option"},
		"admin.token":   {"[redacted]", "option"},
		"etcd.password": {"[redacted]", "option"},
	} {
		if got[key] != want {
			t.Errorf("/admin/config %s = %q; want %q", key, got[key], want)
		}
	}
	for _, secret := range []string{"t0ken-value", "hunter2-value"} {
		if strings.Contains(r.body, secret) {
			t.Errorf("/admin/config shows the secret %q", secret)
		}
	}
	// The public and private listeners need no token.
	if r := do(t, c, "GET", app.PrivateURL+"/readyz", ""); r.code != 200 {
		t.Errorf("GET /readyz = %d; want 200 (and the unauthenticated drain refused)", r.code)
	}
}

type readyBody struct {
	Status string
	Checks map[string]struct{ Status, Error string }
}

func configOf(t *testing.T, r response) map[string][2]string {
	t.Helper()
	if r.code != http.StatusOK {
		t.Fatalf("GET /admin/config = %d %s", r.code, r.body)
	}
	out := make(map[string][2]string)
	for _, v := range decode[struct {
		Keys []struct{ Key, Value, Layer string }
	}](t, r).Keys {
		out[v.Key] = [2]string{v.Value, v.Layer}
	}
	return out
}

func scrape(t *testing.T, c *http.Client, base string) map[string]*dto.MetricFamily {
	t.Helper()
	r := do(t, c, "GET", base+"/metrics", "")
	if r.code != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics = %d %s; want 200 text/plain", r.code, r.header.Get("Content-Type"))
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(r.body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// series maps "label=value,..." (sorted) to the metrics of family name.
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

// Every duration /work accepts must get its response: the public
// listener's write timeout (public.write-timeout, 30s by default) cuts any
// response written later, so /work must refuse longer ones with a 400
// rather than accept them and drop the connection.
func TestWorkRespectsWriteTimeout(t *testing.T) {
	app := svctest.StartWith(t, "example", 10, svctest.Options{
		Values: map[string]string{"public.write-timeout": "200ms"},
	}, Module, svc.WithOutput(io.Discard, io.Discard))
	c := svctest.Client(t)
	resp, err := c.Get(app.PublicURL + "/work?ms=400")
	if err != nil {
		t.Fatalf("GET /work?ms=400 with public.write-timeout 200ms: %v; want a 400 naming the limit, not a dropped connection", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("GET /work?ms=400 with public.write-timeout 200ms = %d; want 400", resp.StatusCode)
	}
}
