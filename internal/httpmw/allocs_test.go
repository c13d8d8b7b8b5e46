package httpmw_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/internal/accesslog"
	"github.com/svc-dev/svc/internal/httpmw"
)

// maxExtraAllocs is how many allocations per request svc's public pass
// adds to bare chi serving the same handler: its one per-request state.
// chi's own request copy and route context value are replaced by the
// pass's, which gives chi the route context.
const maxExtraAllocs = 0

// The public pass, wrapping the router as svc's servers do, allocates at
// most maxExtraAllocs more per request than bare chi.
func TestChainAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	m, err := httpmw.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	w := accesslog.New(io.Discard, accesslog.Options{Service: "allocs"})
	t.Cleanup(func() { _ = w.Close() })
	r := chi.NewRouter()
	r.Get("/hello/{name}", hello)
	svcChain := httpmw.New(httpmw.Options{
		Server:       "public",
		CloseChunked: true,
		RequestID:    true,
		Metrics:      m,
		Access:       w,
		Recover:      true,
		Log:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
		MaxBodyBytes: 4 << 20,
	})(r)

	allocs := func(h http.Handler) float64 {
		req := httptest.NewRequest(http.MethodGet, "/hello/ann", nil)
		rec := httptest.NewRecorder()
		return testing.AllocsPerRun(1000, func() {
			clear(rec.Header())
			rec.Body.Reset()
			h.ServeHTTP(rec, req)
		})
	}
	bare, withSvc := allocs(bareChi()), allocs(svcChain)
	if withSvc-bare > maxExtraAllocs {
		t.Errorf("svc's chain allocates %v times per request, bare chi %v: %v more; want at most %d more",
			withSvc, bare, withSvc-bare, maxExtraAllocs)
	}
}
