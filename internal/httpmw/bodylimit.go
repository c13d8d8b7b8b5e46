package httpmw

import (
	"net/http"
	"strconv"
)

// BodyLimit caps request bodies at n bytes with http.MaxBytesReader; a
// handler reading past it gets an *http.MaxBytesError. A request that
// declares a larger Content-Length is refused at once with 413, a JSON
// error naming the limit, and "Connection: close" (the unread body is not
// drained). n <= 0 disables the limit. It is [New] with only
// Options.MaxBodyBytes.
func BodyLimit(n int64) func(http.Handler) http.Handler {
	if n <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	return New(Options{MaxBodyBytes: n})
}

// tooLargeBody is the 413's JSON body for a limit of n bytes.
func tooLargeBody(n int64) []byte {
	return []byte(`{"error":"request body too large: the limit is ` + strconv.FormatInt(n, 10) + ` bytes"}` + "\n")
}

// refuseTooLarge answers 413 with body and closes the connection.
func refuseTooLarge(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusRequestEntityTooLarge)
	_, _ = w.Write(body)
}
