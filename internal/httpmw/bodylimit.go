package httpmw

import (
	"net/http"
	"strconv"
)

// BodyLimit caps request bodies at n bytes with http.MaxBytesReader; a
// handler reading past it gets an *http.MaxBytesError. A request that
// declares a larger Content-Length is refused at once with 413, a JSON
// error naming the limit, and "Connection: close" (the unread body is not
// drained). n <= 0 disables the limit.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if n <= 0 {
			return next
		}
		tooLarge := []byte(`{"error":"request body too large: the limit is ` + strconv.FormatInt(n, 10) + ` bytes"}` + "\n")
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				h := w.Header()
				h.Set("Connection", "close")
				h.Set("Content-Type", "application/json")
				h.Set("X-Content-Type-Options", "nosniff")
				w.WriteHeader(http.StatusRequestEntityTooLarge)
				_, _ = w.Write(tooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}
