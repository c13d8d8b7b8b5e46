package convention

import (
	"fmt"
	"strings"
)

// Port arithmetic: admin on AdminBase+offset, public on PublicBase+offset,
// private on PublicBase+offset+1.
const (
	AdminBase  = 4000
	PublicBase = 8000
	// MaxOffset is the largest offset: its private port is 8999 and its
	// admin port 4998, inside the ranges svcctl scans.
	MaxOffset = 998
	// OffsetStep is the team convention between neighbours (10, 20, 30):
	// offset N's private port is offset N+1's public port.
	OffsetStep = 10
	// AdminPortFirst and AdminPortLast bound the admin ports of every
	// offset: what `svcctl ps` scans on loopback.
	AdminPortFirst = AdminBase
	AdminPortLast  = AdminBase + 999
)

// Ports are the three conventional ports of one offset.
type Ports struct {
	Admin, Public, Private int
}

// PortsOf returns the conventional ports of offset.
func PortsOf(offset int) Ports {
	return Ports{Admin: AdminBase + offset, Public: PublicBase + offset, Private: PublicBase + offset + 1}
}

// NameRule is the rule service and environment names follow, as the
// contract writes it.
const NameRule = `^[a-z][a-z0-9-]{0,62}$`

// IsName reports whether s matches [NameRule]: a lower-case letter, then up
// to 62 lower-case letters, digits or '-'. It is a loop, not a regexp, so
// that nothing is compiled at init.
func IsName(s string) bool {
	if s == "" || len(s) > 63 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

// CheckName returns an error naming the rule when name is not a service
// name; what says what the name is ("service name", "environment").
func CheckName(what, name string) error {
	if IsName(name) {
		return nil
	}
	return fmt.Errorf("%s %q must match %s (lower-case letter first, then up to 62 lower-case letters, digits or '-')", what, name, NameRule)
}

// CheckOffset returns an error naming the range and the port arithmetic
// when offset is outside 0..MaxOffset.
func CheckOffset(offset int) error {
	if offset < 0 || offset > MaxOffset {
		return fmt.Errorf("offset %d must be an integer in 0..%d (admin port %d+offset, public %d+offset, private %d+offset)",
			offset, MaxOffset, AdminBase, PublicBase, PublicBase+1)
	}
	return nil
}

// EnvName returns the environment variable of a configuration key: the key
// upper-cased with '.' and '-' turned into '_'
// ("discovery.override.user-sessions" is DISCOVERY_OVERRIDE_USER_SESSIONS).
func EnvName(key string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', '-':
			return '_'
		}
		return r
	}, strings.ToUpper(key))
}

// DefaultEnvironment is the environment when none is configured.
const DefaultEnvironment = "dev"

// Root returns the prefix of everything svc keeps in etcd for environment:
// "svc/<environment>/".
func Root(environment string) string { return "svc/" + environment + "/" }

// ServicesRoot returns the prefix under which every instance of every
// service of environment registers: "svc/<environment>/services/".
func ServicesRoot(environment string) string { return Root(environment) + "services/" }

// ServicePrefix returns the prefix of the instances of service name:
// "svc/<environment>/services/<name>/". The trailing slash keeps a watch of
// "rand" from matching "randpro".
func ServicePrefix(environment, name string) string { return ServicesRoot(environment) + name + "/" }

// AllServices is the name under the config prefix whose keys every service
// of the environment shares.
const AllServices = "_all"

// ConfigPrefix returns the etcd prefix of service name's configuration:
// "svc/<environment>/config/<name>/"; name AllServices gives the prefix
// of the values every service shares.
func ConfigPrefix(environment, name string) string { return Root(environment) + "config/" + name + "/" }

// Keys that address another service by convention, and their open
// namespaces: a service reads them for any name it calls.
const (
	// OverridePrefix + name is a base URL or URL template used for name
	// instead of discovery.
	OverridePrefix = "discovery.override."
	// ServicesPrefix + name + ".offset" (or ".host", ".uri-spec") places
	// name for discovery by convention, without a registry.
	ServicesPrefix = "services."
)

// OverrideKey returns "discovery.override.<name>".
func OverrideKey(name string) string { return OverridePrefix + name }

// ServiceKey returns "services.<name>.<field>", field being offset, host or
// uri-spec.
func ServiceKey(name, field string) string { return ServicesPrefix + name + "." + field }
