package httpmw

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/go-chi/chi/v5/middleware"
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
// Recoverer knows whether headers went out from the Status of a chi
// middleware.WrapResponseWriter: behind [Observe], which provides one, it
// allocates nothing; alone, it wraps the writer itself.
//
// chi's middleware.Recoverer does the same but prints to stderr outside the
// structured log, hence this small copy.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ww, ok := w.(middleware.WrapResponseWriter)
			if !ok {
				ww = middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			}
			defer func() {
				rvr := recover()
				if rvr == nil {
					return
				}
				if rvr == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(rvr)
				}
				sent := ww.Status() != 0
				log.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
					slog.String("panic", fmt.Sprint(rvr)),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.String("request_id", GetID(r.Context())),
					slog.Bool("response_aborted", sent),
					slog.String("stack", string(debug.Stack())))
				if sent {
					panic(http.ErrAbortHandler)
				}
				if r.Header.Get("Connection") != "Upgrade" {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = w.Write([]byte(`{"error":"internal server error"}` + "\n"))
				}
			}()
			next.ServeHTTP(ww, r)
		})
	}
}
