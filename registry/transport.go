package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/svc-dev/svc/internal/convention"
)

// Resolver picks the instance that one attempt of a call goes to.
// [*Discovery] is the Resolver of this package; a test or a load generator
// can bring its own (it then gets retries across instances, but no
// ejection, no shared budget and no metrics: those live in a Discovery).
type Resolver interface {
	// Pick returns the base URL ("http://host:port") of an instance of
	// service for one attempt, avoiding the base URLs in tried (those the
	// call tried already) while another one is left; see [Discovery.Pick].
	Pick(service string, tried []string) (string, error)
}

var _ Resolver = (*Discovery)(nil)

// DefaultMaxIdleConnsPerHost is how many idle connections per instance
// the base transport that [NewTransport] makes keeps. net/http's default, 2,
// is too few for a client balanced over a few instances: with more than
// two requests in flight to one instance, nearly every request opens a new
// connection and leaves a socket in TIME_WAIT.
const DefaultMaxIdleConnsPerHost = 64

// TimeoutHeader carries, on every attempt, how many milliseconds the
// caller still waits for its answer: the least of the per-attempt timeout
// and what is left of the call's deadline (the caller's context, or the
// per-call timeout). A callee may stop working on a request whose caller
// has given up; [InboundTimeout] reads it.
const TimeoutHeader = "Svc-Timeout-Ms"

// NewTransport returns the round tripper of calls to other services: it
// sends a request for "http://<service>/path" to an instance of the
// service that r picks for each attempt, through opts.Base. With a
// [*Discovery], the fields opts leaves zero are taken from its
// DiscoveryOptions.Calls, and its instances are ejected when they fail
// (see [EjectionOptions]); its retry budget and metrics apply.
//
// Only service names are called. A request is sent only when its URL's
// scheme is http, it has no userinfo, and its host is a service name: no
// port, matching ^[a-z][a-z0-9-]{0,62}$, and not "localhost". Any other
// request (an ip:port, host:port, localhost, https, user:password@) fails
// with a [*RefusedError] and nothing is dialed, so that a caller choosing
// the service name (a relay) cannot turn the transport into an open proxy
// to loopback listeners, the admin port or etcd. This holds for redirects
// too: http.Client sends them through the same transport. Code that really
// means a plain address uses a plain http.Transport of its own.
//
// Each call is bounded by the per-call timeout and each attempt, until
// its response headers, by the per-attempt timeout (ClientOptions.Timeouts;
// a caller's shorter context deadline wins); every attempt carries
// [TimeoutHeader] with the time left. The call timeout also bounds reading
// the body: close it.
//
// An attempt that fails is retried on a different instance, up to
// MaxAttempts in all, while the caller's context and the call timeout
// leave time:
//
//   - for every method, when the request was never sent: no connection
//     could be made (refused, reset, no answer to the dial);
//   - for an idempotent request (GET, HEAD, OPTIONS, TRACE, PUT, DELETE, or
//     one with an Idempotency-Key or X-Idempotency-Key header), also after
//     the per-attempt timeout, a 502, 503 or 504, or a connection lost after
//     sending, within the service's [RetryBudget].
//
// A request with a body is retried only when it has GetBody (as
// http.NewRequest sets for in-memory bodies). When no retry is allowed,
// the last attempt's answer or error is the call's; an attempt cut by the
// per-attempt timeout fails with an [*AttemptTimeoutError].
//
// The request is cloned, never modified; the clone's Host header is the
// instance's host:port. If no instance can be picked, the resolver's error
// is returned (a [*NoInstanceError] when none is known). On any error
// before sending, the request body is closed. When the request's context
// carries an inbound request's hop count ([WithHops]), each attempt
// carries [HopsHeader] one more than it; a request that would exceed
// [MaxHops] fails with a [*LoopError] without dialing.
//
// A Transport is safe for concurrent use; make one and keep it (its base
// transport pools connections).
func NewTransport(r Resolver, opts ClientOptions) *Transport {
	d, _ := r.(*Discovery)
	if d != nil {
		opts = opts.or(d.calls)
		if opts.Base == nil {
			opts.Base = d.sharedBase()
		}
	}
	if opts.Base == nil {
		opts.Base = newBaseTransport()
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	t := &Transport{r: r, d: d, opts: opts, rt: opts.Base}
	if opts.WrapAttempt != nil {
		t.rt = opts.WrapAttempt(opts.Base)
	}
	if d != nil {
		t.metrics = d.metrics
	} else {
		t.metrics = newClientMetrics(nil, nil)
		t.budget = newBudget(RetryBudget{}.withDefaults())
	}
	return t
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
	t.Proxy = nil // instances are reached directly, never through HTTP_PROXY
	t.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	t.MaxIdleConns = max(t.MaxIdleConns, 16*DefaultMaxIdleConnsPerHost)
	return t
}

// Transport is the round tripper [NewTransport] returns.
type Transport struct {
	r       Resolver
	d       *Discovery        // r when it is one; nil otherwise
	opts    ClientOptions     // defaults applied, except Timeouts
	rt      http.RoundTripper // opts.Base, wrapped by opts.WrapAttempt
	metrics *clientMetrics    // d's, or unregistered ones
	budget  *budget           // without a Discovery: one budget for every service
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method. The base transport of a Discovery is shared by
// all its clients.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.opts.Base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// timeouts returns the per-attempt and per-call timeouts of a new call;
// 0 means none.
func (t *Transport) timeouts() (attempt, call time.Duration) {
	if t.opts.Timeouts != nil {
		attempt, call = t.opts.Timeouts()
	}
	if attempt == 0 {
		attempt = DefaultAttemptTimeout
	}
	if call == 0 {
		call = DefaultCallTimeout
	}
	return max(attempt, 0), max(call, 0)
}

// RoundTrip sends req as [NewTransport] describes.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	hops, hasHops := hopsOf(req.Context())
	err := refuse(req)
	if err == nil && hasHops && hops >= MaxHops {
		err = &LoopError{Service: req.URL.Host, Hops: hops}
	}
	if err != nil {
		closeBody(req)
		return nil, err
	}
	attemptTimeout, callTimeout := t.timeouts()
	ctx, cancel := req.Context(), context.CancelFunc(func() {})
	if callTimeout > 0 {
		ctx, cancel = context.WithTimeout(ctx, callTimeout)
	}
	c := &call{t: t, req: req, ctx: ctx, service: req.URL.Host, hops: hops, hasHops: hasHops, attemptTimeout: attemptTimeout}
	resp, cancelAttempt, err := c.run()
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &callBody{ReadCloser: resp.Body, cancel: func() { cancelAttempt(); cancel() }}
	return resp, nil
}

// call is one request through a Transport.
type call struct {
	t              *Transport
	req            *http.Request   // as the caller gave it
	ctx            context.Context // the caller's, bounded by the call timeout
	service        string
	hops           int
	hasHops        bool
	attemptTimeout time.Duration // 0: none
}

// target is the instance an attempt goes to.
type target struct {
	base string    // its base URL
	s    *service  // the rest is set when a Discovery picked it
	snap *snapshot //
	i    int       // index in snap
}

// attempt is the result of one attempt.
type attempt struct {
	resp    *http.Response
	err     error
	cancel  context.CancelFunc // of the attempt's context
	result  string             // of svc_client_attempts_total
	outcome outcome            // for ejection
	unsent  bool               // the request was certainly not sent
}

// run makes the attempts of c; on success it returns the response and
// the cancel function of its attempt's context.
func (c *call) run() (*http.Response, context.CancelFunc, error) {
	tg, err := c.pick(nil)
	if err != nil {
		closeBody(c.req)
		return nil, nil, err
	}
	budget := c.budget(tg)
	budget.call(time.Now())
	idempotent, replayable := isIdempotent(c.req), rewindable(c.req)
	tried := make([]string, 0, c.t.opts.MaxAttempts)
	for n := 1; ; n++ {
		a := c.attempt(tg, n)
		c.t.metrics.attempts.WithLabelValues(c.service, a.result).Inc()
		if tg.s != nil {
			c.t.d.observe(tg.s, tg.snap, tg.i, a.outcome)
		}
		tried = append(tried, tg.base)
		reason := retryReason(a, idempotent)
		if reason == "" || n >= c.t.opts.MaxAttempts || !replayable || c.ctx.Err() != nil {
			return c.finish(a)
		}
		if !c.untried(tried) {
			return c.finish(a)
		}
		if reason != reasonUnsent && !budget.retry(time.Now()) {
			c.t.metrics.denied.WithLabelValues(c.service).Inc()
			return c.finish(a)
		}
		next, err := c.pick(tried)
		if err != nil {
			return c.finish(a)
		}
		discard(a)
		c.t.metrics.retries.WithLabelValues(c.service, reason).Inc()
		tg = next
	}
}

// pick picks the instance of the next attempt, avoiding tried.
func (c *call) pick(tried []string) (target, error) {
	if d := c.t.d; d != nil {
		s, snap, err := d.resolve(c.service)
		if err != nil {
			return target{}, err
		}
		i, err := pick(s, snap, tried, time.Now().UnixNano())
		if err != nil {
			return target{}, err
		}
		return target{base: snap.bases[i], s: s, snap: snap, i: i}, nil
	}
	base, err := c.t.r.Pick(c.service, tried)
	return target{base: base}, err
}

// untried reports whether an instance not in tried is left, without
// moving the round-robin (a resolver other than a Discovery is asked at
// the next pick).
func (c *call) untried(tried []string) bool {
	if c.t.d == nil {
		return true
	}
	_, snap, err := c.t.d.resolve(c.service)
	return err == nil && slices.ContainsFunc(snap.bases, func(b string) bool { return !slices.Contains(tried, b) })
}

// budget returns the retry budget of the call's service.
func (c *call) budget(tg target) *budget {
	if tg.s != nil {
		return tg.s.budget
	}
	return c.t.budget
}

// finish ends the call with a, counting it.
func (c *call) finish(a attempt) (*http.Response, context.CancelFunc, error) {
	if a.err != nil {
		a.cancel()
		c.t.metrics.requests.WithLabelValues(c.service, "error").Inc()
		return nil, nil, a.err
	}
	c.t.metrics.requests.WithLabelValues(c.service, codeLabel(a.resp.StatusCode)).Inc()
	return a.resp, a.cancel, nil
}

// discard drops an attempt that is retried: its body is drained a little
// (so that its connection can serve again) and closed.
func discard(a attempt) {
	if a.resp != nil {
		_, _ = io.CopyN(io.Discard, a.resp.Body, 64<<10)
		a.resp.Body.Close()
	}
	a.cancel()
}

// retryReason returns why a may be retried on another instance, or "" if
// it may not.
func retryReason(a attempt, idempotent bool) string {
	switch {
	case a.unsent:
		return reasonUnsent
	case !idempotent:
		return ""
	case a.result == resultTimeout:
		return reasonTimeout
	case a.result == result5xx:
		switch a.resp.StatusCode {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return reasonStatus
		}
	case a.result == resultError:
		return reasonError
	}
	return ""
}

// attempt sends the n-th attempt of c to tg.
func (c *call) attempt(tg target, n int) attempt {
	ctx, cancel := context.WithCancel(c.ctx)
	var gotConn, wrote, timedOut atomic.Bool
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn:      func(httptrace.GotConnInfo) { gotConn.Store(true) },
		WroteHeaders: func() { wrote.Store(true) },
	})
	out, err := c.clone(ctx, tg.base, n)
	if err != nil {
		return attempt{err: err, cancel: cancel, result: resultError, outcome: outcomeNone}
	}
	var timer *time.Timer
	if c.attemptTimeout > 0 {
		timer = time.AfterFunc(c.attemptTimeout, func() { timedOut.Store(true); cancel() })
	}
	resp, err := c.t.rt.RoundTrip(out)
	if timer != nil {
		timer.Stop()
	}
	a := attempt{resp: resp, err: err, cancel: cancel}
	if err == nil && timedOut.Load() { // the answer came as the timer fired: its body is cut
		resp.Body.Close()
		a.resp, a.err = nil, context.Canceled
	}
	switch {
	case a.err == nil && resp.StatusCode >= 500:
		a.result, a.outcome = result5xx, outcomeFailure
	case a.err == nil:
		a.result, a.outcome = resultOK, outcomeOK
	case c.ctx.Err() != nil: // the caller gave up, or the call timeout passed
		a.result, a.outcome = resultCanceled, outcomeNone
	case isDialError(a.err), timedOut.Load() && !gotConn.Load():
		a.result, a.outcome, a.unsent = resultConnect, outcomeConnectFail, true
	case timedOut.Load():
		a.result, a.outcome = resultTimeout, outcomeFailure
	case !gotConn.Load(): // failed before any connection: not the instance's doing
		a.result, a.outcome = resultError, outcomeNone
	default: // the connection failed
		a.result, a.outcome, a.unsent = resultError, outcomeFailure, !wrote.Load()
	}
	if timedOut.Load() && c.ctx.Err() == nil {
		a.err = &AttemptTimeoutError{Service: c.service, Addr: out.URL.Host, Limit: c.attemptTimeout}
	}
	return a
}

// AttemptTimeoutError reports an attempt that had no answer within the
// per-attempt timeout; it is the error of a call when no other instance
// could be tried. Its Timeout method returns true, and it wraps
// context.DeadlineExceeded.
type AttemptTimeoutError struct {
	Service string        // the service called
	Addr    string        // the instance, host:port
	Limit   time.Duration // the per-attempt timeout
}

// Error names the service, the instance and the timeout.
func (e *AttemptTimeoutError) Error() string {
	return fmt.Sprintf("registry: no answer from %s at %s within the per-attempt timeout %s", e.Service, e.Addr, e.Limit)
}

// Timeout returns true: the error is a timeout (net.Error's sense).
func (e *AttemptTimeoutError) Timeout() bool { return true }

// Unwrap returns context.DeadlineExceeded.
func (e *AttemptTimeoutError) Unwrap() error { return context.DeadlineExceeded }

// callBody is the body of a call's response: closing it, or reading it to
// its end, releases the call's contexts.
type callBody struct {
	io.ReadCloser
	cancel func()
	once   sync.Once
}

func (b *callBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.once.Do(b.cancel)
	}
	return n, err
}

func (b *callBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.cancel)
	return err
}

// isIdempotent reports whether req may be sent twice: its method is
// idempotent, or it carries an idempotency key (the headers net/http
// honours too).
func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return req.Header.Get("Idempotency-Key") != "" || req.Header.Get("X-Idempotency-Key") != ""
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

// clone clones the request of c onto the instance at base, with context
// ctx, for the n-th attempt.
func (c *call) clone(ctx context.Context, base string, n int) (*http.Request, error) {
	scheme, rest, _ := strings.Cut(base, "://")
	hostport, prefix := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, prefix = rest[:i], strings.TrimSuffix(rest[i:], "/")
	}
	out := c.req.Clone(ctx)
	if n > 1 && c.req.GetBody != nil {
		var err error
		if out.Body, err = c.req.GetBody(); err != nil {
			return nil, fmt.Errorf("registry: replay the body of a request to %s: %w", c.service, err)
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
	if c.hasHops {
		out.Header.Set(HopsHeader, strconv.Itoa(c.hops+1))
	}
	left := c.attemptTimeout
	if dl, ok := c.ctx.Deadline(); ok {
		if until := time.Until(dl); left <= 0 || until < left {
			left = until
		}
	}
	if left > 0 {
		out.Header.Set(TimeoutHeader, strconv.FormatInt(max(left.Milliseconds(), 1), 10))
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
