package httpmw_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/svc-dev/svc/internal/httpmw"
)

// readAll answers 200 with the body's length, or 413 when the body limit
// stopped the read.
func readAll(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		http.Error(w, "too big", http.StatusRequestEntityTooLarge)
	case err != nil:
		http.Error(w, err.Error(), http.StatusBadRequest)
	default:
		_, _ = io.WriteString(w, strings.Repeat("x", len(b)))
	}
}

func TestBodyLimit(t *testing.T) {
	tests := []struct {
		name      string
		limit     int64
		body      string
		chunked   bool // hide the length: ContentLength -1
		wantCode  int
		wantLen   int  // bytes the handler read, when 200
		wantClose bool // Connection: close on the refusal
	}{
		{"under", 8, "12345", false, http.StatusOK, 5, false},
		{"exactly", 8, "12345678", false, http.StatusOK, 8, false},
		{"declared over", 8, "123456789", false, http.StatusRequestEntityTooLarge, 0, true},
		{"streamed over", 8, strings.Repeat("y", 20), true, http.StatusRequestEntityTooLarge, 0, false},
		{"streamed under", 8, "1234", true, http.StatusOK, 4, false},
		{"no limit", 0, strings.Repeat("z", 1<<16), false, http.StatusOK, 1 << 16, false},
		{"negative is no limit", -1, strings.Repeat("z", 100), true, http.StatusOK, 100, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := httpmw.BodyLimit(tt.limit)(http.HandlerFunc(readAll))
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tt.body))
			if tt.chunked {
				req.ContentLength = -1
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Fatalf("POST %d bytes with limit %d: status %d; want %d", len(tt.body), tt.limit, rec.Code, tt.wantCode)
			}
			if tt.wantCode == http.StatusOK && rec.Body.Len() != tt.wantLen {
				t.Errorf("handler read %d bytes; want %d", rec.Body.Len(), tt.wantLen)
			}
			if got := rec.Header().Get("Connection") == "close"; got != tt.wantClose {
				t.Errorf("Connection: close = %v; want %v", got, tt.wantClose)
			}
			if tt.wantClose { // refused by BodyLimit itself: JSON like svc's other errors
				var body struct{ Error string }
				if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
					t.Errorf("413 Content-Type %q; want application/json", ct)
				}
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !strings.Contains(body.Error, "8 bytes") {
					t.Errorf("413 body %q; want a JSON error naming the limit (8 bytes)", rec.Body.String())
				}
			}
		})
	}
}

// unwrapping is a wrapper of someone else's around the response, with
// Unwrap, as a tracing middleware's.
type unwrapping struct{ http.ResponseWriter }

func (u unwrapping) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// A streamed body over the limit makes net/http close the connection after
// the 413, whatever wraps the response writer: the limit reader is given
// net/http's own writer, not a wrapper (which would hide its
// requestTooLarge from http.MaxBytesReader).
func TestBodyLimitClosesBehindWrappers(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		trace func(http.Handler) http.Handler
	}{
		{"the pass alone", nil},
		{"behind a Trace that wraps the writer", func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { next.ServeHTTP(unwrapping{w}, r) })
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, _, _ := everyStep(t)
			// Without CloseChunked, which would close the connection
			// after any chunked request.
			o.MaxBodyBytes, o.Trace, o.CloseChunked = 8, tt.trace, false
			srv := httptest.NewServer(httpmw.New(o)(http.HandlerFunc(readAll)))
			defer srv.Close()
			req, _ := http.NewRequest(http.MethodPost, srv.URL, io.NopCloser(strings.NewReader(strings.Repeat("y", 20))))
			req.ContentLength = -1 // chunked
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// The client reads Connection: close into resp.Close.
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !resp.Close {
				t.Errorf("POST 20 bytes chunked, limit 8 = %d, close %v; want 413 and the connection closed", resp.StatusCode, resp.Close)

			}
		})
	}
}
