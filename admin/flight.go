package admin

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/trace"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults and caps of a [FlightRecorder].
const (
	DefaultFlightPeriod    = 10 * time.Second // how far back a dump reaches when start names no period
	DefaultFlightBytes     = 16 << 20         // buffer size when start names none
	DefaultMaxFlightPeriod = time.Minute      // default of FlightRecorder.MaxPeriod
	DefaultMaxFlightBytes  = 64 << 20         // default of FlightRecorder.MaxBytes
)

// Errors of a [FlightRecorder]; the admin endpoints answer both with 409.
var (
	ErrFlightRecording = errors.New("admin: a flight recorder is already recording")
	ErrFlightStopped   = errors.New("admin: no flight recorder is recording")
)

// FlightRecorder keeps the last seconds of the Go execution trace in
// memory (runtime/trace.FlightRecorder), to be dumped right after
// something went wrong: a latency spike, a stall. It records only between
// Start and Stop; while it does, the runtime's tracer runs, at a cost of
// a few percent of CPU. The zero value is ready to use and not recording.
// It is safe for concurrent use.
//
// Only one flight recorder may record in a process at a time (a runtime
// rule): Start fails while another one, of this or any other
// FlightRecorder, records. Whoever makes a FlightRecorder stops it on
// shutdown.
type FlightRecorder struct {
	// MaxPeriod caps the period Start accepts. If zero,
	// DefaultMaxFlightPeriod is used.
	MaxPeriod time.Duration
	// MaxBytes caps the buffer size Start accepts. If zero,
	// DefaultMaxFlightBytes is used. A dump holds up to about this much
	// again while it is sent.
	MaxBytes uint64

	mu     sync.Mutex            // guards fr and status, and serializes dumps
	fr     *trace.FlightRecorder // nil: not recording
	status FlightStatus
}

// FlightStatus is the JSON state of a [FlightRecorder].
type FlightStatus struct {
	Recording bool      `json:"recording"`
	Period    string    `json:"period,omitempty"`    // how far back a dump reaches, at least
	MaxBytes  uint64    `json:"max_bytes,omitempty"` // the buffer size
	StartedAt time.Time `json:"started_at,omitzero"`
}

func (f *FlightRecorder) caps() (time.Duration, uint64) {
	p, b := f.MaxPeriod, f.MaxBytes
	if p <= 0 {
		p = DefaultMaxFlightPeriod
	}
	if b == 0 {
		b = DefaultMaxFlightBytes
	}
	return p, b
}

// Start starts recording, keeping at least the last period of trace in
// a buffer of at most size bytes (the size wins when they disagree). A
// zero period or size is DefaultFlightPeriod or DefaultFlightBytes. It
// returns an error wrapping ErrFlightRecording when this recorder, or
// another one in the process, already records, and an error when period
// or size exceed the caps.
func (f *FlightRecorder) Start(period time.Duration, size uint64) error {
	maxPeriod, maxBytes := f.caps()
	if period == 0 {
		period = DefaultFlightPeriod
	}
	if size == 0 {
		size = min(DefaultFlightBytes, maxBytes)
	}
	if period < 0 || period > maxPeriod {
		return fmt.Errorf("admin: flight recorder period %v: want at most %v (FlightRecorder.MaxPeriod)", period, maxPeriod)
	}
	if size > maxBytes {
		return fmt.Errorf("admin: flight recorder size %d bytes: want at most %d (FlightRecorder.MaxBytes)", size, maxBytes)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fr != nil {
		return ErrFlightRecording
	}
	fr := trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: period, MaxBytes: size})
	if err := fr.Start(); err != nil { // another recorder records: one per process
		return fmt.Errorf("%w in this process (%v)", ErrFlightRecording, err)
	}
	f.fr = fr
	f.status = FlightStatus{Recording: true, Period: period.String(), MaxBytes: size, StartedAt: time.Now().UTC()}
	return nil
}

// Stop stops recording and drops the buffer. It reports whether the
// recorder was recording.
func (f *FlightRecorder) Stop() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fr == nil {
		return false
	}
	f.fr.Stop()
	f.fr, f.status = nil, FlightStatus{}
	return true
}

// Status returns the recorder's state.
func (f *FlightRecorder) Status() FlightStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

// WriteTo writes the trace of the last period, as `go tool trace` reads
// it, to w; recording goes on. It returns ErrFlightStopped when the
// recorder is not recording. The snapshot is taken in memory first, so a
// slow w does not hold the recorder.
func (f *FlightRecorder) WriteTo(w io.Writer) (int64, error) {
	buf, err := f.snapshot()
	if err != nil {
		return 0, err
	}
	return buf.WriteTo(w)
}

func (f *FlightRecorder) snapshot() (*bytes.Buffer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fr == nil {
		return nil, ErrFlightStopped
	}
	var buf bytes.Buffer
	if _, err := f.fr.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("admin: flight recorder snapshot: %w", err)
	}
	return &buf, nil
}

// flightRoutes mounts the flight recorder's endpoints when Params.Flight
// is set.
func (s *Server) flightRoutes() {
	f := s.p.Flight
	if f == nil {
		return
	}
	maxPeriod, maxBytes := f.caps()
	s.handle(http.MethodGet, "/admin/flight", "dump the flight recorder's last seconds of execution trace (open with go tool trace); 409 when not recording", s.flightDump)
	s.handle(http.MethodGet, "/admin/flight/status", "whether the flight recorder records, its period and size", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.Status())
	})
	s.handle(http.MethodPost, "/admin/flight/start",
		fmt.Sprintf("start the flight recorder: ?period=%v (at most %v) &size=%s (at most %s); 409 when recording", DefaultFlightPeriod, maxPeriod, sizeName(DefaultFlightBytes), sizeName(maxBytes)),
		s.flightStart)
	s.handle(http.MethodPost, "/admin/flight/stop", "stop the flight recorder and drop its buffer", func(w http.ResponseWriter, r *http.Request) {
		was := f.Stop()
		auditAttrs(w, slog.Bool("was_recording", was))
		writeJSON(w, http.StatusOK, map[string]any{"recording": false, "was_recording": was})
	})
}

func (s *Server) flightStart(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var period time.Duration
	if v := q.Get("period"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: period=%q: want a positive duration such as 10s", v))
			return
		}
		period = d
	}
	var size uint64
	if v := q.Get("size"); v != "" {
		n, err := parseSize(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: size=%q: %v", v, err))
			return
		}
		size = n
	}
	err := s.p.Flight.Start(period, size)
	switch {
	case errors.Is(err, ErrFlightRecording):
		msg := err.Error()
		if st := s.p.Flight.Status(); st.Recording {
			msg += fmt.Sprintf(" (since %s, period %s); POST /admin/flight/stop first to change it", st.StartedAt.Format(time.RFC3339), st.Period)
		}
		writeError(w, http.StatusConflict, msg)
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.p.Flight.Status()
	auditAttrs(w, slog.String("period", st.Period), slog.Uint64("max_bytes", st.MaxBytes))
	writeJSON(w, http.StatusOK, st)
}

// flightDump streams the snapshot. A GET is not audited by the audit
// middleware; a dump is, here: it reveals what the process was doing.
func (s *Server) flightDump(w http.ResponseWriter, r *http.Request) {
	buf, err := s.p.Flight.snapshot()
	status, n := http.StatusOK, 0
	switch {
	case errors.Is(err, ErrFlightStopped):
		status = http.StatusConflict
		writeError(w, status, err.Error()+"; POST /admin/flight/start (svcctl SERVICE flight start) starts one, and a dump taken after the event shows the seconds before it")
	case err != nil:
		status = http.StatusInternalServerError
		writeError(w, status, err.Error())
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="flight.trace"`)
		n = buf.Len()
		w.Header().Set("Content-Length", strconv.Itoa(n))
		_, _ = buf.WriteTo(w)
	}
	outcome := "ok"
	if status != http.StatusOK {
		outcome = "failed"
	}
	s.p.Audit.LogAttrs(r.Context(), slog.LevelInfo, "admin action",
		slog.String("method", r.Method), slog.String("path", redactedURI(r.URL)),
		slog.String("remote", r.RemoteAddr), slog.Int("status", status),
		slog.String("outcome", outcome), slog.Int("bytes", n))
}

// parseSize parses a byte count: an integer, optionally followed by KiB,
// MiB or GiB (or KB, MB, GB, taken as the same powers of two).
func parseSize(s string) (uint64, error) {
	num, mult := s, uint64(1)
	for _, u := range []struct {
		suffix string
		mult   uint64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30}} {
		if strings.HasSuffix(s, u.suffix) {
			num, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseUint(strings.TrimSpace(num), 10, 64)
	if err != nil || n == 0 || n > (1<<63)/mult {
		return 0, errors.New("want a positive number of bytes, optionally with KiB, MiB or GiB")
	}
	return n * mult, nil
}

// sizeName writes n bytes in MiB when it is a whole number of them.
func sizeName(n uint64) string {
	if n%(1<<20) == 0 {
		return strconv.FormatUint(n>>20, 10) + "MiB"
	}
	return strconv.FormatUint(n, 10)
}
