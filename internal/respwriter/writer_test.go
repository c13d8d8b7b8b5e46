package respwriter_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/svc-dev/svc/internal/respwriter"
)

// plainWriter has the three methods of http.ResponseWriter only.
type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(code int)        { p.w.WriteHeader(code) }

// codesWriter records the status codes it is given.
type codesWriter struct {
	http.ResponseWriter
	codes []int
}

func (c *codesWriter) WriteHeader(code int) { c.codes = append(c.codes, code) }

// Status is the first final status; informational ones reach the writer
// underneath, a second final one does not.
func TestStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		codes      []int
		write      bool
		want       int
		wantPassed []int
	}{
		{"103 then 404", []int{103, 404}, false, 404, []int{103, 404}},
		{"101 is final", []int{101}, false, 101, []int{101}},
		{"a second status", []int{201, 500}, false, 201, []int{201}},
		{"a write first", []int{500}, true, 200, []int{200}},
		{"nothing", nil, false, 0, nil},
	} {
		cw := &codesWriter{ResponseWriter: httptest.NewRecorder()}
		w := &respwriter.Writer{ResponseWriter: cw}
		if tc.write {
			_, _ = w.Write([]byte("x"))
		}
		for _, c := range tc.codes {
			w.WriteHeader(c)
		}
		if w.Status != tc.want || !slices.Equal(cw.codes, tc.wantPassed) {
			t.Errorf("%s: status %d, passed on %v; want %d, %v", tc.name, w.Status, cw.codes, tc.want, tc.wantPassed)
		}
	}
}

// Over a writer that cannot flush, hijack or push, the methods say so with
// http.ErrNotSupported; writes are counted whichever way they come.
func TestWithoutSupport(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	cw := &codesWriter{ResponseWriter: rec}
	w := &respwriter.Writer{ResponseWriter: plainWriter{cw}}
	if _, _, err := w.Hijack(); !errors.Is(err, http.ErrNotSupported) || w.Hijacked {
		t.Errorf("Hijack: %v, Hijacked %v; want ErrNotSupported, false", err, w.Hijacked)
	}
	if err := w.FlushError(); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("FlushError: %v; want ErrNotSupported", err)
	}
	if err := w.Push("/x", nil); !errors.Is(err, http.ErrNotSupported) {
		t.Errorf("Push: %v; want ErrNotSupported", err)
	}
	// The flush could not flush, but it sent the headers first.
	if w.Status != http.StatusOK || !slices.Equal(cw.codes, []int{http.StatusOK}) {
		t.Errorf("after a flush: status %d, sent %v; want 200 sent", w.Status, cw.codes)
	}
	_, _ = w.WriteString("ab")
	_, _ = w.ReadFrom(strings.NewReader("cd"))
	_, _ = w.Write([]byte("ef"))
	if w.Bytes != 6 || rec.Body.String() != "abcdef" {
		t.Errorf("bytes %d, body %q; want 6, abcdef", w.Bytes, rec.Body)
	}
}

// hijacker can be hijacked.
type hijacker struct{ http.ResponseWriter }

func (hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, nil }

func TestHijacked(t *testing.T) {
	t.Parallel()
	w := &respwriter.Writer{ResponseWriter: hijacker{httptest.NewRecorder()}}
	if _, _, err := w.Hijack(); err != nil || !w.Hijacked || w.Status != 0 {
		t.Errorf("Hijack: %v, Hijacked %v, status %d; want nil, true, 0", err, w.Hijacked, w.Status)
	}
}

// unwrapper is a wrapper of someone else's with Unwrap.
type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// loop unwraps to itself.
type loop struct{ http.ResponseWriter }

func (l *loop) Unwrap() http.ResponseWriter { return l }

func TestInnermost(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	l := &loop{}
	for _, tc := range []struct {
		name string
		w    http.ResponseWriter
		want http.ResponseWriter
	}{
		{"not wrapped", rec, rec},
		{"one Writer", &respwriter.Writer{ResponseWriter: rec}, rec},
		{"through another wrapper", &respwriter.Writer{ResponseWriter: unwrapper{&respwriter.Writer{ResponseWriter: rec}}}, rec},
		{"a cycle stops", l, l},
	} {
		if got := respwriter.Innermost(tc.w); got != tc.want {
			t.Errorf("%s: Innermost = %T; want %T", tc.name, got, tc.want)
		}
	}
}
