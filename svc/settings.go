package svc

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/convention"
)

// The framework's own configuration keys. Their environment variables are
// config.EnvName(key): ADMIN_PORT, SHUTDOWN_DRAIN, ...
const (
	KeyEnvironment = "environment"

	KeyAdminHost  = "admin.host"
	KeyAdminPort  = "admin.port"
	KeyAdminToken = "admin.token"
	// KeyAdminMaxProfile caps ?seconds= of /debug/pprof/profile and /trace.
	KeyAdminMaxProfile = "admin.max-profile-duration"

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
	keyMaxConns          = "max-conns"

	KeyShutdownDrain   = "shutdown.drain"
	KeyShutdownTimeout = "shutdown.timeout"

	// KeyRestartTimeout bounds an in-place restart: the successor must be
	// ready within it, or it is stopped and this process serves on.
	KeyRestartTimeout = "restart.timeout"

	KeyLogLevel  = "log.level"
	KeyLogFormat = "log.format"
	KeyLogAccess = "log.access"
	// KeyGCPercent is the garbage collector's target (GOGC), applied by Run.
	KeyGCPercent = "runtime.gc-percent"

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

	KeyClientAttemptTimeout = "client.attempt-timeout"
	KeyClientTimeout        = "client.timeout"
	KeyClientMaxAttempts    = "client.max-attempts"
	KeyClientEjection       = "client.ejection.enabled"
	KeyClientRetryBudget    = "client.retry-budget.percent"
	KeyDiscoveryMaxServices = "discovery.max-services"
	KeyDiscoveryIdleTimeout = "discovery.idle-timeout"
)

// Port conventions: admin on AdminBase+offset, public on PublicBase+offset,
// private on PublicBase+offset+1 (see internal/convention, their one home).
const (
	AdminBase  = convention.AdminBase
	PublicBase = convention.PublicBase
	MaxOffset  = convention.MaxOffset
)

// EnvConfigDir names the directory holding the JSON files; it is read from
// the environment only, since it locates the files. Default "./config".
const EnvConfigDir = "CONFIG_DIR"

// validate checks name and offset against the contract's rules.
func validate(name string, offset int) error {
	if err := convention.CheckName("service name", name); err != nil {
		return fmt.Errorf("svc: %w", err)
	}
	if err := convention.CheckOffset(offset); err != nil {
		return fmt.Errorf("svc: %w", err)
	}
	return nil
}

// frameworkKeys declares the framework's own keys with their conventional
// values for a service at offset. log.level and the client timeouts are
// live; everything else is read once at start, and a reload reports
// "restart required" for it.
func frameworkKeys(offset int) []config.Decl {
	ports := convention.PortsOf(offset)
	d := func(key string, t config.Type, def, doc string) config.Decl {
		return config.Decl{Key: key, Type: t, Default: def, Doc: doc}
	}
	decls := []config.Decl{
		{Key: KeyEnvironment, Type: config.String, Default: convention.DefaultEnvironment, Doc: "deployment name: dev, ci, qa, prod, ...",
			Check: func(v string) error { return convention.CheckName("environment", v) }},
		d(KeyAdminHost, config.String, "127.0.0.1", "admin listener bind address (loopback unless admin.token is set)"),
		d(KeyAdminPort, config.Int, strconv.Itoa(ports.Admin), "admin listener port (4000+offset; 0 = any free port)"),
		{Key: KeyAdminToken, Type: config.String, Secret: true, Doc: "bearer token for the admin listener; required when admin.host is not loopback"},
		d(KeyAdminMaxProfile, config.Duration, "60s", "longest ?seconds= of /debug/pprof/profile and /debug/pprof/trace"),
		d(KeyPublicHost, config.String, "", "public listener bind address (empty = all interfaces)"),
		d(KeyPublicPort, config.Int, strconv.Itoa(ports.Public), "public HTTP port (8000+offset; 0 = any free port)"),
		d(KeyPrivateHost, config.String, "", "private listener bind address (empty = all interfaces)"),
		d(KeyPrivatePort, config.Int, strconv.Itoa(ports.Private), "private HTTP port: health, metrics, info (8001+offset)"),
	}
	for _, s := range []string{"public", "private", "admin"} {
		write := "30s"
		if s == "admin" {
			write = "5m" // pprof profiles stream for up to their duration
		}
		decls = append(decls,
			d(s+"."+keyReadHeaderTimeout, config.Duration, "5s", "time to read request headers (slowloris guard)"),
			d(s+"."+keyReadTimeout, config.Duration, "30s", "time to read a whole request"),
			d(s+"."+keyWriteTimeout, config.Duration, write, "time to write a response"),
			d(s+"."+keyIdleTimeout, config.Duration, "120s", "keep-alive idle timeout"),
			d(s+"."+keyMaxHeaderBytes, config.Int, "65536", "request header size limit in bytes"),
			d(s+"."+keyMaxBodyBytes, config.Int, "4194304", "request body size limit in bytes (0 = none)"),
			d(s+"."+keyMaxConns, config.Int, "0", "concurrent connections at most (0 = derived from the open-file limit)"),
		)
	}
	level := d(KeyLogLevel, config.String, "info", "debug, info, warn or error; live, and through PUT /admin/loglevel")
	level.Live = true
	level.Check = func(v string) error {
		if _, err := parseLevel(v); err != nil {
			return errors.New("must be debug, info, warn or error")
		}
		return nil
	}
	return append(decls,
		d(KeyShutdownDrain, config.Duration, "1s", "after readiness turns 503 and the instance deregisters, wait this long before servers stop accepting"),
		d(KeyShutdownTimeout, config.Duration, "10s", "time for in-flight requests to finish once servers stop accepting"),
		d(KeyRestartTimeout, config.Duration, "30s", "in-place restart (SIGUSR2, POST /admin/restart): the successor must be ready within this, or it is stopped and this process serves on"),
		level,
		config.Decl{Key: KeyLogFormat, Type: config.String, Default: "auto", Doc: "auto (text on a terminal, JSON otherwise), text or json",
			Check: oneOf("auto", "text", "json")},
		d(KeyLogAccess, config.Bool, "true", "log one line per public request"),
		config.Decl{Key: KeyGCPercent, Type: config.String, Default: strconv.Itoa(DefaultGCPercent), Live: true, Check: checkGCPercent,
			Doc: "garbage collector target (GOGC): how far the heap grows over the live heap before a collection, in percent, or off; set by Run, live; the GOGC environment variable wins"},
		d(KeyEtcdEndpoints, config.List, "", "comma-separated etcd endpoints; enables the etcd config layer and the registry"),
		d(KeyEtcdUsername, config.String, "", "etcd user"),
		config.Decl{Key: KeyEtcdPassword, Type: config.String, Secret: true, Doc: "etcd password"},
		d(KeyEtcdTLSCA, config.String, "", "etcd CA certificate file"),
		d(KeyEtcdTLSCert, config.String, "", "etcd client certificate file"),
		d(KeyEtcdTLSKey, config.String, "", "etcd client key file"),
		d(KeyEtcdDialTimeout, config.Duration, "5s", "etcd dial timeout"),
		d(KeyRegistryHost, config.String, "", "advertised host (default: first non-loopback IPv4 address)"),
		d(KeyRegistryTTL, config.Duration, "10s", "registration lease TTL"),
		d(KeyRegistryAttempts, config.Int, "10", "health checks tried before registering"),
		d(KeyRegistryInterval, config.Duration, "1s", "pause between those health checks"),
		d(KeyRegistryURISpec, config.String, "", "uri-spec advertised to discovery, e.g. /1.x/{territory}/users/{userid}"),
		config.Decl{Key: KeyClientAttemptTimeout, Type: config.Duration, Default: "2s", Live: true,
			Doc: "calls to other services: one attempt's timeout; an idempotent call is retried on another instance after it (0 = default, negative = none)"},
		config.Decl{Key: KeyClientTimeout, Type: config.Duration, Default: "10s", Live: true,
			Doc: "calls to other services: a whole call's timeout, retries included; a shorter deadline of the caller wins"},
		d(KeyClientMaxAttempts, config.Int, "3", "calls to other services: attempts at most, the first included (1 = no retry)"),
		d(KeyClientEjection, config.Bool, "true", "take an instance that fails to connect or answers a run of 5xx out of rotation for a growing while"),
		d(KeyClientRetryBudget, config.Int, "20", "retries allowed as a percentage of recent calls (plus 10 a second)"),
		d(KeyDiscoveryMaxServices, config.Int, "1024", "service names discovery watches in the registry at most; past it, a new name is refused"),
		d(KeyDiscoveryIdleTimeout, config.Duration, "5m", "a watched name not resolved for this long is released"),
		d(convention.OverridePrefix+"*", config.String, "", "base URL or URL template used for <name> instead of discovery"),
		d(convention.ServicesPrefix+"*", config.String, "", "services.<name>.offset, .host, .uri-spec: <name>'s place for discovery by convention, without a registry"),
	)
}

// oneOf returns a rule that the value is one of vs.
func oneOf(vs ...string) func(string) error {
	return func(v string) error {
		if slices.Contains(vs, v) {
			return nil
		}
		return fmt.Errorf("must be %s", strings.Join(vs, ", "))
	}
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
	MaxConns          int   // 0: derived from the open-file limit
}

// Addr returns host:port for net.Listen.
func (s ServerSettings) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// EtcdSettings configures the etcd client; Endpoints empty means no etcd.
type EtcdSettings struct {
	Endpoints     []string
	Username      string
	Password      Secret
	CA, Cert, Key string
	DialTimeout   time.Duration
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
	AdminToken Secret
	// AdminMaxProfile caps the seconds of /debug/pprof/profile and /trace.
	AdminMaxProfile time.Duration
	Public          ServerSettings
	Private         ServerSettings

	ShutdownDrain   time.Duration
	ShutdownTimeout time.Duration
	// RestartTimeout bounds an in-place restart (restart.timeout).
	RestartTimeout time.Duration

	LogLevel  slog.Level
	LogFormat string // auto, text or json
	LogAccess bool

	Etcd      EtcdSettings
	Registry  RegistrySettings
	Discovery DiscoverySettings
}

// DiscoverySettings bound what discovery keeps for names asked of it, and
// how calls to other services go (the live timeouts are read per call).
type DiscoverySettings struct {
	MaxServices int           // names watched in the registry at most
	IdleTimeout time.Duration // a name not resolved for this long is released
	MaxAttempts int           // attempts of one call at most
	Ejection    bool          // outlier ejection on
	RetryBudget int           // percent of recent calls that may be retried
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
		MaxConns:          d.int(prefix+"."+keyMaxConns, 0, 1<<24),
	}
}

// Bootstrap is what must be known before the layers can be read: the
// environment (it names the second file and the etcd prefixes) and how to
// reach etcd. It is decoded from the conventions, the files, the
// environment and WithValues; etcd cannot set it.
type Bootstrap struct {
	Environment string
	ConfigDir   string
	Etcd        EtcdSettings
}

// decodeBootstrap decodes the bootstrap keys from s.
func decodeBootstrap(dir string, s *config.Store) (Bootstrap, error) {
	d := &decoder{s: s}
	b := Bootstrap{
		Environment: d.str(KeyEnvironment),
		ConfigDir:   dir,
		Etcd: EtcdSettings{
			Endpoints:   s.Strings(KeyEtcdEndpoints, nil),
			Username:    d.str(KeyEtcdUsername),
			Password:    Secret(d.str(KeyEtcdPassword)),
			CA:          d.str(KeyEtcdTLSCA),
			Cert:        d.str(KeyEtcdTLSCert),
			Key:         d.str(KeyEtcdTLSKey),
			DialTimeout: d.dur(KeyEtcdDialTimeout),
		},
	}
	if d.err != nil {
		return b, d.err
	}
	if err := convention.CheckName("environment", b.Environment); err != nil {
		v, _ := s.Lookup(KeyEnvironment)
		return b, v.Invalid(err.Error())
	}
	return b, nil
}

// decodeSettings decodes the framework settings once, from the final
// store (every layer, etcd included). Types and single-key rules were
// checked by the schema when the store was built; the rules across keys
// are checked here.
func decodeSettings(name string, offset int, boot Bootstrap, s *config.Store) (Settings, error) {
	d := &decoder{s: s}
	st := Settings{
		Name:            name,
		Offset:          offset,
		ConfigDir:       boot.ConfigDir,
		Environment:     boot.Environment,
		Admin:           d.server("admin"),
		AdminToken:      Secret(d.str(KeyAdminToken)),
		AdminMaxProfile: d.dur(KeyAdminMaxProfile),
		Public:          d.server("public"),
		Private:         d.server("private"),
		ShutdownDrain:   d.dur(KeyShutdownDrain),
		ShutdownTimeout: d.dur(KeyShutdownTimeout),
		RestartTimeout:  d.dur(KeyRestartTimeout),
		LogFormat:       d.str(KeyLogFormat),
		LogAccess:       d.bool(KeyLogAccess),
		Etcd:            boot.Etcd,
		Registry: RegistrySettings{
			Host:     d.str(KeyRegistryHost),
			TTL:      d.dur(KeyRegistryTTL),
			Attempts: d.int(KeyRegistryAttempts, 1, 1000),
			Interval: d.dur(KeyRegistryInterval),
			URISpec:  d.str(KeyRegistryURISpec),
		},
		Discovery: DiscoverySettings{
			MaxServices: d.int(KeyDiscoveryMaxServices, 1, 1<<20),
			IdleTimeout: d.dur(KeyDiscoveryIdleTimeout),
			MaxAttempts: d.int(KeyClientMaxAttempts, 1, 10),
			Ejection:    d.bool(KeyClientEjection),
			RetryBudget: d.int(KeyClientRetryBudget, 0, 100),
		},
	}
	if d.err != nil {
		return st, d.err
	}
	lvl, err := parseLevel(d.str(KeyLogLevel))
	if err != nil {
		v, _ := s.Lookup(KeyLogLevel)
		return st, v.Invalid("must be debug, info, warn or error")
	}
	st.LogLevel = lvl
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

// Secret is a setting that must never be shown: it prints, logs and
// encodes as "[redacted]" however it is formatted. Reveal returns it.
type Secret string

// Reveal returns the secret itself, for the one place that uses it.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts %#v too.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// LogValue redacts it in slog lines.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText redacts it in JSON and other encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// String shows the settings with credentials in endpoints redacted; the
// password is a [Secret].
func (s EtcdSettings) String() string {
	return fmt.Sprintf("{Endpoints:%v Username:%s Password:%s CA:%s Cert:%s Key:%s DialTimeout:%s}",
		s.shownEndpoints(), s.Username, s.Password, s.CA, s.Cert, s.Key, s.DialTimeout)
}

// GoString redacts %#v too.
func (s EtcdSettings) GoString() string { return "svc.EtcdSettings" + s.String() }

// MarshalJSON encodes the settings with credentials in endpoints redacted.
func (s EtcdSettings) MarshalJSON() ([]byte, error) {
	type plain EtcdSettings // without the methods
	p := plain(s)
	p.Endpoints = s.shownEndpoints()
	return json.Marshal(p)
}

func (s EtcdSettings) shownEndpoints() []string {
	eps := make([]string, len(s.Endpoints))
	for i, ep := range s.Endpoints {
		eps[i] = config.RedactValue(ep)
	}
	return eps
}
