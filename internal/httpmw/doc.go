// Package httpmw holds the middleware svc puts in front of a service's
// handlers, one file each, in chi's func(http.Handler) http.Handler shape:
// request ids, panic recovery, metrics and access logging, a body limit, and
// closing the connection after a request whose framing may be ambiguous.
package httpmw
