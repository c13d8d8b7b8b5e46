package tracing

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Middleware returns the tracing middleware of a server (server is
// "public" or "private", the span's svc.server attribute). It must run
// where chi's route context is in the request's context, so the route
// pattern is known when the handler returns: as httpmw.Options.Trace of
// the pass around the router (what svc does), or on the router itself
// (router.Use).
//
// With export on, every request gets a server span (otelhttp), child of
// the caller's span when the request carries a traceparent, named
// "<METHOD> <route pattern>" ("GET /hello/{name}"), or just the method
// when no route matched; the pattern is also its http.route attribute.
//
// With export off, a request that carries a traceparent or baggage header
// gets that context in its context, so Transport forwards it on calls made
// with it; one without is passed on untouched, at no cost.
func (t *Tracing) Middleware(server string) func(http.Handler) http.Handler {
	if t.provider == nil {
		return t.extract
	}
	mw := otelhttp.NewMiddleware("",
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.prop),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()), // svc's metrics are Prometheus's
		otelhttp.WithSpanOptions(trace.WithAttributes(attribute.String("svc.server", server))),
	)
	return func(next http.Handler) http.Handler { return mw(nameByRoute(next)) }
}

// extract is the middleware with export off.
func (t *Tracing) extract(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header["Traceparent"]) == 0 && len(r.Header["Baggage"]) == 0 {
			next.ServeHTTP(w, r)
			return
		}
		ctx := t.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// nameByRoute names the request's span after the route chi matched, once
// the handler has returned: the pattern is not known before routing.
func nameByRoute(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		rc := chi.RouteContext(r.Context())
		if rc == nil {
			return
		}
		if p := rc.RoutePattern(); p != "" {
			span := trace.SpanFromContext(r.Context())
			span.SetName(spanMethod(r.Method) + " " + p)
			span.SetAttributes(attribute.String("http.route", p))
		}
	})
}

// spanMethod is the method as span names show it: one of the methods of
// RFC 9110 and RFC 5789, or "HTTP" (the semantic conventions' rule), so a
// client inventing methods cannot invent span names.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodConnect,
		http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}
