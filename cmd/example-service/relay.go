package main

import (
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/registry"
)

// Relay forwards GET /call/{service}/* to an instance of service, found
// through discovery for every request (round-robin across instances).
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
	target := "http://" + chi.URLParam(r, "service") + "/" + chi.URLParam(r, "*")
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, target, nil)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	resp, err := rl.client.Do(req)
	var none *registry.NoInstanceError
	switch {
	case errors.As(err, &none):
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": none.Error()})
		return
	case err != nil:
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
