package httpmw

import (
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
)

// Recoverer turns a panic in a handler into a 500 and one error log line
// with the stack, and the process goes on. http.ErrAbortHandler is
// re-panicked: net/http uses it to abort a response on purpose.
//
// chi's middleware.Recoverer does the same but prints to stderr outside the
// structured log, hence this small copy.
func Recoverer(log *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				rvr := recover()
				if rvr == nil {
					return
				}
				if rvr == http.ErrAbortHandler { //nolint:errorlint // sentinel compared as net/http does
					panic(rvr)
				}
				log.LogAttrs(r.Context(), slog.LevelError, "panic in handler",
					slog.String("panic", fmt.Sprint(rvr)),
					slog.String("method", r.Method), slog.String("path", r.URL.Path),
					slog.String("request_id", GetID(r.Context())),
					slog.String("stack", string(debug.Stack())))
				if r.Header.Get("Connection") != "Upgrade" {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusInternalServerError)
					_, _ = w.Write([]byte(`{"error":"internal server error"}` + "\n"))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}
