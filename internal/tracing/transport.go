package tracing

import (
	"io"
	"net/http"
	"net/url"
	"strconv"

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
		start:  []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)},
	}
}

// propagator is Transport with export off: it adds the request id, and
// the trace context and baggage of the request's context, to outbound
// requests. It copies a request only when it adds something.
type propagator struct {
	base http.RoundTripper
	prop propagation.TextMapPropagator
}

func (p *propagator) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	carries := trace.SpanContextFromContext(ctx).IsValid() || baggage.FromContext(ctx).Len() > 0
	return p.base.RoundTrip(outbound(ctx, req, p.prop, carries, false))
}

// clientSpans is Transport with export on: a client span per request.
type clientSpans struct {
	base   http.RoundTripper
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
	start  []trace.SpanStartOption // kind client; made once, options are interface values
}

// maxClientAttrs is the most attributes a client span gets.
const maxClientAttrs = 7

// RoundTrip sends a copy of req, with the trace context of its client
// span, the span's context and the request id, through base. As for
// server spans, the attributes are given once, when the response (or the
// error) is there, and not at all to a span sampled out: svc's samplers
// read none.
func (c *clientSpans) RoundTrip(req *http.Request) (*http.Response, error) {
	method := req.Method
	if method == "" {
		method = http.MethodGet // net/http's meaning of ""
	}
	ctx, span := c.tracer.Start(req.Context(), spanMethod(method), c.start...)

	// One copy, with the span's context (for the base's own use, as
	// httptrace) and the headers: the trace context of the client span,
	// and the request id as propagator adds it.
	resp, err := c.base.RoundTrip(outbound(ctx, req, c.prop, true, true))
	if !span.IsRecording() { // sampled out: nothing to record, no body to wrap
		span.End()
		return resp, err
	}
	call := &clientCall{span: span}
	attrs := clientAttrs(call.attrs[:0], req, method)
	switch {
	case err != nil:
		attrs = append(attrs, attribute.String(keyErrorType, errorType(err)))
		span.SetStatus(codes.Error, err.Error())
	case resp == nil: // a broken base: http.Client reports it
	case resp.StatusCode >= 400:
		attrs = append(attrs, attribute.Int(keyStatusCode, resp.StatusCode), attribute.String(keyErrorType, strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, "")
	default:
		attrs = append(attrs, attribute.Int(keyStatusCode, resp.StatusCode))
	}
	span.SetAttributes(attrs...)
	if err != nil || resp == nil || resp.Body == nil || resp.Body == http.NoBody {
		span.End()
		return resp, err
	}
	call.body = resp.Body
	if _, ok := resp.Body.(io.ReadWriteCloser); ok {
		// The connection of a 101 Switching Protocols: it stays
		// writable. Any other body is only a ReadCloser, so callers see
		// no Write the base did not give.
		resp.Body = spanBodyWriter{call}
	} else {
		resp.Body = call
	}
	return resp, nil
}

// clientAttrs appends a call's request attributes.
func clientAttrs(attrs []attribute.KeyValue, req *http.Request, method string) []attribute.KeyValue {
	method, original := requestMethod(method)
	attrs = append(attrs, attribute.String(keyMethod, method))
	if original != "" {
		attrs = append(attrs, attribute.String(keyMethodOriginal, original))
	}
	if req.URL == nil {
		return attrs
	}
	attrs = append(attrs, attribute.String(keyURLFull, bounded(redactedURL(req.URL))))
	hostport := req.URL.Host
	if hostport == "" {
		hostport = req.Host
	}
	host, port := splitHostPort(hostport)
	if host != "" {
		attrs = append(attrs, attribute.String(keyServerAddress, bounded(host)))
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

// clientCall is a recorded call after its response came, in one
// allocation: the span's attributes (which the SDK copies) and the
// response body, which ends the span when it is read to the end or
// closed; a read error other than io.EOF marks the span failed.
type clientCall struct {
	span  trace.Span
	body  io.ReadCloser
	attrs [maxClientAttrs]attribute.KeyValue
}

func (c *clientCall) Read(p []byte) (int, error) {
	n, err := c.body.Read(p)
	switch {
	case err == io.EOF:
		c.span.End()
	case err != nil:
		c.fail(err)
	}
	return n, err
}

// Close ends the span (again, it does nothing) and closes the body.
func (c *clientCall) Close() error {
	c.span.End()
	return c.body.Close()
}

func (c *clientCall) fail(err error) {
	c.span.SetAttributes(attribute.String(keyErrorType, errorType(err)))
	c.span.SetStatus(codes.Error, err.Error())
}

// spanBodyWriter is the body of a call whose body is an
// io.ReadWriteCloser.
type spanBodyWriter struct{ *clientCall }

func (b spanBodyWriter) Write(p []byte) (int, error) {
	n, err := b.body.(io.Writer).Write(p)
	if err != nil {
		b.fail(err)
	}
	return n, err
}
