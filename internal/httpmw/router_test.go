package httpmw_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/internal/httpmw"
)

// seenRoute is what a handler behind the pass saw of its routing.
func seenRoute(r *http.Request) string {
	rc := chi.RouteContext(r.Context())
	if rc == nil {
		return "no route context"
	}
	return fmt.Sprintf("pattern=%s r.Pattern=%s keys=%v values=%v patterns=%v id=%t",
		rc.RoutePattern(), r.Pattern, rc.URLParams.Keys, rc.URLParams.Values, rc.RoutePatterns,
		middleware.GetReqID(r.Context()) != "")
}

// outerTrace stands in for tracing.Middleware: it records what it sees
// before and after the rest of the pass, and puts a trace id from the
// "Trace" header in the context it passes on.
type outerTrace struct {
	idBefore, routesBefore bool   // the request id and the route context were there
	patternAfter           string // the route pattern once the handler returned
	status                 int    // the status the response went out with
}

func (o *outerTrace) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.idBefore = httpmw.GetID(r.Context()) != ""
		rc := chi.RouteContext(r.Context())
		o.routesBefore = rc != nil && rc.Routes != nil
		if tid := r.Header.Get("Trace"); tid != "" {
			r = r.WithContext(context.WithValue(r.Context(), traceKey{}, tid))
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		o.patternAfter = chi.RouteContext(r.Context()).RoutePattern()
		o.status = sw.status
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// newAround is a chi router with sub-routers, its own 404 and 405, and
// middleware of its own, behind New with every step as svc's servers
// have it: around the router.
func newAround(t *testing.T) (h http.Handler, mux *chi.Mux, tr *outerTrace, reg *prometheus.Registry, lines func() []string) {
	t.Helper()
	o, reg, lines := everyStep(t)
	show := func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, seenRoute(r)) }
	mux = chi.NewRouter()
	mux.Use(middleware.GetHead)
	mux.NotFound(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic-in-404" {
			panic("boom in 404")
		}
		http.Error(w, "custom 404", http.StatusNotFound)
	})
	mux.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "custom 405", http.StatusMethodNotAllowed)
	})
	mux.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		_, _ = fmt.Fprintf(w, "hello %s %s %t; %s", chi.URLParam(r, "name"), r.PathValue("name"),
			chi.RouteContext(r.Context()).Routes == chi.Routes(mux), seenRoute(r))
	})
	mux.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.Route("/api", func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler { // a middleware that copies the request
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), traceKey{}, "in api")))
			})
		})
		r.Get("/users/{id}", show)
	})
	files := chi.NewRouter()
	files.Get("/{dir}/{file}", show)
	mux.Mount("/files", files)
	mux.Group(func(g chi.Router) {
		g.Use(middleware.NoCache)
		g.Get("/grouped", show)
	})

	tr = &outerTrace{}
	o.Trace = tr.middleware
	return httpmw.New(o)(mux), mux, tr, reg, lines
}

// New around the router gives it its route context: routing, URL
// parameters, r.PathValue, r.Pattern, sub-routers, groups, the router's
// own 404 and 405, its middleware and recovery all behave as with New
// inside it, the route context of one request is clean for the next, and
// Trace runs with the request id and the route context, around the rest.
func TestNewAroundTheRouter(t *testing.T) {
	h, _, tr, reg, lines := newAround(t)
	tests := []struct {
		method, path string
		code         int
		body         string // a substring of the body
		route        string // the route pattern the trace middleware saw
	}{
		{"GET", "/hello/ann", 200, "hello ann ann true; pattern=/hello/{name} r.Pattern=/hello/{name} keys=[name] values=[ann] patterns=[/hello/{name}] id=true", "/hello/{name}"},
		{"GET", "/api/users/7", 200, "pattern=/api/users/{id} r.Pattern=/api/users/{id} keys=[* id] values=[ 7] patterns=[/api/* /users/{id}] id=true", "/api/users/{id}"},
		{"GET", "/hello/bob", 200, "hello bob bob true; pattern=/hello/{name} r.Pattern=/hello/{name} keys=[name] values=[bob] patterns=[/hello/{name}] id=true", "/hello/{name}"},
		{"GET", "/files/a/b.txt", 200, "pattern=/files/{dir}/{file} r.Pattern=/files/{dir}/{file} keys=[* dir file] values=[ a b.txt] patterns=[/files/* /{dir}/{file}] id=true", "/files/{dir}/{file}"},
		{"GET", "/grouped", 200, "pattern=/grouped r.Pattern=/grouped keys=[] values=[] patterns=[/grouped] id=true", "/grouped"},
		{"HEAD", "/hello/cy", 200, "", "/hello/{name}"},
		{"GET", "/nope", 404, "custom 404", ""},
		{"GET", "/files/nope", 404, "custom 404", "/files/*"},
		{"POST", "/hello/ann", 405, "custom 405", ""},
		{"GET", "/panic", 500, "internal server error", "/panic"},
		{"GET", "/panic-in-404", 500, "internal server error", ""},
		{"POST", "/hello/big", 413, "too large", ""},
	}
	for _, tt := range tests {
		var body io.Reader
		if tt.code == 413 {
			body = strings.NewReader("123456789")
		}
		req := httptest.NewRequest(tt.method, tt.path, body)
		req.Header.Set("Trace", "trace-"+tt.path)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.body) {
			t.Errorf("%s %s = %d %q; want %d and %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code, tt.body)
		}
		if !tr.idBefore || !tr.routesBefore || tr.patternAfter != tt.route || tr.status != tt.code {
			t.Errorf("%s %s: the trace middleware saw id %v, route context %v before, pattern %q and status %d after; want true, true, %q and %d",
				tt.method, tt.path, tr.idBefore, tr.routesBefore, tr.patternAfter, tr.status, tt.route, tt.code)
		}
	}

	want := map[string]float64{
		"public GET /hello/{name} 200":       2,
		"public GET /api/users/{id} 200":     1,
		"public GET /files/{dir}/{file} 200": 1,
		"public GET /grouped 200":            1,
		"public HEAD /hello/{name} 200":      1,
		"public GET unmatched 404":           1,
		"public GET /files/* 404":            1,
		"public POST unmatched 405":          1,
		"public GET /panic 500":              1,
		"public GET unmatched 500":           1,
		"public POST unmatched 413":          1,
	}
	got := counts(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("http_requests_total{%s} = %v; want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("http_requests_total = %v; want %v", got, want)
	}

	ls := lines()
	if len(ls) != len(tests) {
		t.Fatalf("%d access lines; want %d:\n%s", len(ls), len(tests), strings.Join(ls, "\n"))
	}
	for _, l := range ls {
		var d line
		if err := json.Unmarshal([]byte(l), &d); err != nil {
			t.Fatalf("access line %s: %v", l, err)
		}
		if d.RequestID == "" || d.TraceID != "trace-"+d.Path {
			t.Errorf("access line %s: want a request id and the trace id trace-%s", l, d.Path)
		}
	}
}

// New around a router mounted on another one routes with the route
// context of the router above, as chi does for a sub-router.
func TestNewAroundAMountedRouter(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := httpmw.NewMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	sub := chi.NewRouter()
	sub.Get("/{x}", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, seenRoute(r)) })
	top := chi.NewRouter()
	top.Mount("/outer", httpmw.New(httpmw.Options{Server: "public", RequestID: true, Metrics: m})(sub))

	rec := httptest.NewRecorder()
	top.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/outer/y", nil))
	if want := "pattern=/outer/{x} r.Pattern=/outer/{x} keys=[* x] values=[ y] patterns=[/outer/* /{x}] id=true"; rec.Body.String() != want {
		t.Errorf("GET /outer/y = %q; want %q", rec.Body.String(), want)
	}
	if got := counts(t, reg); got["public GET /outer/{x} 200"] != 1 {
		t.Errorf("http_requests_total = %v; want public GET /outer/{x} 200 once", got)
	}
}
