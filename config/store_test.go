package config_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/svc-dev/svc/config"
)

// layers builds the four layers of the contract with a key set in each:
// conventions < file < etcd < env.
func fourLayers() []config.Source {
	return []config.Source{
		config.NewMap("convention", map[string]string{"a": "conv", "b": "conv", "c": "conv", "d": "conv"}),
		config.NewMap("file config/orders.json", map[string]string{"b": "file", "c": "file", "d": "file"}),
		config.NewMap("etcd", map[string]string{"c": "etcd", "d": "etcd"}),
		config.NewEnv(config.MapLookup(map[string]string{"D": "env", "ONLY_ENV": "env", "EMPTY": ""})),
	}
}

func TestStorePrecedence(t *testing.T) {
	s := config.NewStore([]string{"only.env", "unset"}, fourLayers()...)
	tests := []struct {
		key, value, layer string
		ok                bool
	}{
		{"a", "conv", "convention", true},
		{"b", "file", "file config/orders.json", true},
		{"c", "etcd", "etcd", true},
		{"d", "env", "env", true},
		{"only.env", "env", "env", true},
		{"only-env", "env", "env", true}, // a key never declared is still looked up in the environment
		{"empty", "", "", false},         // an empty variable counts as unset
		{"unset", "", "", false},
	}
	for _, tt := range tests {
		v, ok := s.Lookup(tt.key)
		if ok != tt.ok || v.Value != tt.value || v.Layer != tt.layer {
			t.Errorf("Lookup(%q) = %+v, %v; want %q from %q, %v", tt.key, v, ok, tt.value, tt.layer, tt.ok)
		}
	}
	if got, want := s.Layers(), []string{"convention", "file config/orders.json", "etcd", "env"}; !slices.Equal(got, want) {
		t.Errorf("Layers() = %q; want %q", got, want)
	}
	var keys []string
	for _, v := range s.All() {
		keys = append(keys, v.Key)
	}
	if want := []string{"a", "b", "c", "d", "only.env"}; !slices.Equal(keys, want) {
		t.Errorf("All() keys = %q; want %q", keys, want)
	}
}

func TestStoreNilLayers(t *testing.T) {
	var absent *config.Map
	s := config.NewStore(nil, nil, config.NewMap("x", map[string]string{"k": "v"}), absent)
	if v, ok := s.Lookup("k"); !ok || v.Value != "v" {
		t.Errorf("Lookup(k) = %+v, %v; want v", v, ok)
	}
	var zero config.Store
	if _, ok := zero.Lookup("k"); ok || len(zero.All()) != 0 {
		t.Error("the zero Store has a key")
	}
}

func TestTypedGetters(t *testing.T) {
	s := config.NewStore(nil,
		config.NewMap("file f.json", map[string]string{"port": " 9000 ", "bad.port": "eighty", "on": "true", "wait": "250ms", "list": " a, b,,c "}),
		config.NewEnv(config.MapLookup(map[string]string{"PUBLIC_PORT": "eighty", "SHUTDOWN_DRAIN": "soon", "LOG_ACCESS": "maybe"})),
	)
	if n, err := s.Int("port", 0); n != 9000 || err != nil {
		t.Errorf("Int(port) = %d, %v; want 9000", n, err)
	}
	if n, err := s.Int("missing", 7); n != 7 || err != nil {
		t.Errorf("Int(missing) = %d, %v; want the default 7", n, err)
	}
	if b, err := s.Bool("on", false); !b || err != nil {
		t.Errorf("Bool(on) = %v, %v; want true", b, err)
	}
	if d, err := s.Duration("wait", 0); d != 250*time.Millisecond || err != nil {
		t.Errorf("Duration(wait) = %v, %v; want 250ms", d, err)
	}
	if got := s.Strings("list", nil); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Strings(list) = %q; want [a b c]", got)
	}

	tests := []struct {
		name string
		get  func() error
		want string
	}{
		{"int from env", func() error { _, err := s.Int("public.port", 0); return err },
			`config: public.port = "eighty" (from env PUBLIC_PORT): not an integer`},
		{"int from file", func() error { _, err := s.Int("bad.port", 0); return err },
			`config: bad.port = "eighty" (from file f.json): not an integer`},
		{"duration", func() error { _, err := s.Duration("shutdown.drain", 0); return err },
			`config: shutdown.drain = "soon" (from env SHUTDOWN_DRAIN): not a duration such as "10s"`},
		{"bool", func() error { _, err := s.Bool("log.access", false); return err },
			`config: log.access = "maybe" (from env LOG_ACCESS): not a boolean`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.get()
			var te *config.TypeError
			if !errors.As(err, &te) {
				t.Fatalf("error = %v; want a *config.TypeError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error = %q; want %q", err, tt.want)
			}
		})
	}
}

func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{config.Value{Key: "registry.ttl", Value: "1s", Layer: "etcd"}.Invalid("must be at least 2s"),
			`config: registry.ttl = "1s" (from etcd): must be at least 2s`},
		{config.Value{Key: "admin.host", Value: "10.0.0.1", Layer: "env"}.Invalid("is not a loopback address"),
			`config: admin.host = "10.0.0.1" (from env ADMIN_HOST): is not a loopback address`},
		{&config.TypeError{Value: config.Value{Key: "etcd.password", Value: "hunter2", Layer: "env"}, Want: "an integer"},
			`config: etcd.password = "[redacted]" (from env ETCD_PASSWORD): not an integer`},
		{&config.TypeError{Value: config.Value{Key: "discovery.override.user-sessions", Value: "x", Layer: "env"}, Want: "a URL"},
			`config: discovery.override.user-sessions = "x" (from env DISCOVERY_OVERRIDE_USER_SESSIONS): not a URL`},
		{&config.RuleError{Value: config.Value{Key: "log.level", Value: "loud", Layer: "file config/o.json"}, Rule: "must be debug, info, warn or error"},
			`config: log.level = "loud" (from file config/o.json): must be debug, info, warn or error`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q; want %q", got, tt.want)
		}
	}
	var re *config.RuleError
	if err := (config.Value{Key: "k"}).Invalid("r"); !errors.As(err, &re) || re.Rule != "r" {
		t.Errorf("Invalid = %v; want a *config.RuleError with rule r", err)
	}
}

func TestRequire(t *testing.T) {
	s := config.NewStore(nil, config.NewMap("m", map[string]string{"a": "1"}))
	if v, err := s.Require("a"); err != nil || v.Value != "1" {
		t.Errorf("Require(a) = %+v, %v; want 1", v, err)
	}
	_, err := s.Require("admin.token")
	if !errors.Is(err, config.ErrNotSet) {
		t.Fatalf("Require(admin.token) = %v; want ErrNotSet", err)
	}
	if want := "config: admin.token (env ADMIN_TOKEN): not set"; err.Error() != want {
		t.Errorf("Require(admin.token) = %q; want %q", err, want)
	}
}

func TestPrefix(t *testing.T) {
	s := config.NewStore(nil, config.NewMap("m", map[string]string{"services.a.offset": "10", "services.b.offset": "20", "servicesx": "1"}))
	var keys []string
	for _, v := range s.Prefix("services.") {
		keys = append(keys, v.Key)
	}
	if want := []string{"services.a.offset", "services.b.offset"}; !slices.Equal(keys, want) {
		t.Errorf("Prefix(services.) = %q; want %q", keys, want)
	}
}

func TestIsSecretAndRedact(t *testing.T) {
	tests := []struct {
		key    string
		secret bool
	}{
		{"admin.token", true},
		{"etcd.password", true},
		{"etcd.tls.key", true},
		{"api.client-secret", true},
		{"stripe.apikey", true},
		{"webhook.signing-key", true},
		{"token", true},
		{"public.port", false},
		{"keys.count", false}, // only the last segment counts
		{"token.ttl", false},
		{"log.level", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := config.IsSecret(tt.key); got != tt.secret {
			t.Errorf("IsSecret(%q) = %v; want %v", tt.key, got, tt.secret)
		}
		want := "v"
		if tt.secret {
			want = "[redacted]"
		}
		if got := config.Redact(tt.key, "v"); got != want {
			t.Errorf("Redact(%q, v) = %q; want %q", tt.key, got, want)
		}
		if got := (config.Value{Key: tt.key, Value: "v"}).Display(); got != want {
			t.Errorf("Value{%q}.Display() = %q; want %q", tt.key, got, want)
		}
	}
	if got := config.Redact("admin.token", ""); got != "" {
		t.Errorf(`Redact(admin.token, "") = %q; want "" (nothing to hide)`, got)
	}
}

func TestEnvName(t *testing.T) {
	tests := []struct{ key, want string }{
		{"public.port", "PUBLIC_PORT"},
		{"discovery.override.user-sessions", "DISCOVERY_OVERRIDE_USER_SESSIONS"},
		{"public.read-header-timeout", "PUBLIC_READ_HEADER_TIMEOUT"},
		{"environment", "ENVIRONMENT"},
		{"etcd.tls.ca", "ETCD_TLS_CA"},
		{"a1.b_2", "A1_B_2"},
	}
	for _, tt := range tests {
		if got := config.EnvName(tt.key); got != tt.want {
			t.Errorf("EnvName(%q) = %q; want %q", tt.key, got, tt.want)
		}
	}
}

func TestSplitList(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{" a , b ,, c,", []string{"a", "b", "c"}},
		{" , ", nil},
	}
	for _, tt := range tests {
		if got := config.SplitList(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("SplitList(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestMapAndEnv(t *testing.T) {
	src := map[string]string{"b": "2", "a": "1"}
	m := config.NewMap("m", src)
	src["a"] = "changed"
	if v, _ := m.Lookup("a"); v != "1" {
		t.Errorf("NewMap does not copy: Lookup(a) = %q; want 1", v)
	}
	if got := m.Keys(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Keys() = %q; want [a b]", got)
	}
	var zero config.Env
	if _, ok := zero.Lookup("a"); ok {
		t.Error("zero Env has a value")
	}
	if zero.Keys() != nil || zero.Name() != "env" {
		t.Errorf("Env: Keys() = %v, Name() = %q; want nil, env", zero.Keys(), zero.Name())
	}
}
