package main

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/tracing/tracingtest"
	"github.com/svc-dev/svc/svctest"
)

// One inbound request with a traceparent yields, across two processes, the
// caller's server span, its client span for the call, and the callee's
// server span, all of the same trace and each the parent of the next; the
// request id travels with the call. Spans are exported over OTLP/HTTP to a
// test receiver.
func TestTraceAcrossTwoProcesses(t *testing.T) {
	rcv := tracingtest.NewReceiver(t)
	common := []string{
		"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0", "PRIVATE_HOST=127.0.0.1", "PRIVATE_PORT=0", "ADMIN_PORT=0",
		"LOG_FORMAT=json",
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + rcv.URL,
		"OTEL_BSP_SCHEDULE_DELAY=50", // read from the real environment by the SDK
	}
	callee := startService(t, append([]string{"OTEL_SERVICE_NAME=callee", "CONFIG_DIR=" + t.TempDir()}, common...))
	caller := startService(t, append([]string{"OTEL_SERVICE_NAME=caller", "CONFIG_DIR=" + t.TempDir(),
		"DISCOVERY_OVERRIDE_EXAMPLE=http://" + callee.public}, common...))

	const (
		traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
		parent  = "00f067aa0ba902b7"
	)
	req, _ := http.NewRequest(http.MethodGet, "http://"+caller.public+"/call/example/hello/trace", nil)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
	req.Header.Set("X-Request-Id", "trace-test-1")
	resp, err := svctest.Client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /call/example/hello/trace = %d", resp.StatusCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var server, client, remote tracingtest.Span
	found := func(spans []tracingtest.Span) bool {
		server, client, remote = tracingtest.Span{}, tracingtest.Span{}, tracingtest.Span{}
		for _, s := range spans {
			if s.TraceID != traceID {
				continue
			}
			switch {
			case s.Service == "caller" && s.Kind == "server":
				server = s
			case s.Service == "caller" && s.Kind == "client":
				client = s
			case s.Service == "callee" && s.Kind == "server":
				remote = s
			}
		}
		return server.SpanID != "" && client.SpanID != "" && remote.SpanID != ""
	}
	if _, err := rcv.Wait(ctx, found); err != nil {
		t.Fatalf("spans of trace %s: caller server %+v, caller client %+v, callee server %+v (%v); all spans: %+v",
			traceID, server, client, remote, err, rcv.Spans())
	}
	if server.ParentSpanID != parent {
		t.Errorf("caller's server span parent = %s; want the inbound traceparent's %s", server.ParentSpanID, parent)
	}
	if client.ParentSpanID != server.SpanID {
		t.Errorf("caller's client span parent = %s; want its server span %s", client.ParentSpanID, server.SpanID)
	}
	if remote.ParentSpanID != client.SpanID {
		t.Errorf("callee's server span parent = %s; want the caller's client span %s", remote.ParentSpanID, client.SpanID)
	}
	if server.Name != "GET /call/{service}/*" || remote.Name != "GET /hello/{name}" {
		t.Errorf("server spans named %q and %q; want the route patterns", server.Name, remote.Name)
	}
	// Both access lines carry the trace id.
	svctest.WaitFor(t, 10*time.Second, "trace_id in both access logs", func() bool {
		return svctest.HasLine(caller.stderr.String(), `"trace_id":"`+traceID+`"`, `"route":"/call/{service}/*"`) &&
			svctest.HasLine(callee.stderr.String(), `"trace_id":"`+traceID+`"`, `"route":"/hello/{name}"`)
	})
	// The request id went with the call: the callee's access line has it.
	svctest.WaitFor(t, 10*time.Second, "the request id in the callee's access log", func() bool {
		return svctest.HasLine(callee.stderr.String(), `"request_id":"trace-test-1"`, `"route":"/hello/{name}"`)
	})
}
