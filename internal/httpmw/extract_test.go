package httpmw_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/internal/httpmw"
)

// extractTrace stands in for tracing.ExtractHeaders: the "Trace" header,
// when present, becomes traceKey in the context.
func extractTrace(ctx context.Context, h http.Header) context.Context {
	if v := h["Trace"]; len(v) > 0 {
		return context.WithValue(ctx, traceKey{}, v[0])
	}
	return ctx
}

// Options.Extract's context is what the handler and the access line see,
// with every step and with none other than it, around a router and
// around a plain handler.
func TestExtract(t *testing.T) {
	t.Parallel()
	show := func(w http.ResponseWriter, r *http.Request) {
		tid, _ := r.Context().Value(traceKey{}).(string)
		_, _ = io.WriteString(w, tid+"|"+httpmw.GetID(r.Context()))
	}
	tests := []struct {
		name   string
		steps  string // "every" step, as svc's public server; "metrics" and Extract; Extract "alone"
		router bool
		trace  string
		want   string // the body: the trace id, "|", the request id
	}{
		{"every step, router, trace", "every", true, "t-1", "t-1|rid-1"},
		{"every step, router, none", "every", true, "", "|rid-1"},
		{"every step, handler, trace", "every", false, "t-2", "t-2|rid-1"},
		// State to keep, but neither a request id nor a route context
		// of the pass's own to put in the context.
		{"metrics, handler, trace", "metrics", false, "t-5", "t-5|"},
		{"alone, router, trace", "alone", true, "t-3", "t-3|"},
		{"alone, handler, trace", "alone", false, "t-4", "t-4|"},
		{"alone, handler, none", "alone", false, "", "|"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := httpmw.Options{Extract: extractTrace}
			var lines func() []string
			switch tt.steps {
			case "every":
				o, _, lines = everyStep(t)
				o.Extract = extractTrace
			case "metrics":
				every, _, _ := everyStep(t)
				o.Metrics = every.Metrics
			}
			var next http.Handler = http.HandlerFunc(show)
			if tt.router {
				r := chi.NewRouter()
				r.Get("/x", show)
				next = r
			}
			h := httpmw.New(o)(next)
			req := httptest.NewRequest(http.MethodGet, "/x", nil)
			req.Header.Set("X-Request-Id", "rid-1")
			if tt.trace != "" {
				req.Header.Set("Trace", tt.trace)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK || rec.Body.String() != tt.want {
				t.Errorf("GET /x = %d %q; want 200 %q", rec.Code, rec.Body, tt.want)
			}
			if lines == nil {
				return
			}
			got := strings.Join(lines(), "\n")
			if tt.trace != "" && !strings.Contains(got, `"trace_id":"`+tt.trace+`"`) {
				t.Errorf("access line %s; want trace_id %q from Extract's context", got, tt.trace)
			}
			if tt.trace == "" && strings.Contains(got, "trace_id") {
				t.Errorf("access line %s has a trace_id; want none", got)
			}
		})
	}
}
