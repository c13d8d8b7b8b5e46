package httpmw

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the RED metrics of the HTTP servers, labelled by server and
// by the router's route pattern, never the raw path.
type Metrics struct {
	requests *prometheus.CounterVec   // http_requests_total{server,method,route,code}
	duration *prometheus.HistogramVec // http_request_duration_seconds{server,method,route}

	mu     sync.RWMutex          // guards series
	series map[seriesKey]*series // resolved children, so a request pays one map read
}

// seriesKey names the children of one request's labels. The set is bounded:
// routes are the router's patterns, never raw paths.
type seriesKey struct {
	server, method, route string
	code                  int
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// of returns the children for k, resolving them once. The label-value
// lookup of client_golang hashes every label on each call; this map read
// does not allocate.
func (m *Metrics) of(k seriesKey) *series {
	m.mu.RLock()
	s, ok := m.series[k]
	m.mu.RUnlock()
	if ok {
		return s
	}
	s = &series{
		requests: m.requests.WithLabelValues(k.server, k.method, k.route, strconv.Itoa(k.code)),
		duration: m.duration.WithLabelValues(k.server, k.method, k.route),
	}
	m.mu.Lock()
	if len(m.series) < maxSeries {
		m.series[k] = s
	}
	m.mu.Unlock()
	return s
}

// maxSeries caps the cache: a client inventing methods cannot grow it
// without bound (the metrics themselves still count every request).
const maxSeries = 4096

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		series: make(map[seriesKey]*series),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests served, by server, method, route pattern and status code.",
		}, []string{"server", "method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "HTTP request latency, by server, method and route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"server", "method", "route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Unmatched is the route label of requests no route matched.
const Unmatched = "unmatched"

// Observe records metrics for every request and, when access is true, logs
// one line per request at info level. It must wrap the chi router itself
// (router.Use) so the route pattern is known when the handler returns.
func Observe(server string, m *Metrics, log *slog.Logger, access bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			defer func() {
				// Record even when a panic unwinds past us (ErrAbortHandler).
				status := ww.Status()
				if status == 0 {
					status = http.StatusOK
				}
				route := Unmatched
				if rc := chi.RouteContext(r.Context()); rc != nil {
					if p := rc.RoutePattern(); p != "" {
						route = p
					}
				}
				elapsed := time.Since(start)
				ser := m.of(seriesKey{server, r.Method, route, status})
				ser.requests.Inc()
				ser.duration.Observe(elapsed.Seconds())
				if access && log.Enabled(r.Context(), slog.LevelInfo) {
					log.LogAttrs(r.Context(), slog.LevelInfo, "request",
						slog.String("server", server),
						slog.String("method", r.Method),
						slog.String("route", route),
						slog.String("path", r.URL.Path),
						slog.Int("status", status),
						slog.Int("bytes", ww.BytesWritten()),
						slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
						slog.String("request_id", GetID(r.Context())),
						slog.String("remote", r.RemoteAddr))
				}
			}()
			next.ServeHTTP(ww, r)
		})
	}
}
