package tracing

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/svc-dev/svc/internal/httpmw"
	"github.com/svc-dev/svc/internal/respwriter"
)

const (
	testTrace  = "4bf92f3577b34da6a3ce929d0e0e4736"
	testParent = "00f067aa0ba902b7"
	testHeader = "00-" + testTrace + "-" + testParent + "-01"
)

// recorded returns a Tracing with export on whose spans go, as each one
// ends, to the returned in-memory exporter: what New builds, but for the
// exporter, so the tests read every span's fields without a collector
// and without waiting.
func recorded(t *testing.T, opts ...sdktrace.TracerProviderOption) (*Tracing, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(append([]sdktrace.TracerProviderOption{sdktrace.WithSyncer(exp)}, opts...)...)
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return &Tracing{
		prop:     propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		provider: tp,
		tracer:   tp,
		log:      slog.New(slog.DiscardHandler),
	}, exp
}

// attrs is a span's attributes by key, in their Go form (int64, string).
func attrs(kvs []attribute.KeyValue) map[string]any {
	m := make(map[string]any, len(kvs))
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.AsInterface()
	}
	return m
}

// only returns the one span exported, failing the test if there are
// more or none.
func only(t *testing.T, exp *tracetest.InMemoryExporter) tracetest.SpanStub {
	t.Helper()
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("got %d spans; want 1: %+v", len(spans), spans)
	}
	return spans[0]
}

func diffAttrs(t *testing.T, got []attribute.KeyValue, want map[string]any) {
	t.Helper()
	g := attrs(got)
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if g[k] != want[k] {
			t.Errorf("attribute %s = %v (%T); want %v (%T)", k, g[k], g[k], want[k], want[k])
		}
	}
	for _, k := range slices.Sorted(maps.Keys(g)) {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected attribute %s = %v", k, g[k])
		}
	}
}

func TestServerSpan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		req      func() *http.Request
		handler  http.HandlerFunc
		wantName string
		wantErr  bool
		want     map[string]any
	}{{
		name: "route, remote parent, every request attribute",
		req: func() *http.Request {
			r := httptest.NewRequest(http.MethodGet, "/hello/ann", nil)
			r.Host = "orders.example:8010"
			r.RemoteAddr = "10.1.2.3:5555"
			r.Header.Set("User-Agent", "curl/8.5")
			r.Header.Set("Traceparent", testHeader)
			return r
		},
		handler:  func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello ann") },
		wantName: "GET /hello/{name}",
		want: map[string]any{
			"svc.server": "public", "http.request.method": "GET", "url.scheme": "http", "url.path": "/hello/ann",
			"server.address": "orders.example", "server.port": int64(8010),
			"network.peer.address": "10.1.2.3", "network.peer.port": int64(5555),
			"user_agent.original": "curl/8.5", "network.protocol.version": "1.1",
			"http.route": "/hello/{name}", "http.response.status_code": int64(200), "http.response.body.size": int64(9),
		},
	}, {
		name: "https, HTTP/2, IPv6, no port in Host, nothing written",
		req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "https://[::1]/hello/bob", nil)
			r.RemoteAddr = "[2001:db8::7]:40000"
			r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/2.0", 2, 0
			return r
		},
		handler:  func(http.ResponseWriter, *http.Request) {},
		wantName: "POST /hello/{name}",
		want: map[string]any{
			"svc.server": "public", "http.request.method": "POST", "url.scheme": "https", "url.path": "/hello/bob",
			"server.address": "::1", "network.peer.address": "2001:db8::7", "network.peer.port": int64(40000),
			"network.protocol.version": "2", "http.route": "/hello/{name}", "http.response.status_code": int64(200),
		},
	}, {
		name:     "5xx is an error",
		req:      func() *http.Request { return httptest.NewRequest(http.MethodGet, "http://h/hello/x", nil) },
		handler:  func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) },
		wantName: "GET /hello/{name}",
		wantErr:  true,
		want: map[string]any{
			"svc.server": "public", "http.request.method": "GET", "url.scheme": "http", "url.path": "/hello/x",
			"server.address": "h", "network.peer.address": "192.0.2.1", "network.peer.port": int64(1234),
			"network.protocol.version": "1.1", "http.route": "/hello/{name}",
			"http.response.status_code": int64(503), "error.type": "503",
		},
	}, {
		name:     "4xx is not a server error",
		req:      func() *http.Request { return httptest.NewRequest(http.MethodGet, "http://h/hello/x", nil) },
		handler:  func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "no", http.StatusNotFound) },
		wantName: "GET /hello/{name}",
		want: map[string]any{
			"svc.server": "public", "http.request.method": "GET", "url.scheme": "http", "url.path": "/hello/x",
			"server.address": "h", "network.peer.address": "192.0.2.1", "network.peer.port": int64(1234),
			"network.protocol.version": "1.1", "http.route": "/hello/{name}",
			"http.response.status_code": int64(404), "http.response.body.size": int64(3),
		},
	}, {
		name:     "no route: the method only, no http.route",
		req:      func() *http.Request { return httptest.NewRequest(http.MethodDelete, "http://h/nowhere/secret-id", nil) },
		wantName: "DELETE",
		want: map[string]any{
			"svc.server": "public", "http.request.method": "DELETE", "url.scheme": "http", "url.path": "/nowhere/secret-id",
			"server.address": "h", "network.peer.address": "192.0.2.1", "network.peer.port": int64(1234),
			"network.protocol.version": "1.1", "http.response.status_code": int64(404), "http.response.body.size": int64(19),
		},
	}, {
		name: "an unknown method: HTTP, _OTHER and the original, bounded",
		req: func() *http.Request {
			return httptest.NewRequest("BREW"+strings.Repeat("X", 40), "http://h/hello/x", nil)
		},
		wantName: "HTTP",
		want: map[string]any{
			"svc.server": "public", "http.request.method": "_OTHER", "http.request.method_original": "BREW" + strings.Repeat("X", 28),
			"url.scheme": "http", "url.path": "/hello/x",
			"server.address": "h", "network.peer.address": "192.0.2.1", "network.peer.port": int64(1234),
			"network.protocol.version": "1.1", "http.response.status_code": int64(405),
		},
	}, {
		name:     "methods are case-sensitive",
		req:      func() *http.Request { return httptest.NewRequest("get", "http://h/hello/x", nil) },
		wantName: "HTTP",
		want: map[string]any{
			"svc.server": "public", "http.request.method": "_OTHER", "http.request.method_original": "get",
			"url.scheme": "http", "url.path": "/hello/x",
			"server.address": "h", "network.peer.address": "192.0.2.1", "network.peer.port": int64(1234),
			"network.protocol.version": "1.1", "http.response.status_code": int64(405),
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, exp := recorded(t)
			r := chi.NewRouter()
			r.Use(tr.Middleware("public"))
			r.Get("/hello/{name}", tc.handler)
			r.Post("/hello/{name}", tc.handler)
			r.ServeHTTP(httptest.NewRecorder(), tc.req())
			s := only(t, exp)
			if s.Name != tc.wantName {
				t.Errorf("name = %q; want %q", s.Name, tc.wantName)
			}
			if s.SpanKind != trace.SpanKindServer {
				t.Errorf("kind = %v; want server", s.SpanKind)
			}
			if got := s.Status.Code == codes.Error; got != tc.wantErr {
				t.Errorf("status = %v; want error %v", s.Status, tc.wantErr)
			}
			if s.InstrumentationScope.Name != scopeName || s.InstrumentationScope.SchemaURL != semconvSchemaURL {
				t.Errorf("scope = %+v; want %s, %s", s.InstrumentationScope, scopeName, semconvSchemaURL)
			}
			diffAttrs(t, s.Attributes, tc.want)
		})
	}
}

// TestServerSpanParent: a request with a traceparent is served in a
// child of the caller's span, a request without one in a new trace; the
// handler's context has the server span (TraceID finds it) and the
// baggage that came with the request.
func TestServerSpanParent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		traceparent string
		wantParent  string // "" for a root
	}{
		{"with traceparent", testHeader, testParent},
		{"without", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, exp := recorded(t)
			var inHandler trace.SpanContext
			var traceID, member string
			h := tr.Middleware("private")(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				inHandler = trace.SpanContextFromContext(r.Context())
				traceID = TraceID(r.Context())
				member = baggage.FromContext(r.Context()).Member("user").Value()
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.traceparent != "" {
				req.Header.Set("Traceparent", tc.traceparent)
			}
			req.Header.Set("Baggage", "user=alice")
			h.ServeHTTP(httptest.NewRecorder(), req)
			s := only(t, exp)
			if s.SpanContext.SpanID() != inHandler.SpanID() || !inHandler.IsValid() {
				t.Errorf("the handler's span %v is not the server span %v", inHandler.SpanID(), s.SpanContext.SpanID())
			}
			if traceID != s.SpanContext.TraceID().String() {
				t.Errorf("TraceID in the handler = %q; want the span's %s", traceID, s.SpanContext.TraceID())
			}
			if member != "alice" {
				t.Errorf("baggage user in the handler = %q; want alice", member)
			}
			gotParent := ""
			if s.Parent.IsValid() {
				gotParent = s.Parent.SpanID().String()
				if !s.Parent.IsRemote() || s.SpanContext.TraceID().String() != testTrace {
					t.Errorf("parent %+v, trace %s; want the remote caller's in trace %s", s.Parent, s.SpanContext.TraceID(), testTrace)
				}
			}
			if gotParent != tc.wantParent {
				t.Errorf("parent span = %q; want %q", gotParent, tc.wantParent)
			}
		})
	}
}

// TestServerSpanPanic: a panic that goes through the middleware ends the
// span as failed, with the exception event, and goes on unchanged; inside
// svc's pass, whose recovery runs below tracing, a recovered panic is a
// 500 and a re-panicked one (http.ErrAbortHandler) still ends the span.
func TestServerSpanPanic(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, tc := range []struct {
		name       string
		pass       bool // inside httpmw's pass with Recover
		value      any
		wantPanic  any
		wantStatus any // http.response.status_code, nil for none
		wantType   string
	}{
		{"bare", false, boom, boom, nil, "panic"},
		{"in the pass, recovered", true, boom, nil, int64(500), "500"},
		{"in the pass, abort handler", true, http.ErrAbortHandler, http.ErrAbortHandler, nil, "panic"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, exp := recorded(t)
			r := chi.NewRouter()
			var h http.Handler = r
			if tc.pass {
				h = httpmw.New(httpmw.Options{Trace: tr.Middleware("public"), Recover: true, Log: slog.New(slog.DiscardHandler)})(r)
			} else {
				r.Use(tr.Middleware("public"))
			}
			r.Get("/p/{id}", func(http.ResponseWriter, *http.Request) { panic(tc.value) })
			got := func() (v any) {
				defer func() { v = recover() }()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/p/1", nil))
				return nil
			}()
			if got != tc.wantPanic {
				t.Errorf("panic out of the handler = %v; want %v", got, tc.wantPanic)
			}
			s := only(t, exp) // ended: only ended spans are exported
			if s.Name != "GET /p/{id}" || s.Status.Code != codes.Error {
				t.Errorf("span %q, status %+v; want GET /p/{id}, error", s.Name, s.Status)
			}
			a := attrs(s.Attributes)
			if a["http.response.status_code"] != tc.wantStatus || a["error.type"] != tc.wantType {
				t.Errorf("status code %v, error.type %v; want %v, %v", a["http.response.status_code"], a["error.type"], tc.wantStatus, tc.wantType)
			}
			hasException := slices.ContainsFunc(s.Events, func(e sdktrace.Event) bool { return e.Name == "exception" })
			if wantException := tc.wantPanic != nil; hasException != wantException {
				t.Errorf("exception event: %v; want %v (events %+v)", hasException, wantException, s.Events)
			}
		})
	}
}

// TestServerSpanUnsampled: a request sampled out gets a span that only
// carries the trace on: nothing exported, the writer not wrapped.
func TestServerSpanUnsampled(t *testing.T) {
	t.Parallel()
	tr, exp := recorded(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	rec := httptest.NewRecorder()
	var sc trace.SpanContext
	var got http.ResponseWriter
	tr.Middleware("public")(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, sc = w, trace.SpanContextFromContext(r.Context())
	})).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported; want 0", n)
	}
	if got != rec {
		t.Errorf("the handler's writer is %T; want net/http's, unwrapped", got)
	}
	if !sc.IsValid() || sc.IsSampled() {
		t.Errorf("the handler's span context %+v; want a valid one, not sampled", sc)
	}
}

// TestServerSpanSharesTheWriter: given a *respwriter.Writer (an outer
// step's), the span records from it and hands it on: the response is
// wrapped once, and the handler's writes reach the span.
func TestServerSpanSharesTheWriter(t *testing.T) {
	t.Parallel()
	tr, exp := recorded(t)
	given := &respwriter.Writer{ResponseWriter: httptest.NewRecorder()}
	var got http.ResponseWriter
	tr.Middleware("public")(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		got = w
		w.WriteHeader(http.StatusTeapot)
		_, _ = io.WriteString(w, "tea")
	})).ServeHTTP(given, httptest.NewRequest(http.MethodGet, "/", nil))
	if got != given {
		t.Errorf("the handler's writer is %T %p; want the one given, %p", got, got, given)
	}
	a := attrs(only(t, exp).Attributes)
	if a["http.response.status_code"] != int64(http.StatusTeapot) || a["http.response.body.size"] != int64(3) {
		t.Errorf("status %v, size %v; want 418, 3", a["http.response.status_code"], a["http.response.body.size"])
	}
}

// TestServerWriter: the handler's writer passes on what net/http's gives
// (flushing, deadlines and full duplex through http.ResponseController,
// hijacking), and counts what io.Copy and io.WriteString write.
func TestServerWriter(t *testing.T) {
	t.Parallel()
	tr, exp := recorded(t)
	r := chi.NewRouter()
	r.Use(tr.Middleware("public"))
	r.Get("/stream", func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for _, err := range []error{
			rc.SetReadDeadline(time.Now().Add(time.Minute)),
			rc.SetWriteDeadline(time.Now().Add(time.Minute)),
			rc.EnableFullDuplex(),
		} {
			if err != nil {
				t.Errorf("ResponseController: %v", err)
			}
		}
		io.WriteString(w, "abc")
		if err := rc.Flush(); err != nil {
			t.Errorf("Flush: %v", err)
		}
		io.Copy(w, strings.NewReader("defg")) // ReadFrom
		w.(http.Flusher).Flush()
	})
	r.Get("/hijack", func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("Hijack: %v", err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
		buf.Flush()
	})
	// served says when a request's middleware, and so its span, is done.
	served := make(chan struct{}, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.ServeHTTP(w, req)
		served <- struct{}{}
	}))
	t.Cleanup(srv.Close)

	resp, err := srv.Client().Get(srv.URL + "/stream")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "abcdefg" {
		t.Errorf("body %q; want abcdefg", body)
	}
	resp, err = srv.Client().Get(srv.URL + "/hijack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Errorf("hijacked answer %d; want 204", resp.StatusCode)
	}

	<-served
	<-served
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("got %d spans; want 2", len(spans))
	}
	byName := map[string]map[string]any{}
	for _, s := range spans {
		byName[s.Name] = attrs(s.Attributes)
	}
	if a := byName["GET /stream"]; a["http.response.status_code"] != int64(200) || a["http.response.body.size"] != int64(7) {
		t.Errorf("stream span: status %v, size %v; want 200, 7", a["http.response.status_code"], a["http.response.body.size"])
	}
	if a := byName["GET /hijack"]; a == nil || a["http.response.status_code"] != nil {
		t.Errorf("hijack span attributes %v; want no status code (net/http sent none)", a)
	}
}

// rwBody is a response body that can be written: a 101's connection.
type rwBody struct {
	io.Reader
	written strings.Builder
	closed  bool
}

func (b *rwBody) Write(p []byte) (int, error) { return b.written.Write(p) }
func (b *rwBody) Close() error                { b.closed = true; return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var errRefused = errors.New("connection refused")

// TestClientSpan: a call's span, its attributes and status, and when it
// ends: on Close, on EOF, at once on an error or without a body.
func TestClientSpan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		method   string
		url      string
		resp     func(*http.Request) (*http.Response, error)
		endsAt   string // "once", "close", "eof"
		wantName string
		wantErr  bool // the span's status
		want     map[string]any
	}{{
		name:   "ends on Close; credentials, query and fragment left out",
		method: http.MethodGet,
		url:    "http://otel:s3cret@callee.example:8010/hello/ann?api_key=k3y#frag",
		resp: func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("hi")), Request: r}, nil
		},
		endsAt: "close", wantName: "GET",
		want: map[string]any{
			"http.request.method": "GET", "url.full": "http://callee.example:8010/hello/ann",
			"server.address": "callee.example", "server.port": int64(8010), "http.response.status_code": int64(200),
		},
	}, {
		name:   "ends on EOF; the scheme's port",
		method: http.MethodPost,
		url:    "https://callee.example/orders",
		resp: func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 201, Body: io.NopCloser(strings.NewReader("created")), Request: r}, nil
		},
		endsAt: "eof", wantName: "POST",
		want: map[string]any{
			"http.request.method": "POST", "url.full": "https://callee.example/orders",
			"server.address": "callee.example", "server.port": int64(443), "http.response.status_code": int64(201),
		},
	}, {
		name:   "a transport error ends it at once",
		method: http.MethodGet,
		url:    "http://[::1]:1/x",
		resp: func(*http.Request) (*http.Response, error) {
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errRefused}
		},
		endsAt: "once", wantName: "GET", wantErr: true,
		want: map[string]any{
			"http.request.method": "GET", "url.full": "http://[::1]:1/x",
			"server.address": "::1", "server.port": int64(1), "error.type": "net.OpError",
		},
	}, {
		name:   "a canceled call",
		method: http.MethodGet,
		url:    "http://callee/x",
		resp:   func(*http.Request) (*http.Response, error) { return nil, context.Canceled },
		endsAt: "once", wantName: "GET", wantErr: true,
		want: map[string]any{
			"http.request.method": "GET", "url.full": "http://callee/x",
			"server.address": "callee", "server.port": int64(80), "error.type": "context.Canceled",
		},
	}, {
		name:   "4xx is an error of the call; no body ends it at once",
		method: http.MethodDelete,
		url:    "http://callee/x",
		resp: func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 404, Body: http.NoBody, Request: r}, nil
		},
		endsAt: "once", wantName: "DELETE", wantErr: true,
		want: map[string]any{
			"http.request.method": "DELETE", "url.full": "http://callee/x",
			"server.address": "callee", "server.port": int64(80), "http.response.status_code": int64(404), "error.type": "404",
		},
	}, {
		name:   "an empty method is GET; a nil body ends it at once",
		method: "",
		url:    "http://callee/x",
		resp: func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 204, Body: nil, Request: r}, nil
		},
		endsAt: "once", wantName: "GET",
		want: map[string]any{
			"http.request.method": "GET", "url.full": "http://callee/x",
			"server.address": "callee", "server.port": int64(80), "http.response.status_code": int64(204),
		},
	}, {
		name:   "an unknown method is _OTHER",
		method: "PURGE",
		url:    "http://callee/x",
		resp: func(r *http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
		},
		endsAt: "once", wantName: "HTTP",
		want: map[string]any{
			"http.request.method": "_OTHER", "http.request.method_original": "PURGE", "url.full": "http://callee/x",
			"server.address": "callee", "server.port": int64(80), "http.response.status_code": int64(200),
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, exp := recorded(t)
			rt := tr.Transport(roundTripFunc(tc.resp))
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			before := req.Header.Clone()
			resp, err := rt.RoundTrip(req)
			if _, baseErr := tc.resp(req); (err != nil) != (baseErr != nil) {
				t.Fatalf("RoundTrip: %v; want base's error %v", err, baseErr)
			}
			if !equalHeaders(req.Header, before) {
				t.Errorf("the caller's headers became %v; want %v", req.Header, before)
			}
			if tc.endsAt != "once" {
				if n := len(exp.GetSpans()); n != 0 {
					t.Fatalf("%d spans ended before the body was done with; want 0", n)
				}
				switch tc.endsAt {
				case "eof":
					io.ReadAll(resp.Body)
				case "close":
					buf := make([]byte, 1)
					resp.Body.Read(buf) // not to the end
					if n := len(exp.GetSpans()); n != 0 {
						t.Fatalf("%d spans ended after a partial read; want 0", n)
					}
					resp.Body.Close()
				}
			}
			s := only(t, exp)
			if s.Name != tc.wantName || s.SpanKind != trace.SpanKindClient {
				t.Errorf("span %q of kind %v; want %q, client", s.Name, s.SpanKind, tc.wantName)
			}
			if got := s.Status.Code == codes.Error; got != tc.wantErr {
				t.Errorf("status %+v; want error %v", s.Status, tc.wantErr)
			}
			diffAttrs(t, s.Attributes, tc.want)
			// Anywhere in the span: attributes, name, status, events.
			if all := fmt.Sprintf("%+v", s); strings.Contains(all, "s3cret") || strings.Contains(all, "k3y") || strings.Contains(all, "otel:") {
				t.Errorf("the span carries a credential: %s", all)
			}
			if tc.endsAt != "once" {
				resp.Body.Close() // again: no second span, no panic
			}
			if n := len(exp.GetSpans()); n != 1 {
				t.Errorf("%d spans after a second Close; want 1", n)
			}
		})
	}
}

// TestClientSpanPropagates: the call is a child of the context's span;
// base gets a copy with the client span's traceparent, the caller's
// tracestate and baggage and the request id, and the caller's request
// is left as it was.
func TestClientSpanPropagates(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		ownID  string // the caller's own X-Request-Id
		wantID string
	}{
		{"request id from the context", "", "req-42"},
		{"the caller's own request id", "mine", "mine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, exp := recorded(t)
			var sent *http.Request
			rt := tr.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				sent = r
				return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
			}))
			// The context of an inbound request: the caller's trace,
			// baggage and request id.
			in := http.Header{"Traceparent": {testHeader}, "Tracestate": {"vendor=x"}, "Baggage": {"user=alice"}}
			ctx := tr.prop.Extract(context.Background(), propagation.HeaderCarrier(in))
			ctx = context.WithValue(ctx, middleware.RequestIDKey, "req-42")
			ctx, parent := tr.provider.Tracer("test").Start(ctx, "server")

			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://callee/x", nil)
			req.Header.Set("X-Mine", "1")
			if tc.ownID != "" {
				req.Header.Set(RequestIDHeader, tc.ownID)
			}
			before := req.Header.Clone()
			if _, err := rt.RoundTrip(req); err != nil {
				t.Fatal(err)
			}
			parent.End()
			if !equalHeaders(req.Header, before) {
				t.Errorf("the caller's headers became %v; want %v", req.Header, before)
			}
			if sent == req {
				t.Fatal("base got the caller's request; want a copy")
			}
			var client tracetest.SpanStub
			for _, s := range exp.GetSpans() {
				if s.SpanKind == trace.SpanKindClient {
					client = s
				}
			}
			if client.Parent.SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("client span's parent %s; want the context's span %s", client.Parent.SpanID(), parent.SpanContext().SpanID())
			}
			if got := trace.SpanContextFromContext(sent.Context()).SpanID(); got != client.SpanContext.SpanID() {
				t.Errorf("the sent request's context has span %s; want the client span %s", got, client.SpanContext.SpanID())
			}
			for k, want := range map[string]string{
				"Traceparent":   "00-" + testTrace + "-" + client.SpanContext.SpanID().String() + "-01",
				"Tracestate":    "vendor=x",
				"Baggage":       "user=alice",
				RequestIDHeader: tc.wantID,
				"X-Mine":        "1",
			} {
				if got := sent.Header.Values(k); len(got) != 1 || got[0] != want {
					t.Errorf("sent %s = %q; want one %q", k, got, want)
				}
			}
		})
	}
}

// TestClientSpanUnsampled: a call sampled out exports nothing and still
// forwards the trace, with the sampled flag off; the body is base's own.
func TestClientSpanUnsampled(t *testing.T) {
	t.Parallel()
	tr, exp := recorded(t, sdktrace.WithSampler(sdktrace.NeverSample()))
	body := io.NopCloser(strings.NewReader("x"))
	var sent http.Header
	rt := tr.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = r.Header
		return &http.Response{StatusCode: 200, Body: body, Request: r}, nil
	}))
	resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://callee/", nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Body != body {
		t.Errorf("body %T; want base's, not wrapped", resp.Body)
	}
	if n := len(exp.GetSpans()); n != 0 {
		t.Errorf("%d spans exported; want 0", n)
	}
	if tp := sent.Get("Traceparent"); !strings.HasSuffix(tp, "-00") {
		t.Errorf("sent Traceparent %q; want one not sampled", tp)
	}
}

// TestClientSpanSwitchingProtocols: the body of a 101 stays writable
// (the upgraded connection); another body is not made writable.
func TestClientSpanSwitchingProtocols(t *testing.T) {
	t.Parallel()
	tr, exp := recorded(t)
	conn := &rwBody{Reader: strings.NewReader("from the server")}
	rt := tr.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/upgrade" {
			return &http.Response{StatusCode: http.StatusSwitchingProtocols, Body: conn, Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("x")), Request: r}, nil
	}))
	resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://callee/upgrade", nil))
	if err != nil {
		t.Fatal(err)
	}
	w, ok := resp.Body.(io.ReadWriteCloser)
	if !ok {
		t.Fatalf("the 101's body %T is not an io.ReadWriteCloser", resp.Body)
	}
	io.WriteString(w, "to the server")
	if conn.written.String() != "to the server" {
		t.Errorf("written %q; want %q", conn.written.String(), "to the server")
	}
	w.Close()
	if !conn.closed || len(exp.GetSpans()) != 1 {
		t.Errorf("closed %v, %d spans; want the connection closed and the span ended", conn.closed, len(exp.GetSpans()))
	}

	resp, err = rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://callee/plain", nil))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, ok := resp.Body.(io.Writer); ok {
		t.Errorf("a plain body %T can be written; want a ReadCloser only", resp.Body)
	}
}

func TestSplitHostPort(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		host string
		port int
	}{
		{"", "", -1},
		{"example.com", "example.com", -1},
		{"example.com:8080", "example.com", 8080},
		{"example.com:", "example.com", -1},
		{"example.com:http", "example.com", -1},
		{"example.com:0", "example.com", -1},
		{"example.com:70000", "example.com", -1},
		{"10.0.0.1:443", "10.0.0.1", 443},
		{"[::1]", "::1", -1},
		{"[::1]:8443", "::1", 8443},
		{"[::1", "", -1},
		{"::1", "::1", -1},
	} {
		if host, port := splitHostPort(tc.in); host != tc.host || port != tc.port {
			t.Errorf("splitHostPort(%q) = %q, %d; want %q, %d", tc.in, host, port, tc.host, tc.port)
		}
	}
}

func TestHeaderCarrier(t *testing.T) {
	t.Parallel()
	h := http.Header{}
	c := headerCarrier(h)
	c.Set("traceparent", "tp")
	c.Set("x-other", "o")
	if h.Get("Traceparent") != "tp" || h.Get("X-Other") != "o" {
		t.Errorf("header %v; want Traceparent and X-Other", h)
	}
	if c.Get("traceparent") != "tp" || len(c.Values("baggage")) != 0 {
		t.Errorf("Get, Values read %q, %q", c.Get("traceparent"), c.Values("baggage"))
	}
	if keys := c.Keys(); len(keys) != 2 {
		t.Errorf("Keys() = %v; want 2", keys)
	}
}

func TestErrorType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{context.DeadlineExceeded, "context.DeadlineExceeded"},
		{&net.OpError{Op: "dial", Err: context.DeadlineExceeded}, "context.DeadlineExceeded"},
		{context.Canceled, "context.Canceled"},
		{&net.OpError{Op: "dial", Err: errRefused}, "net.OpError"},
		{&tls.CertificateVerificationError{}, "tls.CertificateVerificationError"},
		{io.ErrUnexpectedEOF, "errors.errorString"},
		// net/http's mapRoundTripError wraps a read error of a broken
		// connection with %w: the type is the wrapped error's.
		{fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", &net.OpError{Op: "read", Err: errRefused}), "net.OpError"},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", &tls.CertificateVerificationError{})), "tls.CertificateVerificationError"},
	} {
		if got := errorType(tc.err); got != tc.want {
			t.Errorf("errorType(%v) = %q; want %q", tc.err, got, tc.want)
		}
	}
}

func equalHeaders(a, b http.Header) bool {
	return maps.EqualFunc(a, b, slices.Equal[[]string])
}

// failing is a response body whose reads and writes fail.
type failing struct{ err error }

func (f failing) Read([]byte) (int, error)  { return 0, f.err }
func (f failing) Write([]byte) (int, error) { return 0, f.err }
func (failing) Close() error                { return nil }

// TestClientSpanBodyErrors: a body that fails while it is read, or while
// a 101's connection is written, marks the call's span failed with the
// error's type; the span ends when the body is closed.
func TestClientSpanBodyErrors(t *testing.T) {
	t.Parallel()
	broken := errors.New("connection reset")
	for _, tc := range []struct {
		name string
		code int
		use  func(io.ReadCloser) error
	}{
		{"read", http.StatusOK, func(b io.ReadCloser) error { _, err := io.ReadAll(b); return err }},
		{"write to a 101's connection", http.StatusSwitchingProtocols, func(b io.ReadCloser) error {
			_, err := b.(io.Writer).Write([]byte("x"))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tr, exp := recorded(t)
			rt := tr.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: tc.code, Body: failing{broken}, Request: r}, nil
			}))
			resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://callee/x", nil))
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.use(resp.Body); !errors.Is(err, broken) {
				t.Fatalf("body error %v; want %v", err, broken)
			}
			if n := len(exp.GetSpans()); n != 0 {
				t.Errorf("%d spans ended before the body was closed; want 0", n)
			}
			resp.Body.Close()
			s := only(t, exp)
			if s.Status.Code != codes.Error || s.Status.Description != broken.Error() {
				t.Errorf("status %v %q; want Error %q", s.Status.Code, s.Status.Description, broken)
			}
			if got := attrs(s.Attributes)["error.type"]; got != "errors.errorString" {
				t.Errorf("error.type = %v; want errors.errorString", got)
			}
		})
	}
}

// TestSpanAttributesBounded: what a client sends (a path, a user agent, a
// host) and what a call's URL holds reach a span cut to maxAttrLen bytes,
// at a rune's start: a span waits in the export queue, and a client must
// not be able to make each one hold up to the header limit.
func TestSpanAttributesBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", maxAttrLen) // 2 bytes a rune: the cut falls inside one
	tr, exp := recorded(t)
	req := httptest.NewRequest(http.MethodGet, "/p/"+url.PathEscape(long), nil)
	req.Header.Set("User-Agent", long)
	req.Host = strings.Repeat("h", 2*maxAttrLen) + ":8080"
	tr.Middleware("public")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(httptest.NewRecorder(), req)
	rt := tr.Transport(roundTripFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}))
	if _, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://callee/q/"+url.PathEscape(long), nil)); err != nil {
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans; want 2", len(spans))
	}
	wantLong := map[trace.SpanKind][]attribute.Key{
		trace.SpanKindServer: {keyURLPath, keyUserAgent, keyServerAddress},
		trace.SpanKindClient: {keyURLFull},
	}
	for _, s := range spans {
		a := attrs(s.Attributes)
		for _, k := range wantLong[s.SpanKind] {
			v, _ := a[string(k)].(string)
			if len(v) > maxAttrLen || len(v) < maxAttrLen-3 || !utf8.ValidString(v) {
				t.Errorf("%v span's %s: %d bytes, valid UTF-8 %v; want %d at most, cut at a rune", s.SpanKind, k, len(v), utf8.ValidString(v), maxAttrLen)
			}
		}
	}
}
