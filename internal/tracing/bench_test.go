package tracing_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/internal/tracing"
)

// discard is a ResponseWriter that allocates nothing, so the benchmarks
// count the middleware's allocations only.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

// sink is a collector that reads and drops what it is sent, so the
// benchmarks of export on count the exporter's work, not a receiver's.
func sink(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(srv.Close)
	return srv.URL
}

// BenchmarkMiddleware serves GET /hello/{name} through chi with no tracing
// middleware, with export off (with and without an inbound traceparent),
// with export on but OTEL_TRACES_SAMPLER=always_off (the middleware's own cost),
// and with export on (every request sampled and exported in the
// background to a local sink).
func BenchmarkMiddleware(b *testing.B) {
	off, _ := tracing.New(context.Background(), tracing.Options{Service: "bench", Getenv: env()})
	on, _ := tracing.New(context.Background(), tracing.Options{Service: "bench", Getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", sink(b))})
	unsampled, _ := tracing.New(context.Background(), tracing.Options{Service: "bench", Getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", sink(b), "OTEL_TRACES_SAMPLER", "always_off")})
	b.Cleanup(func() { on.Shutdown(context.Background()) })
	for _, bc := range []struct {
		name        string
		mw          func(http.Handler) http.Handler
		traceparent bool
	}{
		{"none", nil, false},
		{"off", off.Middleware("public"), false},
		{"off-traceparent", off.Middleware("public"), true},
		{"on", on.Middleware("public"), false},
		{"on-traceparent", on.Middleware("public"), true},
		{"on-unsampled", unsampled.Middleware("public"), false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := chi.NewRouter()
			if bc.mw != nil {
				r.Use(bc.mw)
			}
			r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
			req := httptest.NewRequest(http.MethodGet, "/hello/world", nil)
			if bc.traceparent {
				req.Header.Set("Traceparent", inHeader)
			}
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				r.ServeHTTP(w, req)
			}
		})
	}
}

// BenchmarkTransport sends a request through Transport to a base that
// answers at once: the cost of propagation and of client spans.
func BenchmarkTransport(b *testing.B) {
	off, _ := tracing.New(context.Background(), tracing.Options{Service: "bench", Getenv: env()})
	on, _ := tracing.New(context.Background(), tracing.Options{Service: "bench", Getenv: env("OTEL_EXPORTER_OTLP_ENDPOINT", sink(b))})
	b.Cleanup(func() { on.Shutdown(context.Background()) })
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	})
	// ctx carries a trace context, as the context of an inbound request
	// with a traceparent does.
	var ctx context.Context
	h := off.Middleware("public")(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { ctx = r.Context() }))
	in := httptest.NewRequest(http.MethodGet, "/", nil)
	in.Header.Set("Traceparent", inHeader)
	h.ServeHTTP(httptest.NewRecorder(), in)

	for _, bc := range []struct {
		name string
		rt   http.RoundTripper
		ctx  context.Context
	}{
		{"none", base, ctx},
		{"off-no-context", off.Transport(base), context.Background()},
		{"off", off.Transport(base), ctx},
		{"on", on.Transport(base), ctx},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req, _ := http.NewRequestWithContext(bc.ctx, http.MethodGet, "http://callee/x", nil)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := bc.rt.RoundTrip(req)
				if err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}

// BenchmarkNew is the startup cost.
func BenchmarkNew(b *testing.B) {
	for _, bc := range []struct {
		name string
		env  func(string) (string, bool)
	}{
		{"off", env()},
		{"on", env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tr, err := tracing.New(context.Background(), tracing.Options{Service: "bench", Getenv: bc.env})
				if err != nil {
					b.Fatal(err)
				}
				tr.Shutdown(context.Background())
			}
		})
	}
}
