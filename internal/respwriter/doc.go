// Package respwriter is the one wrapper svc's HTTP steps put around a
// response to learn its status and size: the pass of internal/httpmw
// (metrics, the access line, panic recovery) and the server spans of
// internal/tracing share it, so a request traced by svc is wrapped once.
//
// A [Writer] is transparent: every call goes on to the writer underneath,
// and it has every optional interface of net/http's own writer
// (http.Flusher and FlushError, http.Hijacker, io.ReaderFrom for
// sendfile, io.StringWriter, http.Pusher) and Unwrap, so that an
// http.ResponseController reaches the writer underneath for deadlines and
// full duplex. When the writer underneath lacks one, the method returns
// http.ErrNotSupported (or, for ReadFrom and WriteString, copies).
package respwriter
