// Package tracingtest is an OTLP/HTTP trace receiver for tests: point a
// service's OTEL_EXPORTER_OTLP_ENDPOINT at it and look at the spans it
// exported. It is for tests only; production code never imports it.
//
//	rcv := tracingtest.NewReceiver(t)
//	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL}
//	... run the service, make a request, stop the service ...
//	spans, err := rcv.Wait(ctx, func(s []tracingtest.Span) bool { return len(s) >= 2 })
package tracingtest

import (
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// Span is one exported span, flattened for assertions. Ids are lower-case
// hexadecimal, as in a traceparent header; ParentSpanID is "" for a root.
type Span struct {
	Service      string // the resource's service.name
	Name         string
	Kind         string // "server", "client", "internal", "producer", "consumer"
	TraceID      string
	SpanID       string
	ParentSpanID string
	Attributes   map[string]string // values in their string form
	Resource     map[string]string // the resource's attributes
	Error        bool              // status code error
}

// Receiver is an httptest server accepting OTLP/HTTP protobuf trace
// exports at any path (the exporter posts to /v1/traces). It is safe for
// concurrent use.
type Receiver struct {
	// URL is the base URL, for OTEL_EXPORTER_OTLP_ENDPOINT.
	URL string
	// CAFile, for a receiver made by NewTLSReceiver, is a PEM file of its
	// certificate, for OTEL_EXPORTER_OTLP_CERTIFICATE.
	CAFile string

	srv *httptest.Server

	mu      sync.Mutex    // guards spans, changed, exports
	spans   []Span        // in the order received
	changed chan struct{} // closed and replaced at each export
	exports int
}

// NewReceiver starts a receiver, closed when the test ends.
func NewReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{changed: make(chan struct{})}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	tb.Cleanup(r.srv.Close)
	return r
}

// NewTLSReceiver starts a receiver serving HTTPS with a self-signed
// certificate (CAFile), closed when the test ends.
func NewTLSReceiver(tb testing.TB) *Receiver {
	tb.Helper()
	r := &Receiver{changed: make(chan struct{})}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL
	tb.Cleanup(r.srv.Close)
	r.CAFile = filepath.Join(tb.TempDir(), "receiver-ca.pem")
	block := &pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}
	if err := os.WriteFile(r.CAFile, pem.EncodeToMemory(block), 0o600); err != nil {
		tb.Fatal(err)
	}
	return r
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.Error(w, "POST an ExportTraceServiceRequest", http.StatusMethodNotAllowed)
		return
	}
	var body io.Reader = req.Body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var msg collectorpb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	spans := flatten(&msg)
	r.mu.Lock()
	r.spans = append(r.spans, spans...)
	r.exports++
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// Close stops the receiver and waits for its connections to end; the
// end of the test does it too.
func (r *Receiver) Close() { r.srv.Close() }

// Spans returns the spans received so far.
func (r *Receiver) Spans() []Span {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Span(nil), r.spans...)
}

// Exports returns how many export requests were received.
func (r *Receiver) Exports() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.exports
}

// Wait returns the spans received once done(spans) is true, or the spans
// so far and ctx's error when ctx ends first.
func (r *Receiver) Wait(ctx context.Context, done func([]Span) bool) ([]Span, error) {
	for {
		r.mu.Lock()
		spans, changed := append([]Span(nil), r.spans...), r.changed
		r.mu.Unlock()
		if done(spans) {
			return spans, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return spans, ctx.Err()
		}
	}
}

// Find returns the first span named name, and whether there is one.
func Find(spans []Span, name string) (Span, bool) {
	for _, s := range spans {
		if s.Name == name {
			return s, true
		}
	}
	return Span{}, false
}

func flatten(msg *collectorpb.ExportTraceServiceRequest) []Span {
	var out []Span
	for _, rs := range msg.GetResourceSpans() {
		res := attrs(rs.GetResource().GetAttributes())
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				out = append(out, Span{
					Service:      res["service.name"],
					Name:         s.GetName(),
					Kind:         kind(s.GetKind()),
					TraceID:      hex.EncodeToString(s.GetTraceId()),
					SpanID:       hex.EncodeToString(s.GetSpanId()),
					ParentSpanID: hex.EncodeToString(s.GetParentSpanId()),
					Attributes:   attrs(s.GetAttributes()),
					Resource:     res,
					Error:        s.GetStatus().GetCode() == tracepb.Status_STATUS_CODE_ERROR,
				})
			}
		}
	}
	return out
}

func kind(k tracepb.Span_SpanKind) string {
	switch k {
	case tracepb.Span_SPAN_KIND_SERVER:
		return "server"
	case tracepb.Span_SPAN_KIND_CLIENT:
		return "client"
	case tracepb.Span_SPAN_KIND_PRODUCER:
		return "producer"
	case tracepb.Span_SPAN_KIND_CONSUMER:
		return "consumer"
	}
	return "internal"
}

func attrs(kvs []*commonpb.KeyValue) map[string]string {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		m[kv.GetKey()] = value(kv.GetValue())
	}
	return m
}

func value(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	}
	return v.String()
}
