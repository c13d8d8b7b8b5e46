package accesslog

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkLog is the cost of one access line to a request: Writer.Log
// against the slog JSON handler svc uses today (same fields, same output),
// both writing to io.Discard:
//
//	go test -run '^$' -bench 'Log$' -benchmem -count 10 ./internal/accesslog > log.txt
//	go run golang.org/x/perf/cmd/benchstat@latest -col /impl log.txt
//
// Writer.Log's sink is written by its own goroutine, off the request's
// path; slog's Write is on it (to io.Discard here, a write(2) in svc).
func BenchmarkLog(b *testing.B) {
	e := Entry{Server: "public", Method: "GET", Route: "/hello/{name}", Path: "/hello/ann",
		Status: 200, Bytes: 6, Duration: 42 * time.Microsecond, RequestID: "host-a1b2c3-000042", Remote: "127.0.0.1:41234"}
	for _, f := range []struct {
		name   string
		format Format
	}{{"json", JSON}, {"text", Text}} {
		b.Run("format="+f.name+"/impl=accesslog", func(b *testing.B) {
			w := New(io.Discard, Options{Service: "bench", Format: f.format})
			defer w.Close()
			b.ReportAllocs()
			for b.Loop() {
				e := e // a fresh Entry per request, as httpmw builds it
				w.Log(&e)
			}
			b.StopTimer()
			if n := w.Dropped(); n > 0 {
				b.Logf("%d of %d lines dropped", n, b.N)
			}
		})
		b.Run("format="+f.name+"/impl=slog", func(b *testing.B) {
			var h slog.Handler = slog.NewJSONHandler(io.Discard, nil)
			if f.format == Text {
				h = slog.NewTextHandler(io.Discard, nil)
			}
			log := slog.New(h).With("service", "bench")
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if log.Enabled(ctx, slog.LevelInfo) {
					log.LogAttrs(ctx, slog.LevelInfo, "request",
						slog.String("server", e.Server),
						slog.String("method", e.Method),
						slog.String("route", e.Route),
						slog.String("path", e.Path),
						slog.Int("status", e.Status),
						slog.Int("bytes", e.Bytes),
						slog.Float64("duration_ms", float64(e.Duration.Microseconds())/1000),
						slog.String("request_id", e.RequestID),
						slog.String("remote", e.Remote))
				}
			}
		})
	}
}

// BenchmarkLogParallel is BenchmarkLog from GOMAXPROCS goroutines at once,
// as a server's requests log: they share the Writer's buffer and lock.
func BenchmarkLogParallel(b *testing.B) {
	w := New(io.Discard, Options{Service: "bench"})
	defer w.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Log(&Entry{Server: "public", Method: "GET", Route: "/hello/{name}", Path: "/hello/ann",
				Status: 200, Bytes: 6, Duration: 42 * time.Microsecond, RequestID: "host-a1b2c3-000042", Remote: "127.0.0.1:41234"})
		}
	})
}
