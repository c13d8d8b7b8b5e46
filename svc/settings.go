package svc

import (
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/svc-dev/svc/config"
)

// The framework's own configuration keys. Their environment variables are
// config.EnvName(key): ADMIN_PORT, SHUTDOWN_DRAIN, ...
const (
	KeyEnvironment = "environment"

	KeyAdminHost  = "admin.host"
	KeyAdminPort  = "admin.port"
	KeyAdminToken = "admin.token"

	KeyPublicHost  = "public.host"
	KeyPublicPort  = "public.port"
	KeyPrivateHost = "private.host"
	KeyPrivatePort = "private.port"

	// Per-server HTTP limits; prefix with "public.", "private." or "admin.".
	keyReadHeaderTimeout = "read-header-timeout"
	keyReadTimeout       = "read-timeout"
	keyWriteTimeout      = "write-timeout"
	keyIdleTimeout       = "idle-timeout"
	keyMaxHeaderBytes    = "max-header-bytes"
	keyMaxBodyBytes      = "max-body-bytes"

	KeyShutdownDrain   = "shutdown.drain"
	KeyShutdownTimeout = "shutdown.timeout"

	KeyLogLevel  = "log.level"
	KeyLogFormat = "log.format"
	KeyLogAccess = "log.access"

	KeyEtcdEndpoints   = "etcd.endpoints"
	KeyEtcdUsername    = "etcd.username"
	KeyEtcdPassword    = "etcd.password"
	KeyEtcdTLSCA       = "etcd.tls.ca"
	KeyEtcdTLSCert     = "etcd.tls.cert"
	KeyEtcdTLSKey      = "etcd.tls.key"
	KeyEtcdDialTimeout = "etcd.dial-timeout"

	KeyRegistryHost     = "registry.host"
	KeyRegistryTTL      = "registry.ttl"
	KeyRegistryAttempts = "registry.attempts"
	KeyRegistryInterval = "registry.interval"
	KeyRegistryURISpec  = "registry.uri-spec"
)

// Port conventions: admin on AdminBase+offset, public on PublicBase+offset,
// private on PublicBase+offset+1.
const (
	AdminBase  = 4000
	PublicBase = 8000
	MaxOffset  = 998
)

// EnvConfigDir names the directory holding the JSON files; it is read from
// the environment only, since it locates the files. Default "./config".
const EnvConfigDir = "CONFIG_DIR"

var nameRule = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// validate checks name and offset against the contract's rules.
func validate(name string, offset int) error {
	if !nameRule.MatchString(name) {
		return fmt.Errorf("svc: service name %q must match %s (lower-case letter first, then up to 62 lower-case letters, digits or '-')", name, nameRule)
	}
	if offset < 0 || offset > MaxOffset {
		return fmt.Errorf("svc: offset %d must be an integer in 0..%d (admin port 4000+offset, public 8000+offset, private 8001+offset)", offset, MaxOffset)
	}
	return nil
}

// keyDoc documents one framework key for --help and seeds the convention layer.
type keyDoc struct {
	key, def, help string
}

// keyDocs lists the framework keys with their conventional values for a
// service at offset.
func keyDocs(offset int) []keyDoc {
	docs := []keyDoc{
		{KeyEnvironment, "dev", "deployment name: dev, ci, qa, prod, ..."},
		{KeyAdminHost, "127.0.0.1", "admin listener bind address (loopback unless admin.token is set)"},
		{KeyAdminPort, strconv.Itoa(AdminBase + offset), "admin listener port (4000+offset; 0 = any free port)"},
		{KeyAdminToken, "", "bearer token for the admin listener; required when admin.host is not loopback"},
		{KeyPublicHost, "", "public listener bind address (empty = all interfaces)"},
		{KeyPublicPort, strconv.Itoa(PublicBase + offset), "public HTTP port (8000+offset; 0 = any free port)"},
		{KeyPrivateHost, "", "private listener bind address (empty = all interfaces)"},
		{KeyPrivatePort, strconv.Itoa(PublicBase + offset + 1), "private HTTP port: health, metrics, info (8001+offset)"},
	}
	for _, s := range []string{"public", "private", "admin"} {
		write := "30s"
		if s == "admin" {
			write = "5m" // pprof profiles stream for up to their duration
		}
		docs = append(docs,
			keyDoc{s + "." + keyReadHeaderTimeout, "5s", "time to read request headers (slowloris guard)"},
			keyDoc{s + "." + keyReadTimeout, "30s", "time to read a whole request"},
			keyDoc{s + "." + keyWriteTimeout, write, "time to write a response"},
			keyDoc{s + "." + keyIdleTimeout, "120s", "keep-alive idle timeout"},
			keyDoc{s + "." + keyMaxHeaderBytes, "65536", "request header size limit in bytes"},
			keyDoc{s + "." + keyMaxBodyBytes, "4194304", "request body size limit in bytes (0 = none)"},
		)
	}
	return append(docs,
		keyDoc{KeyShutdownDrain, "1s", "after readiness turns 503 and the instance deregisters, wait this long before servers stop accepting"},
		keyDoc{KeyShutdownTimeout, "10s", "time for in-flight requests to finish once servers stop accepting"},
		keyDoc{KeyLogLevel, "info", "debug, info, warn or error; live through PUT /admin/loglevel"},
		keyDoc{KeyLogFormat, "auto", "auto (text on a terminal, JSON otherwise), text or json"},
		keyDoc{KeyLogAccess, "true", "log one line per public request"},
		keyDoc{KeyEtcdEndpoints, "", "comma-separated etcd endpoints; enables the etcd config layer and the registry"},
		keyDoc{KeyEtcdUsername, "", "etcd user"},
		keyDoc{KeyEtcdPassword, "", "etcd password"},
		keyDoc{KeyEtcdTLSCA, "", "etcd CA certificate file"},
		keyDoc{KeyEtcdTLSCert, "", "etcd client certificate file"},
		keyDoc{KeyEtcdTLSKey, "", "etcd client key file"},
		keyDoc{KeyEtcdDialTimeout, "5s", "etcd dial timeout"},
		keyDoc{KeyRegistryHost, "", "advertised host (default: first non-loopback IPv4 address)"},
		keyDoc{KeyRegistryTTL, "10s", "registration lease TTL"},
		keyDoc{KeyRegistryAttempts, "10", "health checks tried before registering"},
		keyDoc{KeyRegistryInterval, "1s", "pause between those health checks"},
		keyDoc{KeyRegistryURISpec, "", "uri-spec advertised to discovery, e.g. /1.x/{territory}/users/{userid}"},
	)
}

// conventions returns the lowest configuration layer: every framework key
// with its conventional value.
func conventions(offset int) *config.Map {
	m := make(map[string]string)
	for _, d := range keyDocs(offset) {
		if d.def != "" {
			m[d.key] = d.def
		}
	}
	return config.NewMap("convention", m)
}

func knownKeys(offset int) []string {
	var keys []string
	for _, d := range keyDocs(offset) {
		keys = append(keys, d.key)
	}
	return keys
}

// ServerSettings configures one HTTP listener.
type ServerSettings struct {
	Host              string
	Port              int // 0: any free port
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	MaxBodyBytes      int64 // 0: no limit
}

// Addr returns host:port for net.Listen.
func (s ServerSettings) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// EtcdSettings configures the etcd client; Endpoints empty means no etcd.
type EtcdSettings struct {
	Endpoints          []string
	Username, Password string
	CA, Cert, Key      string
	DialTimeout        time.Duration
}

// RegistrySettings configures registration in etcd.
type RegistrySettings struct {
	Host     string // advertised host; empty: first non-loopback IPv4
	TTL      time.Duration
	Attempts int
	Interval time.Duration
	URISpec  string
}

// Settings are the framework's settings, decoded once from the store at
// startup and validated.
type Settings struct {
	Name        string
	Offset      int
	Environment string
	ConfigDir   string

	Admin      ServerSettings
	AdminToken string
	Public     ServerSettings
	Private    ServerSettings

	ShutdownDrain   time.Duration
	ShutdownTimeout time.Duration

	LogLevel  slog.Level
	LogFormat string // auto, text or json
	LogAccess bool

	Etcd     EtcdSettings
	Registry RegistrySettings
}

// decoder reads typed values from a store, keeping the first error.
type decoder struct {
	s   *config.Store
	err error
}

func (d *decoder) keep(err error) {
	if d.err == nil && err != nil {
		d.err = err
	}
}

func (d *decoder) str(key string) string { return strings.TrimSpace(d.s.String(key, "")) }

func (d *decoder) int(key string, lo, hi int) int {
	n, err := d.s.Int(key, 0)
	d.keep(err)
	if err == nil && (n < lo || n > hi) {
		v, _ := d.s.Lookup(key)
		d.keep(v.Invalid(fmt.Sprintf("must be in %d..%d", lo, hi)))
	}
	return n
}

func (d *decoder) dur(key string) time.Duration {
	t, err := d.s.Duration(key, 0)
	d.keep(err)
	if err == nil && t < 0 {
		v, _ := d.s.Lookup(key)
		d.keep(v.Invalid("must not be negative"))
	}
	return t
}

func (d *decoder) bool(key string) bool {
	b, err := d.s.Bool(key, false)
	d.keep(err)
	return b
}

func (d *decoder) server(prefix string) ServerSettings {
	return ServerSettings{
		Host:              d.str(prefix + ".host"),
		Port:              d.int(prefix+".port", 0, 65535),
		ReadHeaderTimeout: d.dur(prefix + "." + keyReadHeaderTimeout),
		ReadTimeout:       d.dur(prefix + "." + keyReadTimeout),
		WriteTimeout:      d.dur(prefix + "." + keyWriteTimeout),
		IdleTimeout:       d.dur(prefix + "." + keyIdleTimeout),
		MaxHeaderBytes:    d.int(prefix+"."+keyMaxHeaderBytes, 1024, 64<<20),
		MaxBodyBytes:      int64(d.int(prefix+"."+keyMaxBodyBytes, 0, 1<<30)),
	}
}

// decodeSettings decodes and validates the framework settings.
func decodeSettings(name string, offset int, configDir string, s *config.Store) (Settings, error) {
	d := &decoder{s: s}
	st := Settings{
		Name:            name,
		Offset:          offset,
		ConfigDir:       configDir,
		Environment:     d.str(KeyEnvironment),
		Admin:           d.server("admin"),
		AdminToken:      d.str(KeyAdminToken),
		Public:          d.server("public"),
		Private:         d.server("private"),
		ShutdownDrain:   d.dur(KeyShutdownDrain),
		ShutdownTimeout: d.dur(KeyShutdownTimeout),
		LogFormat:       d.str(KeyLogFormat),
		LogAccess:       d.bool(KeyLogAccess),
		Etcd: EtcdSettings{
			Endpoints:   s.Strings(KeyEtcdEndpoints, nil),
			Username:    d.str(KeyEtcdUsername),
			Password:    d.str(KeyEtcdPassword),
			CA:          d.str(KeyEtcdTLSCA),
			Cert:        d.str(KeyEtcdTLSCert),
			Key:         d.str(KeyEtcdTLSKey),
			DialTimeout: d.dur(KeyEtcdDialTimeout),
		},
		Registry: RegistrySettings{
			Host:     d.str(KeyRegistryHost),
			TTL:      d.dur(KeyRegistryTTL),
			Attempts: d.int(KeyRegistryAttempts, 1, 1000),
			Interval: d.dur(KeyRegistryInterval),
			URISpec:  d.str(KeyRegistryURISpec),
		},
	}
	if d.err != nil {
		return st, d.err
	}
	if v, _ := s.Lookup(KeyEnvironment); !nameRule.MatchString(st.Environment) {
		return st, v.Invalid("must match " + nameRule.String())
	}
	lvl, err := parseLevel(d.str(KeyLogLevel))
	if err != nil {
		v, _ := s.Lookup(KeyLogLevel)
		return st, v.Invalid("must be debug, info, warn or error")
	}
	st.LogLevel = lvl
	switch st.LogFormat {
	case "auto", "text", "json":
	default:
		v, _ := s.Lookup(KeyLogFormat)
		return st, v.Invalid("must be auto, text or json")
	}
	if st.Registry.TTL > 0 && st.Registry.TTL < 2*time.Second {
		v, _ := s.Lookup(KeyRegistryTTL)
		return st, v.Invalid("must be at least 2s")
	}
	if !isLoopback(st.Admin.Host) && st.AdminToken == "" {
		v, _ := s.Lookup(KeyAdminHost)
		return st, v.Invalid(fmt.Sprintf("is not a loopback address, so %s (env %s) is required", KeyAdminToken, config.EnvName(KeyAdminToken)))
	}
	return st, nil
}

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}
