// Command barehttp is the startup baseline: a bare net/http server
// answering GET / on :8090 (ADDR overrides), with nothing else.
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
		addr = ":8090"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", bench.Hello)
	log.Fatal(http.ListenAndServe(addr, mux))
}
