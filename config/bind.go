package config

import (
	"fmt"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Struct is the live value of a tagged struct T whose fields are declared
// keys under one prefix (see [Declare] for the tags). Service code keeps a
// *Struct and calls Get where it needs the values, so a reload reaches it
// without a restart. Get is lock-free; a Struct is safe for concurrent use.
type Struct[T any] struct {
	prefix string
	p      atomic.Pointer[T]
}

// Get returns the values in force. Fields of startup-only keys keep their
// value from the start.
func (s *Struct[T]) Get() T { return *s.p.Load() }

// Prefix returns the prefix of T's keys, without its dot ("hello").
func (s *Struct[T]) Prefix() string { return s.prefix }

// Validator is implemented by a settings struct that checks its values
// together. [Bind] calls Validate after decoding, at start (an error fails
// it) and at every reload that changes one of its keys (an error rejects
// the reload's changes under the prefix, keeping the previous values).
type Validator interface {
	Validate() error
}

// Declare returns the declarations of the tagged fields of T (a struct),
// each under prefix ("hello" and the field key "greeting" declare
// hello.greeting). A field is declared by the tag key; the other tags are
// optional:
//
//	type Hello struct {
//		Greeting string        `key:"greeting" default:"hello" doc:"the word before the name" live:"true"`
//		Timeout  time.Duration `key:"timeout" default:"2s" doc:"how long a greeting may take"`
//		Token    string        `key:"token" doc:"the upstream's token" secret:"true"`
//	}
//
// Field types and the [Type] they declare: string (String), int and int64
// (Int), bool (Bool), time.Duration (Duration), *url.URL (URL) and
// []string (List). Fields without a key tag are left alone. A key is
// startup-only unless live:"true".
func Declare[T any](prefix string) ([]Decl, error) {
	fs, err := fieldsOf(reflect.TypeFor[T](), prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Decl, len(fs))
	for i, f := range fs {
		out[i] = f.decl
	}
	return out, nil
}

// field is one declared field of a settings struct.
type field struct {
	index int
	decl  Decl
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	urlType      = reflect.TypeFor[*url.URL]()
	listType     = reflect.TypeFor[[]string]()
)

func fieldsOf(t reflect.Type, prefix string) ([]field, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("config: %s is not a struct", t)
	}
	var out []field
	for i := range t.NumField() {
		sf := t.Field(i)
		key, ok := sf.Tag.Lookup("key")
		if !ok {
			continue
		}
		if !sf.IsExported() {
			return nil, fmt.Errorf("config: %s.%s: a declared field must be exported", t, sf.Name)
		}
		d := Decl{
			Key:     prefix + "." + key,
			Default: sf.Tag.Get("default"),
			Doc:     sf.Tag.Get("doc"),
		}
		for _, flag := range []struct {
			tag string
			to  *bool
		}{{"secret", &d.Secret}, {"live", &d.Live}} {
			if v, ok := sf.Tag.Lookup(flag.tag); ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return nil, fmt.Errorf("config: %s.%s: tag %s:%q is not a boolean", t, sf.Name, flag.tag, v)
				}
				*flag.to = b
			}
		}
		switch {
		case sf.Type == durationType:
			d.Type = Duration
		case sf.Type == urlType:
			d.Type = URL
		case sf.Type == listType:
			d.Type = List
		case sf.Type.Kind() == reflect.String:
			d.Type = String
		case sf.Type.Kind() == reflect.Int || sf.Type.Kind() == reflect.Int64:
			d.Type = Int
		case sf.Type.Kind() == reflect.Bool:
			d.Type = Bool
		default:
			return nil, fmt.Errorf("config: %s.%s: type %s cannot be a key (want string, int, int64, bool, time.Duration, *url.URL or []string)", t, sf.Name, sf.Type)
		}
		out = append(out, field{index: i, decl: d})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("config: %s declares no key: tag its fields with key:\"name\"", t)
	}
	return out, nil
}

// decodeStruct fills a T from st: each field from its key's value, or its
// default, or the zero value; then Validate when T has one.
func decodeStruct[T any](st *Store, fs []field) (T, error) {
	var t T
	rv := reflect.ValueOf(&t).Elem()
	for _, f := range fs {
		v, ok := st.Lookup(f.decl.Key)
		if !ok {
			if f.decl.Default == "" {
				continue
			}
			v = Value{Key: f.decl.Key, Value: f.decl.Default, Layer: "default"}
		}
		if err := setField(rv.Field(f.index), f.decl.Type, v); err != nil {
			return t, err
		}
	}
	if val, ok := any(&t).(Validator); ok {
		if err := val.Validate(); err != nil {
			return t, err
		}
	}
	return t, nil
}

func setField(fv reflect.Value, typ Type, v Value) error {
	s := strings.TrimSpace(v.Value)
	if err := typ.check(s); err != nil {
		return valueError(v, err)
	}
	switch typ {
	case String:
		fv.SetString(v.Value)
	case Int:
		n, _ := strconv.ParseInt(s, 10, 64)
		fv.SetInt(n)
	case Bool:
		b, _ := strconv.ParseBool(s)
		fv.SetBool(b)
	case Duration:
		d, _ := time.ParseDuration(s)
		fv.SetInt(int64(d))
	case URL:
		u, _ := ParseURL(s)
		fv.Set(reflect.ValueOf(u))
	case List:
		fv.Set(reflect.ValueOf(SplitList(s)))
	}
	return nil
}

// Bind decodes T (see [Declare]) from the values of l in force and keeps
// it up to date: after every reload that changes one of its keys, Get
// returns the new values. The keys must be declared in l's schema (svc
// does it for [Declare]'s result). A value that does not parse, or a
// Validate error, fails Bind at start; at reload it is rejected and the
// previous values stay.
func Bind[T any](l *Live, prefix string) (*Struct[T], error) {
	fs, err := fieldsOf(reflect.TypeFor[T](), prefix)
	if err != nil {
		return nil, err
	}
	t, err := decodeStruct[T](l.Current(), fs)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", prefix, err)
	}
	s := &Struct[T]{prefix: prefix}
	s.p.Store(&t)
	l.ValidateGroup(prefix+".", func(st *Store) error {
		_, err := decodeStruct[T](st, fs)
		return err
	})
	l.OnChange(prefix+".*", func(Change) {
		t, err := decodeStruct[T](l.Current(), fs)
		if err != nil {
			return // not reached: the reload validated the group
		}
		s.p.Store(&t)
	})
	return s, nil
}
