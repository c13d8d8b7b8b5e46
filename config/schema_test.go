package config_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/svc-dev/svc/config"
)

func testSchema(t *testing.T) *config.Schema {
	t.Helper()
	s, err := config.NewSchema(
		config.Decl{Key: "log.level", Type: config.String, Default: "info", Live: true},
		config.Decl{Key: "shutdown.timeout", Type: config.Duration, Default: "10s"},
		config.Decl{Key: "public.port", Type: config.Int, Default: "8000"},
		config.Decl{Key: "db.url", Type: config.URL, Secret: true},
		config.Decl{Key: "services.*", Type: config.String},
	)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSchemaDeclare(t *testing.T) {
	tests := []struct {
		name string
		d    config.Decl
		want string
	}{
		{"duplicate", config.Decl{Key: "log.level"}, "declared twice"},
		{"bad key", config.Decl{Key: "Log.Level"}, "character"},
		{"empty segment", config.Decl{Key: "log..level"}, "empty segment"},
		{"bad default", config.Decl{Key: "x.n", Type: config.Int, Default: "ten"}, "not an integer"},
	}
	for _, tt := range tests {
		s := testSchema(t)
		if err := s.Declare(tt.d); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Declare(%+v) = %v; want an error with %q", tt.name, tt.d, err, tt.want)
		}
	}
}

func TestSchemaSuggest(t *testing.T) {
	s := testSchema(t)
	for in, want := range map[string]string{
		"log.levle":        "log.level",
		"log.lvl":          "log.level",
		"shutdown.timeuot": "shutdown.timeout",
		"public.prot":      "public.port",
		"zzzzzzzzzzzzzz":   "",
		"db":               "",
	} {
		if got := s.Suggest(in); got != want {
			t.Errorf("Suggest(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestSchemaAdmit(t *testing.T) {
	s := testSchema(t)
	shared := config.NewMapOrigins("etcd", map[string]string{"log.level": "debug", "other.knob": "1", "log.levle": "x"},
		map[string]config.Origin{
			"log.level":  {Where: "etcd key svc/dev/config/_all/log.level", Shared: true},
			"other.knob": {Where: "etcd key svc/dev/config/_all/other.knob", Shared: true},
			"log.levle":  {Where: "etcd key svc/dev/config/orders/log.levle"},
		})
	_, err := s.Admit(shared)
	var und *config.UndeclaredError
	if !errors.As(err, &und) || len(und.Keys) != 1 || und.Keys[0].Key != "log.levle" {
		t.Fatalf("Admit = %v; want log.levle refused alone", err)
	}
	if !strings.Contains(err.Error(), "etcd key svc/dev/config/orders/log.levle: unknown key log.levle (did you mean log.level?)") {
		t.Errorf("error = %q", err)
	}
	ok := config.NewMapOrigins("etcd", map[string]string{"log.level": "debug", "other.knob": "1", "services.users.offset": "20"},
		map[string]config.Origin{"other.knob": {Shared: true}})
	src, err := s.Admit(ok)
	if err != nil {
		t.Fatalf("Admit: %v", err)
	}
	if _, found := src.Lookup("other.knob"); found {
		t.Error("an undeclared shared key was kept")
	}
	if v, found := src.Lookup("services.users.offset"); !found || v != "20" {
		t.Error("a key of an open namespace was dropped")
	}
}

func TestLoadFileLines(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "orders.json")
	if err := os.WriteFile(path, []byte("{\n  \"log\": {\n    \"levle\": \"debug\"\n  },\n  \"public\": {\"port\": 9000}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := config.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"log.levle": path + ":3", "public.port": path + ":5"} {
		if o, _ := m.Origin(key); o.Where != want {
			t.Errorf("Origin(%s) = %q; want %q", key, o.Where, want)
		}
	}
}

// A declared secret and credentials inside values are redacted wherever
// a value is shown.
func TestStoreRedactsDeclaredSecrets(t *testing.T) {
	s := testSchema(t)
	st := s.Store(config.NewMap("file x", map[string]string{"db.url": "postgres://db/x", "services.users.host": "http://u:pw@h"}))
	if v, _ := st.Lookup("db.url"); v.Display() != "[redacted]" {
		t.Errorf("declared secret shows %q", v.Display())
	}
	if v, _ := st.Lookup("services.users.host"); v.Display() != "http://u:[redacted]@h" {
		t.Errorf("credentials in a URL show as %q", v.Display())
	}
}

// A startup-only key set to a value that does not parse is rejected like a
// live one (it used to be "restart required" and break the next start);
// a valid change of it waits for a restart.
func TestLiveValidatesStartupOnlyKeys(t *testing.T) {
	s := testSchema(t)
	file := newLayer("file config/orders.json", "shutdown.timeout", "5s")
	lg := &logs{}
	live, err := config.NewLive(config.LiveOptions{Schema: s, Logger: lg.logger()}, s.Defaults("convention"), file)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	file.set("shutdown.timeout", "soon")
	rep, _ := live.Reload(t.Context())
	if rep.Result != config.ResultRejected || len(rep.Rejected) != 1 {
		t.Fatalf("bad startup-only value: %+v; want rejected", rep)
	}
	if v, _ := live.Current().Lookup("shutdown.timeout"); v.Value != "5s" {
		t.Errorf("value in force %q; want 5s kept", v.Value)
	}
	file.set("shutdown.timeout", "20s")
	if rep, _ := live.Reload(t.Context()); rep.Result != config.ResultRestartRequired {
		t.Errorf("valid startup-only change: %s; want restart_required", rep.Result)
	}
}

// A reload that brings an undeclared key rejects the layer's new contents
// and keeps the previous ones.
func TestLiveRejectsUndeclaredAtReload(t *testing.T) {
	s := testSchema(t)
	file := newLayer("file config/orders.json", "log.level", "info")
	live, err := config.NewLive(config.LiveOptions{Schema: s}, s.Defaults("convention"), file)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	file.set("log.level", "debug")
	file.set("log.levle", "warn")
	rep, _ := live.Reload(t.Context())
	if rep.Result != config.ResultRejected {
		t.Fatalf("reload = %s; want rejected", rep.Result)
	}
	if v, _ := live.Current().Lookup("log.level"); v.Value != "info" {
		t.Errorf("log.level = %q; want info kept (the whole layer is rejected)", v.Value)
	}
}

// Removing a config file logs the keys that fall back; a huge value is
// not logged whole.
func TestLiveLogsFallbackAndBoundsValues(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "orders.json")
	huge := strings.Repeat("x", 100_000)
	if err := os.WriteFile(path, []byte(`{"log":{"level":"debug"},"big":"`+huge+`"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	lg := &logs{}
	live, err := config.NewLive(config.LiveOptions{Logger: lg.logger()}, config.NewMap("convention", map[string]string{"log.level": "info"}), config.NewFile(path))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	if err := os.WriteFile(path, []byte(`{"log":{"level":"debug"},"big":"`+huge+`y"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, l := range lg.lines(t, "config: value changed") {
		if s, _ := l["value"].(string); len(s) > 1024 {
			t.Errorf("a %d-byte value was logged whole", len(s))
		}
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := live.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	lines := lg.lines(t, "config: a file was removed; its keys fall back to lower layers")
	if len(lines) != 1 || !strings.Contains(strings.Join(toStrings(lines[0]["keys"]), ","), "log.level") {
		t.Errorf("fallback warning: %v", lines)
	}
}

func toStrings(v any) []string {
	var out []string
	if vs, ok := v.([]any); ok {
		for _, x := range vs {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}
