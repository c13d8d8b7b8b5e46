// The OTLP/HTTP exporter: hand-written, replacing otlptracehttp to keep
// the generated OTLP protobuf packages out of svc's binaries; see the top
// of otlpenc.go and docs/tracing.md for why.

package tracing

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/sdk"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/protobuf/encoding/protowire"
)

const (
	// maxResponseBody bounds what is read of any response body; a larger
	// body is not read to its end (its connection is not reused).
	maxResponseBody = 64 << 10
	// maxErrorBody bounds the part of an error response quoted in the
	// error.
	maxErrorBody = 256
	// maxRetryAfter bounds the wait a Retry-After header asks for; the
	// export's timeout bounds it too.
	maxRetryAfter = 30 * time.Second
)

// errShutdown is what ExportSpans returns after Shutdown.
var errShutdown = errors.New("tracing: exporter shut down")

// otlpExporter is an [sdktrace.SpanExporter] posting OTLP/HTTP protobuf
// export requests. Each export, retries included, is bounded by timeout.
// It is safe for concurrent use.
type otlpExporter struct {
	endpoint string // the URL posted to
	client   *http.Client
	headers  map[string]string // set on each request, before Content-Type
	gzip     bool
	timeout  time.Duration
	// backoff is the first wait before a retry; it doubles at each
	// retry, up to maxBackoff, with ±50% jitter.
	backoff, maxBackoff time.Duration

	stopped context.Context // done after Shutdown
	stop    context.CancelFunc

	gzPool sync.Pool // *gzip.Writer
}

func newOTLPExporter(endpoint string, client *http.Client, headers map[string]string, gzip bool, timeout time.Duration) *otlpExporter {
	stopped, stop := context.WithCancel(context.Background())
	return &otlpExporter{
		endpoint:   endpoint,
		client:     client,
		headers:    headers,
		gzip:       gzip,
		timeout:    timeout,
		backoff:    time.Second,
		maxBackoff: 5 * time.Second,
		stopped:    stopped,
		stop:       stop,
	}
}

var _ sdktrace.SpanExporter = (*otlpExporter)(nil)

var userAgent = "svc-otlp-exporter (OTel Go SDK " + sdk.Version() + ")"

// ExportSpans sends spans in one request, retrying while the collector
// answers 429, 502, 503 or 504 (after the wait its Retry-After asks for,
// when it says) and the export's timeout allows. Network errors are not
// retried: the batch is dropped and the next one tried.
func (e *otlpExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.stopped.Err() != nil {
		return errShutdown
	}
	groups := groupSpans(spans)
	if len(groups) == 0 {
		return nil
	}
	body, err := e.encode(groups)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	defer context.AfterFunc(e.stopped, cancel)()

	wait := e.backoff
	for {
		retryAfter, err := e.post(ctx, body)
		if err == nil {
			return nil
		}
		if retryAfter < 0 {
			return err
		}
		d := min(max(retryAfter, jitter(wait)), maxRetryAfter)
		wait = min(2*wait, e.maxBackoff)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("%w (no time left to retry within the export timeout of %v)", err, e.timeout)
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%w before a retry)", err, e.ended(ctx))
		case <-t.C:
		}
	}
}

// ended says why an export's context ended: Shutdown, or the caller's
// context or the export's timeout.
func (e *otlpExporter) ended(ctx context.Context) error {
	if e.stopped.Err() != nil {
		return errShutdown
	}
	return ctx.Err()
}

// jitter returns d ± 50%.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d+1)
}

// encode returns the request body, gzipped when asked.
func (e *otlpExporter) encode(groups []*resourceGroup) ([]byte, error) {
	raw := appendRequest(nil, groups)
	if !e.gzip {
		return raw, nil
	}
	var buf bytes.Buffer
	buf.Grow(len(raw) / 4)
	zw, _ := e.gzPool.Get().(*gzip.Writer)
	if zw == nil {
		zw = gzip.NewWriter(&buf)
	} else {
		zw.Reset(&buf)
	}
	defer e.gzPool.Put(zw)
	if _, err := zw.Write(raw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// post sends one request. It returns nil on a 2xx answer. Otherwise it
// returns an error and, when the answer may be retried, how long the
// collector asked to wait (0 when it did not say), or -1 when it may not.
func (e *otlpExporter) post(ctx context.Context, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.endpoint, bytes.NewReader(body))
	if err != nil {
		return -1, fmt.Errorf("tracing: export request: %w", err)
	}
	req.Header.Set("User-Agent", userAgent)
	for k, v := range e.headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		// A *url.Error names the URL, never the headers.
		if ctx.Err() != nil && e.stopped.Err() != nil {
			return -1, fmt.Errorf("%w: %w", errShutdown, err)
		}
		return -1, fmt.Errorf("tracing: export: %w", err)
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody+1))
	truncated := len(data) > maxResponseBody
	if truncated {
		data = data[:maxResponseBody]
	}
	protobuf := strings.HasPrefix(resp.Header.Get("Content-Type"), "application/x-protobuf")

	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		// The spans were accepted. A partial success (some spans
		// rejected) is reported as otlptracehttp did, as an error; the
		// rest of the body, and a body cut short, are ignored.
		if readErr == nil && !truncated && protobuf {
			if err := partialSuccess(data); err != nil {
				return -1, err
			}
		}
		return -1, nil
	}
	err = fmt.Errorf("tracing: export to %s: %s%s", redactURL(e.endpoint), resp.Status, quoteBody(data, protobuf, truncated))
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return retryAfter(resp.Header.Get("Retry-After")), err
	}
	return -1, err
}

// retryAfter decodes a Retry-After header, seconds or an HTTP date; 0
// when absent or malformed.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 32); err == nil {
		return min(time.Duration(s)*time.Second, maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(time.Until(t), 0), maxRetryAfter)
	}
	return 0
}

// redactURL is the endpoint without a password, for errors.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "the collector"
	}
	return u.Redacted()
}

// quoteBody returns ": <the body>" for an error message: the message of a
// protobuf google.rpc.Status when it is one, else the text, cut to
// maxErrorBody bytes and quoted; "" when empty.
func quoteBody(data []byte, protobuf, truncated bool) string {
	if protobuf {
		if msg, ok := statusMessage(data); ok {
			data, truncated = []byte(msg), false
		}
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return ""
	}
	if len(data) > maxErrorBody {
		data, truncated = data[:maxErrorBody], true
		for len(data) > 0 && !utf8.Valid(data) { // do not cut a character in two
			data = data[:len(data)-1]
		}
	}
	s := ": " + strconv.Quote(string(data))
	if truncated {
		s += " (cut)"
	}
	return s
}

// statusMessage returns the message (field 2) of a google.rpc.Status,
// the body of an OTLP/HTTP error answered in protobuf.
func statusMessage(data []byte) (string, bool) {
	var msg string
	found := false
	err := walkFields(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num == 2 && typ == protowire.BytesType {
			msg, found = string(v), true
		}
	})
	return msg, err == nil && found
}

// partialSuccess decodes an ExportTraceServiceResponse and returns an
// error when it reports rejected spans or a message.
func partialSuccess(data []byte) error {
	var rejected int64
	var msg string
	err := walkFields(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) {
		if num != 1 || typ != protowire.BytesType { // partial_success
			return
		}
		_ = walkFields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) {
			switch {
			case num == 1 && typ == protowire.VarintType: // rejected_spans
				rejected = int64(x)
			case num == 2 && typ == protowire.BytesType: // error_message
				msg = string(v)
			}
		})
	})
	if err != nil || (rejected == 0 && msg == "") {
		return nil
	}
	return fmt.Errorf("tracing: the collector rejected %d spans%s", rejected, quoteBody([]byte(msg), false, false))
}

// walkFields calls f with each field of the protobuf message data: its
// number, wire type, and its bytes (length-delimited) or value (varint).
func walkFields(data []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64)) error {
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(data)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(data)
		default:
			n = protowire.ConsumeFieldValue(num, typ, data)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		data = data[n:]
		f(num, typ, v, x)
	}
	return nil
}

// Shutdown stops the exporter: an export in flight is cancelled, later
// ones fail, and the client's idle connections are closed.
func (e *otlpExporter) Shutdown(ctx context.Context) error {
	e.stop()
	e.client.CloseIdleConnections()
	return ctx.Err()
}
