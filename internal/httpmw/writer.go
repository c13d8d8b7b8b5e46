package httpmw

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// responseWriter is the one wrapper the middleware puts around a
// response: it remembers the status and counts the body bytes. It passes
// on every optional interface of net/http's own writer: http.Flusher
// (and FlushError), http.Hijacker, io.ReaderFrom (sendfile),
// io.StringWriter and http.Pusher, and Unwrap, so that an
// http.ResponseController reaches the writer underneath for deadlines
// and full duplex. When the writer underneath lacks one, the method
// returns http.ErrNotSupported (or, for ReadFrom and WriteString, copies).
type responseWriter struct {
	http.ResponseWriter
	status int // 0 until the headers are sent (WriteHeader, the first write, a flush)
	bytes  int // body bytes written
}

var (
	_ http.Flusher                              = (*responseWriter)(nil)
	_ http.Hijacker                             = (*responseWriter)(nil)
	_ http.Pusher                               = (*responseWriter)(nil)
	_ io.ReaderFrom                             = (*responseWriter)(nil)
	_ io.StringWriter                           = (*responseWriter)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*responseWriter)(nil)
)

// WriteHeader sends the headers once: informational codes (1xx but 101)
// pass through and leave the final status to come; a second final
// status is dropped, as net/http would drop it with a warning.
func (w *responseWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.status != 0 {
		return
	}
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// WriteString lets io.WriteString reach net/http's writer without
// converting the string to a new []byte.
func (w *responseWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	var n int
	var err error
	if sw, ok := w.ResponseWriter.(io.StringWriter); ok {
		n, err = sw.WriteString(s)
	} else {
		n, err = w.ResponseWriter.Write([]byte(s))
	}
	w.bytes += n
	return n, err
}

// ReadFrom lets io.Copy use net/http's sendfile path.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.bytes += int(n)
	return n, err
}

// writerOnly hides everything but Write, so io.Copy does not call back
// into ReadFrom.
type writerOnly struct{ io.Writer }

func (w *responseWriter) Flush() { _ = w.FlushError() }

// FlushError sends the headers, if not yet sent, and what is buffered.
func (w *responseWriter) FlushError() error {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

func (w *responseWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
