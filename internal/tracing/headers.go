package tracing

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
)

// ExtractHeaders returns ctx with the trace context and baggage that h
// carries (W3C traceparent, tracestate, baggage), so Transport forwards
// them on the calls made with it, or ctx itself when h carries neither
// traceparent nor baggage: what Middleware does with export off, for a
// caller that has the headers at hand (httpmw.Options.Extract) and would
// rather not run a handler of its own per request.
func (t *Tracing) ExtractHeaders(ctx context.Context, h http.Header) context.Context {
	if len(h["Traceparent"]) == 0 && len(h["Baggage"]) == 0 {
		return ctx
	}
	return t.prop.Extract(ctx, propagation.HeaderCarrier(h))
}
