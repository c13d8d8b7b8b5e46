package main

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/registry"
)

// Greet serves GET /greet/{service}/{name}: it expands the uri-spec that
// the instances of service registered (the example registers
// "/hello/{name}") with name, calls it through the discovery client and
// answers what the callee answered. It is the second way to call a
// service, beside Relay's base URL: Discovery.URL returns
// "http://<service>/hello/<name>", never an instance's address, and the
// client picks the instance per attempt.
type Greet struct {
	d      *registry.Discovery
	client *http.Client
}

// NewGreet returns a Greet calling through d.
func NewGreet(d *registry.Discovery) *Greet {
	return &Greet{d: d, client: registry.NewClient(d, registry.ClientOptions{})}
}

// Routes registers GET /greet/{service}/{name} on the public router.
func (g *Greet) Routes(r chi.Router) {
	r.Get("/greet/{service}/{name}", g.greet)
}

func (g *Greet) greet(w http.ResponseWriter, r *http.Request) {
	service := chi.URLParam(r, "service")
	if !checkCall(w, r, service) {
		return
	}
	u, err := g.d.URL(service, map[string]string{"name": chi.URLParam(r, "name")})
	if err != nil {
		var none *registry.NoInstanceError
		var tooMany *registry.TooManyServicesError
		code := http.StatusBadGateway // the callee's uri-spec is missing or wants more than {name}
		if errors.As(err, &none) || errors.As(err, &tooMany) {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, fmt.Errorf("example: greet through %s: %w", service, err))
		return
	}
	relayGet(w, r, g.client, u)
}
