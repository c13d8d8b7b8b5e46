package config

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// OverridesLayer is the name of an [Overrides] layer, in /admin/config,
// reload reports and errors.
const OverridesLayer = "admin"

// MaxOverrides bounds the keys an [Overrides] holds at once: what a
// caller sends is bounded.
const MaxOverrides = 256

// ErrNoOverride is returned, wrapped, by [Overrides.Remove] for a key
// that has no override.
var ErrNoOverride = errors.New("no override")

// Overrides is the layer of values set by hand while the service runs
// (PUT /admin/config/{key} on the admin port), each for a while or until
// it is removed or the process ends: overrides live in memory only. svc
// puts it above every other layer.
//
// Set and Delete change the layer and announce it ([Notifier]), so that
// a started [Live] reloads; an override set for a duration is removed by
// itself when it expires, and announced the same way. [Overrides.Put] and
// [Overrides.Remove] are the synchronous path: they change the layer,
// reload the [Live] the layer belongs to at once and report what the
// reload did for that key; a value the reload rejects is undone.
//
// An Overrides is safe for concurrent use. Each override set for a
// duration holds a timer until it expires; [Overrides.Close] stops them.
type Overrides struct {
	changed chan struct{} // capacity 1: a pending announcement

	op sync.Mutex // serializes Put and Remove: change, reload, inspect, undo

	mu     sync.Mutex // guards the fields below
	vals   map[string]override
	seq    uint64 // the id of the last override set
	live   *Live  // the Live whose layer this is; set by NewLive
	closed bool
}

// override is one key's value in an Overrides.
type override struct {
	value   string
	expires time.Time   // zero: until removed
	id      uint64      // tells this override from a later one of the same key
	timer   *time.Timer // removes it at expires; nil without
}

// Override is one key set in an [Overrides]: its value (shown redacted
// for secrets by Value.Display) and when it expires.
type Override struct {
	Value   Value
	Expires time.Time // zero: until removed or restart
}

var _ Notifier = (*Overrides)(nil)

// NewOverrides returns an empty override layer named [OverridesLayer].
func NewOverrides() *Overrides {
	return &Overrides{changed: make(chan struct{}, 1), vals: map[string]override{}}
}

// Name returns "admin".
func (o *Overrides) Name() string { return OverridesLayer }

// Changed returns the channel on which o announces its changes (Set,
// Delete, an expiry).
func (o *Overrides) Changed() <-chan struct{} { return o.changed }

// Load returns the overrides in force: a snapshot, without those whose
// expiry has passed.
func (o *Overrides) Load(context.Context) (Source, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now()
	m := make(map[string]string, len(o.vals))
	for k, ov := range o.vals {
		if ov.expires.IsZero() || now.Before(ov.expires) {
			m[k] = ov.value
		}
	}
	return NewMap(OverridesLayer, m), nil
}

// Set sets key to value in the layer, for ttl (0: until Delete, Close or
// the process ends), replacing an earlier override of key, and announces
// the change. It does not validate: a [Live] checks the value at its
// next reload like any other layer's. It returns an error when
// MaxOverrides keys are already set or o is closed.
func (o *Overrides) Set(key, value string, ttl time.Duration) error {
	if _, _, err := o.set(key, value, ttl); err != nil {
		return err
	}
	o.notify()
	return nil
}

// Delete removes key's override, if any, and announces the change. It
// reports whether key had one.
func (o *Overrides) Delete(key string) bool {
	_, had := o.delete(key)
	if had {
		o.notify()
	}
	return had
}

// Expiry reports whether key has an override and when it expires; the
// time is zero for an override without a duration.
func (o *Overrides) Expiry(key string) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ov, ok := o.vals[key]
	return ov.expires, ok
}

// List returns the overrides, sorted by key, in force or not (a
// startup-only key's override waits for a restart that drops it).
func (o *Overrides) List() []Override {
	o.mu.Lock()
	defer o.mu.Unlock()
	var sch *Schema
	if o.live != nil {
		sch = o.live.schema
	}
	out := make([]Override, 0, len(o.vals))
	for _, k := range slices.Sorted(maps.Keys(o.vals)) {
		ov := o.vals[k]
		v := Value{Key: k, Value: ov.value, Layer: OverridesLayer, secret: sch != nil && sch.secret(k)}
		out = append(out, Override{Value: v, Expires: ov.expires})
	}
	return out
}

// Close stops the expiry timers and removes every override, without
// announcing it: the process is ending. Set fails afterwards.
func (o *Overrides) Close() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, ov := range o.vals {
		if ov.timer != nil {
			ov.timer.Stop()
		}
	}
	clear(o.vals)
	o.closed = true
	return nil
}

// notify announces a change; announcements are coalesced.
func (o *Overrides) notify() {
	select {
	case o.changed <- struct{}{}:
	default:
	}
}

// set sets key's override and returns the one it replaced, if any.
func (o *Overrides) set(key, value string, ttl time.Duration) (override, bool, error) {
	if ttl < 0 {
		return override{}, false, fmt.Errorf("config: override %s: negative duration %s", key, ttl)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return override{}, false, errors.New("config: overrides closed")
	}
	prev, had := o.vals[key]
	if !had && len(o.vals) >= MaxOverrides {
		return override{}, false, fmt.Errorf("config: override %s: %d keys are overridden already, the most there may be; remove one first", key, MaxOverrides)
	}
	var expires time.Time
	if ttl > 0 {
		expires = time.Now().Add(ttl)
	}
	o.putLocked(key, value, expires)
	return prev, had, nil
}

// putLocked stores key's override, stopping the timer of the one it
// replaces and arming its own. o.mu is held.
func (o *Overrides) putLocked(key, value string, expires time.Time) {
	if prev, ok := o.vals[key]; ok && prev.timer != nil {
		prev.timer.Stop()
	}
	o.seq++
	ov := override{value: value, expires: expires, id: o.seq}
	if !expires.IsZero() {
		id := ov.id
		ov.timer = time.AfterFunc(time.Until(expires), func() { o.expire(key, id) })
	}
	o.vals[key] = ov
}

// delete removes key's override and returns it.
func (o *Overrides) delete(key string) (override, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	prev, had := o.vals[key]
	if had {
		if prev.timer != nil {
			prev.timer.Stop()
		}
		delete(o.vals, key)
	}
	return prev, had
}

// restore puts back what key held before a change: prev, or nothing.
func (o *Overrides) restore(key string, prev override, had bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !had {
		if cur, ok := o.vals[key]; ok && cur.timer != nil {
			cur.timer.Stop()
		}
		delete(o.vals, key)
		return
	}
	o.putLocked(key, prev.value, prev.expires)
}

// expire removes key's override id, unless another replaced it, and
// announces the change.
func (o *Overrides) expire(key string, id uint64) {
	o.mu.Lock()
	ov, ok := o.vals[key]
	gone := ok && ov.id == id
	if gone {
		delete(o.vals, key)
	}
	o.mu.Unlock()
	if gone {
		o.notify()
	}
}

// attach makes l the Live that Put and Remove reload; NewLive calls it.
func (o *Overrides) attach(l *Live) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.live != nil && o.live != l {
		return errors.New("config: an Overrides layer belongs to one Live only")
	}
	o.live = l
	return nil
}

func (o *Overrides) bound() (*Live, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.live == nil {
		return nil, errors.New("config: the Overrides layer is not a layer of a Live (pass it to NewLive)")
	}
	return o.live, nil
}

// OverrideResult says what [Overrides.Put] or [Overrides.Remove] did.
type OverrideResult struct {
	Key string
	// Result is ResultApplied (the value in force changed, or came from
	// another layer), ResultUnchanged, or ResultRestartRequired (a
	// startup-only key: the value in force stays, and the override,
	// which a restart drops, waits in the layer).
	Result string
	// Value is, after Put, the override's value (in force unless
	// Result is ResultRestartRequired); after Remove, the key's value in
	// force. Nil when the key is not set.
	Value *Value
	// Previous is the key's value in force before; nil if it was not set.
	Previous *Value
	// Expires is when the override set by Put ends; zero: until it is
	// removed or the process ends.
	Expires time.Time
}

// RefusedError is the error of a Put or Remove that the configuration
// refused: an undeclared key (with the nearest declared one), a value
// that breaks its key's type, rule or group validator, too many
// overrides. Nothing changed.
type RefusedError struct {
	Key string
	Err error
}

func (e *RefusedError) Error() string { return e.Err.Error() }
func (e *RefusedError) Unwrap() error { return e.Err }

// Put sets key's override to value for ttl (0: until removed or the
// process ends) and reloads the [Live] the layer belongs to at once. The
// value is checked like any layer's: the key must be declared (when the
// Live has a [Schema]; the error suggests the nearest key), the value
// must parse as its type and keep its rules and group validators. A
// refused value is a [*RefusedError] and leaves the layer as it was.
// Other errors (the Live reload failed before it read anything) also
// leave it as it was. Puts and Removes are serialized.
func (o *Overrides) Put(ctx context.Context, key, value string, ttl time.Duration) (OverrideResult, error) {
	live, err := o.bound()
	if err != nil {
		return OverrideResult{}, err
	}
	if err := validKey(key); err != nil {
		return OverrideResult{}, &RefusedError{key, fmt.Errorf("config: key %q: %w", key, err)}
	}
	if live.schema != nil {
		if _, ok := live.schema.Lookup(key); !ok {
			return OverrideResult{}, &RefusedError{key, &UndeclaredError{Layer: o.Name(),
				Keys: []Undeclared{{Key: key, Where: "admin override", Suggest: live.schema.Suggest(key)}}}}
		}
	}
	if ttl < 0 {
		return OverrideResult{}, &RefusedError{key, fmt.Errorf("config: override %s: negative duration %s", key, ttl)}
	}
	o.op.Lock()
	defer o.op.Unlock()
	before, had := live.Current().Lookup(key)
	prev, hadPrev, err := o.set(key, value, ttl)
	if err != nil {
		return OverrideResult{}, &RefusedError{key, err}
	}
	undo := func() { o.restore(key, prev, hadPrev) }
	res, err := o.reload(ctx, live, key, undo)
	if err != nil {
		return res, err
	}
	res.Previous = valuePtr(before, had)
	res.Expires, _ = o.Expiry(key)
	return res, nil
}

// Remove drops key's override and reloads the [Live] the layer belongs
// to at once, so that the key's value comes from the layers below again.
// A key without an override is an error wrapping [ErrNoOverride]. If
// the value below is one the Live rejects, the override stays and the
// error is a [*RefusedError].
func (o *Overrides) Remove(ctx context.Context, key string) (OverrideResult, error) {
	live, err := o.bound()
	if err != nil {
		return OverrideResult{}, err
	}
	o.op.Lock()
	defer o.op.Unlock()
	before, had := live.Current().Lookup(key)
	prev, hadPrev := o.delete(key)
	if !hadPrev {
		return OverrideResult{}, fmt.Errorf("config: %s: %w", key, ErrNoOverride)
	}
	undo := func() { o.restore(key, prev, true) }
	res, err := o.reload(ctx, live, key, undo)
	if err != nil {
		var re *RefusedError
		if errors.As(err, &re) {
			re.Err = fmt.Errorf("%w; the override of %s stays", re.Err, key)
		}
		return res, err
	}
	res.Previous = valuePtr(before, had)
	return res, nil
}

// reload reloads live after a change of key in o and reports what it did
// for key; on a rejection of key, or a reload that read nothing, it
// undoes the change and reloads again.
func (o *Overrides) reload(ctx context.Context, live *Live, key string, undo func()) (OverrideResult, error) {
	rep, err := live.Reload(ctx)
	if rep.Result == "" {
		undo()
		return OverrideResult{}, err
	}
	// A failure to read another layer (etcd) leaves this reload's report
	// valid: the Live has logged it, and the override stands.
	for _, r := range rep.Rejected {
		if r.Key == key || (r.Key == "" && r.Layer == o.Name()) {
			undo()
			// Put back what was in force, and clear the held rejection.
			_, _ = live.Reload(context.WithoutCancel(ctx))
			return OverrideResult{}, &RefusedError{key, r.Err}
		}
	}
	res := OverrideResult{Key: key, Result: ResultUnchanged}
	cur, ok := live.Current().Lookup(key)
	res.Value = valuePtr(cur, ok)
	for _, c := range rep.RestartRequired {
		if c.Key == key {
			res.Result = ResultRestartRequired
			res.Value = c.New // the value waiting for a restart
			return res, nil
		}
	}
	if slices.ContainsFunc(rep.Changed, func(c Change) bool { return c.Key == key }) {
		res.Result = ResultApplied
	}
	return res, nil
}
