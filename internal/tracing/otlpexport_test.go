package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
)

// collector is an httptest OTLP receiver whose answers a test scripts.
type collector struct {
	*httptest.Server
	answer func(n int, w http.ResponseWriter, r *http.Request) // n: 1 for the first request

	mu       sync.Mutex // guards the fields below
	requests []seenRequest
	closed   int // connections closed
}

type seenRequest struct {
	method, path string
	header       http.Header
	body         *collectorpb.ExportTraceServiceRequest // nil: not decodable
}

// newCollector starts a collector; answer nil answers 200 and no body.
func newCollector(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *collector {
	t.Helper()
	c := &collector{answer: answer}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(c.serve))
	c.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			c.mu.Lock()
			c.closed++
			c.mu.Unlock()
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func (c *collector) serve(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, _ := io.ReadAll(body)
	seen := seenRequest{method: r.Method, path: r.URL.Path, header: r.Header.Clone(), body: &collectorpb.ExportTraceServiceRequest{}}
	if proto.Unmarshal(data, seen.body) != nil {
		seen.body = nil
	}
	c.mu.Lock()
	c.requests = append(c.requests, seen)
	n := len(c.requests)
	c.mu.Unlock()
	if c.answer != nil {
		c.answer(n, w, r)
	}
}

func (c *collector) seen() []seenRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]seenRequest(nil), c.requests...)
}

func (c *collector) closedConns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// testExporter is an exporter to c's /v1/traces with short backoffs.
func testExporter(c *collector, timeout time.Duration, headers map[string]string, gzip bool) *otlpExporter {
	e := newOTLPExporter(c.URL+"/v1/traces", &http.Client{Transport: c.Client().Transport.(*http.Transport).Clone(), Timeout: timeout}, headers, gzip, timeout)
	e.backoff, e.maxBackoff = 10*time.Millisecond, 40*time.Millisecond
	return e
}

func oneSpan(t *testing.T) []sdktrace.ReadOnlySpan {
	return []sdktrace.ReadOnlySpan{stub(t, "work").Snapshot()}
}

// TestExportRequest: what is posted, plain and gzipped: the method, path,
// content type and encoding, the configured headers, and a body that
// decodes to the span.
func TestExportRequest(t *testing.T) {
	t.Parallel()
	for _, gz := range []bool{false, true} {
		c := newCollector(t, nil)
		e := testExporter(c, 5*time.Second, map[string]string{"api-key": "s3cret", "X-Tenant": "t1"}, gz)
		if err := e.ExportSpans(context.Background(), oneSpan(t)); err != nil {
			t.Fatalf("gzip=%v: ExportSpans: %v", gz, err)
		}
		if err := e.ExportSpans(context.Background(), nil); err != nil {
			t.Fatalf("gzip=%v: ExportSpans(no spans): %v", gz, err)
		}
		seen := c.seen()
		if len(seen) != 1 {
			t.Fatalf("gzip=%v: %d requests; want 1 (none for an empty batch)", gz, len(seen))
		}
		r := seen[0]
		wantEnc := ""
		if gz {
			wantEnc = "gzip"
		}
		for _, c := range []struct{ what, got, want string }{
			{"method", r.method, http.MethodPost},
			{"path", r.path, "/v1/traces"},
			{"Content-Type", r.header.Get("Content-Type"), "application/x-protobuf"},
			{"Content-Encoding", r.header.Get("Content-Encoding"), wantEnc},
			{"Api-Key", r.header.Get("Api-Key"), "s3cret"},
			{"X-Tenant", r.header.Get("X-Tenant"), "t1"},
		} {
			if c.got != c.want {
				t.Errorf("gzip=%v: %s = %q; want %q", gz, c.what, c.got, c.want)
			}
		}
		if !strings.HasPrefix(r.header.Get("User-Agent"), "svc-otlp-exporter") {
			t.Errorf("gzip=%v: User-Agent = %q; want svc's exporter", gz, r.header.Get("User-Agent"))
		}
		if r.body == nil || len(r.body.GetResourceSpans()) != 1 || r.body.GetResourceSpans()[0].GetScopeSpans()[0].GetSpans()[0].GetName() != "work" {
			t.Errorf("gzip=%v: body %v; want the span named work", gz, r.body)
		}
	}
}

// TestExportRetries: 429, 502, 503 and 504 are retried until a 2xx.
func TestExportRetries(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout} {
		c := newCollector(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n <= 2 {
				http.Error(w, "busy", code)
			}
		})
		e := testExporter(c, 5*time.Second, nil, false)
		if err := e.ExportSpans(context.Background(), oneSpan(t)); err != nil {
			t.Errorf("%d, %d, then 200: ExportSpans: %v; want success", code, code, err)
		}
		if n := len(c.seen()); n != 3 {
			t.Errorf("%d, %d, then 200: %d requests; want 3", code, code, n)
		}
	}
}

// TestExportRetryAfter: the wait a Retry-After asks for is honoured, in
// seconds or as a date; one beyond the export's timeout ends the export
// at once.
func TestExportRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retryAfter         func() string
		timeout            time.Duration
		wantErr            bool
		wantMin, wantBelow time.Duration
	}{
		{func() string { return "1" }, 5 * time.Second, false, time.Second, 4 * time.Second},
		{func() string { return time.Now().Add(2 * time.Second).UTC().Format(http.TimeFormat) }, 5 * time.Second, false, time.Second, 4 * time.Second},
		{func() string { return "3600" }, 2 * time.Second, true, 0, time.Second},
	} {
		c := newCollector(t, func(n int, w http.ResponseWriter, _ *http.Request) {
			if n == 1 {
				w.Header().Set("Retry-After", tc.retryAfter())
				w.WriteHeader(http.StatusTooManyRequests)
			}
		})
		e := testExporter(c, tc.timeout, nil, false)
		start := time.Now()
		err := e.ExportSpans(context.Background(), oneSpan(t))
		took := time.Since(start)
		if (err != nil) != tc.wantErr {
			t.Errorf("Retry-After %s: ExportSpans: %v; want error %v", tc.retryAfter(), err, tc.wantErr)
		}
		if took < tc.wantMin || took >= tc.wantBelow {
			t.Errorf("Retry-After %s: the export took %v; want from %v to %v", tc.retryAfter(), took, tc.wantMin, tc.wantBelow)
		}
		if err != nil && !strings.Contains(err.Error(), "429") {
			t.Errorf("Retry-After %s: error %q does not name the status", tc.retryAfter(), err)
		}
	}
}

// TestExportNotRetried: other statuses fail at once, with an error naming
// the status and quoting the start of the body, never a header's value.
func TestExportNotRetried(t *testing.T) {
	t.Parallel()
	huge := "bad request: " + strings.Repeat("é", 10_000)
	rpcStatus, _ := proto.Marshal(&status.Status{Code: 3, Message: "invalid trace id"})
	for _, tc := range []struct {
		code        int
		contentType string
		body        []byte
		want        string
	}{
		{http.StatusBadRequest, "text/plain", []byte(huge), `400 Bad Request: "bad request: ééé`},
		{http.StatusBadRequest, "application/x-protobuf", rpcStatus, `400 Bad Request: "invalid trace id"`},
		{http.StatusUnauthorized, "text/plain", nil, "401 Unauthorized"},
		{http.StatusInternalServerError, "text/plain", []byte("\n\x1b[31mboom\n"), `500 Internal Server Error: "\x1b[31mboom"`},
		{http.StatusNotFound, "text/plain", []byte("s3cret?"), `404 Not Found: "s3cret?"`}, // the body is the collector's, quoted as is
	} {
		c := newCollector(t, func(_ int, w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", tc.contentType)
			w.WriteHeader(tc.code)
			_, _ = w.Write(tc.body)
		})
		e := testExporter(c, 5*time.Second, map[string]string{"Authorization": "Bearer s3cret-token", "api-key": "k3y"}, false)
		e.endpoint = strings.Replace(e.endpoint, "http://", "http://user:passw0rd@", 1)
		err := e.ExportSpans(context.Background(), oneSpan(t))
		if err == nil {
			t.Fatalf("%d: ExportSpans succeeded", tc.code)
		}
		msg := err.Error()
		if n := len(c.seen()); n != 1 {
			t.Errorf("%d: %d requests; want 1 (no retry)", tc.code, n)
		}
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%d: error %q; want it to contain %q", tc.code, msg, tc.want)
		}
		if len(msg) > 600 {
			t.Errorf("%d: the error has %d bytes; want at most 600", tc.code, len(msg))
		}
		for _, secret := range []string{"s3cret-token", "k3y", "passw0rd"} {
			if strings.Contains(msg, secret) {
				t.Errorf("%d: error %q contains the secret %q", tc.code, msg, secret)
			}
		}
	}
}

// TestExportTimeout: an export, retries included, ends within its
// timeout, whether the collector hangs or keeps answering 503.
func TestExportTimeout(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name   string
		answer func(int, http.ResponseWriter, *http.Request)
		want   string
	}{
		{"hangs", func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "deadline exceeded"},
		{"503 forever", func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, "503"},
	} {
		c := newCollector(t, tc.answer)
		e := testExporter(c, timeout, nil, false)
		start := time.Now()
		err := e.ExportSpans(context.Background(), oneSpan(t))
		took := time.Since(start)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: ExportSpans: %v; want an error containing %q", tc.name, err, tc.want)
		}
		if took > timeout+time.Second {
			t.Errorf("%s: the export took %v with a timeout of %v", tc.name, took, timeout)
		}
		if tc.name == "503 forever" && len(c.seen()) < 2 {
			t.Errorf("%s: %d requests; want retries within the timeout", tc.name, len(c.seen()))
		}
	}
}

// TestExportPartialSuccess: a 2xx answer is a success, unless its body
// says spans were rejected; a large body is not read to its end.
func TestExportPartialSuccess(t *testing.T) {
	t.Parallel()
	partial, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{PartialSuccess: &collectorpb.ExportTracePartialSuccess{RejectedSpans: 2, ErrorMessage: "too old"}})
	empty, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{PartialSuccess: &collectorpb.ExportTracePartialSuccess{}})
	for _, tc := range []struct {
		name, contentType string
		body              []byte
		want              string // "": success
	}{
		{"no body", "", nil, ""},
		{"empty partial success", "application/x-protobuf", empty, ""},
		{"rejected spans", "application/x-protobuf", partial, `rejected 2 spans: "too old"`},
		{"JSON", "application/json", []byte(`{"partialSuccess":{"rejectedSpans":2}}`), ""},
		{"garbage", "application/x-protobuf", []byte{0xff, 0xff}, ""},
	} {
		c := newCollector(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", tc.contentType)
			_, _ = w.Write(tc.body)
		})
		err := testExporter(c, 5*time.Second, nil, false).ExportSpans(context.Background(), oneSpan(t))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: ExportSpans: %v; want success", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: ExportSpans: %v; want an error containing %q", tc.name, err, tc.want)
		}
	}

	// A 2xx with an endless body: the export ends, reading a bounded part.
	const total = 512 << 20
	var wrote int
	done := make(chan struct{})
	c := newCollector(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		defer close(done)
		chunk := bytes.Repeat([]byte{'x'}, 1<<20)
		for wrote < total {
			n, err := w.Write(chunk)
			wrote += n
			if err != nil {
				return
			}
		}
	})
	if err := testExporter(c, 5*time.Second, nil, false).ExportSpans(context.Background(), oneSpan(t)); err != nil {
		t.Errorf("200 with a large body: ExportSpans: %v", err)
	}
	<-done
	if wrote >= total {
		t.Errorf("the exporter read the whole %d-byte body; want a bounded part", wrote)
	}
}

// TestExporterShutdown: Shutdown cancels an export in flight, fails later
// ones without sending them, and closes the idle connections.
func TestExporterShutdown(t *testing.T) {
	t.Parallel()
	arrived := make(chan struct{}, 1)
	release := make(chan struct{}) // ends a hung handler when the test fails
	c := newCollector(t, func(n int, _ http.ResponseWriter, r *http.Request) {
		if n == 1 {
			arrived <- struct{}{}
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}
	})
	t.Cleanup(func() { close(release) }) // before c.Close
	e := testExporter(c, time.Minute, nil, false)
	errc := make(chan error, 1)
	go func() { errc <- e.ExportSpans(context.Background(), oneSpan(t)) }()
	<-arrived
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, errShutdown) {
			t.Errorf("the export in flight at Shutdown returned %v; want errShutdown", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the export in flight did not end at Shutdown")
	}
	if err := e.ExportSpans(context.Background(), oneSpan(t)); !errors.Is(err, errShutdown) {
		t.Errorf("ExportSpans after Shutdown: %v; want errShutdown", err)
	}
	if n := len(c.seen()); n != 1 {
		t.Errorf("%d requests; want 1 (none after Shutdown)", n)
	}
}

// TestExporterShutdownClosesIdleConnections: the connection kept after
// an export is closed by Shutdown, not left to the idle timeout.
func TestExporterShutdownClosesIdleConnections(t *testing.T) {
	t.Parallel()
	c := newCollector(t, nil)
	e := testExporter(c, 5*time.Second, nil, false)
	if err := e.ExportSpans(context.Background(), oneSpan(t)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := c.closedConns(); n != 0 {
		t.Fatalf("%d connections closed before Shutdown; want the one kept alive", n)
	}
	if err := e.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.closedConns() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.closedConns() == 0 {
		t.Error("the idle connection is still open after Shutdown")
	}
}

// TestNewExportsWithTheSettings: New gives the exporter the variables'
// headers, compression and endpoint.
func TestNewExportsWithTheSettings(t *testing.T) {
	t.Parallel()
	c := newCollector(t, nil)
	tr, err := New(context.Background(), Options{Service: "s", Getenv: getenv(map[string]string{
		EnvTracesEndpoint:    c.URL + "/custom",
		EnvHeaders:           "api-key=s3cret,x-tenant=t%201",
		EnvTracesCompression: "gzip",
		EnvTimeout:           "2000",
	})})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "work")
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	seen := c.seen()
	if len(seen) != 1 {
		t.Fatalf("%d requests; want 1", len(seen))
	}
	r := seen[0]
	if r.path != "/custom" || r.header.Get("Api-Key") != "s3cret" || r.header.Get("X-Tenant") != "t 1" || r.header.Get("Content-Encoding") != "gzip" {
		t.Errorf("request to %s with headers %v; want /custom, Api-Key, X-Tenant and gzip", r.path, r.header)
	}
	if r.body == nil || r.body.GetResourceSpans()[0].GetScopeSpans()[0].GetScope().GetName() != "test" {
		t.Errorf("body %v; want the span of scope test", r.body)
	}
}

// The collector never gets the endpoint's user info or query string,
// and an export that fails never names them.
func TestEndpointCredentialsAreNotSent(t *testing.T) {
	t.Parallel()
	c := newCollector(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" || r.Header.Get("Authorization") != "" {
			http.Error(w, "got query "+r.URL.RawQuery+" and authorization "+r.Header.Get("Authorization"), http.StatusTeapot)
			return
		}
		http.Error(w, "no", http.StatusBadRequest)
	})
	var logs strings.Builder
	u := strings.Replace(c.URL, "http://", "http://otel:s3cret@", 1) + "/v1/traces?api_key=k3y"
	tr, err := New(context.Background(), Options{Service: "s", Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		Getenv: getenv(map[string]string{EnvTracesEndpoint: u})})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.TracerProvider().Tracer("test").Start(context.Background(), "work")
	span.End()
	_ = tr.Shutdown(context.Background())
	out := logs.String()
	if !strings.Contains(out, "400 Bad Request") {
		t.Errorf("the failed export is not logged as the collector's 400: %s", out)
	}
	if !strings.Contains(out, "not sent") {
		t.Errorf("no warning that the user info and query are left out: %s", out)
	}
	for _, secret := range []string{"s3cret", "k3y"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log shows %q: %s", secret, out)
		}
	}
}
