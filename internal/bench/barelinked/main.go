// Command barelinked is barehttp linked with everything svc links, none of
// it used: GET / on :8094 (ADDR overrides). Its start time minus
// barehttp's is what the dependency tree alone costs (loading a larger
// binary and its packages' init); the example service's minus barelinked's
// is svc's own work (config, fx graph, collectors, three listeners).
//
// Build tags link one dependency instead of all of svc, to price each:
// link_etcd (the etcd v3 client: gRPC, protobuf), link_prometheus
// (client_golang, its collectors and promhttp), link_fx (go.uber.org/fx).
// BenchmarkStartup passes STARTUP_LINKED_TAGS to go build.
package main

import (
	"log"
	"net/http"
	"os"

	"github.com/svc-dev/svc/internal/bench"
)

func main() {
	addr := os.Getenv("ADDR")
	if addr == "" {
		addr = ":8094"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", bench.Hello)
	log.Fatal(http.ListenAndServe(addr, mux))
}
