// Package accesslog writes one line per HTTP request at almost no cost to
// the request: the line is encoded by hand (no reflection, no caller
// lookup, no interface per field) into a pooled buffer, copied into a
// bounded in-memory buffer, and written by one goroutine in batches of
// whole lines. A request never waits for the sink.
//
//	w := accesslog.New(os.Stderr, accesslog.Options{Service: "example", Dropped: dropped})
//	defer w.Close() // at shutdown, after the HTTP servers have stopped
//	...
//	w.Log(&accesslog.Entry{Server: "public", Method: r.Method, Route: route, ...})
//
// # Lines
//
// A JSON line holds the same keys, in the same order and with the same
// encoding, as the line svc's slog JSON handler writes for the access log:
//
//	{"time":"2026-11-28T10:00:00.123456789Z","level":"INFO","msg":"request","service":"example","server":"public","method":"GET","route":"/hello/{name}","path":"/hello/ann","status":200,"bytes":6,"duration_ms":0.042,"request_id":"host-1","remote":"127.0.0.1:41234"}
//
// with "trace_id" after "request_id" when the request has one. Strings are
// escaped as encoding/json escapes them (invalid UTF-8 becomes \ufffd), so
// every line is valid JSON whatever a client sends. The Text format is what
// slog's TextHandler writes, for a terminal:
//
//	time=2026-11-28T10:00:00.123Z level=INFO msg=request service=example server=public method=GET route=/hello/{name} path=/hello/ann status=200 bytes=6 duration_ms=0.042 request_id=host-1 remote=127.0.0.1:41234
//
// # Writing
//
// The writer goroutine writes what is buffered every FlushInterval (100
// ms), as soon as BatchSize (64 KiB) is buffered, on Flush and on Close.
// Each Write to the sink is a run of complete lines. When the service's own
// slog lines go to the same *os.File (stderr), the two kinds of lines may
// interleave, line by line, but never within a line; an access line may
// appear up to FlushInterval after slog lines logged later.
//
// Memory is bounded: BufferSize (1 MiB) bounds the bytes waiting plus the
// batch being written (the two buffers' capacity may reach twice that).
// When a line does not fit, because the sink is slower than the requests
// or blocks, the line is dropped and counted in Options.Dropped
// (svc_access_log_dropped_total, see NewDroppedCounter); lines the sink
// fails to take are counted there too.
//
// # What can be lost
//
// Close (at shutdown) and Flush (before exiting on a fatal error) write
// every line logged before they were called: a clean stop loses nothing.
// A process killed without running either (kill -9, an OOM kill, a crash in
// another goroutine) loses the lines still in memory: those of the last
// FlushInterval (about 100 ms) in the normal case, at most BufferSize (1
// MiB) when the sink had fallen behind.
package accesslog
