package httpmw_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/httpmw"
)

// TestCloseChunked speaks raw HTTP/1.1 to a server behind CloseChunked:
// a request framed both by Content-Length and by chunks is answered with
// "Connection: close" and the connection is closed, so bytes that follow
// it on the wire (a smuggled request) are never served.
func TestCloseChunked(t *testing.T) {
	const smuggled = "GET /smuggled HTTP/1.1\r\nHost: svc.test\r\n\r\n"
	tests := []struct {
		name      string
		request   string
		wantClose bool
	}{
		{
			name: "content-length and chunked",
			request: "POST /echo HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 48\r\nTransfer-Encoding: chunked\r\n\r\n" +
				"0\r\n\r\n" + smuggled,
			wantClose: true,
		},
		{
			name: "chunked before content-length",
			request: "POST /echo HTTP/1.1\r\nHost: svc.test\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" +
				"3\r\nabc\r\n0\r\n\r\n" + smuggled,
			wantClose: true,
		},
		{
			name:      "chunked alone",
			request:   "POST /echo HTTP/1.1\r\nHost: svc.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + smuggled,
			wantClose: true, // indistinguishable once net/http dropped Content-Length
		},
		{
			name:      "content-length alone keeps the connection",
			request:   "POST /echo HTTP/1.1\r\nHost: svc.test\r\nContent-Length: 3\r\n\r\nabc" + smuggled,
			wantClose: false,
		},
		{
			name:      "no body keeps the connection",
			request:   "GET /echo HTTP/1.1\r\nHost: svc.test\r\n\r\n" + smuggled,
			wantClose: false,
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, _ = w.Write(b)
	})
	mux.HandleFunc("/smuggled", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "smuggled") })
	srv := httptest.NewServer(httpmw.CloseChunked()(mux))
	defer srv.Close()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// A deadline, not a sleep: a server that keeps the
			// connection open fails the test instead of hanging it.
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tt.request); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("first response: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			// ReadResponse moves "Connection: close" to resp.Close.
			if resp.Close != tt.wantClose {
				t.Errorf("first response has Connection: close = %v; want %v", resp.Close, tt.wantClose)
			}
			second, err := http.ReadResponse(br, nil)
			if tt.wantClose {
				if err == nil {
					body, _ := io.ReadAll(second.Body)
					t.Fatalf("server answered the bytes after the request (%s %q); want the connection closed", second.Status, body)
				}
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !strings.Contains(err.Error(), "reset") {
					t.Errorf("after the response: %v; want EOF (connection closed)", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("second request on a kept-alive connection: %v", err)
			}
			body, _ := io.ReadAll(second.Body)
			if string(body) != "smuggled" {
				t.Errorf("second response body %q; want %q", body, "smuggled")
			}
		})
	}
}
