package admin_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

// greetConfig is the configuration of the service TestOverridesOfAService
// starts: a live greeting and a startup-only worker count.
type greetConfig struct {
	Greeting string `key:"greeting" default:"hello" doc:"the greeting" live:"true"`
	Workers  int    `key:"workers" default:"4" doc:"workers, fixed at start"`
}

// Validate is the group rule of greet.*.
func (c *greetConfig) Validate() error {
	if len(c.Greeting) > 16 {
		return errors.New("greet.greeting must be at most 16 characters")
	}
	return nil
}

// TestOverridesOfAService drives PUT and DELETE /admin/config/{key} on a
// whole service: a live key takes effect at once and shows in
// /admin/config with its layer and expiry, bad values are refused with
// the reason, a startup-only key answers restart required, an override
// ends by itself, and DELETE brings the lower layer back.
func TestOverridesOfAService(t *testing.T) {
	app := svctest.StartWith(t, "greet", 30, svctest.Options{Env: map[string]string{"GREET_GREETING": "bonjour"}},
		svc.WithOutput(io.Discard, io.Discard),
		svc.Config[greetConfig]("greet"),
		svc.PublicRoutes(func(c *config.Struct[greetConfig]) svc.Routes {
			return func(r chi.Router) {
				r.Get("/greet", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, c.Get().Greeting) })
			}
		}),
	)
	client := svctest.Client(t)
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	greeting := func() string {
		_, b := call("GET", app.PublicURL+"/greet", "")
		return b
	}
	inForce := func(key string) (string, string, string) {
		var view struct {
			Keys []struct{ Key, Value, Layer, Expires string } `json:"keys"`
		}
		code, b := call("GET", app.AdminURL+"/admin/config", "")
		if code != 200 || jsonDecode(b, &view) != nil {
			t.Fatalf("GET /admin/config: %d %s", code, b)
		}
		for _, k := range view.Keys {
			if k.Key == key {
				return k.Value, k.Layer, k.Expires
			}
		}
		return "", "", ""
	}
	expect := func(method, path, body string, code int, contains ...string) {
		t.Helper()
		got, b := call(method, app.AdminURL+path, body)
		if got != code {
			t.Fatalf("%s %s %q: %d; want %d\n%s", method, path, body, got, code, b)
		}
		for _, c := range contains {
			if !strings.Contains(b, c) {
				t.Errorf("%s %s %q: answer lacks %s:\n%s", method, path, body, c, b)
			}
		}
	}

	if g := greeting(); g != "bonjour" {
		t.Fatalf("greeting %q; want bonjour from the environment", g)
	}

	// A live key: at once, shown with layer admin and its expiry.
	expect("PUT", "/admin/config/greet.greeting?for=1h", "salut", 200, `"layer": "admin"`, `"previous": {`, `"layer": "env"`, `"expires": "`)
	if g := greeting(); g != "salut" {
		t.Errorf("greeting after PUT = %q; want salut at once", g)
	}
	if v, l, exp := inForce("greet.greeting"); v != "salut" || l != "admin" || exp == "" {
		t.Errorf("/admin/config greet.greeting = %q %q expires %q; want salut from admin with an expiry", v, l, exp)
	}
	expect("PUT", "/admin/config/log.level", "debug", 200)
	expect("GET", "/admin/loglevel", "", 200, `"level": "debug"`)

	// Refused with the reason; nothing changes.
	expect("PUT", "/admin/config/greet.workers", "many", 400, `greet.workers = \"many\" (from admin): not an integer`)
	expect("PUT", "/admin/config/greet.greeting", "a greeting far too long", 400, "at most 16 characters")
	expect("PUT", "/admin/config/log.level", "loud", 400, "must be")
	expect("PUT", "/admin/config/greet.greting", "x", 400, "did you mean greet.greeting?")
	if g := greeting(); g != "salut" {
		t.Errorf("greeting after refusals = %q; want salut", g)
	}

	// A startup-only key: accepted, not in force.
	expect("PUT", "/admin/config/greet.workers", "8", 202, `"restart_required": true`, `"value": "8"`)
	if v, l, _ := inForce("greet.workers"); v != "4" || l != "convention" {
		t.Errorf("/admin/config greet.workers = %q from %q; want 4 from convention until a restart", v, l)
	}

	// DELETE: the environment's value again.
	expect("DELETE", "/admin/config/greet.greeting", "", 200, `"value": "bonjour"`, `"layer": "env"`)
	if g := greeting(); g != "bonjour" {
		t.Errorf("greeting after DELETE = %q; want bonjour", g)
	}
	expect("DELETE", "/admin/config/greet.greeting", "", 404, "no override")

	// An override that ends by itself.
	expect("PUT", "/admin/config/greet.greeting?for=200ms", "ciao", 200)
	svctest.WaitFor(t, 10*time.Second, "the override to expire", func() bool {
		v, l, _ := inForce("greet.greeting")
		return v == "bonjour" && l == "env" && greeting() == "bonjour"
	})
}

func jsonDecode(s string, v any) error { return json.Unmarshal([]byte(s), v) }
