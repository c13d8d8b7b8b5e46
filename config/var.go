package config

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Var is a typed value of one key that follows a [Live] store: service code
// keeps a *Var and calls Get wherever it needs the value, so a reload
// reaches it without a restart.
//
// Get is lock-free and does not allocate: it loads an atomic pointer to a
// value parsed once per change. A Var is safe for concurrent use.
type Var[T any] struct {
	key      string
	def      T
	parse    func(string) (T, error)
	validate func(T) error
	p        atomic.Pointer[T]
}

// NewVar returns the live value of key: def while no layer sets it, else
// parse of its value. validate, if not nil, adds a rule the parsed value
// must keep. From now on a reload rejects a value of key that parse or
// validate refuses: the previous value stays in force (see [Live]).
//
// The value in force must parse and pass validate, or NewVar returns a
// [*TypeError] or [*RuleError] naming the key, the value and its layer: at
// startup, bad input is fatal. Parsers that name the expected type in
// errors are [ParseInt], [ParseBool], [ParseDuration] and [ParseString].
func NewVar[T any](l *Live, key string, def T, parse func(string) (T, error), validate func(T) error) (*Var[T], error) {
	v := &Var[T]{key: key, def: def, parse: parse, validate: validate}
	l.mu.Lock()
	defer l.mu.Unlock()
	cur, ok := l.cur.Load().Lookup(key)
	if !ok {
		v.p.Store(&v.def)
	} else {
		t, err := v.value(cur)
		if err != nil {
			return nil, err
		}
		v.p.Store(&t)
	}
	l.vars[key] = append(l.vars[key], v)
	return v, nil
}

// Get returns the value in force.
func (v *Var[T]) Get() T { return *v.p.Load() }

// Key returns the key v follows.
func (v *Var[T]) Key() string { return v.key }

// value parses and validates val.
func (v *Var[T]) value(val Value) (T, error) {
	t, err := v.parse(val.Value)
	if err != nil {
		var zero T
		return zero, valueError(val, err)
	}
	if v.validate != nil {
		if err := v.validate(t); err != nil {
			var zero T
			return zero, valueError(val, err)
		}
	}
	return t, nil
}

func (v *Var[T]) check(val Value) error {
	_, err := v.value(val)
	return err
}

// set puts val in force: def when val is nil. val was checked.
func (v *Var[T]) set(val *Value) {
	if val == nil {
		v.p.Store(&v.def)
		return
	}
	t, err := v.value(*val)
	if err != nil {
		return // not reached: the reload checked val
	}
	v.p.Store(&t)
}

// wantError is a parser's error that names the expected type; [NewVar]
// and [Live] turn it into a [*TypeError].
type wantError struct{ want string }

func (e *wantError) Error() string { return "not " + e.want }

// What the typed getters and parsers expect, as errors name it.
const (
	wantInt      = "an integer"
	wantBool     = "a boolean"
	wantDuration = `a duration such as "10s"`
	wantURL      = "an absolute URL such as http://host:port"
)

// ParseInt parses a decimal integer, ignoring surrounding space. Its error
// reads "not an integer".
func ParseInt(s string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil {
		return 0, &wantError{wantInt}
	}
	return n, nil
}

// ParseBool parses a boolean as [strconv.ParseBool] does, ignoring
// surrounding space. Its error reads "not a boolean".
func ParseBool(s string) (bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(s))
	if err != nil {
		return false, &wantError{wantBool}
	}
	return b, nil
}

// ParseDuration parses a Go duration ("10s", "250ms"), ignoring
// surrounding space. Its error reads `not a duration such as "10s"`.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, &wantError{wantDuration}
	}
	return d, nil
}

// ParseString returns s unchanged; it never fails.
func ParseString(s string) (string, error) { return s, nil }
