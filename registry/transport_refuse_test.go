package registry_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/svc-dev/svc/registry"
)

// target is a listener that counts the connections it accepts and closes
// them: a service, an admin port or etcd that a request must never reach.
type target struct {
	ln       net.Listener
	accepted atomic.Int64
}

func newTarget(t *testing.T) *target {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.accepted.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return tg
}

func (tg *target) port() string { return strconv.Itoa(tg.ln.Addr().(*net.TCPAddr).Port) }

// countingBase is a base transport that counts the requests it is given
// and answers each with 204.
type countingBase struct{ n atomic.Int64 }

func (b *countingBase) RoundTrip(req *http.Request) (*http.Response, error) {
	b.n.Add(1)
	return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
}

// closeRecorder is a request body that records whether it was closed.
type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestTransportRefusesNonServiceURLs: a request whose URL does not name a
// service (an address, localhost, another scheme, userinfo, a port) fails
// with a *RefusedError, its body is closed, and nothing is dialed: neither
// the base transport nor a real listener at the address sees it. Before
// the fix such requests went to the base transport unchanged: an open
// proxy to loopback.
func TestTransportRefusesNonServiceURLs(t *testing.T) {
	tg := newTarget(t)
	p := tg.port()
	tests := []struct {
		url, why string
	}{
		{"http://127.0.0.1:" + p + "/admin/config", "not a service name"},
		{"http://localhost:" + p + "/metrics", "not a service name"},
		{"http://localhost/", "localhost"},
		{"http://[::1]:" + p + "/", "not a service name"},
		{"http://0x7f000001/", "not a service name"},
		{"http://orders.internal/x", "not a service name"},
		{"http://ORDERS/x", "not a service name"},
		{"http://orders:80/x", "not a service name"},
		{"http://orders:" + p + "/x", "not a service name"},
		{"https://orders/x", `scheme "https"`},
		{"ftp://orders/x", `scheme "ftp"`},
		{"http://user:secret@orders/x", "userinfo"},
		{"http://user@orders/x", "userinfo"},
		{"http:///x", "not a service name"},
	}
	for _, tc := range tests {
		t.Run(tc.url, func(t *testing.T) {
			base := &countingBase{}
			tr := registry.NewTransport(fixed("http://127.0.0.1:"+p), registry.ClientOptions{Base: base})
			body := &closeRecorder{Reader: strings.NewReader("x")}
			req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, tc.url, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := tr.RoundTrip(req)
			if resp != nil {
				resp.Body.Close()
			}
			var refused *registry.RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("RoundTrip(%s) error = %v; want a *registry.RefusedError", tc.url, err)
			}
			if !strings.Contains(err.Error(), tc.why) || strings.Contains(err.Error(), "secret") {
				t.Errorf("RoundTrip(%s) error = %q; want it to say %q and never show a password", tc.url, err, tc.why)
			}
			if n := base.n.Load(); n != 0 {
				t.Errorf("RoundTrip(%s) reached the base transport %d times; want 0", tc.url, n)
			}
			if !body.closed {
				t.Errorf("RoundTrip(%s) did not close the request body", tc.url)
			}
		})
	}
	// Through a real base transport: the listener at the address never
	// sees a connection.
	c := &http.Client{Transport: registry.NewTransport(fixed("http://127.0.0.1:"+p), registry.ClientOptions{})}
	defer c.CloseIdleConnections()
	for _, u := range []string{"http://127.0.0.1:" + p + "/", "http://localhost:" + p + "/"} {
		if _, err := get(t, c, u); err == nil {
			t.Errorf("GET %s through the discovery transport succeeded; want a refusal", u)
		}
	}
	if n := tg.accepted.Load(); n != 0 {
		t.Errorf("the address asked for accepted %d connections; want 0 (refused before dialing)", n)
	}
	// A service name still goes through.
	base := &countingBase{}
	resp, err := registry.NewTransport(fixed("http://127.0.0.1:"+p), registry.ClientOptions{Base: base}).RoundTrip(
		mustRequest(t, context.Background(), "http://orders/x"))
	if err != nil || resp.StatusCode != http.StatusNoContent || base.n.Load() != 1 {
		t.Errorf("RoundTrip(http://orders/x) = %v, %v (base called %d times); want the base's 204", resp, err, base.n.Load())
	}
}

// TestTransportRefusesRedirectToAddress: an instance that redirects to a
// plain address does not make the client follow it there.
func TestTransportRefusesRedirectToAddress(t *testing.T) {
	tg := newTarget(t)
	redirect := echoRedirect("http://127.0.0.1:" + tg.port() + "/admin/config")
	defer redirect.Close()
	c := &http.Client{Transport: registry.NewTransport(fixed(redirect.URL), registry.ClientOptions{})}
	defer c.CloseIdleConnections()
	_, err := get(t, c, "http://orders/x")
	var refused *registry.RefusedError
	if !errors.As(err, &refused) {
		t.Errorf("GET http://orders/x redirected to an address: error %v; want a *registry.RefusedError", err)
	}
	if n := tg.accepted.Load(); n != 0 {
		t.Errorf("the redirect target accepted %d connections; want 0", n)
	}
}

func mustRequest(t *testing.T, ctx context.Context, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

// TestTransportHops: with the context of an inbound request (WithHops),
// the outbound request carries Svc-Hops one more than the inbound one; at
// MaxHops it is refused with a *LoopError before dialing; a malformed
// inbound value counts as the limit.
func TestTransportHops(t *testing.T) {
	tests := []struct {
		inbound  string // Svc-Hops of the inbound request; "" for none
		noCtx    bool   // the outbound context does not carry the inbound one
		want     string // Svc-Hops of the outbound request
		wantLoop bool
	}{
		{inbound: "", want: "1"},
		{inbound: "0", want: "1"},
		{inbound: "3", want: "4"},
		{inbound: strconv.Itoa(registry.MaxHops - 1), want: strconv.Itoa(registry.MaxHops)},
		{inbound: strconv.Itoa(registry.MaxHops), wantLoop: true},
		{inbound: "1000", wantLoop: true},
		{inbound: "-1", wantLoop: true},
		{inbound: "abc", wantLoop: true},
		{inbound: "99999999999999999999999", wantLoop: true},
		{inbound: "5", noCtx: true, want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.inbound, func(t *testing.T) {
			var got string
			var called int
			base := roundTripFunc(func(req *http.Request) (*http.Response, error) {
				called++
				got = req.Header.Get(registry.HopsHeader)
				return &http.Response{StatusCode: http.StatusNoContent, Body: http.NoBody, Request: req}, nil
			})
			in, _ := http.NewRequest(http.MethodGet, "http://example/call/orders/x", nil)
			if tc.inbound != "" {
				in.Header.Set(registry.HopsHeader, tc.inbound)
			}
			ctx := context.Background()
			if !tc.noCtx {
				ctx = registry.WithHops(ctx, in)
			}
			out := mustRequest(t, ctx, "http://orders/x")
			resp, err := registry.NewTransport(fixed("http://127.0.0.1:1"), registry.ClientOptions{Base: base}).RoundTrip(out)
			if tc.wantLoop {
				var loop *registry.LoopError
				if !errors.As(err, &loop) || called != 0 {
					t.Fatalf("RoundTrip with inbound %s %q = %v (base called %d times); want a *registry.LoopError and no call",
						registry.HopsHeader, tc.inbound, err, called)
				}
				if !strings.Contains(err.Error(), strconv.Itoa(registry.MaxHops)) {
					t.Errorf("LoopError %q does not name the limit %d", err, registry.MaxHops)
				}
				return
			}
			if err != nil {
				t.Fatalf("RoundTrip with inbound %s %q: %v", registry.HopsHeader, tc.inbound, err)
			}
			resp.Body.Close()
			if got != tc.want {
				t.Errorf("outbound %s = %q with inbound %q; want %q", registry.HopsHeader, got, tc.inbound, tc.want)
			}
			if out.Header.Get(registry.HopsHeader) != "" {
				t.Errorf("RoundTrip modified the caller's request header")
			}
		})
	}
}

func TestHops(t *testing.T) {
	tests := []struct {
		header  string
		want    int
		wantErr bool
	}{
		{"", 0, false},
		{"0", 0, false},
		{"7", 7, false},
		{"8", 8, false},
		{"12", 12, false},
		{"-1", 0, true},
		{"+1", 0, true},
		{"1.5", 0, true},
		{" 3", 0, true},
		{"99999999999999999999999", 0, true},
	}
	for _, tc := range tests {
		r, _ := http.NewRequest(http.MethodGet, "http://example/", nil)
		if tc.header != "" {
			r.Header.Set(registry.HopsHeader, tc.header)
		}
		got, err := registry.Hops(r)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("Hops(%s: %q) = %d, %v; want %d, error %v", registry.HopsHeader, tc.header, got, err, tc.want, tc.wantErr)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// echoRedirect answers every request with a 302 to location.
func echoRedirect(location string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, location, http.StatusFound)
	}))
}

func TestCheckServiceName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"orders", true},
		{"user-sessions", true},
		{"a", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"localhost", false},
		{"", false},
		{"Orders", false},
		{"1orders", false},
		{"orders.internal", false},
		{"127.0.0.1:4010", false},
		{"localhost:8011", false},
		{"user@orders", false},
		{"orders_v2", false},
	}
	for _, tc := range tests {
		err := registry.CheckServiceName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("CheckServiceName(%q) = %v; want ok %v", tc.name, err, tc.ok)
		}
	}
}

// An override whose value cannot be used is named in the error with its
// credentials redacted: the error can reach a client (the relay's 503).
func TestOverrideErrorRedactsCredentials(t *testing.T) {
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Lookup: lookup(map[string]string{"discovery.override.orders": "http://app:ovS3cret@orders.internal:8080:1"}),
	})
	defer d.Close()
	_, err := d.BaseURL("orders")
	if err == nil {
		t.Fatal("BaseURL with a malformed override succeeded")
	}
	if strings.Contains(err.Error(), "ovS3cret") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %q shows the override's password", err)
	}
}
