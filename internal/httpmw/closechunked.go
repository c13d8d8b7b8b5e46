package httpmw

import "net/http"

// CloseChunked closes the connection after answering an HTTP/1.1 request
// whose body came with a Transfer-Encoding, by setting "Connection: close"
// on the response (net/http then closes once the response is written).
//
// A request with both Content-Length and Transfer-Encoding is the classic
// request-smuggling shape: a proxy in front that framed the body by
// Content-Length and a server that frames it by chunks disagree on where
// the next request starts. RFC 9112 section 6.1 says the server "MUST close
// the connection after responding to such a request". net/http frames such
// a request by its chunks but keeps the connection open, and it deletes
// the Content-Length header before a handler runs, so the two shapes cannot
// be told apart here: every chunked request closes its connection. Clients
// that send chunked bodies (a Go client with a body of unknown length) pay
// one new connection per such request; nothing else changes. nginx and
// Envoy go further and refuse the pair with 400.
//
// HTTP/1.0 requests are not affected: net/http ignores Transfer-Encoding
// on them and frames the body by Content-Length alone. Options.CloseChunked
// does the same within [New].
func CloseChunked() func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			closeIfChunked(w, r)
			next.ServeHTTP(w, r)
		})
	}
}

func closeIfChunked(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && len(r.TransferEncoding) > 0 {
		w.Header().Set("Connection", "close")
	}
}
