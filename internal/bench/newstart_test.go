package bench_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/internal/bench"
	"github.com/svc-dev/svc/svc"
)

// BenchmarkNewStartStop is svc's own share of a start, in process (no exec,
// no package init): svc.New, Start, the first GET /readyz, Stop. Each phase
// is reported separately:
//
//	go test -run '^$' -bench NewStartStop -benchmem ./internal/bench
func BenchmarkNewStartStop(b *testing.B) {
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ctx := context.Background()
	var newNS, startNS, readyNS, stopNS int64
	for b.Loop() {
		dir := b.TempDir() // outside the timing: its mkdir is the test's, not svc's
		t0 := nanotime()
		a, err := svc.New("bench", 30,
			svc.PublicRoutes(func(r chi.Router) { r.Get("/hello/{name}", bench.Hello) }),
			svc.WithEnv(map[string]string{"CONFIG_DIR": dir}),
			svc.WithOutput(io.Discard, io.Discard),
			svc.WithValues(map[string]string{
				"admin.port": "0", "public.port": "0", "private.port": "0",
				"public.host": "127.0.0.1", "private.host": "127.0.0.1", "shutdown.drain": "0s",
			}))
		if err != nil {
			b.Fatal(err)
		}
		t1 := nanotime()
		if err := a.Start(ctx); err != nil {
			b.Fatal(err)
		}
		t2 := nanotime()
		resp, err := c.Get(svc.URL(a.PrivateAddr()) + "/readyz")
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("/readyz = %d", resp.StatusCode)
		}
		t3 := nanotime()
		if err := a.Stop(ctx); err != nil {
			b.Fatal(err)
		}
		t4 := nanotime()
		newNS += t1 - t0
		startNS += t2 - t1
		readyNS += t3 - t2
		stopNS += t4 - t3
	}
	n := float64(b.N)
	b.ReportMetric(float64(newNS)/n/1e6, "new-ms")
	b.ReportMetric(float64(startNS)/n/1e6, "start-ms")
	b.ReportMetric(float64(readyNS)/n/1e6, "readyz-ms")
	b.ReportMetric(float64(stopNS)/n/1e6, "stop-ms")
}
