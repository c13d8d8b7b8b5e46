package tracing

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// defaultExportTimeout bounds one export when OTEL_EXPORTER_OTLP_TIMEOUT
// does not: the specification's default.
const defaultExportTimeout = 10 * time.Second

// Options configures [New].
type Options struct {
	// Service is the resource's service.name unless OTEL_SERVICE_NAME
	// is set.
	Service string
	// Version, Instance and Environment, when not empty, are the
	// resource's service.version, service.instance.id and
	// deployment.environment.name.
	Version, Instance, Environment string
	// Getenv reads the OTEL_* variables. If nil, os.LookupEnv is used.
	// A few settings are read by the OpenTelemetry SDK itself from the
	// process environment whatever Getenv says: see the package doc.
	Getenv func(string) (string, bool)
	// Logger receives the startup line and export failures. If nil,
	// they are discarded.
	Logger *slog.Logger
}

// Tracing is a service's tracing: W3C propagation always, span export
// when the environment configures it. It is safe for concurrent use.
type Tracing struct {
	prop      propagation.TextMapPropagator
	provider  *sdktrace.TracerProvider // nil: export off
	transport *http.Transport          // the exporter's; nil: export off
	tracer    trace.TracerProvider     // provider, or a no-op provider
	log       *slog.Logger
}

// New reads the OTEL_* variables through o.Getenv and returns the
// service's tracing. Export is off unless OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and off whenever
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none; propagation is on
// either way. New does not connect to the collector: the first spans are
// sent in the background. It returns an error naming the variable when a
// value is malformed or asks for something svc does not do (gRPC export,
// another exporter). Call Shutdown before the process exits.
func New(ctx context.Context, o Options) (*Tracing, error) {
	getenv := o.Getenv
	if getenv == nil {
		getenv = os.LookupEnv
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracing{
		prop:   propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}),
		tracer: noop.NewTracerProvider(),
		log:    log,
	}
	s, err := readSettings(getenv, o.Service)
	if err != nil {
		return nil, err
	}
	if s.endpoint == "" {
		log.Debug("tracing: export off; traceparent, baggage and X-Request-Id are still forwarded", "reason", s.off)
		return t, nil
	}

	// The exporter's HTTP client is the service's own, closed by
	// Shutdown, with the TLS files read through Getenv.
	t.transport = &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		TLSClientConfig:       s.tls,
	}
	timeout := cmp.Or(s.timeout, defaultExportTimeout)
	exp := newOTLPExporter(s.endpoint, &http.Client{Transport: t.transport, Timeout: timeout}, s.headers, s.gzip, timeout)
	res, err := resource.New(ctx,
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(s.attrs...), // OTEL_RESOURCE_ATTRIBUTES, below svc's own
		resource.WithAttributes(serviceAttrs(s.serviceName, o)...),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: resource: %w", err)
	}
	t.provider = sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(&loggingExporter{SpanExporter: exp, log: log}),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(s.sampler),
	)
	t.tracer = t.provider
	if s.stripped != "" {
		log.Warn("tracing: the endpoint's user info and query string are not sent; put credentials in "+EnvHeaders, "variable", s.stripped)
	}
	log.Info("tracing: exporting spans over OTLP/HTTP", "endpoint", s.endpoint,
		"service_name", s.serviceName, "sampler", s.samplerName)
	return t, nil
}

func serviceAttrs(name string, o Options) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attribute.String("service.name", name)}
	for _, kv := range [][2]string{
		{"service.version", o.Version},
		{"service.instance.id", o.Instance},
		{"deployment.environment.name", o.Environment},
	} {
		if kv[1] != "" {
			attrs = append(attrs, attribute.String(kv[0], kv[1]))
		}
	}
	return attrs
}

// Exporting reports whether spans are exported. When false, Middleware
// and Transport only propagate context.
func (t *Tracing) Exporting() bool { return t.provider != nil }

// TracerProvider is the provider of the service's spans, for code that
// creates its own: a no-op provider when export is off (spans then carry
// the incoming trace context and record nothing).
func (t *Tracing) TracerProvider() trace.TracerProvider { return t.tracer }

// Propagator is the W3C tracecontext and baggage propagator Middleware
// and Transport use, for other protocols (a message's headers).
func (t *Tracing) Propagator() propagation.TextMapPropagator { return t.prop }

// Shutdown exports the spans still buffered and stops export, within
// ctx's deadline; later spans are dropped. Export failures are logged
// (Options.Logger), not returned; Shutdown returns an error only when ctx
// ends first. With export off it does nothing. Call it after the servers have
// finished their in-flight requests, so their spans are in the flush.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t.provider == nil {
		return nil
	}
	err := t.provider.Shutdown(ctx)
	t.transport.CloseIdleConnections()
	if err != nil {
		return fmt.Errorf("tracing: flush spans: %w", err)
	}
	return nil
}

// TraceID returns the hexadecimal trace id of ctx's span (the server span,
// or with export off the caller's trace), or "" when there is none: the
// access log's trace_id.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}

// loggingExporter logs export failures through the service's logger, once
// when export starts failing and once when it recovers, and hides them
// from the batch processor, which would report each one to the OTel
// global error handler (a log.Printf line on stderr per batch).
type loggingExporter struct {
	sdktrace.SpanExporter
	log *slog.Logger

	mu       sync.Mutex // guards failures
	failures int        // consecutive failed exports
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case err != nil && e.failures == 0:
		e.log.Warn("tracing: span export failed; spans are dropped until the collector answers", "error", err)
	case err == nil && e.failures > 0:
		e.log.Info("tracing: span export recovered", "failed_exports", e.failures)
	}
	if err != nil {
		e.failures++
	} else {
		e.failures = 0
	}
	return nil
}
