// Package httpmw holds the middleware svc puts in front of a service's
// handlers, one file each, in chi's func(http.Handler) http.Handler shape:
// request ids, panic recovery, metrics and access logging, and a body limit.
package httpmw
