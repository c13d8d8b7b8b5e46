package registry

import (
	"net/http"
	"strconv"
	"time"
)

// Defaults of [ClientOptions].
const (
	DefaultAttemptTimeout = 2 * time.Second
	DefaultCallTimeout    = 10 * time.Second
	DefaultMaxAttempts    = 3
)

// ClientOptions configures a client of other services ([NewClient],
// [NewTransport]). The zero value is the defaults, or with a [Discovery]
// the DiscoveryOptions.Calls of that Discovery, field by field.
type ClientOptions struct {
	// Timeouts returns the per-attempt and the per-call timeout. It is
	// called at the start of every call, so a function that reads live
	// configuration applies a change to the next call. A zero value
	// means the default (DefaultAttemptTimeout, 2s; DefaultCallTimeout,
	// 10s); a negative one turns that timeout off. A deadline of the
	// request's context shorter than the call timeout wins. If nil, the
	// defaults.
	Timeouts func() (attempt, call time.Duration)
	// MaxAttempts bounds the attempts of one call, the first included.
	// If zero, DefaultMaxAttempts (3); 1 turns retries off, even of
	// requests that were never sent.
	MaxAttempts int
	// Base sends each attempt to the instance picked; its URL then names
	// the instance (http://10.0.0.7:8010/...). If nil, a transport of
	// the Discovery shared by all its clients, or without a Discovery a
	// clone of http.DefaultTransport without a proxy, keeping
	// DefaultMaxIdleConnsPerHost idle connections per instance.
	Base http.RoundTripper
	// WrapAttempt, if set, wraps Base: every attempt goes through the
	// round tripper it returns, with its context (so the caller's
	// trace and request id) and the instance in its URL. It is the hook
	// of tracing: a client span per attempt, headers propagated.
	WrapAttempt func(http.RoundTripper) http.RoundTripper
}

// or returns o with its zero fields taken from d.
func (o ClientOptions) or(d ClientOptions) ClientOptions {
	if o.Timeouts == nil {
		o.Timeouts = d.Timeouts
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = d.MaxAttempts
	}
	if o.Base == nil {
		o.Base = d.Base
	}
	if o.WrapAttempt == nil {
		o.WrapAttempt = d.WrapAttempt
	}
	return o
}

// NewClient returns the HTTP client of calls to other services through
// d: requests for "http://<service>/path" (what [Discovery.BaseURL] and
// [Discovery.URL] return) go to an instance picked for each attempt, with
// retries on another instance, ejection of failing instances, per-attempt
// and per-call timeouts and metrics, as [NewTransport] describes; any
// other URL is refused with a [*RefusedError]. The client has no Timeout
// of its own: the transport's per-call timeout bounds the call, body
// included.
//
// Make one client and share it (it is safe for concurrent use): its
// connections are pooled.
//
//	client := registry.NewClient(disc, registry.ClientOptions{})
//	u, err := disc.URL("users", map[string]string{"territory": "fr", "userid": "42"})
//	if err != nil { ... }
//	resp, err := client.Get(u) // http://users/1.x/fr/users/42
func NewClient(d *Discovery, opts ClientOptions) *http.Client {
	return &http.Client{Transport: NewTransport(d, opts)}
}

// sharedBase returns the base transport shared by the clients of d that
// bring none.
func (d *Discovery) sharedBase() http.RoundTripper {
	d.baseOnce.Do(func() { d.base = newBaseTransport() })
	return d.base
}

// InboundTimeout returns how long the caller of inbound still waits for
// its answer, from its [TimeoutHeader] (which clients of this package
// send); ok is false when the header is absent or not a positive number
// of milliseconds. A handler that calls further services can bound its
// work with it:
//
//	if d, ok := registry.InboundTimeout(r); ok {
//		ctx, cancel = context.WithTimeout(ctx, d)
//		defer cancel()
//	}
func InboundTimeout(inbound *http.Request) (time.Duration, bool) {
	v := inbound.Header.Get(TimeoutHeader)
	if v == "" {
		return 0, false
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms <= 0 || ms > int64(24*time.Hour/time.Millisecond) {
		return 0, false
	}
	return time.Duration(ms) * time.Millisecond, true
}
