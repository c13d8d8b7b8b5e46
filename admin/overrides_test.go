package admin_test

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
)

// overrideFixture is an admin server over a Live with declared keys, a
// file-like layer and an override layer on top; audit lines go to audit.
type overrideFixture struct {
	srv   *admin.Server
	live  *config.Live
	ov    *config.Overrides
	audit *strings.Builder
}

func newOverrideFixture(t *testing.T) *overrideFixture {
	t.Helper()
	schema, err := config.NewSchema(
		config.Decl{Key: "log.level", Default: "info", Live: true, Check: func(v string) error {
			if v != "debug" && v != "info" && v != "warn" && v != "error" {
				return errors.New("must be debug, info, warn or error")
			}
			return nil
		}},
		config.Decl{Key: "hello.greeting", Default: "hello", Live: true},
		config.Decl{Key: "hello.count", Type: config.Int, Default: "1", Live: true},
		config.Decl{Key: "orders.api-secret", Default: "x", Live: true, Secret: true},
		config.Decl{Key: "public.port", Type: config.Int, Default: "8010"},
	)
	if err != nil {
		t.Fatal(err)
	}
	ov := config.NewOverrides()
	t.Cleanup(func() { ov.Close() })
	file := config.NewMap("file config/example.json", map[string]string{"hello.greeting": "hi"})
	live, err := config.NewLive(config.LiveOptions{Schema: schema}, schema.Defaults("convention"), file, ov)
	if err != nil {
		t.Fatal(err)
	}
	f := &overrideFixture{live: live, ov: ov, audit: &strings.Builder{}}
	f.srv, err = admin.New(admin.Params{
		Config:    func() []config.Value { return live.Current().All() },
		Overrides: ov,
		Audit:     slog.New(slog.NewJSONHandler(f.audit, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

type answer struct {
	Key      string  `json:"key"`
	Value    *string `json:"value"`
	Layer    string  `json:"layer"`
	Previous *struct {
		Value string `json:"value"`
		Layer string `json:"layer"`
	} `json:"previous"`
	Expires         string `json:"expires"`
	Result          string `json:"result"`
	RestartRequired bool   `json:"restart_required"`
	Error           string `json:"error"`
}

func TestOverrideEndpoints(t *testing.T) {
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		code         int
		want         []string // substrings of the answer
		inForce      string   // hello.greeting's value and layer afterwards, "value layer"
	}{
		{"set a live key", "PUT", "/admin/config/hello.greeting", "hey", 200,
			[]string{`"value": "hey"`, `"layer": "admin"`, `"previous": {`, `"value": "hi"`, `"layer": "file config/example.json"`, `"result": "applied"`, `"restart_required": false`},
			"hey admin"},
		{"set for a while", "PUT", "/admin/config/hello.greeting?for=1h", "hey", 200,
			[]string{`"expires": "`}, "hey admin"},
		{"a bad value", "PUT", "/admin/config/hello.count", "many", 400,
			[]string{`"error": "config: hello.count = \"many\" (from admin): not an integer"`}, "hi file config/example.json"},
		{"a broken rule", "PUT", "/admin/config/log.level", "loud", 400,
			[]string{`must be debug, info, warn or error`}, "hi file config/example.json"},
		{"an undeclared key", "PUT", "/admin/config/hello.greting", "x", 400,
			[]string{`unknown key hello.greting (did you mean hello.greeting?)`}, "hi file config/example.json"},
		{"a startup-only key", "PUT", "/admin/config/public.port", "9000", 202,
			[]string{`"value": "9000"`, `"layer": "admin"`, `"value": "8010"`, `"result": "restart_required"`, `"restart_required": true`}, "hi file config/example.json"},
		{"a secret", "PUT", "/admin/config/orders.api-secret", "hunter2", 200,
			[]string{`"value": "[redacted]"`}, "hi file config/example.json"},
		{"a bad duration", "PUT", "/admin/config/hello.greeting?for=soon", "hey", 400,
			[]string{`for=\"soon\": want a positive duration`}, "hi file config/example.json"},
		{"a negative duration", "PUT", "/admin/config/hello.greeting?for=-1m", "hey", 400,
			[]string{`want a positive duration`}, "hi file config/example.json"},
		{"a huge value", "PUT", "/admin/config/hello.greeting", strings.Repeat("x", admin.MaxOverrideValue+1), 413,
			[]string{`at most 65536 bytes`}, "hi file config/example.json"},
		{"delete without an override", "DELETE", "/admin/config/hello.greeting", "", 404,
			[]string{`admin: hello.greeting has no override`}, "hi file config/example.json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newOverrideFixture(t)
			rec := serve(f.srv, tc.method, tc.path, tc.body)
			if rec.Code != tc.code {
				t.Fatalf("%s %s: status %d; want %d\n%s", tc.method, tc.path, rec.Code, tc.code, rec.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(rec.Body.String(), w) {
					t.Errorf("%s %s: answer lacks %s:\n%s", tc.method, tc.path, w, rec.Body)
				}
			}
			if strings.Contains(rec.Body.String()+f.audit.String(), "hunter2") {
				t.Errorf("a secret shows:\n%s\n%s", rec.Body, f.audit)
			}
			v, _ := f.live.Current().Lookup("hello.greeting")
			if got := v.Value + " " + v.Layer; got != tc.inForce {
				t.Errorf("hello.greeting in force: %q; want %q", got, tc.inForce)
			}
			if !strings.Contains(f.audit.String(), `"path":"`+strings.Split(tc.path, "?")[0]) {
				t.Errorf("no audit line for %s %s: %s", tc.method, tc.path, f.audit)
			}
		})
	}
}

func TestOverrideDeleteAndConfigView(t *testing.T) {
	f := newOverrideFixture(t)
	if rec := serve(f.srv, "PUT", "/admin/config/hello.greeting?for=1h", "hey"); rec.Code != 200 {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(f.srv, "PUT", "/admin/config/public.port", "9000"); rec.Code != 202 {
		t.Fatalf("PUT public.port: %d %s", rec.Code, rec.Body)
	}
	rec := serve(f.srv, "GET", "/admin/config", "")
	var view struct {
		Keys []struct {
			Key, Value, Layer, Expires string
		} `json:"keys"`
		Overrides []struct {
			Key, Value, Expires string
			InForce             bool `json:"in_force"`
		} `json:"overrides"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &view); err != nil {
		t.Fatal(err)
	}
	exp, _ := f.ov.Expiry("hello.greeting")
	for _, k := range view.Keys {
		switch k.Key {
		case "hello.greeting":
			if k.Value != "hey" || k.Layer != "admin" || k.Expires != exp.UTC().Format(time.RFC3339) {
				t.Errorf("/admin/config hello.greeting = %+v; want hey from admin expiring at %v", k, exp)
			}
		case "public.port":
			if k.Value != "8010" || k.Layer != "convention" || k.Expires != "" {
				t.Errorf("/admin/config public.port = %+v; want 8010 from convention (the override waits)", k)
			}
		default:
			if k.Expires != "" {
				t.Errorf("/admin/config %s has an expiry: %+v", k.Key, k)
			}
		}
	}
	if len(view.Overrides) != 2 || view.Overrides[0].Key != "hello.greeting" || !view.Overrides[0].InForce || view.Overrides[0].Expires == "" ||
		view.Overrides[1].Key != "public.port" || view.Overrides[1].InForce || view.Overrides[1].Value != "9000" {
		t.Errorf("/admin/config overrides = %+v; want hello.greeting in force with an expiry, public.port held", view.Overrides)
	}

	rec = serve(f.srv, "DELETE", "/admin/config/hello.greeting", "")
	a := decode[answer](t, rec)
	if rec.Code != 200 || a.Value == nil || *a.Value != "hi" || a.Layer != "file config/example.json" || a.Previous == nil || a.Previous.Value != "hey" || a.Previous.Layer != "admin" || a.Expires != "" {
		t.Errorf("DELETE = %d %+v; want hi back from the file, previous hey from admin", rec.Code, a)
	}
	if !strings.Contains(f.audit.String(), `"method":"DELETE"`) || !strings.Contains(f.audit.String(), `"key":"hello.greeting"`) {
		t.Errorf("audit log lacks the DELETE: %s", f.audit)
	}
	if rec := serve(f.srv, "GET", "/admin", ""); !strings.Contains(rec.Body.String(), `"/admin/config/{key}"`) {
		t.Errorf("GET /admin does not list /admin/config/{key}: %s", rec.Body)
	}
}

func TestOverrideEndpointsNeedOverrides(t *testing.T) {
	srv, err := admin.New(admin.Params{Config: func() []config.Value { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	rec := serve(srv, http.MethodPut, "/admin/config/log.level", "debug")
	if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("PUT without Overrides: %d; want 404 or 405", rec.Code)
	}
	if rec := serve(srv, "GET", "/admin/config", ""); strings.Contains(rec.Body.String(), "overrides") {
		t.Errorf("GET /admin/config without Overrides lists overrides: %s", rec.Body)
	}
}
