package httpmw_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/svc-dev/svc/internal/accesslog"
	"github.com/svc-dev/svc/internal/httpmw"
)

// counts gathers http_requests_total as "server method route code" -> value.
func counts(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]float64)
	for _, mf := range mfs {
		if mf.GetName() != "http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelString(m, "server", "method", "route", "code")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// histogramCounts gathers http_request_duration_seconds sample counts as
// "server method route" -> count.
func histogramCounts(t *testing.T, reg *prometheus.Registry) map[string]uint64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := make(map[string]uint64)
	for _, mf := range mfs {
		if mf.GetName() != "http_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[labelString(m, "server", "method", "route")] = m.GetHistogram().GetSampleCount()
		}
	}
	return out
}

func labelString(m *dto.Metric, names ...string) string {
	vals := make(map[string]string)
	for _, lp := range m.GetLabel() {
		vals[lp.GetName()] = lp.GetValue()
	}
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = vals[n]
	}
	return strings.Join(parts, " ")
}

// newObserved is a router behind RequestID and Observe. With access, the
// access lines go to an accesslog.Writer; lines closes it and returns what
// it wrote.
func newObserved(t *testing.T, access bool, level slog.Level) (h http.Handler, reg *prometheus.Registry, lines func() string) {
	t.Helper()
	reg = prometheus.NewRegistry()
	m, err := httpmw.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: level}))
	var out bytes.Buffer
	var w *accesslog.Writer
	if access {
		w = accesslog.New(&out, accesslog.Options{Service: "svc-test"})
	}
	t.Cleanup(func() { _ = w.Close() })
	r := chi.NewRouter()
	r.Use(httpmw.RequestID(), httpmw.Observe("public", m, log, w))
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+chi.URLParam(r, "name"))
	})
	r.Post("/items", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	r.Get("/silent", func(http.ResponseWriter, *http.Request) {})
	r.Route("/api", func(r chi.Router) {
		r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
	})
	r.Get("/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	return r, reg, func() string {
		if err := w.Close(); err != nil {
			t.Fatalf("closing the access log: %v", err)
		}
		return out.String()
	}
}

func TestObserveMetrics(t *testing.T) {
	h, reg, _ := newObserved(t, false, slog.LevelInfo)
	requests := []struct{ method, path string }{
		{"GET", "/hello/ann"},
		{"GET", "/hello/bob"},
		{"GET", "/hello/ann"},
		{"POST", "/items"},
		{"GET", "/silent"},
		{"GET", "/api/users/42"},
		{"GET", "/no/such/route"},
		{"DELETE", "/hello/ann"},
	}
	for _, rq := range requests {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(rq.method, rq.path, nil))
	}
	func() {
		defer func() {
			if v := recover(); v != http.ErrAbortHandler { //nolint:errorlint // sentinel
				t.Errorf("GET /abort: recovered %v; want http.ErrAbortHandler to pass through Observe", v)
			}
		}()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/abort", nil))
	}()

	want := map[string]float64{
		"public GET /hello/{name} 200":   3,
		"public POST /items 201":         1,
		"public GET /silent 200":         1,
		"public GET /api/users/{id} 200": 1,
		"public GET unmatched 404":       1,
		"public DELETE unmatched 405":    1,
		"public GET /abort 200":          1, // recorded while the panic unwinds
	}
	got := counts(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("http_requests_total{%s} = %v; want %v", k, got[k], v)
		}
	}
	for k := range got {
		if strings.Contains(k, "/hello/ann") || strings.Contains(k, "/hello/bob") || strings.Contains(k, "/42") {
			t.Errorf("http_requests_total has a raw path label %q; want only route patterns", k)
		}
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series http_requests_total{%s} = %v", k, got[k])
		}
	}
	hist := histogramCounts(t, reg)
	if hist["public GET /hello/{name}"] != 3 {
		t.Errorf("http_request_duration_seconds{public GET /hello/{name}} count = %d; want 3 (all: %v)", hist["public GET /hello/{name}"], hist)
	}
}

func TestObserveAccessLog(t *testing.T) {
	tests := []struct {
		name      string
		access    bool
		level     slog.Level
		wantLines int
	}{
		{"on", true, slog.LevelInfo, 1},
		{"off", false, slog.LevelInfo, 0},
		{"on but level warn", true, slog.LevelWarn, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _, logs := newObserved(t, tt.access, tt.level)
			req := httptest.NewRequest(http.MethodGet, "/hello/ann", nil)
			req.Header.Set(httpmw.RequestIDHeader, "rid-7")
			h.ServeHTTP(httptest.NewRecorder(), req)
			out := logs()
			lines := nonEmptyLines(out)
			if len(lines) != tt.wantLines {
				t.Fatalf("access log lines = %d; want %d:\n%s", len(lines), tt.wantLines, out)
			}
			if tt.wantLines == 0 {
				return
			}
			var got struct {
				Msg, Server, Method, Route, Path string
				Status, Bytes                    int
				RequestID                        string   `json:"request_id"`
				DurationMS                       *float64 `json:"duration_ms"`
			}
			if err := json.Unmarshal([]byte(lines[0]), &got); err != nil {
				t.Fatalf("access log %q: %v", lines[0], err)
			}
			if got.Msg != "request" || got.Server != "public" || got.Method != "GET" ||
				got.Route != "/hello/{name}" || got.Path != "/hello/ann" || got.Status != 200 ||
				got.Bytes != len("hello ann") || got.RequestID != "rid-7" || got.DurationMS == nil {
				t.Errorf("access log = %s\nwant msg request, server public, GET, route /hello/{name}, path /hello/ann, status 200, bytes 9, request_id rid-7, duration_ms", lines[0])
			}
		})
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := httpmw.NewMetrics(reg); err != nil {
		t.Fatalf("first NewMetrics: %v", err)
	}
	_, err := httpmw.NewMetrics(reg)
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("second NewMetrics on the same registry: err = %v; want prometheus.AlreadyRegisteredError", err)
	}
}

func nonEmptyLines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// labelValues gathers the distinct values of each label of name.
func labelValues(t *testing.T, reg *prometheus.Registry, name string) (series int, values map[string]map[string]bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	values = make(map[string]map[string]bool)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			series++
			for _, lp := range m.GetLabel() {
				if values[lp.GetName()] == nil {
					values[lp.GetName()] = make(map[string]bool)
				}
				values[lp.GetName()][lp.GetValue()] = true
			}
		}
	}
	return series, values
}

// statusRouter answers GET /status/{code} with that status code (any code
// net/http accepts, 100-999): a handler that echoes a caller's number.
func statusRouter(t *testing.T) (http.Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := httpmw.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	r := chi.NewRouter()
	r.Use(httpmw.Observe("public", m, slog.New(slog.DiscardHandler), nil))
	r.HandleFunc("/status/{code}", func(w http.ResponseWriter, r *http.Request) {
		code, err := strconv.Atoi(chi.URLParam(r, "code"))
		if err != nil || code < 100 || code > 999 {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
	})
	return r, reg
}

// Nothing a client sends adds series: invented methods, raw paths and
// status codes all map to a bounded set of label values.
func TestObserveLabelsBounded(t *testing.T) {
	h, reg := statusRouter(t)
	const n = 3000
	for i := range n {
		method := fmt.Sprintf("X%dINVENTED", i)
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, fmt.Sprintf("/status/%d", 100+i%900), nil))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, fmt.Sprintf("/status/%d", 100+i%900), nil))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, fmt.Sprintf("/no/such/%d", i), nil))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(strings.ToLower(http.MethodGet)+strconv.Itoa(i), "/", nil))
	}
	known := map[string]bool{"GET": true, "HEAD": true, "POST": true, "PUT": true, "PATCH": true,
		"DELETE": true, "CONNECT": true, "OPTIONS": true, "TRACE": true, httpmw.OtherMethod: true}
	routes := map[string]bool{"/status/{code}": true, httpmw.Unmatched: true}
	for _, metric := range []string{"http_requests_total", "http_request_duration_seconds"} {
		series, values := labelValues(t, reg, metric)
		// 2 methods seen x 2 routes x at most 64 named codes + 5 classes + other.
		if series > 2*2*70 {
			t.Errorf("%s: %d series after %d distinct requests; want a bounded number", metric, series, 4*n)
		}
		for v := range values["method"] {
			if !known[v] {
				t.Errorf("%s: method label %q; want a known method or %q", metric, v, httpmw.OtherMethod)
			}
		}
		for v := range values["route"] {
			if !routes[v] {
				t.Errorf("%s: route label %q; want a route pattern or %q", metric, v, httpmw.Unmatched)
			}
		}
		for v := range values["code"] {
			code, err := strconv.Atoi(v)
			isClass := len(v) == 3 && v[0] >= '1' && v[0] <= '5' && v[1:] == "xx"
			if v != httpmw.OtherCode && !isClass && (err != nil || http.StatusText(code) == "") {
				t.Errorf("%s: code label %q; want a named status, a class such as 4xx, or %q", metric, v, httpmw.OtherCode)
			}
		}
	}
}

func TestObserveLabelValues(t *testing.T) {
	tests := []struct {
		method, path string
		want         string // "method route code"
	}{
		{"GET", "/status/200", "GET /status/{code} 200"},
		{"PATCH", "/status/404", "PATCH /status/{code} 404"},
		{"TRACE", "/status/418", "TRACE /status/{code} 418"},
		{"OPTIONS", "/status/204", "OPTIONS /status/{code} 204"},
		// chi answers methods it does not know 405 before any route.
		{"PROPFIND", "/status/207", "unknown unmatched 405"},
		{"get", "/status/200", "unknown unmatched 405"},
		{"GET", "/status/499", "GET /status/{code} 4xx"},
		{"GET", "/status/599", "GET /status/{code} 5xx"},
		{"GET", "/status/299", "GET /status/{code} 2xx"},
		{"GET", "/status/600", "GET /status/{code} unknown"},
		{"GET", "/status/999", "GET /status/{code} unknown"},
		{"GET", "/status/150", "GET /status/{code} 200"}, // 1xx is informational; the final status is 200
		{"GET", "/nope/x", "GET unmatched 404"},
		{"BREW", "/nope/x", "unknown unmatched 405"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			h, reg := statusRouter(t)
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tt.method, tt.path, nil))
			got := counts(t, reg)
			if len(got) != 1 || got["public "+tt.want] != 1 {
				t.Errorf("%s %s: http_requests_total = %v; want {public %s} = 1", tt.method, tt.path, got, tt.want)
			}
		})
	}
}
