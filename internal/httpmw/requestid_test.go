package httpmw_test

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/svc-dev/svc/internal/httpmw"
)

func TestRequestID(t *testing.T) {
	generated := regexp.MustCompile(`^[0-9a-f]{12}-[0-9]+$`)
	tests := []struct {
		name   string
		header string // "" sends none
		echo   bool   // want the header echoed as given
	}{
		{"given", "abc-123", true},
		{"given uuid", "0b9c2b4e-6f0e-4bbf-9b44-5c7c9e0f6a11", true},
		{"given 128 chars", strings.Repeat("a", 128), true},
		{"absent", "", false},
		{"too long", strings.Repeat("a", 129), false},
		{"space", "a b", false},
		{"non-ascii", "idé", false},
		{"control char", "a\x01b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var inCtx, inCtxChi string
			h := httpmw.RequestID()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				inCtx = httpmw.GetID(r.Context())
				inCtxChi = middleware.GetReqID(r.Context())
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				req.Header.Set(httpmw.RequestIDHeader, tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			got := rec.Header().Get(httpmw.RequestIDHeader)
			if tt.echo && got != tt.header {
				t.Errorf("response %s = %q; want the given %q", httpmw.RequestIDHeader, got, tt.header)
			}
			if !tt.echo && !generated.MatchString(got) {
				t.Errorf("response %s = %q; want a generated id matching %s", httpmw.RequestIDHeader, got, generated)
			}
			if inCtx != got {
				t.Errorf("GetID(ctx) = %q; want the response's %q", inCtx, got)
			}
			if inCtxChi != got {
				t.Errorf("middleware.GetReqID(ctx) = %q; want %q", inCtxChi, got)
			}
		})
	}
}

func TestRequestIDGeneratedAreUnique(t *testing.T) {
	h := httpmw.RequestID()(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	seen := make(map[string]bool)
	for i := 0; i < 1000; i++ {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		id := rec.Header().Get(httpmw.RequestIDHeader)
		if seen[id] {
			t.Fatalf("request %d: id %q generated twice", i, id)
		}
		seen[id] = true
	}
}

func TestGetIDWithoutMiddleware(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	if got := httpmw.GetID(req.Context()); got != "" {
		t.Errorf("GetID(plain context) = %q; want \"\"", got)
	}
}
