// Package redact hides credentials inside values that are shown or
// logged: passwords in URL userinfo, and parameters named like secrets in
// query strings and key=value DSNs. config and registry use it, so that a
// value is redacted the same way wherever it appears.
package redact

import "strings"

// Redacted replaces a secret wherever a value is shown.
const Redacted = "[redacted]"

// SecretWord reports whether a name (a key's last segment, a DSN or query
// parameter) names a secret: it contains password, passwd, pwd, secret,
// token or key.
func SecretWord(name string) bool {
	name = strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "pwd", "secret", "token", "key"} {
		if strings.Contains(name, w) {
			return true
		}
	}
	return false
}

// Value returns s with the credentials it may carry Redacted, so that
// it can be shown or logged whatever its key: the password of every URL's
// userinfo ("http://user:[redacted]@host", in a comma-separated list too),
// and the values of parameters named like secrets in a query string
// ("?password=[redacted]") or in a key=value DSN
// ("host=db password=[redacted]"). Everything else is kept.
func Value(s string) string {
	if !strings.ContainsAny(s, "@=") {
		return s // fast path: nothing that can carry a credential
	}
	var b strings.Builder
	for _, tok := range splitKeep(s) {
		b.WriteString(redactToken(tok))
	}
	return b.String()
}

// splitKeep splits s into tokens and the separators (spaces, commas,
// semicolons) between them, keeping both, so that joining gives s back.
func splitKeep(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case ' ', ',', ';', '\t', '\n':
			if start < i {
				out = append(out, s[start:i])
			}
			out = append(out, s[i:i+1])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// redactToken redacts one whitespace- or comma-separated token: a URL with
// userinfo or a query, or a name=value pair.
func redactToken(tok string) string {
	if at := strings.LastIndexByte(tok, '@'); at > 0 {
		// scheme://user:pass@host... or user:pass@host
		start := 0
		if i := strings.Index(tok, "://"); i >= 0 && i < at {
			start = i + 3
		}
		if c := strings.IndexByte(tok[start:at], ':'); c >= 0 {
			tok = tok[:start+c+1] + Redacted + tok[at:]
		}
	}
	if q := strings.IndexAny(tok, "?"); q >= 0 {
		return tok[:q+1] + redactPairs(tok[q+1:], '&')
	}
	if strings.Contains(tok, "://") {
		return tok
	}
	return redactPairs(tok, '&')
}

// redactPairs redacts the values of name=value pairs separated by sep whose
// names name a secret.
func redactPairs(s string, sep byte) string {
	parts := strings.Split(s, string(sep))
	for i, p := range parts {
		name, _, ok := strings.Cut(p, "=")
		if ok && SecretWord(name) {
			parts[i] = name + "=" + Redacted
		}
	}
	return strings.Join(parts, string(sep))
}
