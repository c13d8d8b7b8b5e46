// Package tracing is a service's distributed tracing: W3C trace context
// always propagated, OpenTelemetry spans exported over OTLP/HTTP when the
// standard environment variables ask for it.
//
// Propagation is always on, whatever the variables say: an inbound
// request's traceparent, tracestate and baggage headers, and its request
// id, are forwarded on every outbound call made with its context, so a
// service that exports nothing never breaks the trace of its callers.
//
// Export is off unless OTEL_EXPORTER_OTLP_ENDPOINT (a base URL; spans go
// to <base>/v1/traces) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is)
// is set, and off whenever OTEL_SDK_DISABLED=true or
// OTEL_TRACES_EXPORTER=none. When on: server spans named by route pattern
// ("GET /hello/{name}"), client spans for outbound calls, a batch exporter
// flushed by Shutdown. OTEL_SERVICE_NAME (default: the service's name),
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and _ARG, and the
// exporter's HEADERS, TIMEOUT, COMPRESSION, PROTOCOL, CERTIFICATE,
// CLIENT_CERTIFICATE and CLIENT_KEY variables are read through
// Options.Getenv. Malformed values fail New, naming the variable.
//
// The SDK reads a few variables itself, from the process environment
// only (Getenv cannot supply them): the batch processor's OTEL_BSP_*, the
// span limits OTEL_SPAN_*_LIMIT and OTEL_ATTRIBUTE_*; OTEL_SERVICE_NAME
// and OTEL_RESOURCE_ATTRIBUTES found there are merged under what Getenv
// gives; the exporter's proxy comes from HTTPS_PROXY, HTTP_PROXY and
// NO_PROXY (net/http's ProxyFromEnvironment). OTEL_PROPAGATORS is
// ignored: propagation is W3C tracecontext and baggage.
//
// The package sets no OpenTelemetry global (tracer provider, propagator,
// error handler): several services can run in one process, each with its
// own [Tracing]. Export failures are logged through Options.Logger, once
// when they start and once when export recovers.
//
//	tr, err := tracing.New(ctx, tracing.Options{Service: "orders", Getenv: os.LookupEnv, Logger: log})
//	o := httpmw.Options{Server: "public", RequestID: true, TraceID: tracing.TraceID, ...}
//	if tr.Exporting() {
//		o.Trace = tr.Middleware("public") // a server span per request
//	} else {
//		o.Extract = tr.ExtractHeaders // the caller's trace context only
//	}
//	handler := httpmw.New(o)(router)
//	client := &http.Client{Transport: tr.Transport(nil)}
//	...
//	defer tr.Shutdown(ctx) // after the servers have stopped
package tracing
