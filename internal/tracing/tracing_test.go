package tracing_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/goleak"

	"github.com/svc-dev/svc/internal/httpmw"
	"github.com/svc-dev/svc/internal/tracing"
	"github.com/svc-dev/svc/internal/tracing/tracingtest"
)

const (
	inTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	inParent = "00f067aa0ba902b7"
	inHeader = "00-" + inTrace + "-" + inParent + "-01"
)

func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// seen records the headers of the requests a downstream service got.
type seen struct {
	mu      sync.Mutex // guards headers
	headers []http.Header
}

func (s *seen) last(t *testing.T) http.Header {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.headers) == 0 {
		t.Fatal("the downstream service got no request")
	}
	return s.headers[len(s.headers)-1]
}

// chain is a caller service, instrumented by tr, whose GET /hello/{name}
// calls a downstream service through tr.Transport with the inbound
// request's context.
type chain struct {
	caller     http.Handler
	downstream *seen
}

func newChain(t *testing.T, tr *tracing.Tracing) *chain {
	t.Helper()
	down := &seen{}
	ds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		down.mu.Lock()
		down.headers = append(down.headers, r.Header.Clone())
		down.mu.Unlock()
		io.WriteString(w, "downstream")
	}))
	t.Cleanup(ds.Close)
	client := &http.Client{Transport: tr.Transport(nil)}
	r := chi.NewRouter()
	r.Use(httpmw.RequestID(), tr.Middleware("public"))
	r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
		req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, ds.URL+"/x", nil)
		resp, err := client.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		io.WriteString(w, "trace "+tracing.TraceID(r.Context()))
	})
	return &chain{caller: r, downstream: down}
}

// call sends GET /hello/world to the caller with headers h.
func (c *chain) call(t *testing.T, h map[string]string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/hello/world", nil)
	for k, v := range h {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	c.caller.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /hello/world = %d %s; want 200", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func newTracing(t *testing.T, getenv func(string) (string, bool)) *tracing.Tracing {
	t.Helper()
	tr, err := tracing.New(context.Background(), tracing.Options{Service: "caller", Version: "1.2.3", Instance: "i-1", Getenv: getenv})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return tr
}

func shutdown(t *testing.T, tr *tracing.Tracing) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestServerAndClientSpans(t *testing.T) {
	t.Parallel()
	rcv := tracingtest.NewReceiver(t)
	tr := newTracing(t, env("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL))
	if !tr.Exporting() {
		t.Fatal("Exporting() = false with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	c := newChain(t, tr)
	body := c.call(t, map[string]string{"Traceparent": inHeader, "X-Request-Id": "req-42"})
	shutdown(t, tr)

	spans := rcv.Spans()
	server, ok := tracingtest.Find(spans, "GET /hello/{name}")
	if !ok {
		t.Fatalf("no server span named %q in %+v", "GET /hello/{name}", spans)
	}
	client, ok := tracingtest.Find(spans, "GET")
	if !ok {
		t.Fatalf("no client span named GET in %+v", spans)
	}
	for _, c := range []struct{ what, got, want string }{
		{"server kind", server.Kind, "server"},
		{"server trace id", server.TraceID, inTrace},
		{"server parent", server.ParentSpanID, inParent},
		{"server http.route", server.Attributes["http.route"], "/hello/{name}"},
		{"server svc.server", server.Attributes["svc.server"], "public"},
		{"service.name", server.Service, "caller"},
		{"service.version", server.Resource["service.version"], "1.2.3"},
		{"service.instance.id", server.Resource["service.instance.id"], "i-1"},
		{"client kind", client.Kind, "client"},
		{"client trace id", client.TraceID, inTrace},
		{"client parent", client.ParentSpanID, server.SpanID},
		{"downstream traceparent", c.downstream.last(t).Get("Traceparent"), "00-" + inTrace + "-" + client.SpanID + "-01"},
		{"downstream X-Request-Id", c.downstream.last(t).Get("X-Request-Id"), "req-42"},
		{"TraceID in the handler", body, "trace " + inTrace},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q; want %q", c.what, c.got, c.want)
		}
	}
	if len(spans) != 2 {
		t.Errorf("got %d spans; want 2 (server, client): %+v", len(spans), spans)
	}
}

func TestUnmatchedRouteSpanIsTheMethod(t *testing.T) {
	t.Parallel()
	rcv := tracingtest.NewReceiver(t)
	tr := newTracing(t, env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", rcv.URL+"/v1/traces", "OTEL_SERVICE_NAME", "renamed"))
	r := chi.NewRouter()
	r.Use(tr.Middleware("private"))
	r.Get("/a", func(http.ResponseWriter, *http.Request) {})
	for _, m := range []string{"GET", "BREW"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(m, "/nowhere/"+m, nil))
	}
	shutdown(t, tr)
	var names []string
	for _, s := range rcv.Spans() {
		names = append(names, s.Name)
		if s.Service != "renamed" {
			t.Errorf("service.name = %q; want OTEL_SERVICE_NAME's %q", s.Service, "renamed")
		}
	}
	if got, want := strings.Join(names, ","), "GET,HTTP"; got != want {
		t.Errorf("span names = %s; want %s (no raw paths, no invented methods)", got, want)
	}
}

// TestExportOffStillPropagates: with export off, nothing is sent, and the
// caller's trace context, baggage and request id reach the downstream
// service unchanged.
func TestExportOffStillPropagates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"no endpoint", nil},
		{"OTEL_SDK_DISABLED", []string{"OTEL_SDK_DISABLED", "true", "OTEL_EXPORTER_OTLP_ENDPOINT", "RECEIVER"}},
		{"OTEL_TRACES_EXPORTER=none", []string{"OTEL_TRACES_EXPORTER", "none", "OTEL_EXPORTER_OTLP_ENDPOINT", "RECEIVER"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := tracingtest.NewReceiver(t)
			for i := range tc.env {
				if tc.env[i] == "RECEIVER" {
					tc.env[i] = rcv.URL
				}
			}
			tr := newTracing(t, env(tc.env...))
			if tr.Exporting() {
				t.Fatal("Exporting() = true; want false")
			}
			c := newChain(t, tr)
			body := c.call(t, map[string]string{"Traceparent": inHeader, "Tracestate": "vendor=x", "Baggage": "user=alice", "X-Request-Id": "req-7"})
			h := c.downstream.last(t)
			for k, want := range map[string]string{"Traceparent": inHeader, "Tracestate": "vendor=x", "Baggage": "user=alice", "X-Request-Id": "req-7"} {
				if got := h.Get(k); got != want {
					t.Errorf("downstream %s = %q; want %q", k, got, want)
				}
			}
			if want := "trace " + inTrace; body != want {
				t.Errorf("TraceID in the handler = %q; want %q", body, want)
			}

			// Without a traceparent nothing is invented; the generated
			// request id still travels.
			c.call(t, nil)
			h = c.downstream.last(t)
			if got := h.Get("Traceparent"); got != "" {
				t.Errorf("downstream Traceparent = %q without an inbound one; want none", got)
			}
			if got := h.Get("X-Request-Id"); got == "" {
				t.Error("downstream X-Request-Id is empty; want the generated request id")
			}
			shutdown(t, tr)
			if n := rcv.Exports(); n != 0 {
				t.Errorf("%d exports with export off; want 0", n)
			}
		})
	}
}

func TestSamplerVariables(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sampler, arg string
		wantSpans    bool
		wantFlags    string // of the forwarded traceparent
	}{
		{"always_off", "", false, "00"},
		{"always_on", "", true, "01"},
		{"traceidratio", "0", false, "00"},
		{"parentbased_traceidratio", "0", true, "01"}, // the sampled parent decides
		{"parentbased_always_off", "", true, "01"},    // likewise
	} {
		t.Run(tc.sampler+"/"+tc.arg, func(t *testing.T) {
			t.Parallel()
			rcv := tracingtest.NewReceiver(t)
			tr := newTracing(t, env("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL, "OTEL_TRACES_SAMPLER", tc.sampler, "OTEL_TRACES_SAMPLER_ARG", tc.arg))
			c := newChain(t, tr)
			c.call(t, map[string]string{"Traceparent": inHeader})
			shutdown(t, tr)
			if got := len(rcv.Spans()) > 0; got != tc.wantSpans {
				t.Errorf("spans exported = %v; want %v", got, tc.wantSpans)
			}
			tp := c.downstream.last(t).Get("Traceparent")
			if !strings.HasPrefix(tp, "00-"+inTrace+"-") || !strings.HasSuffix(tp, "-"+tc.wantFlags) {
				t.Errorf("downstream Traceparent = %q; want trace %s with flags %s", tp, inTrace, tc.wantFlags)
			}
		})
	}
}

// TestShutdownFlushes: spans still in the batch (whose delay is set far
// beyond the test) are exported by Shutdown. OTEL_BSP_SCHEDULE_DELAY is
// one of the variables the SDK reads from the process environment only.
func TestShutdownFlushes(t *testing.T) {
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "3600000")
	rcv := tracingtest.NewReceiver(t)
	tr := newTracing(t, env("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL))
	c := newChain(t, tr)
	c.call(t, nil)
	if n := rcv.Exports(); n != 0 {
		t.Fatalf("%d exports before Shutdown with an hour's batch delay; want 0", n)
	}
	shutdown(t, tr)
	if n := len(rcv.Spans()); n != 2 {
		t.Errorf("after Shutdown the receiver has %d spans; want 2", n)
	}
}

func TestTransportDoesNotModifyTheRequest(t *testing.T) {
	t.Parallel()
	tr := newTracing(t, env())
	var got http.Header
	rt := tr.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}))
	h := chi.NewRouter()
	h.Use(httpmw.RequestID(), tr.Middleware("public"))
	h.Get("/", func(w http.ResponseWriter, r *http.Request) {
		out, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, "http://callee/", nil)
		out.Header.Set("X-Mine", "1")
		if _, err := rt.RoundTrip(out); err != nil {
			t.Errorf("RoundTrip: %v", err)
		}
		if len(out.Header) != 1 {
			t.Errorf("the caller's request headers became %v; want only X-Mine", out.Header)
		}
	})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Header.Set("Traceparent", inHeader)
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got.Get("X-Mine") != "1" || got.Get("Traceparent") != inHeader || got.Get("X-Request-Id") == "" {
		t.Errorf("sent headers %v; want X-Mine, Traceparent and X-Request-Id", got)
	}
}

func TestRequestIDHeaderIsHTTPMW(t *testing.T) {
	if tracing.RequestIDHeader != httpmw.RequestIDHeader {
		t.Errorf("tracing.RequestIDHeader = %q; want httpmw's %q", tracing.RequestIDHeader, httpmw.RequestIDHeader)
	}
}

func TestTraceIDWithoutTrace(t *testing.T) {
	if got := tracing.TraceID(context.Background()); got != "" {
		t.Errorf("TraceID(Background) = %q; want \"\"", got)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCertificateThroughGetenv: the CA file for an https collector comes
// through Getenv like every other variable.
func TestCertificateThroughGetenv(t *testing.T) {
	t.Parallel()
	rcv := tracingtest.NewTLSReceiver(t)
	tr := newTracing(t, env("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL, "OTEL_EXPORTER_OTLP_CERTIFICATE", rcv.CAFile))
	newChain(t, tr).call(t, nil)
	shutdown(t, tr)
	if n := len(rcv.Spans()); n != 2 {
		t.Errorf("the https receiver got %d spans; want 2", n)
	}
	for _, bad := range [][]string{
		{"OTEL_EXPORTER_OTLP_CERTIFICATE", "/no/such/ca.pem"},
		{"OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", rcv.CAFile},
	} {
		_, err := tracing.New(context.Background(), tracing.Options{Getenv: env(append(bad, "OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL)...)})
		if err == nil || !strings.Contains(err.Error(), "CERTIFICATE") {
			t.Errorf("New with %s=%s: error %v; want one naming the variable", bad[0], bad[1], err)
		}
	}
}

// TestShutdownLeavesNoGoroutine: after Shutdown (and the collector gone)
// no goroutine of the batch processor or the exporter is left running:
// svc's own tests check for leaks with goleak.
func TestShutdownLeavesNoGoroutine(t *testing.T) {
	rcv := tracingtest.NewReceiver(t)
	ignore := goleak.IgnoreCurrent()
	tr := newTracing(t, env("OTEL_EXPORTER_OTLP_ENDPOINT", rcv.URL))
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "work")
	span.End()
	shutdown(t, tr)
	if len(rcv.Spans()) != 1 {
		t.Fatalf("got %d spans; want 1", len(rcv.Spans()))
	}
	rcv.Close() // its connection goroutines too
	goleak.VerifyNone(t, ignore)
}

// The startup line names the endpoint without the credentials it may
// carry.
func TestStartupLineRedactsTheEndpoint(t *testing.T) {
	var logs strings.Builder
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://otel:s3cret@127.0.0.1:1/?api_key=k3y"}
	tr, err := tracing.New(context.Background(), tracing.Options{Service: "red", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Getenv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	out := logs.String()
	if !strings.Contains(out, "exporting spans") {
		t.Fatalf("no startup line: %s", out)
	}
	for _, secret := range []string{"s3cret", "k3y"} {
		if strings.Contains(out, secret) {
			t.Errorf("the startup line shows %q: %s", secret, out)
		}
	}
}
