package tracing

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"
)

// ExtractHeaders brings in what the headers carry and returns the context
// it was given, unchanged, when they carry neither a traceparent nor
// baggage: the pass then makes no new request.
func TestExtractHeaders(t *testing.T) {
	t.Parallel()
	tr, _ := recorded(t)
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "parent")
	for _, tc := range []struct {
		name      string
		h         http.Header
		same      bool   // the context returned is parent itself
		wantTrace string // the remote span context's trace id
		wantBag   string
	}{
		{"none", http.Header{"Accept": {"*/*"}}, true, "", ""},
		{"tracestate alone", http.Header{"Tracestate": {"vendor=x"}}, true, "", ""},
		{"traceparent", http.Header{"Traceparent": {testHeader}, "Tracestate": {"vendor=x"}}, false, testTrace, ""},
		{"baggage", http.Header{"Baggage": {"user=alice"}}, false, "", "user=alice"},
		{"malformed traceparent", http.Header{"Traceparent": {"00-zz"}}, true, "", ""},
	} {
		ctx := tr.ExtractHeaders(parent, tc.h)
		if same := ctx == parent; same != tc.same {
			t.Errorf("%s: context returned unchanged = %v; want %v", tc.name, same, tc.same)
		}
		if ctx.Value(key{}) != "parent" {
			t.Errorf("%s: the returned context lost its parent's values", tc.name)
		}
		sc := trace.SpanContextFromContext(ctx)
		if got := ""; sc.IsValid() {
			got = sc.TraceID().String()
			if got != tc.wantTrace || !sc.IsRemote() {
				t.Errorf("%s: trace %s (remote %v); want %s, remote", tc.name, got, sc.IsRemote(), tc.wantTrace)
			}
		} else if tc.wantTrace != "" {
			t.Errorf("%s: no span context; want trace %s", tc.name, tc.wantTrace)
		}
		if got := baggage.FromContext(ctx).String(); got != tc.wantBag {
			t.Errorf("%s: baggage %q; want %q", tc.name, got, tc.wantBag)
		}
	}
}
