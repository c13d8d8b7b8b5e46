package httpmw

import "net/http"

// BodyLimit caps request bodies at n bytes with http.MaxBytesReader; a
// handler reading past it gets an *http.MaxBytesError. A request that
// declares a larger Content-Length is refused at once with 413. n <= 0
// disables the limit.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		if n <= 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > n {
				w.Header().Set("Connection", "close")
				http.Error(w, "request body too large", http.StatusRequestEntityTooLarge)
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, n)
			next.ServeHTTP(w, r)
		})
	}
}
