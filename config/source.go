package config

import (
	"maps"
	"slices"

	"github.com/svc-dev/svc/internal/convention"
)

// Source is one layer of configuration: a named set of key/value pairs.
// Implementations must be safe for concurrent use; a Source that changes
// (a watched file, etcd) is re-read by building a new [Store].
type Source interface {
	// Name names the layer in errors and displays, for example "env" or
	// "file config/orders.json".
	Name() string
	// Lookup returns the value of key in this layer.
	Lookup(key string) (string, bool)
	// Keys lists the keys this layer knows. A layer that cannot enumerate
	// its keys (the environment) returns nil and is still asked by Lookup.
	Keys() []string
}

// Map is a [Source] backed by a fixed map. Its zero value, and a nil *Map,
// is an empty, unnamed layer.
type Map struct {
	name   string
	m      map[string]string
	origin map[string]Origin // where each key was set; nil if unknown
}

// Origin says where a layer set a key: a file's path and line, or an etcd
// key, and whether the value is set for every service of the environment
// (etcd's _all prefix), so that a service that does not declare the key
// ignores it instead of refusing it.
type Origin struct {
	Where  string
	Shared bool
}

// NewMapOrigins returns a layer named name holding a copy of m, which
// remembers where each key was set (see [Map.Origin]).
func NewMapOrigins(name string, m map[string]string, origin map[string]Origin) *Map {
	return &Map{name: name, m: maps.Clone(m), origin: maps.Clone(origin)}
}

// Origin returns where key was set, if the layer knows.
func (m *Map) Origin(key string) (Origin, bool) {
	if m == nil {
		return Origin{}, false
	}
	o, ok := m.origin[key]
	return o, ok
}

// originOf returns where src set key, when src can tell.
func originOf(src Source, key string) (Origin, bool) {
	if o, ok := src.(interface{ Origin(string) (Origin, bool) }); ok {
		return o.Origin(key)
	}
	return Origin{}, false
}

// without returns a copy of src's contents without keys, under the same
// name and origins.
func without(src Source, keys []string) *Map {
	m := map[string]string{}
	origin := map[string]Origin{}
	for _, k := range src.Keys() {
		if slices.Contains(keys, k) {
			continue
		}
		m[k], _ = src.Lookup(k)
		if o, ok := originOf(src, k); ok {
			origin[k] = o
		}
	}
	return &Map{name: src.Name(), m: m, origin: origin}
}

var _ Source = (*Map)(nil)

// NewMap returns a layer named name holding a copy of m.
func NewMap(name string, m map[string]string) *Map {
	return &Map{name: name, m: maps.Clone(m)}
}

// Name returns the layer's name.
func (m *Map) Name() string {
	if m == nil {
		return ""
	}
	return m.name
}

// Lookup returns the value of key.
func (m *Map) Lookup(key string) (string, bool) {
	if m == nil {
		return "", false
	}
	v, ok := m.m[key]
	return v, ok
}

// Keys returns the layer's keys, sorted.
func (m *Map) Keys() []string {
	if m == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(m.m))
}

// Env is the environment-variable layer: the value of a key is the variable
// [EnvName](key).
type Env struct {
	lookup func(string) (string, bool)
}

var _ Source = Env{}

// NewEnv returns the environment layer reading variables through lookup,
// usually [os.LookupEnv]; tests pass a map's lookup instead.
func NewEnv(lookup func(string) (string, bool)) Env { return Env{lookup: lookup} }

// Name returns "env".
func (Env) Name() string { return "env" }

// Lookup returns the value of the variable EnvName(key). An empty variable
// counts as unset, so `PUBLIC_PORT= ./svc` keeps the convention.
func (e Env) Lookup(key string) (string, bool) {
	if e.lookup == nil {
		return "", false
	}
	v, ok := e.lookup(EnvName(key))
	if !ok || v == "" {
		return "", false
	}
	return v, true
}

// Keys returns nil: environment variables cannot be mapped back to keys.
func (Env) Keys() []string { return nil }

// EnvName returns the environment variable of key: upper-cased, with '.'
// and '-' turned into '_'.
func EnvName(key string) string { return convention.EnvName(key) }

// MapLookup adapts a map to the lookup function [NewEnv] expects.
func MapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}
