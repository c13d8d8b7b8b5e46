package registry

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// clientMetrics are the metrics of the calls made through the clients of
// one Discovery. Every label is bounded: service is a name discovery
// resolved to an instance (the registry, an override or the port
// convention: never a name only a caller made up), code a status known to
// net/http (others by class: "5xx") or "error", result and reason come
// from fixed sets.
type clientMetrics struct {
	requests  *prometheus.CounterVec // service, code
	attempts  *prometheus.CounterVec // service, result
	retries   *prometheus.CounterVec // service, reason
	denied    *prometheus.CounterVec // service
	ejections *prometheus.CounterVec // service
}

// Results of svc_client_attempts_total.
const (
	resultOK       = "ok"            // an answer below 500
	result5xx      = "5xx"           // an answer of 500 or more
	resultTimeout  = "timeout"       // the per-attempt timeout passed with no answer
	resultConnect  = "connect_error" // no connection could be made
	resultError    = "error"         // the connection failed after it was made
	resultCanceled = "canceled"      // the caller gave up (its context, or the call timeout)
)

// Reasons of svc_client_retries_total.
const (
	reasonUnsent  = "unsent"  // the request was never sent
	reasonTimeout = "timeout" // idempotent, the per-attempt timeout passed
	reasonStatus  = "status"  // idempotent, 502, 503 or 504
	reasonError   = "error"   // idempotent, connection lost after sending
)

// newClientMetrics makes the client metrics and registers them on reg,
// unless reg is nil. If reg already holds them (two Discoveries on one
// registry), the registered ones are shared.
func newClientMetrics(reg prometheus.Registerer, log *slog.Logger) *clientMetrics {
	m := &clientMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svc_client_requests_total",
			Help: "Calls to other services through the discovery client, by target service and final status code (error: no answer).",
		}, []string{"service", "code"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svc_client_attempts_total",
			Help: "Attempts of calls to other services (one per instance tried), by target service and result.",
		}, []string{"service", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svc_client_retries_total",
			Help: "Attempts after the first, by target service and reason.",
		}, []string{"service", "reason"}),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svc_client_retries_denied_total",
			Help: "Retries not made because the service's retry budget was spent.",
		}, []string{"service"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "svc_client_ejections_total",
			Help: "Instances taken out of rotation by outlier ejection, by service.",
		}, []string{"service"}),
	}
	if reg == nil {
		return m
	}
	for _, c := range []**prometheus.CounterVec{&m.requests, &m.attempts, &m.retries, &m.denied, &m.ejections} {
		if err := reg.Register(*c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				if existing, ok := already.ExistingCollector.(*prometheus.CounterVec); ok {
					*c = existing
					continue
				}
			}
			log.Error("registry: client metrics not registered", "err", err)
		}
	}
	return m
}

// codeLabel returns the code label of an HTTP status: the number for a
// status net/http knows, its class ("5xx") otherwise.
func codeLabel(code int) string {
	if http.StatusText(code) != "" {
		return strconv.Itoa(code)
	}
	if code >= 100 && code < 600 {
		return strconv.Itoa(code/100) + "xx"
	}
	return "other"
}
