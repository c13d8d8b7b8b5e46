// Command barechi is the throughput baseline: bare chi serving
// GET /hello/{name} on :8092 (ADDR overrides), no middleware. With
// TIMEOUTS=1 its http.Server gets svc's default timeouts (read-header 5s,
// read 30s, write 30s, idle 120s), to tell their cost from the
// middleware's.
package main

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/internal/bench"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8092"
	}
	r := chi.NewRouter()
	r.Get("/hello/{name}", bench.Hello)
	srv := &http.Server{Addr: addr, Handler: r}
	if os.Getenv("TIMEOUTS") != "" {
		srv.ReadHeaderTimeout = 5 * time.Second
		srv.ReadTimeout = 30 * time.Second
		srv.WriteTimeout = 30 * time.Second
		srv.IdleTimeout = 120 * time.Second
	}
	log.Fatal(srv.ListenAndServe())
}
