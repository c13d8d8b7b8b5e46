package admin_test

import (
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/svc-dev/svc/admin"
)

// traceHeader is how every Go execution trace begins ("go 1.26 trace"
// and NUL padding to 16 bytes), what go tool trace checks first.
var traceHeader = regexp.MustCompile(`^go 1\.\d+ trace\x00+`)

// Not parallel: one flight recorder may record per process.
func TestFlightRecorder(t *testing.T) {
	var logs strings.Builder
	var mu sync.Mutex // guards logs
	fr := &admin.FlightRecorder{}
	t.Cleanup(func() { fr.Stop() })
	srv, err := admin.New(admin.Params{
		Flight: fr,
		Audit:  slog.New(slog.NewJSONHandler(lockedWriter{&mu, &logs}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}

	if rec := serve(srv, http.MethodGet, "/admin/flight", ""); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "flight/start") {
		t.Errorf("GET /admin/flight before start = %d %s; want 409 saying how to start one", rec.Code, rec.Body)
	}
	for _, q := range []string{"period=2m", "period=-1s", "period=soon", "size=1GiB", "size=0", "size=lots"} {
		if rec := serve(srv, http.MethodPost, "/admin/flight/start?"+q, ""); rec.Code != http.StatusBadRequest {
			t.Errorf("POST /admin/flight/start?%s = %d %s; want 400", q, rec.Code, rec.Body)
		}
	}
	if st := fr.Status(); st.Recording {
		t.Fatalf("recording after refused starts: %+v", st)
	}

	rec := serve(srv, http.MethodPost, "/admin/flight/start?period=5s&size=4MiB", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("POST /admin/flight/start = %d %s; want 200", rec.Code, rec.Body)
	}
	if st := decode[admin.FlightStatus](t, rec); !st.Recording || st.Period != "5s" || st.MaxBytes != 4<<20 {
		t.Errorf("start answered %+v; want recording, period 5s, 4MiB", st)
	}
	if rec := serve(srv, http.MethodPost, "/admin/flight/start", ""); rec.Code != http.StatusConflict {
		t.Errorf("second start = %d %s; want 409", rec.Code, rec.Body)
	}
	other := &admin.FlightRecorder{}
	if err := other.Start(0, 0); err == nil {
		other.Stop()
		t.Error("a second FlightRecorder started while the first records; want the runtime's one-per-process refusal")
	}

	// Something to record.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { runtime.Gosched() })
	}
	wg.Wait()

	rec = serve(srv, http.MethodGet, "/admin/flight", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /admin/flight = %d %s; want 200", rec.Code, rec.Body)
	}
	if body := rec.Body.Bytes(); !traceHeader.Match(body) {
		t.Errorf("dump starts with %q; want a Go execution trace header", body[:min(len(body), 16)])
	}
	if got := rec.Header().Get("Content-Type"); got != "application/octet-stream" {
		t.Errorf("Content-Type = %q; want application/octet-stream", got)
	}

	rec = serve(srv, http.MethodPost, "/admin/flight/stop", "")
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"was_recording": true`) {
		t.Errorf("POST /admin/flight/stop = %d %s; want 200, was_recording true", rec.Code, rec.Body)
	}
	if rec := serve(srv, http.MethodGet, "/admin/flight", ""); rec.Code != http.StatusConflict {
		t.Errorf("GET /admin/flight after stop = %d; want 409", rec.Code)
	}
	if rec := serve(srv, http.MethodGet, "/admin/flight/status", ""); !strings.Contains(rec.Body.String(), `"recording": false`) {
		t.Errorf("status after stop = %s; want recording false", rec.Body)
	}

	mu.Lock()
	audit := logs.String()
	mu.Unlock()
	for _, want := range []string{
		`"path":"/admin/flight/start?period=5s&size=4MiB","remote":"192.0.2.1:1234","status":200,"outcome":"ok","period":"5s","max_bytes":4194304`,
		`"method":"GET","path":"/admin/flight","remote":"192.0.2.1:1234","status":200,"outcome":"ok","bytes":`,
		`"path":"/admin/flight/stop","remote":"192.0.2.1:1234","status":200,"outcome":"ok","was_recording":true`,
	} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
}

func TestFlightRecorderOffWithoutParams(t *testing.T) {
	t.Parallel()
	srv, err := admin.New(admin.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if rec := serve(srv, http.MethodGet, "/admin/flight", ""); rec.Code != http.StatusNotFound {
		t.Errorf("GET /admin/flight without Params.Flight = %d; want 404", rec.Code)
	}
}

func TestFlightRecorderZeroValue(t *testing.T) {
	var fr admin.FlightRecorder
	if fr.Stop() {
		t.Error("Stop of a zero FlightRecorder reported it was recording")
	}
	if _, err := fr.WriteTo(nil); err != admin.ErrFlightStopped {
		t.Errorf("WriteTo of a zero FlightRecorder = %v; want ErrFlightStopped", err)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
