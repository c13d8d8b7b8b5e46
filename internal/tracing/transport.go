package tracing

import (
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// RequestIDHeader is the header Transport forwards the request id in: the
// one internal/httpmw reads and answers.
const RequestIDHeader = "X-Request-Id"

// Transport returns a round tripper that forwards, on each request, the
// context of the request's context: W3C traceparent, tracestate and
// baggage, and the request id the inbound request was given (chi's
// middleware.GetReqID, where httpmw.RequestID puts it) as X-Request-Id,
// unless the request sets that header itself. A request is never
// modified: when something is added, base gets a copy.
//
// With export on, each request also gets a client span, child of the
// context's span, named by its method, carrying the URL (without user
// info, query or fragment) and the address it was sent to; its status is
// Error for a transport error or a status of 400 or more. The span ends
// when the response body is closed or read to the end, or at once when
// there is no body or an error. Put Transport below anything that
// resolves or retries (one span per attempt, naming the instance tried).
// If base is nil, http.DefaultTransport is used.
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if t.provider == nil {
		return &propagator{base: base, prop: t.prop}
	}
	return &clientSpans{
		base:   base,
		tracer: t.provider.Tracer(scopeName, trace.WithSchemaURL(semconvSchemaURL)),
		prop:   t.prop,
	}
}

// propagator adds the request id and, when prop is set, the trace context
// to outbound requests. It copies a request only when it adds something.
type propagator struct {
	base http.RoundTripper
	prop propagation.TextMapPropagator // nil: the request id only
}

func (p *propagator) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	id := middleware.GetReqID(ctx)
	addID := id != "" && len(req.Header[RequestIDHeader]) == 0
	inject := p.prop != nil && (trace.SpanContextFromContext(ctx).IsValid() || baggage.FromContext(ctx).Len() > 0)
	if !addID && !inject {
		return p.base.RoundTrip(req)
	}
	out := *req // RoundTrippers must not modify the request
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	if addID {
		out.Header.Set(RequestIDHeader, id)
	}
	if inject {
		p.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))
	}
	return p.base.RoundTrip(&out)
}

// clientSpans is Transport with export on: a client span per request.
type clientSpans struct {
	base   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// spanKindClient is made once: options are interface values.
var spanKindClient = trace.WithSpanKind(trace.SpanKindClient)

// maxClientAttrs is the most attributes a client span starts with.
const maxClientAttrs = 5

// clientCall is what one call needs beside the span and the request's
// copy, in one allocation: the span's start options and attributes
// (which the SDK copies).
type clientCall struct {
	opts  [2]trace.SpanStartOption
	attrs [maxClientAttrs]attribute.KeyValue
}

func (c *clientSpans) RoundTrip(req *http.Request) (*http.Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet // net/http's meaning of ""
	}
	call := &clientCall{}
	call.opts = [2]trace.SpanStartOption{spanKindClient, trace.WithAttributes(clientAttrs(call.attrs[:0], req, method)...)}
	ctx, span := c.tracer.Start(req.Context(), spanMethod(method), call.opts[:]...)

	// One copy, with the span's context (for the base's own use, as
	// httptrace) and the headers: the trace context of the client span,
	// and the request id as propagator adds it.
	out := req.WithContext(ctx)
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	if id := middleware.GetReqID(ctx); id != "" && len(req.Header[RequestIDHeader]) == 0 {
		out.Header.Set(RequestIDHeader, id)
	}
	c.prop.Inject(ctx, propagation.HeaderCarrier(out.Header))

	resp, err := c.base.RoundTrip(out)
	if err != nil {
		span.SetAttributes(attribute.String(keyErrorType, errorType(err)))
		span.SetStatus(codes.Error, err.Error())
		span.End()
		return resp, err
	}
	if resp == nil { // a broken base: http.Client reports it
		span.End()
		return resp, err
	}
	if span.IsRecording() {
		code := resp.StatusCode
		if code >= 400 {
			span.SetAttributes(attribute.Int(keyStatusCode, code), attribute.String(keyErrorType, strconv.Itoa(code)))
			span.SetStatus(codes.Error, "")
		} else {
			span.SetAttributes(attribute.Int(keyStatusCode, code))
		}
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, nil
	}
	resp.Body = newSpanBody(resp.Body, span)
	return resp, nil
}

// clientAttrs appends a call's attributes: the ones a sampler may look at.
func clientAttrs(attrs []attribute.KeyValue, req *http.Request, method string) []attribute.KeyValue {
	method, original := requestMethod(method)
	attrs = append(attrs, attribute.String(keyMethod, method))
	if original != "" {
		attrs = append(attrs, attribute.String(keyMethodOriginal, original))
	}
	if req.URL == nil {
		return attrs
	}
	attrs = append(attrs, attribute.String(keyURLFull, redactedURL(req.URL)))
	hostport := req.URL.Host
	if hostport == "" {
		hostport = req.Host
	}
	host, port := splitHostPort(hostport)
	if host != "" {
		attrs = append(attrs, attribute.String(keyServerAddress, host))
	}
	if port < 0 {
		switch req.URL.Scheme {
		case "http":
			port = 80
		case "https":
			port = 443
		}
	}
	if port > 0 {
		attrs = append(attrs, attribute.Int(keyServerPort, port))
	}
	return attrs
}

// redactedURL is url.full: u without user info, query and fragment.
// Credentials never go into a span, and a query string may carry them
// (?api_key=, a signed URL's signature), as svc's exporter leaves the
// endpoint's out.
func redactedURL(u *url.URL) string {
	r := url.URL{Scheme: u.Scheme, Opaque: u.Opaque, Host: u.Host, Path: u.Path, RawPath: u.RawPath}
	return r.String()
}

// spanBody ends its call's span when the body is read to the end or
// closed; a read error other than io.EOF marks the span failed.
type spanBody struct {
	body io.ReadCloser
	span trace.Span
}

// newSpanBody wraps body. A body that can also be written, the
// connection of a 101 Switching Protocols, stays writable; any other is
// only a ReadCloser, so callers see no Write the base did not give.
func newSpanBody(body io.ReadCloser, span trace.Span) io.ReadCloser {
	b := spanBody{body: body, span: span}
	if _, ok := body.(io.ReadWriteCloser); ok {
		return &spanBodyWriter{b}
	}
	return &b
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.span.End()
	case err != nil:
		b.fail(err)
	}
	return n, err
}

// Close ends the span (again does nothing) and closes the body.
func (b *spanBody) Close() error {
	b.span.End()
	return b.body.Close()
}

func (b *spanBody) fail(err error) {
	b.span.SetAttributes(attribute.String(keyErrorType, errorType(err)))
	b.span.SetStatus(codes.Error, err.Error())
}

// spanBodyWriter is a spanBody whose body is an io.ReadWriteCloser.
type spanBodyWriter struct{ spanBody }

func (b *spanBodyWriter) Write(p []byte) (int, error) {
	n, err := b.body.(io.Writer).Write(p)
	if err != nil {
		b.fail(err)
	}
	return n, err
}
