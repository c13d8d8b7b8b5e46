package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/registry"
)

// Relay forwards GET /call/{service}/* to an instance of service: the
// request goes to "http://<service>/<rest>" through the discovery client,
// which picks an instance for every attempt, retries another one when an
// instance is dead, hung or answers 502/503/504, and ejects failing ones.
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

// NewRelay returns a Relay calling through d. Its client resolves an
// instance per attempt, so no caller can hold on to a stale address.
func NewRelay(d *registry.Discovery) *Relay {
	return &Relay{client: registry.NewClient(d, registry.ClientOptions{})}
}

// Routes registers the relay on the public router.
func (rl *Relay) Routes(r chi.Router) {
	r.Get("/call/{service}/*", rl.call)
}

func (rl *Relay) call(w http.ResponseWriter, r *http.Request) {
	service := chi.URLParam(r, "service")
	if !checkCall(w, r, service) {
		return
	}
	target := "http://" + service + "/" + chi.URLParam(r, "*")
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	relayGet(w, r, rl.client, target)
}

// checkCall answers 400 for a {service} that is not a service name or a
// malformed registry.HopsHeader, and 508 past registry.MaxHops; it
// reports whether the call may go on.
func checkCall(w http.ResponseWriter, r *http.Request, service string) bool {
	if err := registry.CheckServiceName(service); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("example: %w", err))
		return false
	}
	hops, err := registry.Hops(r)
	switch {
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("example: %w", err))
		return false
	case hops >= registry.MaxHops:
		writeError(w, http.StatusLoopDetected, &registry.LoopError{Service: service, Hops: hops})
		return false
	}
	return true
}

// relayGet GETs target ("http://<service>/...") with client on behalf of
// r, and copies the answer: status, Content-Type and body. The call
// carries r's hop count and ends when r's caller gives up: r's context,
// or the time its caller still waits (registry.TimeoutHeader).
func relayGet(w http.ResponseWriter, r *http.Request, client *http.Client, target string) {
	ctx := registry.WithHops(r.Context(), r)
	if d, ok := registry.InboundTimeout(r); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("example: %w", err))
		return
	}
	resp, err := client.Do(req)
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

// statusOf maps an error of a call to another service to the answer of
// the service that made it.
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
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusBadGateway
	}
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
