package config

import (
	"strings"

	"github.com/svc-dev/svc/internal/redact"
)

// redacted replaces a secret wherever a value is shown.
const redacted = redact.Redacted

// IsSecret reports whether key's value must be redacted when shown: its last
// segment contains "password", "secret", "token" or "key".
func IsSecret(key string) bool {
	last := key[strings.LastIndexByte(key, '.')+1:]
	return redact.SecretWord(last)
}

// Redact returns value as it may be shown to a person: "[redacted]" when
// key names a secret, and otherwise value with its embedded credentials
// redacted (see [RedactValue]).
func Redact(key, value string) string {
	if IsSecret(key) && value != "" {
		return redacted
	}
	return RedactValue(value)
}

// RedactValue returns s with the credentials it may carry redacted, so that
// it can be shown or logged whatever its key: the password of every URL's
// userinfo ("http://user:[redacted]@host", in a comma-separated list too),
// and the values of parameters named like secrets in a query string
// ("?password=[redacted]") or in a key=value DSN
// ("host=db password=[redacted]"). Everything else is kept.
func RedactValue(s string) string { return redact.Value(s) }
