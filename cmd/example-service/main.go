// Command example-service is the svc showcase: a whole service whose main is
// one call. With no flags and no configuration it serves
//
//	admin    127.0.0.1:4010   pprof, log level, config, tasks
//	public   :8010            GET /hello/{name}, GET /work?ms=N,
//	                          GET /call/{service}/* (relay through discovery)
//	private  :8011            /healthz, /readyz, /metrics, /info
//
// Run it with `make run`, then try `curl localhost:8010/hello/world`.
package main

import (
	"github.com/svc-dev/svc/svc"
)

func main() {
	svc.Run("example", 10, Module)
}
