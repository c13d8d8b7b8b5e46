// Command svchello serves the throughput baseline's handler through the
// whole svc framework: GET /hello/{name} on the public port 8020 behind
// request ids, metrics, access log (log.access, LOG_ACCESS), panic
// recovery and the body limit.
package main

import (
	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/internal/bench"
	"github.com/svc-dev/svc/svc"
)

func main() {
	svc.Run("svchello", 20, svc.PublicRoutes(func(r chi.Router) {
		r.Get("/hello/{name}", bench.Hello)
	}))
}
