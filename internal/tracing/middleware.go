package tracing

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/svc-dev/svc/internal/respwriter"
)

// Middleware returns the tracing middleware of a server (server is
// "public" or "private", the span's svc.server attribute). It must run
// where chi's route context is in the request's context, so the route
// pattern is known when the handler returns: as httpmw.Options.Trace of
// the pass around the router (what svc does), or on the router itself
// (router.Use).
//
// With export on, every request gets a server span, child of the
// caller's span when the request carries a traceparent, named
// "<METHOD> <route pattern>" ("GET /hello/{name}"), or just the method
// when no route matched; the pattern is also its http.route attribute.
// A 5xx response, or a panic going through, sets the span's status to
// Error; a 4xx does not (the client's error, not the server's).
//
// With export off, a request that carries a traceparent or baggage header
// gets that context in its context, so Transport forwards it on calls made
// with it; one without is passed on untouched, at no cost.
func (t *Tracing) Middleware(server string) func(http.Handler) http.Handler {
	if t.provider == nil {
		return t.extract
	}
	s := &serverSpans{
		tracer: t.provider.Tracer(scopeName, trace.WithSchemaURL(semconvSchemaURL)),
		prop:   t.prop,
		server: attribute.String(keySvcServer, server),
		start:  []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)},
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serve(next, w, r) })
	}
}

// extract is the middleware with export off.
func (t *Tracing) extract(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ctx := extract(r.Context(), t.prop, r.Header); ctx != r.Context() {
			r = r.WithContext(ctx)
		}
		next.ServeHTTP(w, r)
	})
}

// serverSpans makes the server spans of one server.
type serverSpans struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	server attribute.KeyValue      // svc.server
	start  []trace.SpanStartOption // kind server; made once, options are interface values
}

// The most attributes a server span gets from the request, and from the
// response.
const (
	maxRequestAttrs  = 11
	maxResponseAttrs = 4
)

// serverCall is what one recorded request needs beside the span, in one
// allocation: the writer the handler writes to, unless the one it came
// with records the status already, and the span's attributes (which the
// SDK copies).
type serverCall struct {
	w     respwriter.Writer
	attrs [maxRequestAttrs + maxResponseAttrs]attribute.KeyValue
}

// serve runs next within r's server span. The span ends when next
// returns or panics; a panic goes on as it came, to net/http or whatever
// recovers above. (svc's pass recovers below the middleware: only a panic
// it lets go on, http.ErrAbortHandler or one after the headers went out,
// comes through here.)
//
// The span gets its attributes when it ends, in one call, rather than
// when it starts: the conventions give them at the start for samplers
// that read them, and svc's samplers (OTEL_TRACES_SAMPLER's) read none.
// So a span sampled out costs no attribute, and no wrapper of the
// writer: it only carries the trace context on.
func (s *serverSpans) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx, span := s.tracer.Start(extract(r.Context(), s.prop, r.Header), spanMethod(r.Method), s.start...)
	// Deferred itself, End sees a panic: the SDK adds it to the span as
	// an exception event and lets it go on.
	defer span.End()
	if !span.IsRecording() {
		next.ServeHTTP(w, r.WithContext(ctx))
		return
	}
	c := &serverCall{}
	// The writer the span reads its status from is handed on: svc's pass
	// below finds it a *respwriter.Writer and records into it too, so the
	// response is wrapped once.
	rw, ok := w.(*respwriter.Writer)
	if !ok {
		c.w.ResponseWriter = w
		rw = &c.w
	}
	attrs := s.requestAttrs(c.attrs[:0], r)
	returned := false
	defer func() { s.finish(span, r, rw, attrs, returned) }()
	next.ServeHTTP(rw, r.WithContext(ctx))
	returned = true
}

// requestAttrs appends the attributes known when the request comes.
func (s *serverSpans) requestAttrs(attrs []attribute.KeyValue, r *http.Request) []attribute.KeyValue {
	method, original := requestMethod(r.Method)
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	attrs = append(attrs,
		s.server,
		attribute.String(keyMethod, method),
		attribute.String(keyURLScheme, scheme),
		attribute.String(keyURLPath, bounded(r.URL.Path)),
	)
	if original != "" {
		attrs = append(attrs, attribute.String(keyMethodOriginal, original))
	}
	if host, port := splitHostPort(r.Host); host != "" {
		attrs = append(attrs, attribute.String(keyServerAddress, bounded(host)))
		if port > 0 {
			attrs = append(attrs, attribute.Int(keyServerPort, port))
		}
	}
	if peer, port := splitHostPort(r.RemoteAddr); peer != "" {
		attrs = append(attrs, attribute.String(keyPeerAddress, peer))
		if port > 0 {
			attrs = append(attrs, attribute.Int(keyPeerPort, port))
		}
	}
	if ua := r.Header.Get("User-Agent"); ua != "" {
		attrs = append(attrs, attribute.String(keyUserAgent, bounded(ua)))
	}
	if v := protoVersion(r.ProtoMajor, r.ProtoMinor); v != "" {
		attrs = append(attrs, attribute.String(keyProtoVersion, v))
	}
	return attrs
}

// finish names the span after the route chi matched (the pattern is not
// known before routing) and gives it its attributes: attrs, the
// request's, and the response's. returned is false when the handler
// panicked (or called runtime.Goexit).
func (s *serverSpans) finish(span trace.Span, r *http.Request, w *respwriter.Writer, attrs []attribute.KeyValue, returned bool) {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			span.SetName(spanMethod(r.Method) + " " + p)
			attrs = append(attrs, attribute.String(keyRoute, p))
		}
	}
	status := w.Status
	if status == 0 && returned && !w.Hijacked {
		status = http.StatusOK // a handler that wrote nothing: net/http sends 200
	}
	if status != 0 {
		attrs = append(attrs, attribute.Int(keyStatusCode, status))
	}
	if w.Bytes > 0 {
		attrs = append(attrs, attribute.Int(keyResponseSize, w.Bytes))
	}
	switch {
	case !returned:
		attrs = append(attrs, attribute.String(keyErrorType, "panic"))
		span.SetStatus(codes.Error, "the handler panicked")
	case status >= 500:
		// The conventions' error.type for an error status: the code.
		attrs = append(attrs, attribute.String(keyErrorType, strconv.Itoa(status)))
		span.SetStatus(codes.Error, "")
	}
	span.SetAttributes(attrs...)
}
