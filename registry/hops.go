package registry

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
)

// HopsHeader is the request header counting how many relays a request has
// passed through. [NewTransport] sets it on a request whose context came
// from [WithHops]: one more than the inbound request's.
const HopsHeader = "Svc-Hops"

// MaxHops is the most relays one request may pass through. A relay that
// forwards "GET /call/example/call/example/..." to itself would otherwise
// hold one more connection per level until the process runs out of file
// descriptors; with the limit, a loop costs at most MaxHops connections
// and ends in a [*LoopError] (HTTP 508 Loop Detected at a relay).
const MaxHops = 8

// Hops returns the hop count of an inbound request: its [HopsHeader] as a
// non-negative decimal integer, 0 when absent. It returns an error when
// the header is present but not such a number; the value may exceed
// MaxHops (the caller compares).
func Hops(r *http.Request) (int, error) {
	v := r.Header.Get(HopsHeader)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("registry: %s %q is not a hop count (a non-negative integer)", HopsHeader, v)
	}
	return int(n), nil
}

// hopsKey is the context key of the inbound hop count.
type hopsKey struct{}

// WithHops returns a copy of ctx carrying the hop count of inbound, the
// request being served. A request made with it through [NewTransport]
// carries HopsHeader one more than inbound's, and fails with a
// [*LoopError], without dialing, when that would exceed MaxHops. A
// malformed inbound count counts as MaxHops: a caller cannot buy itself
// more hops with "-100".
//
// A relay uses it on every outbound call:
//
//	req, _ := http.NewRequestWithContext(registry.WithHops(r.Context(), r), http.MethodGet, "http://orders/x", nil)
func WithHops(ctx context.Context, inbound *http.Request) context.Context {
	n, err := Hops(inbound)
	if err != nil || n > MaxHops {
		n = MaxHops
	}
	return context.WithValue(ctx, hopsKey{}, n)
}

// hopsOf returns the inbound hop count WithHops put in ctx.
func hopsOf(ctx context.Context) (int, bool) {
	n, ok := ctx.Value(hopsKey{}).(int)
	return n, ok
}

// LoopError reports a request refused because it has passed through
// MaxHops relays already: most likely a relay calling itself.
type LoopError struct {
	Service string // the service the request was for
	Hops    int    // the inbound request's hop count
}

// Error names the service, the hop count and the limit.
func (e *LoopError) Error() string {
	return fmt.Sprintf("registry: request for service %q refused: it has passed through %d relays, the most registry.MaxHops (%d) allows: a relay loop?",
		e.Service, e.Hops, MaxHops)
}
