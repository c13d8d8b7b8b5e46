package proof

// Unit tests of the harness's own parts; they run in `make test`. The
// proof itself is proof_test.go (build tag proof).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/registry"
)

// fakeInstances is an Instances whose set the test changes.
type fakeInstances struct{ keys []string }

func (f *fakeInstances) Instances(name string) ([]registry.Instance, error) {
	var out []registry.Instance
	for _, k := range f.keys {
		out = append(out, registry.Instance{Key: k, BaseURL: "http://" + k})
	}
	return out, nil
}

func TestDelayedResolver(t *testing.T) {
	src := &fakeInstances{keys: []string{"a", "b"}}
	now := time.Unix(0, 0)
	r := NewDelayedResolver(src, 300*time.Millisecond)
	r.now = func() time.Time { return now }
	resolve := func() string {
		t.Helper()
		u, err := r.BaseURL("svc")
		if err != nil {
			t.Fatalf("BaseURL: %v", err)
		}
		return u
	}
	seen := func(n int) map[string]int {
		m := map[string]int{}
		for range n {
			m[resolve()]++
		}
		return m
	}
	if got := seen(4); got["http://a"] != 2 || got["http://b"] != 2 {
		t.Fatalf("two instances, 4 calls: %v; want 2 each (round-robin)", got)
	}

	src.keys = []string{"b", "c"} // a removed, c added
	if got := seen(6); got["http://a"] != 2 || got["http://b"] != 2 || got["http://c"] != 2 {
		t.Errorf("right after a's removal: %v; want a still served, c at once", got)
	}
	now = now.Add(299 * time.Millisecond)
	if got := seen(3); got["http://a"] != 1 {
		t.Errorf("299ms after a's removal: %v; want a still served", got)
	}
	now = now.Add(time.Millisecond)
	if got := seen(4); got["http://a"] != 0 || got["http://b"] != 2 || got["http://c"] != 2 {
		t.Errorf("300ms after a's removal: %v; want a gone", got)
	}

	src.keys = []string{"b", "c", "a"} // a back before another removal
	if got := seen(3); got["http://a"] != 1 {
		t.Errorf("a back: %v; want it served at once", got)
	}
	src.keys = nil
	now = now.Add(time.Second)
	resolve() // notes the removals
	now = now.Add(time.Second)
	var none *registry.NoInstanceError
	if _, err := r.BaseURL("svc"); !errors.As(err, &none) {
		t.Errorf("all removed, delay passed: err %v; want a NoInstanceError", err)
	}
}

func TestPercentile(t *testing.T) {
	ds := func(ms ...int) []time.Duration {
		var out []time.Duration
		for _, m := range ms {
			out = append(out, time.Duration(m)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 0.5, 0},
		{ds(7), 0.99, 7 * time.Millisecond},
		{ds(3, 1, 2), 0.5, 2 * time.Millisecond},
		{ds(hundred...), 0.5, 50 * time.Millisecond},
		{ds(hundred...), 0.99, 99 * time.Millisecond},
		{ds(hundred...), 1, 100 * time.Millisecond},
		{ds(hundred...), 0, 1 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Percentile(append([]time.Duration(nil), tt.in...), tt.p); got != tt.want {
			t.Errorf("Percentile(%d samples, %v) = %v; want %v", len(tt.in), tt.p, got, tt.want)
		}
	}
}

func TestSummarizeAndClassify(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}, "connection refused"},
		{fmt.Errorf("read: %w", syscall.ECONNRESET), "connection reset"},
		{fmt.Errorf("Get x: %w", io.EOF), "EOF"},
		{&registry.NoInstanceError{Service: "x"}, "no instance"},
		{errors.New("status 503"), "status 503"},
		{errors.New("something else"), "something else"},
	}
	var samples []Sample
	for i, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %q; want %q", tt.err, got, tt.want)
		}
		samples = append(samples, Sample{Took: time.Duration(i+1) * time.Millisecond, Err: Classify(tt.err)})
	}
	samples = append(samples, Sample{Took: 10 * time.Millisecond})
	st := Summarize(samples)
	if st.Sent != 7 || st.Failed != 6 || st.Errors["EOF"] != 1 || st.Max != 10*time.Millisecond || st.P50 != 4*time.Millisecond {
		t.Errorf("Summarize = %+v; want 7 sent, 6 failed, EOF 1, p50 4ms, max 10ms", st)
	}
}

func TestMonitorDowntime(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	m := &Monitor{procs: []*Process{{ID: "a"}, {ID: "b"}}, state: map[string]*viewState{}}
	m.events = []event{
		{at(0), "a", Others, true},
		{at(0), "a", Self, true},
		{at(0), "b", Others, true},
		{at(100), "a", Others, false},
		{at(400), "a", Others, true},
		{at(500), "a", Self, false}, // still down at the end of the window
		{at(2000), "a", Self, true}, // after the window
	}
	got := m.Downtime(at(50), at(1000))
	if d := got["a"][Others]; d.Total != 300*time.Millisecond || d.Times != 1 || !d.LastUp.Equal(at(400)) {
		t.Errorf("a, others: %+v; want 300ms down once, up at 400ms", d)
	}
	if d := got["a"][Self]; d.Total != 500*time.Millisecond || d.Times != 1 || !d.LastUp.IsZero() {
		t.Errorf("a, self: %+v; want 500ms down once, not up again in the window", d)
	}
	if d := got["b"][Others]; d.Total != 0 || d.Times != 0 {
		t.Errorf("b, others: %+v; want never down", d)
	}
}

// TestKeepAliveRace pins down what net/http does when a server closes a
// kept-alive connection just as a request arrives on it (what a server
// shutting down does to its idle connections): the client transport
// retries a GET on a new connection, but not a POST, which fails without
// telling whether it was processed. A drain that outlasts the clients'
// delay keeps requests off connections that are about to close.
func TestKeepAliveRace(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for i := 0; ; i++ {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if i == 1 {
						return // a connection's second request: close, no answer
					}
					_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
				}
			}()
		}
	}()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	send := func(method string) (conns int, err error) {
		ctx := httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { conns++ }})
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("x")
		}
		req, err := http.NewRequestWithContext(ctx, method, url, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return conns, err
	}

	if _, err := send(http.MethodGet); err != nil { // opens the connection
		t.Fatal(err)
	}
	if conns, err := send(http.MethodGet); err != nil || conns != 2 {
		t.Errorf("GET on a connection closed under it: %d connections, %v; want retried on a second connection, no error", conns, err)
	}
	// The retry's connection is idle now, and closes under the next
	// request too.
	if conns, err := send(http.MethodPost); err == nil || conns != 1 {
		t.Errorf("POST on a connection closed under it: %d connections, %v; want an error, no retry", conns, err)
	} else {
		t.Logf("POST: %v", err)
	}
}
