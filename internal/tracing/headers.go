package tracing

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"go.opentelemetry.io/otel/propagation"
)

// ExtractHeaders returns ctx with the trace context and baggage that h
// carries (W3C traceparent, tracestate, baggage), so Transport forwards
// them on the calls made with it, or ctx itself when h carries neither
// traceparent nor baggage: what Middleware does with export off, for a
// caller that has the headers at hand (httpmw.Options.Extract) and would
// rather not run a handler of its own per request.
func (t *Tracing) ExtractHeaders(ctx context.Context, h http.Header) context.Context {
	return extract(ctx, t.prop, h)
}

// extract returns ctx with the trace context and baggage h carries, or
// ctx itself when h has neither traceparent nor baggage (tracestate alone
// means nothing): the one place a server reads them.
func extract(ctx context.Context, prop propagation.TextMapPropagator, h http.Header) context.Context {
	if len(h["Traceparent"]) == 0 && len(h["Baggage"]) == 0 {
		return ctx
	}
	return prop.Extract(ctx, headerCarrier(h))
}

// outbound returns what a round tripper sends for req: req itself when
// there is nothing to add, or else a copy (a RoundTripper must not modify
// the request it is given) with ctx as its context and, in a header of its
// own, the request id of ctx (unless req sets one) and, when inject is
// true, the trace context and baggage of ctx. inject says whether ctx has
// a trace context or baggage to add; withCtx, that the copy is due
// anyway, to carry ctx (a client span's).
func outbound(ctx context.Context, req *http.Request, prop propagation.TextMapPropagator, inject, withCtx bool) *http.Request {
	id := middleware.GetReqID(ctx)
	addID := id != "" && len(req.Header[RequestIDHeader]) == 0
	if !addID && !inject && !withCtx {
		return req
	}
	out := req.WithContext(ctx)
	out.Header = req.Header.Clone()
	if out.Header == nil {
		out.Header = make(http.Header)
	}
	if addID {
		out.Header.Set(RequestIDHeader, id)
	}
	if inject {
		prop.Inject(ctx, headerCarrier(out.Header))
	}
	return out
}
