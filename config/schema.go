package config

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a declared key's value. Values are strings in every
// layer; a Type says how they must parse.
type Type int

// The types a key can be declared with.
const (
	String   Type = iota // any text
	Int                  // a decimal integer
	Bool                 // true or false, as strconv.ParseBool
	Duration             // a Go duration: "10s", "250ms"
	URL                  // an absolute URL with a scheme and a host
	List                 // comma-separated values
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Int:
		return "int"
	case Bool:
		return "bool"
	case Duration:
		return "duration"
	case URL:
		return "url"
	case List:
		return "list"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// check reports whether s parses as t; its error names what was wanted.
func (t Type) check(s string) error {
	s = strings.TrimSpace(s)
	switch t {
	case Int:
		if _, err := strconv.Atoi(s); err != nil {
			return &wantError{wantInt}
		}
	case Bool:
		if _, err := strconv.ParseBool(s); err != nil {
			return &wantError{wantBool}
		}
	case Duration:
		if _, err := time.ParseDuration(s); err != nil {
			return &wantError{wantDuration}
		}
	case URL:
		if _, err := ParseURL(s); err != nil {
			return err
		}
	}
	return nil
}

// ParseURL parses an absolute URL with a scheme and a host, ignoring
// surrounding space. Its error reads "not an absolute URL".
func ParseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, &wantError{wantURL}
	}
	return u, nil
}

// Decl declares one configuration key: its type, default, documentation,
// whether it is a secret, and whether a reload may change it while the
// service runs. A Key ending in ".*" declares an open namespace
// ("services.*"): every key under it is declared alike.
type Decl struct {
	Key     string
	Type    Type
	Default string // "" : no default
	Doc     string // one line, for --help and /admin/config
	Secret  bool   // shown redacted wherever values are shown
	Live    bool   // false: a change waits for the next start
	// Check, if not nil, is a rule the value must keep beyond its type;
	// its error states the rule ("must be debug, info, warn or error").
	Check func(value string) error
}

// Pattern reports whether d declares an open namespace.
func (d Decl) Pattern() bool { return strings.HasSuffix(d.Key, ".*") }

// Env returns the key's environment variable; for a namespace, with
// "<NAME>" standing for the open part.
func (d Decl) Env() string {
	if p, ok := strings.CutSuffix(d.Key, ".*"); ok {
		return EnvName(p) + "_<NAME>"
	}
	return EnvName(d.Key)
}

// Schema is the set of declared keys of one service: the framework's own
// and the service's. Its zero value is not usable; call [NewSchema]. A
// Schema is filled before use and read-only after; reads are safe for
// concurrent use.
type Schema struct {
	keys map[string]Decl
	open []Decl // namespaces, by prefix including the trailing '.'
}

// NewSchema returns a schema holding decls, or an error naming the first
// bad or duplicate declaration.
func NewSchema(decls ...Decl) (*Schema, error) {
	s := &Schema{keys: map[string]Decl{}}
	return s, s.Declare(decls...)
}

// Declare adds decls. A key declared twice, an empty key, a key that is
// not lower-case dotted, or a default that does not parse as the type is
// an error naming the key.
func (s *Schema) Declare(decls ...Decl) error {
	for _, d := range decls {
		if err := validKey(strings.TrimSuffix(d.Key, ".*")); err != nil {
			return fmt.Errorf("config: declare %q: %w", d.Key, err)
		}
		if _, dup := s.keys[d.Key]; dup || slices.ContainsFunc(s.open, func(o Decl) bool { return o.Key == d.Key }) {
			return fmt.Errorf("config: key %s is declared twice", d.Key)
		}
		if d.Default != "" {
			if err := d.Type.check(d.Default); err != nil {
				return fmt.Errorf("config: declare %s: default %q is %w", d.Key, d.Default, err)
			}
		}
		if d.Pattern() {
			s.open = append(s.open, d)
			continue
		}
		s.keys[d.Key] = d
	}
	return nil
}

// validKey checks that key is dotted lower-case: letters, digits, '-' and
// '_' in non-empty segments.
func validKey(key string) error {
	if key == "" {
		return errors.New("empty key")
	}
	for seg := range strings.SplitSeq(key, ".") {
		if seg == "" {
			return errors.New("empty segment")
		}
		for _, c := range seg {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return fmt.Errorf("character %q: keys are lower-case letters, digits, '-' and '_' between dots", c)
			}
		}
	}
	return nil
}

// Lookup returns the declaration of key: its own, or its namespace's.
func (s *Schema) Lookup(key string) (Decl, bool) {
	if s == nil {
		return Decl{}, false
	}
	if d, ok := s.keys[key]; ok {
		return d, true
	}
	for _, d := range s.open {
		if match(d.Key, key) && len(key) > len(d.Key)-1 {
			return d, true
		}
	}
	return Decl{}, false
}

// Decls returns every declaration, sorted by key.
func (s *Schema) Decls() []Decl {
	out := slices.Collect(maps.Values(s.keys))
	out = append(out, s.open...)
	slices.SortFunc(out, func(a, b Decl) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// Keys returns the declared keys (namespaces excluded), sorted.
func (s *Schema) Keys() []string { return slices.Sorted(maps.Keys(s.keys)) }

// Store returns a store over layers (lowest precedence first) that knows
// the declared keys and shows declared secrets redacted.
func (s *Schema) Store(layers ...Source) *Store {
	return NewStore(s.Keys(), layers...).withSchema(s)
}

// Defaults returns the layer of declared defaults, named name.
func (s *Schema) Defaults(name string) *Map {
	m := map[string]string{}
	for k, d := range s.keys {
		if d.Default != "" {
			m[k] = d.Default
		}
	}
	return NewMap(name, m)
}

// secret reports whether key's value is shown redacted: declared secret, or
// named like one ([IsSecret]).
func (s *Schema) secret(key string) bool {
	if d, ok := s.Lookup(key); ok && d.Secret {
		return true
	}
	return IsSecret(key)
}

// Check returns nil when v parses as its key's declared type and keeps its
// rule, and otherwise a [*TypeError] or [*RuleError] naming the key, the
// value and the layer. An undeclared key passes: see [Schema.Admit].
func (s *Schema) Check(v Value) error {
	d, ok := s.Lookup(v.Key)
	if !ok {
		return nil
	}
	if err := d.Type.check(v.Value); err != nil {
		return valueError(v, err)
	}
	if d.Check != nil {
		if err := d.Check(strings.TrimSpace(v.Value)); err != nil {
			return valueError(v, err)
		}
	}
	return nil
}

// CheckAll checks the value in force of every key of st (see
// [Schema.Check]) and returns the errors joined, in key order.
func (s *Schema) CheckAll(st *Store) error {
	var errs []error
	for _, v := range st.All() {
		errs = append(errs, s.Check(v))
	}
	return errors.Join(errs...)
}

// UndeclaredError reports keys a layer sets that no declaration knows.
type UndeclaredError struct {
	Layer string
	Keys  []Undeclared
}

// Undeclared is one undeclared key: where it was set and the nearest
// declared key.
type Undeclared struct {
	Key     string
	Where   string // "config/orders.json:3", "etcd key svc/dev/config/orders/x"; "" if unknown
	Suggest string // the nearest declared key; "" if none is near
}

func (e *UndeclaredError) Error() string {
	var b strings.Builder
	for i, u := range e.Keys {
		if i > 0 {
			b.WriteString("; ")
		}
		where := u.Where
		if where == "" {
			where = e.Layer
		}
		fmt.Fprintf(&b, "config %s: unknown key %s", where, u.Key)
		if u.Suggest != "" {
			fmt.Fprintf(&b, " (did you mean %s?)", u.Suggest)
		} else {
			b.WriteString(" (no key of this service is near it; see --help)")
		}
	}
	return b.String()
}

// Admit returns src without the undeclared keys it may carry (those set
// for every service, [Origin].Shared), or an [*UndeclaredError] naming
// each other undeclared key with where it was set and the nearest
// declared key. A layer that cannot enumerate its keys (the environment)
// is admitted as it is. A nil schema admits everything.
func (s *Schema) Admit(src Source) (Source, error) {
	if s == nil || src == nil {
		return src, nil
	}
	keys := src.Keys()
	var bad []Undeclared
	var drop []string
	for _, k := range keys {
		if _, ok := s.Lookup(k); ok {
			continue
		}
		o, _ := originOf(src, k)
		if o.Shared {
			drop = append(drop, k)
			continue
		}
		bad = append(bad, Undeclared{Key: k, Where: o.Where, Suggest: s.Suggest(k)})
	}
	if len(bad) > 0 {
		return nil, &UndeclaredError{Layer: src.Name(), Keys: bad}
	}
	if len(drop) == 0 {
		return src, nil
	}
	return without(src, drop), nil
}

// Suggest returns the declared key nearest to key by edit distance, if it
// is near enough to be a likely typo, or "".
func (s *Schema) Suggest(key string) string {
	best, bestD := "", 0
	for k := range s.keys {
		d := distance(key, k)
		if best == "" || d < bestD || (d == bestD && k < best) {
			best, bestD = k, d
		}
	}
	// A typo: at most a third of the key's length, and never more than 4.
	if best == "" || bestD > min(4, max(2, len(key)/3)) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance between a and b, by bytes (keys
// are ASCII).
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
