package httpmw

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/svc-dev/svc/internal/respwriter"
)

// Recoverer turns a panic in a handler into one error log line with the
// stack, and the process goes on. If the handler had not yet sent the
// response's headers, the client gets a 500 with a JSON error; if it had,
// a 500 can no longer replace them, so Recoverer aborts the response with
// http.ErrAbortHandler after logging: the client sees a broken response
// (a reset connection, a truncated body) rather than a corrupted one that
// looks complete. http.ErrAbortHandler from the handler itself is
// re-panicked without a log line: net/http uses it to abort a response on
// purpose.
//
// It is [New] with only Options.Recover: it wraps the response writer to
// know whether headers went out, unless an outer [New] or [Observe]
// wrapped it already.
//
// chi's middleware.Recoverer does the same but prints to stderr outside the
// structured log, hence this small copy.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return New(Options{Recover: true, Log: log})
}

// recovered handles the panic value v of the handler behind rw: it logs
// it and answers 500 when the headers are not sent yet. It returns what
// to panic with afterwards, or nil: http.ErrAbortHandler as it came, and
// http.ErrAbortHandler for a panic after the headers went out.
func (h *handler) recovered(v any, rw *respwriter.Writer, r *http.Request, id string) any {
	if v == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
		return v
	}
	if h.ids == nil {
		id = GetID(r.Context())
	}
	sent := rw.Status != 0
	h.o.Log.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
		slog.String("panic", fmt.Sprint(v)),
		slog.String("method", r.Method), slog.String("path", r.URL.Path),
		slog.String("request_id", id),
		slog.Bool("response_aborted", sent),
		slog.String("stack", string(debug.Stack())))
	if sent {
		return http.ErrAbortHandler
	}
	if r.Header.Get("Connection") != "Upgrade" {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusInternalServerError)
		_, _ = rw.Write([]byte(`{"error":"internal server error"}` + "\n"))
	}
	return nil
}
