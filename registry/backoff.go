package registry

import (
	"math/rand/v2"
	"time"
)

// backoff computes capped, jittered exponential delays: each delay is drawn
// from [d/2, d], where d doubles from min up to max. The zero value is not
// usable; it is not safe for concurrent use.
type backoff struct {
	min, max time.Duration
	next     time.Duration // upper bound of the next delay
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min}
}

// delay returns the next delay and doubles the bound, up to max.
func (b *backoff) delay() time.Duration {
	d := b.next
	b.next = min(2*b.next, b.max)
	half := d / 2
	return half + rand.N(d-half+1)
}

// reset starts again from min.
func (b *backoff) reset() { b.next = b.min }
