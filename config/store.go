package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Value is one resolved key: its raw text and the layer it came from.
type Value struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	Layer string `json:"layer"`

	secret bool // declared secret (a Store with a Schema sets it)
}

// Display returns the value as it may be shown to a person: redacted when
// the key is declared secret or named like one ([IsSecret]), and otherwise
// with embedded credentials redacted ([RedactValue]).
func (v Value) Display() string {
	if v.secret && v.Value != "" {
		return redacted
	}
	return Redact(v.Key, v.Value)
}

// Store resolves keys through layers of [Source]s. It is immutable and safe
// for concurrent use; its zero value has no layers and no keys.
type Store struct {
	layers []Source       // highest precedence first
	keys   []string       // every key a layer, a declaration or a pin knows, sorted
	pins   map[string]pin // keys held at an earlier value by a [Live] reload; nil if none
	schema *Schema        // the declared keys, for secrets; nil if none
}

// pin is a key's value kept from an earlier store, or its absence.
type pin struct {
	v  Value
	ok bool
}

// NewStore returns a store over layers, given lowest precedence first
// (conventions, files, etcd, environment). known lists keys to consider in
// [Store.All] even when only a non-enumerable layer (the environment) sets
// them; nil layers are skipped.
func NewStore(known []string, layers ...Source) *Store {
	s := &Store{}
	set := make(map[string]struct{})
	for _, k := range known {
		set[k] = struct{}{}
	}
	for i := len(layers) - 1; i >= 0; i-- {
		if layers[i] == nil {
			continue
		}
		s.layers = append(s.layers, layers[i])
		for _, k := range layers[i].Keys() {
			set[k] = struct{}{}
		}
	}
	s.keys = slices.Sorted(maps.Keys(set))
	return s
}

// withSchema returns s, marking the values of keys sch declares secret.
func (s *Store) withSchema(sch *Schema) *Store {
	s.schema = sch
	return s
}

// Layers returns the store's layer names, lowest precedence first.
func (s *Store) Layers() []string {
	names := make([]string, 0, len(s.layers))
	for i := len(s.layers) - 1; i >= 0; i-- {
		names = append(names, s.layers[i].Name())
	}
	return names
}

// Lookup returns key's value from the highest layer that sets it.
func (s *Store) Lookup(key string) (Value, bool) {
	if s.pins != nil {
		if p, ok := s.pins[key]; ok {
			return p.v, p.ok
		}
	}
	for _, l := range s.layers {
		if v, ok := l.Lookup(key); ok {
			return Value{Key: key, Value: v, Layer: l.Name(), secret: s.schema != nil && s.schema.secret(key)}, true
		}
	}
	return Value{}, false
}

// All returns every known key that has a value, sorted by key.
func (s *Store) All() []Value {
	out := make([]Value, 0, len(s.keys))
	for _, k := range s.keys {
		if v, ok := s.Lookup(k); ok {
			out = append(out, v)
		}
	}
	return out
}

// Prefix returns the keys with a value that start with prefix, sorted.
func (s *Store) Prefix(prefix string) []Value {
	var out []Value
	for _, v := range s.All() {
		if strings.HasPrefix(v.Key, prefix) {
			out = append(out, v)
		}
	}
	return out
}

// withPins returns a copy of s in which each key of pins resolves to its
// pin instead of through the layers.
func (s *Store) withPins(pins map[string]pin) *Store {
	if len(pins) == 0 {
		return s
	}
	set := make(map[string]struct{}, len(s.keys)+len(pins))
	for _, k := range s.keys {
		set[k] = struct{}{}
	}
	for k := range pins {
		set[k] = struct{}{}
	}
	return &Store{layers: s.layers, keys: slices.Sorted(maps.Keys(set)), pins: pins, schema: s.schema}
}

// String returns key's value, or def when no layer sets it.
func (s *Store) String(key, def string) string {
	if v, ok := s.Lookup(key); ok {
		return v.Value
	}
	return def
}

// Int returns key's value as an integer, or def when no layer sets it. A
// value that is not an integer is a [*TypeError].
func (s *Store) Int(key string, def int) (int, error) {
	return get(s, key, def, wantInt, strconv.Atoi)
}

// Bool returns key's value as a boolean (strconv.ParseBool), or def.
func (s *Store) Bool(key string, def bool) (bool, error) {
	return get(s, key, def, wantBool, strconv.ParseBool)
}

// Duration returns key's value as a Go duration ("10s", "250ms"), or def.
func (s *Store) Duration(key string, def time.Duration) (time.Duration, error) {
	return get(s, key, def, wantDuration, time.ParseDuration)
}

// Strings returns key's value split on commas with spaces trimmed and empty
// elements dropped, or def.
func (s *Store) Strings(key string, def []string) []string {
	v, ok := s.Lookup(key)
	if !ok {
		return def
	}
	return SplitList(v.Value)
}

// SplitList splits a comma-separated list, trimming spaces and dropping
// empty elements.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func get[T any](s *Store, key string, def T, want string, parse func(string) (T, error)) (T, error) {
	v, ok := s.Lookup(key)
	if !ok {
		return def, nil
	}
	t, err := parse(strings.TrimSpace(v.Value))
	if err != nil {
		return def, &TypeError{Value: v, Want: want}
	}
	return t, nil
}

// TypeError reports a value that does not parse as the type its key needs.
type TypeError struct {
	Value Value  // the offending key, value and layer
	Want  string // what was expected, e.g. "an integer"
}

func (e *TypeError) Error() string {
	return fmt.Sprintf("config: %s = %q (from %s): not %s", e.Value.Key, e.Value.Display(), layerLabel(e.Value), e.Want)
}

// Invalid returns an error for a value that parsed but broke a rule, in the
// same shape as a [*TypeError]: key, value, layer and the rule.
func (v Value) Invalid(rule string) error {
	return &RuleError{Value: v, Rule: rule}
}

// RuleError reports a value that parsed but broke a rule.
type RuleError struct {
	Value Value
	Rule  string
}

func (e *RuleError) Error() string {
	return fmt.Sprintf("config: %s = %q (from %s): %s", e.Value.Key, e.Value.Display(), layerLabel(e.Value), e.Rule)
}

// layerLabel names the layer, adding the variable for the env layer.
func layerLabel(v Value) string {
	if v.Layer == "env" {
		return "env " + EnvName(v.Key)
	}
	return v.Layer
}

// ErrNotSet is returned by [Store.Require] for a key no layer sets.
var ErrNotSet = errors.New("not set")

// Require returns key's value or an error naming the key and its variable.
func (s *Store) Require(key string) (Value, error) {
	v, ok := s.Lookup(key)
	if !ok {
		return Value{}, fmt.Errorf("config: %s (env %s): %w", key, EnvName(key), ErrNotSet)
	}
	return v, nil
}
