package tracing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.opentelemetry.io/otel/propagation"
)

// The attribute keys of svc's HTTP spans. They follow the stable HTTP
// semantic conventions as of v1.26.0 (stable since v1.23; unchanged for
// these keys up to v1.43, what otelhttp 0.70 used). They are written here
// rather than imported from go.opentelemetry.io/otel/semconv: its
// versioned packages and httpconv are large, and svc needs a dozen keys.
const (
	// semconvSchemaURL is the tracer's schema: the conventions' version.
	semconvSchemaURL = "https://opentelemetry.io/schemas/1.26.0"
	// scopeName names the instrumentation scope of the HTTP spans.
	scopeName = "github.com/svc-dev/svc/internal/tracing"

	keyMethod         = "http.request.method"
	keyMethodOriginal = "http.request.method_original"
	keyStatusCode     = "http.response.status_code"
	keyResponseSize   = "http.response.body.size"
	keyRoute          = "http.route"
	keyURLFull        = "url.full"
	keyURLPath        = "url.path"
	keyURLScheme      = "url.scheme"
	keyServerAddress  = "server.address"
	keyServerPort     = "server.port"
	keyPeerAddress    = "network.peer.address"
	keyPeerPort       = "network.peer.port"
	keyProtoVersion   = "network.protocol.version"
	keyUserAgent      = "user_agent.original"
	keyErrorType      = "error.type"
	keySvcServer      = "svc.server" // svc's own: "public" or "private"

	// methodOther is http.request.method for a method the conventions do
	// not know: the attribute stays low in cardinality.
	methodOther = "_OTHER"
	// maxMethodOriginal bounds http.request.method_original: a client
	// may send any token as a method.
	maxMethodOriginal = 32
)

// spanMethod is the method as span names show it: one of the methods of
// RFC 9110 and RFC 5789, or "HTTP" (the semantic conventions' rule), so a
// client inventing methods cannot invent span names.
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodConnect,
		http.MethodOptions, http.MethodTrace:
		return m
	}
	return "HTTP"
}

// requestMethod returns http.request.method's value and, when the method
// is not one the conventions know, http.request.method_original's (at
// most maxMethodOriginal bytes; "" when the method is a known one).
// Methods are case-sensitive (RFC 9110): "get" is not GET.
func requestMethod(m string) (method, original string) {
	if spanMethod(m) == m {
		return m, ""
	}
	if len(m) > maxMethodOriginal {
		m = m[:maxMethodOriginal] // a method is an ASCII token: no rune is cut
	}
	return methodOther, m
}

// maxAttrLen bounds the string attributes a span takes from a request or
// a URL (url.path, url.full, user_agent.original, server.address): a
// client can send up to the server's header limit (64 KiB by default) in
// each, and a span is kept until its batch is exported (up to 2,048 of
// them in the queue), so unbounded they could hold hundreds of MiB.
const maxAttrLen = 1024

// bounded returns s cut to at most maxAttrLen bytes, at a rune's start.
func bounded(s string) string {
	if len(s) <= maxAttrLen {
		return s
	}
	n := maxAttrLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// protoVersion is network.protocol.version for r: "1.1", "2", ...; ""
// for a version svc does not expect.
func protoVersion(major, minor int) string {
	switch {
	case major == 1 && minor == 1:
		return "1.1"
	case major == 2 && minor == 0:
		return "2"
	case major == 1 && minor == 0:
		return "1.0"
	case major == 3 && minor == 0:
		return "3"
	}
	return ""
}

// splitHostPort splits "host:port", "[v6]:port", "host" or "[v6]" into
// the host, without brackets, and the port, or -1 when there is none or
// it is not a number of 1 to 65535. Unlike net.SplitHostPort, it
// allocates no error for a host without a port (a Host header's usual
// form).
func splitHostPort(hostport string) (string, int) {
	host, port := hostport, ""
	if strings.HasPrefix(hostport, "[") {
		end := strings.IndexByte(hostport, ']')
		if end < 0 {
			return "", -1 // malformed
		}
		host = hostport[1:end]
		if rest := hostport[end+1:]; strings.HasPrefix(rest, ":") {
			port = rest[1:]
		}
	} else if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		if strings.IndexByte(hostport[:i], ':') >= 0 {
			return hostport, -1 // a bare IPv6 address
		}
		host, port = hostport[:i], hostport[i+1:]
	}
	if port == "" {
		return host, -1
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return host, -1
	}
	return host, int(p)
}

// errorType is error.type for a failed call: the Go type of the error
// (net.OpError, tls.CertificateVerificationError), or the name of the
// context error that ended it. Types, not messages: the attribute stays
// low in cardinality. An error wrapped by fmt.Errorf with one %w (as
// net/http wraps a broken connection's) is named by what it wraps, as
// the conventions' ErrorType does: fmt.wrapError says nothing.
func errorType(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	}
	t := fmt.Sprintf("%T", err)
	for t == "*fmt.wrapError" {
		u := errors.Unwrap(err)
		if u == nil {
			break
		}
		err, t = u, fmt.Sprintf("%T", u)
	}
	return strings.TrimPrefix(t, "*")
}

// headerCarrier is propagation.HeaderCarrier, but for the W3C
// propagators' keys, which come in lower case and are looked up in their
// canonical form: http.Header's canonicalization of "traceparent"
// allocates a new string on every call, several times per request.
type headerCarrier http.Header

var _ propagation.ValuesGetter = headerCarrier(nil)

func canonicalKey(k string) string {
	switch k {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(k)
}

func (c headerCarrier) Get(k string) string      { return http.Header(c).Get(canonicalKey(k)) }
func (c headerCarrier) Values(k string) []string { return http.Header(c).Values(canonicalKey(k)) }
func (c headerCarrier) Set(k, v string)          { http.Header(c).Set(canonicalKey(k), v) }
func (c headerCarrier) Keys() []string           { return propagation.HeaderCarrier(c).Keys() }
