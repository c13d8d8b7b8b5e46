package httpmw_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

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

func newObserved(t *testing.T, access bool, level slog.Level) (http.Handler, *prometheus.Registry, *bytes.Buffer) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := httpmw.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level}))
	r := chi.NewRouter()
	r.Use(httpmw.RequestID(), httpmw.Observe("public", m, log, access))
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+chi.URLParam(r, "name"))
	})
	r.Post("/items", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	r.Get("/silent", func(http.ResponseWriter, *http.Request) {})
	r.Route("/api", func(r chi.Router) {
		r.Get("/users/{id}", func(http.ResponseWriter, *http.Request) {})
	})
	r.Get("/abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })
	return r, reg, &logs
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
			lines := nonEmptyLines(logs.String())
			if len(lines) != tt.wantLines {
				t.Fatalf("access log lines = %d; want %d:\n%s", len(lines), tt.wantLines, logs.String())
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
