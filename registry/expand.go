package registry

import (
	"fmt"
	"net/url"
	"strings"
)

// Expand fills the variables of a URI template such as
// "/1.x/{territory}/users/{userid}" from values. Each value is escaped with
// url.PathEscape, so "a b/c" becomes "a%20b%2Fc" and stays one path segment.
// Values without a variable are ignored.
//
// It returns an error naming the variable if a variable has no value or an
// empty one, and an error for an unclosed '{', a stray '}' or an empty
// "{}".
func Expand(spec string, values map[string]string) (string, error) {
	if !strings.ContainsAny(spec, "{}") {
		return spec, nil
	}
	var b strings.Builder
	b.Grow(len(spec) + 16)
	rest := spec
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		literal := rest
		if open >= 0 {
			literal = rest[:open]
		}
		if strings.IndexByte(literal, '}') >= 0 {
			return "", fmt.Errorf("registry: expand %q: '}' without '{'", spec)
		}
		b.WriteString(literal)
		if open < 0 {
			break
		}
		rest = rest[open+1:]
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return "", fmt.Errorf("registry: expand %q: '{' without '}'", spec)
		}
		name := rest[:end]
		rest = rest[end+1:]
		switch {
		case name == "":
			return "", fmt.Errorf("registry: expand %q: empty variable {}", spec)
		case strings.IndexByte(name, '{') >= 0:
			return "", fmt.Errorf("registry: expand %q: '{' inside a variable", spec)
		}
		v, ok := values[name]
		switch {
		case !ok:
			return "", fmt.Errorf("registry: expand %q: no value for {%s}", spec, name)
		case v == "":
			return "", fmt.Errorf("registry: expand %q: empty value for {%s}", spec, name)
		}
		b.WriteString(url.PathEscape(v))
	}
	return b.String(), nil
}
