package tracing

import (
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/baggage"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
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
// With export on, each request also gets a client span (otelhttp), child
// of the context's span, named by its method, carrying the URL and the
// address it was sent to; the span ends when the response body is closed
// or read to the end. Put Transport below anything that resolves or
// retries (one span per attempt, naming the instance tried). If base is
// nil, http.DefaultTransport is used.
func (t *Tracing) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if t.provider == nil {
		return &propagator{base: base, prop: t.prop}
	}
	return otelhttp.NewTransport(&propagator{base: base}, // otelhttp injects the trace context
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return spanMethod(r.Method) }),
	)
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
