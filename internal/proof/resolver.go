package proof

import (
	"slices"
	"sync"
	"time"

	"github.com/svc-dev/svc/registry"
)

// DefaultRemovalDelay is how late the load generator learns of a removed
// instance unless told otherwise.
const DefaultRemovalDelay = 300 * time.Millisecond

// Instances lists the instances of a service: [*registry.Discovery] is
// one.
type Instances interface {
	Instances(name string) ([]registry.Instance, error)
}

// DelayedResolver is a [registry.Resolver] that sees additions at once but
// removals only Delay after they happened: a client behind a cache or a
// load balancer. It reads the instances of the underlying discovery on
// every call and takes them round-robin in key order. Safe for concurrent
// use.
type DelayedResolver struct {
	src   Instances
	delay time.Duration
	now   func() time.Time

	mu    sync.Mutex                          // guards known and next
	known map[string]map[string]*knownServing // by service name, then registry key
	next  uint64                              // round-robin counter
}

// knownServing is an instance the resolver still hands out.
type knownServing struct {
	base string
	gone time.Time // when it left the source; zero while it is there
}

var _ registry.Resolver = (*DelayedResolver)(nil)

// NewDelayedResolver returns a resolver over src that applies removals
// delay late.
func NewDelayedResolver(src Instances, delay time.Duration) *DelayedResolver {
	return &DelayedResolver{src: src, delay: delay, now: time.Now, known: map[string]map[string]*knownServing{}}
}

// Pick returns the base URL of an instance of name for one attempt of a
// call, as BaseURL does, avoiding the ones in tried while another is left.
func (r *DelayedResolver) Pick(name string, tried []string) (string, error) {
	var base string
	for range 8 {
		var err error
		if base, err = r.BaseURL(name); err != nil || !slices.Contains(tried, base) {
			return base, err
		}
	}
	return base, nil
}

// BaseURL returns the base URL of an instance of name, round-robin over the
// current instances and the removed ones whose delay has not passed.
func (r *DelayedResolver) BaseURL(name string) (string, error) {
	insts, err := r.src.Instances(name)
	if err != nil {
		return "", err
	}
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	known := r.known[name]
	if known == nil {
		known = map[string]*knownServing{}
		r.known[name] = known
	}
	present := make(map[string]bool, len(insts))
	for _, in := range insts {
		present[in.Key] = true
		known[in.Key] = &knownServing{base: in.BaseURL}
	}
	keys := make([]string, 0, len(known))
	for key, k := range known {
		if !present[key] {
			if k.gone.IsZero() {
				k.gone = now
			}
			if now.Sub(k.gone) >= r.delay {
				delete(known, key)
				continue
			}
		}
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return "", &registry.NoInstanceError{Service: name}
	}
	slices.Sort(keys)
	r.next++
	return known[keys[(r.next-1)%uint64(len(keys))]].base, nil
}
