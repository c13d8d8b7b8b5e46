package registry

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/svc-dev/svc/internal/convention"
)

// Resolver resolves a service name to a base URL ("http://host:port").
// [*Discovery] is the Resolver of this package.
type Resolver interface {
	BaseURL(name string) (string, error)
}

var _ Resolver = (*Discovery)(nil)

// DefaultMaxIdleConnsPerHost is how many idle connections per instance
// the base transport that [NewTransport] makes keeps. net/http's default, 2,
// is too few for a client balanced over a few instances: with more than
// two requests in flight to one instance, nearly every request opens a new
// connection and leaves a socket in TIME_WAIT.
const DefaultMaxIdleConnsPerHost = 64

// NewTransport returns an http.RoundTripper that sends a request for
// "http://<service>/path" to an instance of the service, resolved by r for
// each request (round-robin with a [Discovery]), through base. If base is
// nil, NewTransport makes its own: a clone of http.DefaultTransport keeping
// DefaultMaxIdleConnsPerHost idle connections per instance.
// http.Client.CloseIdleConnections reaches the base transport.
//
// It only ever reaches instances of a service r resolved (from the
// registry, an override or the port convention). A request is sent only
// when its URL's scheme is http, it has no userinfo, and its host is a
// service name: no port, matching ^[a-z][a-z0-9-]{0,62}$, and not
// "localhost". Any other request (an ip:port, host:port, localhost, https,
// user:password@) fails with a [*RefusedError] and nothing is dialed, so
// that a caller choosing the service name (a relay) cannot turn the
// transport into an open proxy to loopback listeners, the admin port or
// etcd. This holds for redirects too: http.Client sends them through the
// same transport. Code that really means a plain address uses a plain
// http.Transport (or http.DefaultClient) of its own, not this one.
//
// The request is cloned, never modified; the clone's Host header is the
// instance's host:port. If resolving fails the error of r is returned (a
// [*NoInstanceError] when no instance is known). On any error before
// sending, the request body is closed.
//
// When the request's context carries an inbound request's hop count
// ([WithHops]), the clone carries [HopsHeader] one more than it; a request
// that would exceed [MaxHops] fails with a [*LoopError] without dialing.
//
// A request whose connection could not be dialed (the instance crashed and
// its lease has not expired yet, or it stopped before its clients heard)
// is sent again to the next instance, up to DialAttempts in all: nothing
// was sent, so this is safe for any method. A request with a body is
// retried only when it has GetBody (as http.NewRequest sets for in-memory
// bodies).
func NewTransport(r Resolver, base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = newBaseTransport()
	}
	return &transport{r: r, base: base}
}

// newBaseTransport clones http.DefaultTransport (or, if a program replaced
// it with another type, starts from net/http's defaults) with room for
// DefaultMaxIdleConnsPerHost idle connections per instance.
func newBaseTransport() *http.Transport {
	t, ok := http.DefaultTransport.(*http.Transport)
	if ok {
		t = t.Clone()
	} else {
		t = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			ForceAttemptHTTP2:     true,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	}
	t.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	t.MaxIdleConns = max(t.MaxIdleConns, 16*DefaultMaxIdleConnsPerHost)
	return t
}

// DialAttempts bounds how many instances [NewTransport] tries for one
// request when dialing fails.
const DialAttempts = 3

type transport struct {
	r    Resolver
	base http.RoundTripper
}

// CloseIdleConnections closes the base transport's idle connections, if
// it has such a method.
func (t *transport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	hops, hasHops := hopsOf(req.Context())
	err := refuse(req)
	if err == nil && hasHops && hops >= MaxHops {
		err = &LoopError{Service: req.URL.Host, Hops: hops}
	}
	if err != nil {
		closeBody(req)
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		out, err := t.resolve(req, attempt)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		if hasHops {
			out.Header.Set(HopsHeader, strconv.Itoa(hops+1))
		}
		resp, err := t.base.RoundTrip(out)
		if err == nil || attempt == DialAttempts || !isDialError(err) || !rewindable(req) || req.Context().Err() != nil {
			return resp, err
		}
	}
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// RefusedError reports a request [NewTransport] will not send because its
// URL does not name a service: it never dials such a request.
type RefusedError struct {
	URL    string // the request's URL, its userinfo redacted
	Reason string // what is wrong with it
}

// Error names the URL and the reason, and says what to use instead.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("registry: refusing %s: %s; the discovery transport only calls http://<service name>/..., "+
		"use a plain http.Transport for an address", e.URL, e.Reason)
}

// refuse returns a *RefusedError when req's URL is not
// "http://<service name>/...".
func refuse(req *http.Request) error {
	u := req.URL
	if u == nil {
		return &RefusedError{URL: "<nil URL>", Reason: "no URL"}
	}
	var why string
	switch {
	case u.Scheme != "http":
		why = fmt.Sprintf("scheme %q is not http", u.Scheme)
	case u.User != nil:
		why = "a URL with userinfo names no service"
	case u.Host == "localhost":
		why = `host "localhost" is not a service name`
	case !isServiceName(u.Host):
		why = fmt.Sprintf("host %q is not a service name (%s, no port)", u.Host, convention.NameRule)
	default:
		return nil
	}
	return &RefusedError{URL: u.Redacted(), Reason: why}
}

// resolve clones req onto the next instance of its service.
func (t *transport) resolve(req *http.Request, attempt int) (*http.Request, error) {
	base, err := t.r.BaseURL(req.URL.Host)
	if err != nil {
		return nil, err
	}
	scheme, rest, _ := strings.Cut(base, "://")
	hostport, prefix := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, prefix = rest[:i], strings.TrimSuffix(rest[i:], "/")
	}
	out := req.Clone(req.Context())
	if attempt > 1 && req.GetBody != nil {
		if out.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	out.URL.Scheme = scheme
	out.URL.Host = hostport
	out.Host = ""
	if prefix != "" {
		out.URL.Path = prefix + out.URL.Path
		if out.URL.RawPath != "" {
			out.URL.RawPath = prefix + out.URL.RawPath
		}
	}
	return out, nil
}

// isDialError reports whether err happened before anything was sent: the
// connection could not be made.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// rewindable reports whether req's body can be sent again.
func rewindable(req *http.Request) bool {
	return req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
}

// isServiceName reports whether host is a service name in the sense of the
// contract: ^[a-z][a-z0-9-]{0,62}$, and not "localhost".
func isServiceName(host string) bool {
	return host != "localhost" && convention.IsName(host)
}

// CheckServiceName returns nil if name is a name [NewTransport] calls: it
// matches ^[a-z][a-z0-9-]{0,62}$ and is not "localhost". Otherwise it
// returns an error naming the rule. A handler that takes a service name
// from its caller (a relay) checks it first, to answer 400.
func CheckServiceName(name string) error {
	if name == "localhost" {
		return errors.New(`registry: "localhost" is not a service name`)
	}
	if err := convention.CheckName("service name", name); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	return nil
}
