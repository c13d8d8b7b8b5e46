package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/registry"
)

// Relay forwards GET /call/{service}/* to an instance of service, found
// through discovery for every request (round-robin across instances).
//
// It is not a proxy: {service} must be a service name, which discovery
// resolves; an address (127.0.0.1:4010, localhost:8011) answers 400 and
// is never dialed, so the public port cannot reach the admin listener,
// the private port or etcd. Every relayed call carries registry.HopsHeader
// one more than the call it serves; past registry.MaxHops relays (a relay
// calling itself, /call/example/call/example/...) it answers 508 Loop
// Detected.
type Relay struct {
	client *http.Client
}

// NewRelay returns a Relay resolving names with d. Its client asks
// discovery per request, so no caller can hold on to a stale address.
func NewRelay(d *registry.Discovery) *Relay {
	return &Relay{client: &http.Client{
		Transport: registry.NewTransport(d, nil),
		Timeout:   10 * time.Second,
	}}
}

// Routes registers the relay on the public router.
func (rl *Relay) Routes(r chi.Router) {
	r.Get("/call/{service}/*", rl.call)
}

func (rl *Relay) call(w http.ResponseWriter, r *http.Request) {
	service := chi.URLParam(r, "service")
	if err := registry.CheckServiceName(service); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("relay: %w", err))
		return
	}
	hops, err := registry.Hops(r)
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("relay: %w", err))
		return
	case hops >= registry.MaxHops:
		writeError(w, http.StatusLoopDetected, &registry.LoopError{Service: service, Hops: hops})
		return
	}
	target := "http://" + service + "/" + chi.URLParam(r, "*")
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(registry.WithHops(r.Context(), r), http.MethodGet, target, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("relay: %w", err))
		return
	}
	resp, err := rl.client.Do(req)
	if err != nil {
		writeError(w, statusOf(err), err)
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

// statusOf maps an error of the relayed call to the relay's answer.
func statusOf(err error) int {
	var (
		refused *registry.RefusedError
		loop    *registry.LoopError
		none    *registry.NoInstanceError
		tooMany *registry.TooManyServicesError
	)
	switch {
	case errors.As(err, &refused):
		return http.StatusBadRequest
	case errors.As(err, &loop):
		return http.StatusLoopDetected
	case errors.As(err, &none), errors.As(err, &tooMany):
		return http.StatusServiceUnavailable
	default:
		return http.StatusBadGateway
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
