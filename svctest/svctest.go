// Package svctest starts a whole svc service inside a test, in the spirit of
// net/http/httptest (and Dropwizard's DropwizardAppExtension): every
// listener on an ephemeral loopback port, an empty environment and no
// config directory unless the test gives them, stopped when the test ends.
//
//	func TestHello(t *testing.T) {
//		app := svctest.Start(t, "orders", 20, orders.Module)
//		resp, err := http.Get(app.PublicURL + "/hello/ann")
//		...
//	}
package svctest

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/svc-dev/svc/svc"
)

// App is a started service and the base URLs of its listeners.
type App struct {
	*svc.App
	PublicURL  string // http://127.0.0.1:<port>
	PrivateURL string
	AdminURL   string
}

// Options adjust Start.
type Options struct {
	Env    map[string]string // the service's environment (default empty)
	Values map[string]string // config values above every layer
}

// Start assembles and starts the service with its listeners on 127.0.0.1
// port 0, shutdown.drain 0 and CONFIG_DIR a fresh temporary directory, and
// stops it in t.Cleanup. It fails the test on any start error.
func Start(t testing.TB, name string, offset int, opts ...svc.Option) *App {
	t.Helper()
	return StartWith(t, name, offset, Options{}, opts...)
}

// StartWith is Start with an environment and config values.
func StartWith(t testing.TB, name string, offset int, o Options, opts ...svc.Option) *App {
	t.Helper()
	env := map[string]string{svc.EnvConfigDir: t.TempDir()}
	maps.Copy(env, o.Env)
	values := map[string]string{
		"admin.host": "127.0.0.1", "admin.port": "0",
		"public.host": "127.0.0.1", "public.port": "0",
		"private.host": "127.0.0.1", "private.port": "0",
		"shutdown.drain": "0s",
	}
	maps.Copy(values, o.Values)
	all := append([]svc.Option{svc.WithEnv(env), svc.WithValues(values)}, opts...)
	a, err := svc.New(name, offset, all...)
	if err != nil {
		t.Fatalf("svctest: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatalf("svctest: start %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Stop(ctx); err != nil {
			t.Errorf("svctest: stop %s: %v", name, err)
		}
	})
	return &App{
		App:        a,
		PublicURL:  svc.URL(a.PublicAddr()),
		PrivateURL: svc.URL(a.PrivateAddr()),
		AdminURL:   svc.URL(a.AdminAddr()),
	}
}
