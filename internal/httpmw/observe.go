package httpmw

import (
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/internal/accesslog"
)

// Metrics are the RED metrics of the HTTP servers, labelled by server and
// by the router's route pattern, never the raw path.
//
// Every label has a bounded set of values, whatever clients send: the
// method is one of the nine methods of RFC 9110 or [OtherMethod]; the route
// is a pattern the service registered or [Unmatched]; the code is a status
// code net/http knows, the class of any other code from 100 to 599 ("4xx"),
// or [OtherCode]. A client inventing methods, paths or status codes cannot
// add series.
type Metrics struct {
	requests *prometheus.CounterVec   // http_requests_total{server,method,route,code}
	duration *prometheus.HistogramVec // http_request_duration_seconds{server,method,route}

	// series are the resolved children, so a request pays one map read
	// and no lock: the map is never written once stored; a new label set
	// stores a copy with it added (under mu). Label sets are few and
	// bounded (maxSeries), so the copies are rare.
	series atomic.Pointer[map[seriesKey]*series]
	mu     sync.Mutex // serialises the copies
}

// seriesKey names the children of one request's labels. The set is bounded:
// method is methodLabel's, routes are the router's patterns, never raw
// paths, and code is codeKey's.
type seriesKey struct {
	server, method, route string
	code                  int // codeKey's: codeLabel turns it into the label
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// of returns the children for k, resolving them once. The label-value
// lookup of client_golang hashes every label on each call; this map read
// does not allocate.
func (m *Metrics) of(k seriesKey) *series {
	if s, ok := (*m.series.Load())[k]; ok {
		return s
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.series.Load()
	if s, ok := old[k]; ok {
		return s
	}
	s := &series{
		requests: m.requests.WithLabelValues(k.server, k.method, k.route, codeLabel(k.code)),
		duration: m.duration.WithLabelValues(k.server, k.method, k.route),
	}
	if len(old) < maxSeries {
		next := make(map[seriesKey]*series, len(old)+1)
		maps.Copy(next, old)
		next[k] = s
		m.series.Store(&next)
	}
	return s
}

// maxSeries caps the cache, as a second line of defence: the labels are
// bounded already, but a service with very many routes still cannot grow
// the cache past it (the metrics themselves still count every request).
const maxSeries = 4096

// NewMetrics registers the HTTP metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
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
	m.series.Store(&map[seriesKey]*series{})
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Unmatched is the route label of requests no route matched.
const Unmatched = "unmatched"

// OtherMethod is the method label of a request whose method is not one of
// GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS and TRACE (RFC 9110
// and RFC 5789): the value client_golang's promhttp uses for the same
// purpose since CVE-2022-21698. Methods are case-sensitive: "get" is
// OtherMethod, as chi does not route it as GET either.
const OtherMethod = "unknown"

// OtherCode is the code label of a status outside 100-599 (net/http lets
// a handler write any code from 100 to 999), as in promhttp.
const OtherCode = "unknown"

// methodLabel returns the method label of m without allocating.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodConnect,
		http.MethodOptions, http.MethodTrace:
		return m
	}
	return OtherMethod
}

// codeKey maps a status code to a bounded set of keys: a code net/http
// has a name for is itself; any other code from 100 to 599 is 1000 plus
// its class (1001 for 1xx ... 1005 for 5xx); anything else is 0.
func codeKey(code int) int {
	switch {
	case http.StatusText(code) != "":
		return code
	case code >= 100 && code <= 599:
		return 1000 + code/100
	}
	return 0
}

// codeLabel is the label of a codeKey: "404", "4xx" or OtherCode.
func codeLabel(key int) string {
	switch {
	case key == 0:
		return OtherCode
	case key > 1000:
		return strconv.Itoa(key-1000) + "xx"
	}
	return strconv.Itoa(key)
}

// Observe records metrics for every request and, when access is not nil,
// writes one access line per request to it while log is enabled at info.
// It goes inside the chi router (router.Use) or around it, as [New] says,
// so the route pattern is known when the handler returns. The labels are bounded as [Metrics]
// says; the access line keeps the raw method and path. It is [New] with
// only Options.Metrics and Options.Access.
func Observe(server string, m *Metrics, log *slog.Logger, access *accesslog.Writer) func(http.Handler) http.Handler {
	return New(Options{Server: server, Metrics: m, Log: log, Access: access})
}
