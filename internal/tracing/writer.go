package tracing

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// statusWriter is the server span's view of the response: it remembers
// the status and counts the body bytes, for the span's attributes and
// status. It is transparent as internal/httpmw's writer is (the one
// svc's pass puts below it): every call goes on to the writer underneath,
// and it passes on the same optional interfaces: http.Flusher (and
// FlushError), http.Hijacker, io.ReaderFrom (sendfile), io.StringWriter
// and http.Pusher, and Unwrap, so that an http.ResponseController
// reaches the writer underneath for deadlines and full duplex. When the
// writer underneath lacks one, the method returns http.ErrNotSupported
// (or, for ReadFrom and WriteString, copies).
type statusWriter struct {
	http.ResponseWriter
	status   int  // the final status; 0 until the headers are sent
	bytes    int  // body bytes written
	hijacked bool // the handler took the connection: no status may come
}

var (
	_ http.Flusher                              = (*statusWriter)(nil)
	_ http.Hijacker                             = (*statusWriter)(nil)
	_ http.Pusher                               = (*statusWriter)(nil)
	_ io.ReaderFrom                             = (*statusWriter)(nil)
	_ io.StringWriter                           = (*statusWriter)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*statusWriter)(nil)
)

// WriteHeader records the first final status (1xx but 101 are
// informational: the final status is still to come) and passes every
// call on, so net/http still warns of a superfluous one.
func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && (code < 100 || code > 199 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK // what net/http sends
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

// WriteString lets io.WriteString reach net/http's writer without
// converting the string to a new []byte.
func (w *statusWriter) WriteString(s string) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
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
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
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

func (w *statusWriter) Flush() { _ = w.FlushError() }

// FlushError sends the headers, if not yet sent, and what is buffered.
func (w *statusWriter) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

func (w *statusWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
