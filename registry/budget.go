package registry

import (
	"sync"
	"time"
)

// Defaults of [RetryBudget].
const (
	DefaultRetryPercent        = 20
	DefaultMinRetriesPerSecond = 10
	DefaultRetryWindow         = 10 * time.Second
)

// RetryBudget bounds the retries that add load to a service: those of
// idempotent requests after a per-attempt timeout, a 502, 503 or 504, or a
// connection lost after the request was sent. Over a sliding Window, such
// retries may not exceed Percent of the calls made to the service, plus
// MinPerSecond per second of the window (so that a service called rarely
// can still be retried). A request that was never sent (its connection
// could not be made) is retried on another instance outside the budget: it
// cost the service nothing. This is the budget of Finagle, and of Envoy
// and gRPC in spirit: when a service is overloaded, retries cannot
// multiply its load.
//
// The budget is kept per service, shared by every client of one
// [Discovery]. The zero value is the defaults: 20% plus 10 per second over
// 10 seconds.
type RetryBudget struct {
	// Percent of the calls in the window that may be retried. If zero,
	// DefaultRetryPercent (20); if negative, none (with MinPerSecond
	// negative too, no budgeted retry happens at all).
	Percent float64
	// MinPerSecond is a floor of retries per second of the window. If
	// zero, DefaultMinRetriesPerSecond (10); if negative, none.
	MinPerSecond float64
	// Window is how far back calls and retries count. If zero or
	// negative, DefaultRetryWindow (10s).
	Window time.Duration
}

func (b RetryBudget) withDefaults() RetryBudget {
	if b.Percent == 0 {
		b.Percent = DefaultRetryPercent
	}
	b.Percent = max(b.Percent, 0)
	if b.MinPerSecond == 0 {
		b.MinPerSecond = DefaultMinRetriesPerSecond
	}
	b.MinPerSecond = max(b.MinPerSecond, 0)
	if b.Window <= 0 {
		b.Window = DefaultRetryWindow
	}
	return b
}

// budgetSlots is how many slots the window is cut into.
const budgetSlots = 10

// budget counts calls and retries of one service over a sliding window
// of budgetSlots slots.
type budget struct {
	opts RetryBudget
	slot int64 // nanoseconds per slot

	mu    sync.Mutex              // guards slots
	slots [budgetSlots]budgetSlot // ring, by epoch % budgetSlots
}

type budgetSlot struct {
	epoch          int64 // Unix nanoseconds / slot
	calls, retries int
}

func newBudget(opts RetryBudget) *budget {
	return &budget{opts: opts, slot: max(int64(opts.Window)/budgetSlots, 1)}
}

// current returns the slot of now, cleared if it held an older epoch.
// Call with mu held.
func (b *budget) current(now time.Time) *budgetSlot {
	epoch := now.UnixNano() / b.slot
	s := &b.slots[epoch%budgetSlots]
	if s.epoch != epoch {
		*s = budgetSlot{epoch: epoch}
	}
	return s
}

// call counts one call.
func (b *budget) call(now time.Time) {
	b.mu.Lock()
	b.current(now).calls++
	b.mu.Unlock()
}

// retry reports whether one more retry fits the budget, and counts it if
// it does.
func (b *budget) retry(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	cur := b.current(now)
	calls, retries := 0, 0
	for i := range b.slots {
		if s := &b.slots[i]; cur.epoch-s.epoch < budgetSlots {
			calls += s.calls
			retries += s.retries
		}
	}
	allowed := float64(calls)*b.opts.Percent/100 + b.opts.MinPerSecond*b.opts.Window.Seconds()
	if float64(retries+1) > allowed {
		return false
	}
	cur.retries++
	return true
}
