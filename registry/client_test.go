package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// fleet is instances of "orders" registered in a real etcd, each served
// by a handler of the test (or dead: a port nothing listens on), and a
// Discovery over them with its metrics on reg.
type fleet struct {
	d     *registry.Discovery
	reg   *prometheus.Registry
	cli   *clientv3.Client
	addrs []string // instance i's host:port
	keys  []string // instance i's registry key
}

// dead is a handler slot for an instance that refuses connections.
var dead http.Handler

// newFleet registers one instance per handler (nil: dead) and waits until
// the Discovery sees them all.
func newFleet(t *testing.T, opts registry.DiscoveryOptions, handlers ...http.Handler) *fleet {
	t.Helper()
	srv := etcdtest.Start(t)
	f := &fleet{reg: prometheus.NewRegistry(), cli: srv.Client(t)}
	for i, h := range handlers {
		var p int
		if h == nil {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			p = ln.Addr().(*net.TCPAddr).Port
			ln.Close()
		} else {
			s := httptest.NewServer(h)
			t.Cleanup(s.Close)
			p = port(t, s)
		}
		rec := record("orders", strconv.Itoa(i), p)
		register(t, newRegistrar(t, f.cli, rec, registry.RegistrarOptions{TTL: 30 * time.Second}))
		f.addrs = append(f.addrs, rec.Addr())
		f.keys = append(f.keys, rec.Key())
	}
	opts.Client, opts.Environment, opts.Metrics = srv.Client(t), "test", f.reg
	opts.Logger = testLogger(t, nil)
	f.d = registry.NewDiscovery(opts)
	t.Cleanup(func() { f.d.Close() })
	waitFor(t, 5*time.Second, func() bool { return len(keys(t, f.d, "orders")) == len(handlers) },
		func() string { return "instances not discovered" })
	return f
}

// ejected returns the addresses f's Discovery keeps out of rotation.
func (f *fleet) ejected() []string {
	var out []string
	for _, e := range f.d.Ejected() {
		out = append(out, e.Addr)
	}
	return out
}

// counter returns the value of the counter name with labels, 0 if absent.
func (f *fleet) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, kv []string) bool {
	for i := 0; i < len(kv); i += 2 {
		if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == kv[i] && l.GetValue() == kv[i+1] }) {
			return false
		}
	}
	return true
}

// status answers code with the instance's name.
func status(code int, name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		fmt.Fprint(w, name)
	})
}

// hang answers only when the test ends.
func hang(t *testing.T) http.Handler {
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
}

// send makes one request and returns its status and body, or the error.
func send(c *http.Client, method, u string, body string, hdr ...string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return 0, "", err
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// A dead instance (still registered) costs no failed request, for any
// method: the connection was refused, nothing was sent, the request goes
// to the other instance, and the dead one is ejected at once.
func TestClientDeadInstance(t *testing.T) {
	f := newFleet(t, registry.DiscoveryOptions{}, dead, status(200, "live"))
	c := registry.NewClient(f.d, registry.ClientOptions{})
	defer c.CloseIdleConnections()
	for i := range 20 {
		method := []string{http.MethodGet, http.MethodPost}[i%2]
		code, body, err := send(c, method, "http://orders/x", "payload")
		if err != nil || code != 200 || body != "live" {
			t.Fatalf("%s #%d = %d %q, %v; want 200 from the live instance", method, i, code, body, err)
		}
	}
	if got := f.ejected(); !slices.Equal(got, []string{f.addrs[0]}) {
		t.Errorf("ejected = %v; want the dead %s", got, f.addrs[0])
	}
	if e := f.d.Ejected(); len(e) == 1 && (e[0].Reason != "connect" || e[0].Key != f.keys[0] || e[0].Ejections != 1 ||
		!e[0].Until.After(time.Now().Add(25*time.Second))) {
		t.Errorf("Ejected() = %+v; want reason connect, key %s, 1 ejection of about 30s", e, f.keys[0])
	}
	if n := f.counter(t, "svc_client_attempts_total", "service", "orders", "result", "connect_error"); n != 1 {
		t.Errorf("connect errors = %v; want 1: ejected after the first", n)
	}
	if n := f.counter(t, "svc_client_retries_total", "service", "orders", "reason", "unsent"); n != 1 {
		t.Errorf("unsent retries = %v; want 1", n)
	}
	if n := f.counter(t, "svc_client_ejections_total", "service", "orders"); n != 1 {
		t.Errorf("ejections = %v; want 1", n)
	}
	if n := f.counter(t, "svc_client_requests_total", "service", "orders", "code", "200"); n != 20 {
		t.Errorf("requests{code=200} = %v; want 20", n)
	}

	// A new registration of the key (a PUT) brings it back at once.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := f.cli.Get(ctx, f.keys[0])
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("Get(%s) = %v, %v", f.keys[0], resp, err)
	}
	if _, err := f.cli.Put(ctx, f.keys[0], string(resp.Kvs[0].Value), clientv3.WithLease(clientv3.LeaseID(resp.Kvs[0].Lease))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return len(f.d.Ejected()) == 0 },
		func() string { return fmt.Sprintf("still ejected after a new registration: %v", f.ejected()) })
}

// A request with a body that cannot be replayed (no GetBody) is not
// retried, even when it was never sent.
func TestClientBodyNotReplayable(t *testing.T) {
	f := newFleet(t, registry.DiscoveryOptions{Ejection: registry.EjectionOptions{Disabled: true}}, dead, status(200, "live"))
	c := registry.NewClient(f.d, registry.ClientOptions{})
	defer c.CloseIdleConnections()
	failed := 0
	for range 4 {
		req, _ := http.NewRequest(http.MethodPost, "http://orders/x", io.NopCloser(strings.NewReader("once")))
		resp, err := c.Do(req)
		if err != nil {
			failed++
			continue
		}
		resp.Body.Close()
	}
	if failed != 2 {
		t.Errorf("%d of 4 POSTs with a one-shot body failed; want the 2 sent to the dead instance", failed)
	}
}

// 502, 503 and 504 are retried on another instance for idempotent
// requests only; other 5xx are never retried, and a run of them ejects.
func TestClientStatusRetries(t *testing.T) {
	f := newFleet(t, registry.DiscoveryOptions{Ejection: registry.EjectionOptions{ConsecutiveFailures: -1}},
		status(503, "busy"), status(200, "fine"))
	c := registry.NewClient(f.d, registry.ClientOptions{})
	defer c.CloseIdleConnections()
	tests := []struct {
		method string
		hdr    []string
		want   int // answers 200 of 4 (2 reach the 503 first)
	}{
		{http.MethodGet, nil, 4},
		{http.MethodPut, nil, 4},
		{http.MethodDelete, nil, 4},
		{http.MethodPost, nil, 2},
		{http.MethodPatch, nil, 2},
		{http.MethodPost, []string{"Idempotency-Key", "k1"}, 4},
	}
	for _, tt := range tests {
		ok := 0
		for range 4 {
			code, _, err := send(c, tt.method, "http://orders/x", "body", tt.hdr...)
			if err == nil && code == 200 {
				ok++
			}
		}
		if ok != tt.want {
			t.Errorf("%s %v: %d of 4 answered 200; want %d", tt.method, tt.hdr, ok, tt.want)
		}
	}
	if got := f.ejected(); len(got) != 0 {
		t.Errorf("ejected = %v with ConsecutiveFailures -1; want none", got)
	}
	if n := f.counter(t, "svc_client_retries_total", "service", "orders", "reason", "status"); n != 8 {
		t.Errorf("status retries = %v; want 8", n)
	}

	f = newFleet(t, registry.DiscoveryOptions{Ejection: registry.EjectionOptions{ConsecutiveFailures: 3}},
		status(500, "broken"), status(200, "fine"))
	c = registry.NewClient(f.d, registry.ClientOptions{})
	defer c.CloseIdleConnections()
	codes := map[int]int{}
	for range 10 {
		code, _, err := send(c, http.MethodGet, "http://orders/x", "")
		if err != nil {
			t.Fatal(err)
		}
		codes[code]++
	}
	if codes[500] != 3 || codes[200] != 7 {
		t.Errorf("answers = %v; want 3 500s (never retried), then the instance ejected: 7 200s", codes)
	}
	if e := f.d.Ejected(); len(e) != 1 || e[0].Addr != f.addrs[0] || e[0].Reason != "3 consecutive failures" {
		t.Errorf("Ejected() = %+v; want %s for \"3 consecutive failures\"", e, f.addrs[0])
	}
}

// Never every instance: with both failing, one stays in rotation.
func TestClientNeverEjectsAll(t *testing.T) {
	f := newFleet(t, registry.DiscoveryOptions{Ejection: registry.EjectionOptions{ConsecutiveFailures: 1}},
		status(500, "a"), status(500, "b"))
	c := registry.NewClient(f.d, registry.ClientOptions{})
	defer c.CloseIdleConnections()
	for range 10 {
		code, _, err := send(c, http.MethodGet, "http://orders/x", "")
		if err != nil || code != 500 {
			t.Fatalf("GET = %d, %v; want the 500, not retried", code, err)
		}
	}
	if got := f.ejected(); len(got) != 1 {
		t.Errorf("ejected = %v; want exactly one of two", got)
	}
}

// A hung instance: an idempotent request moves on after the per-attempt
// timeout; a POST fails with an *AttemptTimeoutError.
func TestClientHungInstance(t *testing.T) {
	f := newFleet(t, registry.DiscoveryOptions{}, hang(t), status(200, "fine"))
	c := registry.NewClient(f.d, registry.ClientOptions{
		Timeouts: func() (time.Duration, time.Duration) { return 200 * time.Millisecond, 5 * time.Second },
	})
	defer c.CloseIdleConnections()
	var posts, postTimeouts int
	for i := range 8 {
		// Round-robin: the POST goes to the hung instance until it is
		// ejected, the GET to the other one.
		_, _, err := send(c, http.MethodPost, "http://orders/x", "")
		var ate *registry.AttemptTimeoutError
		if err != nil {
			posts++
			if errors.As(err, &ate) && errors.Is(err, context.DeadlineExceeded) && ate.Limit == 200*time.Millisecond {
				postTimeouts++
			} else {
				t.Errorf("POST error = %v; want an *AttemptTimeoutError of 200ms", err)
			}
		}
		if code, body, err := send(c, http.MethodGet, "http://orders/x", ""); err != nil || code != 200 {
			t.Fatalf("GET #%d = %d %q, %v; want 200 from the other instance", i, code, body, err)
		}
	}
	if posts != 5 || postTimeouts != posts {
		t.Errorf("%d POSTs failed, %d with the attempt timeout; want 5 (then the hung instance is ejected), all of them", posts, postTimeouts)
	}
	if e := f.d.Ejected(); len(e) != 1 || e[0].Addr != f.addrs[0] || e[0].Reason != "5 consecutive failures" {
		t.Errorf("Ejected() = %+v; want the hung %s after 5 timeouts", e, f.addrs[0])
	}
	for range 4 { // the GETs retry the hung instance no more: on the other at once
		if code, _, err := send(c, http.MethodGet, "http://orders/x", ""); err != nil || code != 200 {
			t.Fatalf("GET = %d, %v; want 200", code, err)
		}
	}
	if n := f.counter(t, "svc_client_attempts_total", "service", "orders", "result", "timeout"); n != 5 {
		t.Errorf("attempts{result=timeout} = %v; want 5", n)
	}
}

// The per-call timeout bounds a call; a shorter deadline of the caller
// wins; every attempt carries the time left in Svc-Timeout-Ms, and a
// change of the Timeouts function reaches the next call.
func TestClientTimeouts(t *testing.T) {
	seen := make(chan string, 10)
	f := newFleet(t, registry.DiscoveryOptions{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get(registry.TimeoutHeader)
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
		}
	}))
	var attempt atomic.Int64
	attempt.Store(int64(2 * time.Second))
	c := registry.NewClient(f.d, registry.ClientOptions{
		Timeouts: func() (time.Duration, time.Duration) { return time.Duration(attempt.Load()), 300 * time.Millisecond },
	})
	defer c.CloseIdleConnections()
	ms := func() int {
		v, err := strconv.Atoi(<-seen)
		if err != nil {
			t.Fatalf("%s: %v", registry.TimeoutHeader, err)
		}
		return v
	}
	if _, _, err := send(c, http.MethodGet, "http://orders/x", ""); err != nil {
		t.Fatal(err)
	}
	if v := ms(); v <= 0 || v > 300 {
		t.Errorf("%s = %d with a call timeout of 300ms; want 1..300", registry.TimeoutHeader, v)
	}
	attempt.Store(int64(100 * time.Millisecond))
	if _, _, err := send(c, http.MethodGet, "http://orders/x", ""); err != nil {
		t.Fatal(err)
	}
	if v := ms(); v <= 0 || v > 100 {
		t.Errorf("%s = %d after the attempt timeout went live to 100ms; want 1..100", registry.TimeoutHeader, v)
	}
	attempt.Store(-1) // no attempt timeout: the call timeout ends a hung call
	start := time.Now()
	_, _, err := send(c, http.MethodGet, "http://orders/hang", "")
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Errorf("GET of a hung call = %v after %v; want the call timeout of 300ms", err, time.Since(start))
	}
	<-seen
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://orders/x", nil)
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
	if v := ms(); v <= 0 || v > 50 {
		t.Errorf("%s = %d with a caller deadline of 50ms; want 1..50", registry.TimeoutHeader, v)
	}
}

// With no budget, an idempotent request is not retried after a 503 (a
// request never sent still is).
func TestClientRetryBudget(t *testing.T) {
	f := newFleet(t, registry.DiscoveryOptions{
		RetryBudget: registry.RetryBudget{Percent: -1, MinPerSecond: -1},
		Ejection:    registry.EjectionOptions{Disabled: true},
	}, status(503, "busy"), status(200, "fine"))
	c := registry.NewClient(f.d, registry.ClientOptions{})
	defer c.CloseIdleConnections()
	ok := 0
	for range 10 {
		if code, _, err := send(c, http.MethodGet, "http://orders/x", ""); err == nil && code == 200 {
			ok++
		}
	}
	if ok != 5 {
		t.Errorf("%d of 10 GETs answered 200 with an empty budget; want 5 (no retry)", ok)
	}
	if n := f.counter(t, "svc_client_retries_denied_total", "service", "orders"); n != 5 {
		t.Errorf("retries denied = %v; want 5", n)
	}

	// The default budget: 20% of calls plus 10 per second over 10s.
	f2 := newFleet(t, registry.DiscoveryOptions{Ejection: registry.EjectionOptions{Disabled: true}},
		status(503, "busy"), status(503, "busy too"))
	c2 := registry.NewClient(f2.d, registry.ClientOptions{})
	defer c2.CloseIdleConnections()
	for range 150 {
		send(c2, http.MethodGet, "http://orders/x", "")
	}
	retries := f2.counter(t, "svc_client_retries_total", "service", "orders", "reason", "status")
	if limit := 150*0.2 + 10*10; retries > limit || retries < 100 {
		t.Errorf("%v retries of 150 calls to an all-503 service; want about %v (20%% + 10/s over 10s)", retries, limit)
	}
}
