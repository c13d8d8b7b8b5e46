// Command fairbase is the fair baseline for svc: what a service would be
// without svc but with the same choices. Bare chi serves GET /hello/{name}
// ([bench.Hello]) on :8096 (ADDR overrides) with no middleware, behind an
// http.Server with the limits svc sets by default (read-header 5s, read
// 30s, write 30s, idle 120s, 64 KiB of headers); fx, prometheus
// client_golang (with its collectors and promhttp) and the etcd v3 client
// are linked in but never called, so their package init and binary size
// are paid as svc pays them. It logs nothing per request.
package main

import (
	"log"
	"net/http"
	"os"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/internal/bench"

	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/prometheus/client_golang/prometheus/collectors"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "go.etcd.io/etcd/client/v3"
	_ "go.uber.org/fx"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8096"
	}
	r := chi.NewRouter()
	r.Get("/hello/{name}", bench.Hello)
	srv := &http.Server{
		Addr:              addr,
		Handler:           r,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	log.Fatal(srv.ListenAndServe())
}
