package svc_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when any goroutine outlives its test: every
// app a test starts must stop completely (servers, fx, timers).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// response is what a test looks at: status, headers and body.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends one request and reads the whole response; hdr is name, value
// pairs.
func do(t testing.TB, c *http.Client, method, url, body string, hdr ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

func decode[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		t.Fatalf("body %q is not the JSON expected: %v", r.body, err)
	}
	return v
}
