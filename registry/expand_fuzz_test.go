package registry_test

import (
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/svc-dev/svc/registry"
)

// validTemplate is what Expand accepts: literal text without braces and
// variables "{name}" with a non-empty name without braces.
var (
	validTemplate = regexp.MustCompile(`^(?:[^{}]|\{[^{}]+\})*$`)
	variable      = regexp.MustCompile(`\{([^{}]+)\}`)
)

// FuzzExpand checks Expand against a reference built from regular
// expressions: any spec, any value. It never panics; it accepts exactly
// the well-formed templates whose variables all have a non-empty value;
// what it returns is the template with each variable replaced by its value,
// path-escaped, so the result holds no brace and every value stays one
// path segment. Run longer with:
//
//	go test -run '^$' -fuzz '^FuzzExpand$' -fuzztime 30s ./registry/
func FuzzExpand(f *testing.F) {
	for _, seed := range []struct {
		spec, value string
		complete    bool
	}{
		{"/1.x/{territory}/users/{userid}", "fr", true},
		{"/static/path", "", true},
		{"", "x", true},
		{"{a}{b}", "a b/c", true},
		{"/q/{v}", "é?#%{}", true},
		{"/q/{v}", "", true},
		{"/q/{v}", "x", false},
		{"/q/{v", "x", true},
		{"/q/v}", "x", true},
		{"/q/{}", "x", true},
		{"/q/{a{b}", "x", true},
		{"/q/{a}}", "x", true},
		{"http://host:1/{t}?x={t}", "..", true},
	} {
		f.Add(seed.spec, seed.value, seed.complete)
	}
	f.Fuzz(func(t *testing.T, spec, value string, complete bool) {
		values := map[string]string{}
		names := variable.FindAllStringSubmatch(spec, -1)
		for _, m := range names {
			values[m[1]] = value
		}
		if !complete && len(names) > 0 {
			delete(values, names[0][1])
		}
		got, err := registry.Expand(spec, values)

		valid := validTemplate.MatchString(spec)
		switch {
		case !valid:
			if err == nil {
				t.Fatalf("Expand(%q) = %q, nil; want an error for a malformed template", spec, got)
			}
			return
		case len(names) > 0 && !complete:
			if err == nil || !strings.Contains(err.Error(), "no value for {"+names[0][1]+"}") {
				t.Fatalf("Expand(%q) without {%s} = %q, %v; want an error naming it", spec, names[0][1], got, err)
			}
			return
		case len(names) > 0 && value == "":
			if err == nil || !strings.Contains(err.Error(), "empty value") {
				t.Fatalf("Expand(%q) with empty values = %q, %v; want an error", spec, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Expand(%q, %q) = %v; want no error", spec, value, err)
		}
		want := variable.ReplaceAllLiteralString(spec, url.PathEscape(value))
		if got != want {
			t.Fatalf("Expand(%q, %q) = %q; want %q", spec, value, got, want)
		}
		if len(names) > 0 && strings.ContainsAny(got, "{}") {
			t.Fatalf("Expand(%q, %q) = %q; a brace is left", spec, value, got)
		}
		if unesc, err := url.PathUnescape(url.PathEscape(value)); err != nil || unesc != value || strings.Contains(url.PathEscape(value), "/") {
			t.Fatalf("value %q does not round-trip as one path segment: %q, %v", value, unesc, err)
		}
	})
}
