package httpmw_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/internal/accesslog"
	"github.com/svc-dev/svc/internal/httpmw"
	"github.com/svc-dev/svc/internal/tracing"
)

// hello is the trivial handler of every throughput comparison
// (docs/benchmarks.md); internal/bench serves the same one.
func hello(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "hello\n")
}

// publicStack is svc's public middleware as svc's publicRouter builds it:
// one pass around the router, closing after chunked requests, with
// request ids, the route context, tracing with export off (as by
// default: Options.Extract; with traceMW, the tracing middleware as
// Options.Trace instead, as before 2026-11-28), metrics, the access log
// (JSON lines to io.Discard through an accesslog.Writer), panic recovery
// and the body limit (4 MiB, the default).
func publicStack(b *testing.B, access, traceMW bool) http.Handler {
	m, err := httpmw.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	var w *accesslog.Writer
	if access {
		w = accesslog.New(io.Discard, accesslog.Options{Service: "bench"})
		b.Cleanup(func() { _ = w.Close() })
	}
	tr, err := tracing.New(context.Background(), tracing.Options{Service: "bench", Getenv: func(string) (string, bool) { return "", false }})
	if err != nil {
		b.Fatal(err)
	}
	r := chi.NewRouter()
	r.Get("/hello/{name}", hello)
	o := httpmw.Options{
		Server:       "public",
		CloseChunked: true,
		RequestID:    true,
		Metrics:      m,
		Access:       w,
		TraceID:      tracing.TraceID,
		Extract:      tr.ExtractHeaders,
		Recover:      true,
		Log:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
		MaxBodyBytes: 4 << 20,
	}
	if traceMW {
		o.Extract, o.Trace = nil, tr.Middleware("public")
	}
	return httpmw.New(o)(r)
}

func bareChi() http.Handler {
	r := chi.NewRouter()
	r.Get("/hello/{name}", hello)
	return r
}

// BenchmarkChain compares svc's public middleware chain with bare chi
// serving the same handler, in process (no network):
//
//	go test -run '^$' -bench Chain -benchmem -count 6 ./internal/httpmw
func BenchmarkChain(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    func(*testing.B) http.Handler
	}{
		{"bare-chi", func(*testing.B) http.Handler { return bareChi() }},
		{"svc-access-off", func(b *testing.B) http.Handler { return publicStack(b, false, false) }},
		{"svc-access-on", func(b *testing.B) http.Handler { return publicStack(b, true, false) }},
		{"svc-access-on-trace-middleware", func(b *testing.B) http.Handler { return publicStack(b, true, true) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			h := bc.h(b)
			req := httptest.NewRequest(http.MethodGet, "/hello/ann", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// BenchmarkMiddleware measures each middleware alone around hello.
func BenchmarkMiddleware(b *testing.B) {
	m, err := httpmw.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	access := accesslog.New(io.Discard, accesslog.Options{Service: "bench"})
	defer access.Close()
	for _, bc := range []struct {
		name string
		mw   func(http.Handler) http.Handler
	}{
		{"none", func(h http.Handler) http.Handler { return h }},
		{"CloseChunked", httpmw.CloseChunked()},
		{"RequestID", httpmw.RequestID()},
		{"Observe", httpmw.Observe("public", m, log, nil)},
		{"Observe+access", httpmw.Observe("public", m, log, access)},
		{"Recoverer", httpmw.Recoverer(log)},
		{"BodyLimit", httpmw.BodyLimit(4 << 20)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := chi.NewRouter()
			r.Use(bc.mw)
			r.Get("/hello/{name}", hello)
			req := httptest.NewRequest(http.MethodGet, "/hello/ann", nil)
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
