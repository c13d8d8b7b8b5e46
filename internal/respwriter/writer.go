package respwriter

import (
	"bufio"
	"io"
	"net"
	"net/http"
)

// Writer remembers a response's final status and counts its body bytes.
// Its zero value with ResponseWriter set is ready to use; a step that
// finds the writer it is given is a *Writer already (an outer step
// wrapped it) uses that one rather than wrapping again.
type Writer struct {
	http.ResponseWriter
	// Status is the final status sent: 0 until the headers are sent
	// (WriteHeader, the first write, a flush).
	Status int
	// Bytes counts the body bytes written.
	Bytes int
	// Hijacked says the handler took the connection over: no status
	// will be sent.
	Hijacked bool
}

var (
	_ http.Flusher                              = (*Writer)(nil)
	_ http.Hijacker                             = (*Writer)(nil)
	_ http.Pusher                               = (*Writer)(nil)
	_ io.ReaderFrom                             = (*Writer)(nil)
	_ io.StringWriter                           = (*Writer)(nil)
	_ interface{ Unwrap() http.ResponseWriter } = (*Writer)(nil)
)

// WriteHeader sends the headers once: informational codes (1xx but 101)
// pass through and leave the final status to come; a second final
// status is dropped, as net/http would drop it with a warning.
func (w *Writer) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	if w.Status != 0 {
		return
	}
	w.Status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *Writer) Write(b []byte) (int, error) {
	if w.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.Bytes += n
	return n, err
}

// WriteString lets io.WriteString reach net/http's writer without
// converting the string to a new []byte.
func (w *Writer) WriteString(s string) (int, error) {
	if w.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	var n int
	var err error
	if sw, ok := w.ResponseWriter.(io.StringWriter); ok {
		n, err = sw.WriteString(s)
	} else {
		n, err = w.ResponseWriter.Write([]byte(s))
	}
	w.Bytes += n
	return n, err
}

// ReadFrom lets io.Copy use net/http's sendfile path.
func (w *Writer) ReadFrom(r io.Reader) (int64, error) {
	if w.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.Bytes += int(n)
	return n, err
}

// writerOnly hides everything but Write, so io.Copy does not call back
// into ReadFrom.
type writerOnly struct{ io.Writer }

func (w *Writer) Flush() { _ = w.FlushError() }

// FlushError sends the headers, if not yet sent, and what is buffered.
func (w *Writer) FlushError() error {
	if w.Status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *Writer) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.Hijacked = true
	}
	return c, rw, err
}

func (w *Writer) Push(target string, opts *http.PushOptions) error {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

// Unwrap returns the writer underneath, for http.ResponseController.
func (w *Writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Innermost returns the writer at the bottom of w's Unwrap chain: the
// server's own (net/http's), which http.MaxBytesReader needs to close the
// connection after a body over its limit.
// A chain longer than maxUnwrap (a cycle) stops there.
func Innermost(w http.ResponseWriter) http.ResponseWriter {
	for range maxUnwrap {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
	return w
}

// maxUnwrap bounds Innermost's walk.
const maxUnwrap = 64
