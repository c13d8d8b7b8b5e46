package accesslog_test

import (
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/svc-dev/svc/internal/accesslog"
)

func Example() {
	reg := prometheus.NewRegistry()
	dropped, err := accesslog.NewDroppedCounter(reg)
	if err != nil {
		panic(err)
	}
	w := accesslog.New(os.Stdout, accesslog.Options{Service: "example", Dropped: dropped})

	// In the access-log middleware, once the handler has returned:
	w.Log(&accesslog.Entry{
		Time:   time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		Server: "public", Method: "GET", Route: "/hello/{name}", Path: "/hello/ann",
		Status: 200, Bytes: 6, Duration: 42 * time.Microsecond,
		RequestID: "host-1", Remote: "127.0.0.1:41234",
	})

	// At shutdown, after the HTTP servers have stopped:
	if err := w.Close(); err != nil {
		panic(err)
	}
	// Output:
	// {"time":"2026-11-28T10:00:00Z","level":"INFO","msg":"request","service":"example","server":"public","method":"GET","route":"/hello/{name}","path":"/hello/ann","status":200,"bytes":6,"duration_ms":0.042,"request_id":"host-1","remote":"127.0.0.1:41234"}
}
