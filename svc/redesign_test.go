package svc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

// Every key may come from etcd and takes effect: admin.token only in
// etcd satisfies admin.host=0.0.0.0 (it failed with "admin.token is
// required" when settings were decoded before etcd), and log.format=text
// in etcd makes the log text (it stayed JSON).
func TestEtcdSetsBootstrapDependentKeys(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	put(t, cli, "svc/dev/config/tok/admin.token", "s3cret-from-etcd")
	put(t, cli, "svc/dev/config/tok/log.format", "text")
	var logs svctest.LogBuffer
	app := svctest.StartWith(t, "tok", 50, svctest.Options{
		Env:    map[string]string{"ETCD_ENDPOINTS": strings.Join(etcd.Endpoints(), ","), "REGISTRY_HOST": "127.0.0.1"},
		Values: map[string]string{"admin.host": "0.0.0.0", "registry.interval": "50ms"},
	}, svc.WithOutput(io.Discard, &logs))
	c := svctest.Client(t)
	if r := do(t, c, "GET", app.AdminURL+"/admin/config", ""); r.code != http.StatusUnauthorized {
		t.Errorf("GET /admin/config without the token from etcd = %d; want 401", r.code)
	}
	if r := do(t, c, "GET", app.AdminURL+"/admin/config", "", "Authorization", "Bearer s3cret-from-etcd"); r.code != 200 {
		t.Errorf("GET /admin/config with the token from etcd = %d; want 200", r.code)
	}
	line := firstLine(t, &logs, "started")
	if strings.HasPrefix(line, "{") || !strings.Contains(line, "msg=started") {
		t.Errorf("log.format=text from etcd: the started line is %q; want slog's text format", line)
	}
}

// firstLine waits for a log line containing s.
func firstLine(t *testing.T, logs *svctest.LogBuffer, s string) string {
	t.Helper()
	var line string
	svctest.WaitFor(t, 10*time.Second, "a log line with "+s, func() bool {
		for l := range strings.SplitSeq(logs.String(), "\n") {
			if strings.Contains(l, s) {
				line = l
				return true
			}
		}
		return false
	})
	return line
}

// With etcd down, /readyz still lists the etcd config layer's check beside
// the service's own (the service's checks used to overwrite it).
func TestReadyzKeepsFrameworkChecksWithServiceChecks(t *testing.T) {
	etcd := etcdtest.Start(t)
	eps := strings.Join(etcd.Endpoints(), ",")
	etcd.Stop()
	app := svctest.StartWith(t, "down", 60, svctest.Options{
		Env:    map[string]string{"ETCD_ENDPOINTS": eps, "REGISTRY_HOST": "127.0.0.1"},
		Values: map[string]string{"registry.interval": "50ms"},
	}, svc.WithOutput(io.Discard, io.Discard), svc.ReadinessFunc("mine", func(context.Context) error { return nil }))
	r := do(t, svctest.Client(t), "GET", app.PrivateURL+"/readyz", "")
	var body struct {
		Checks map[string]struct{ Status string }
	}
	if err := json.Unmarshal([]byte(r.body), &body); err != nil {
		t.Fatalf("/readyz: %v: %s", err, r.body)
	}
	for _, name := range []string{"mine", "config", "registry", "discovery"} {
		if _, ok := body.Checks[name]; !ok {
			t.Errorf("/readyz has no %q check: %s", name, r.body)
		}
	}
	if body.Checks["config"].Status != "warn" {
		t.Errorf("/readyz config = %q with etcd down; want warn", body.Checks["config"].Status)
	}
}

// Each route module has its own group: a module that calls r.Use works in
// either order and its middleware touches no other module.
func TestRouteModulesAreIsolated(t *testing.T) {
	plain := svc.PublicRoutes(func(r chi.Router) {
		r.Get("/plain", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "plain") })
	})
	tagged := svc.PublicRoutes(func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Tagged", "yes")
				next.ServeHTTP(w, r)
			})
		})
		r.Get("/tagged", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "tagged") })
	})
	for name, opts := range map[string][]svc.Option{
		"plain first":  {plain, tagged},
		"tagged first": {tagged, plain},
	} {
		t.Run(name, func(t *testing.T) {
			app := svctest.Start(t, "iso", 70, append(opts, svc.WithOutput(io.Discard, io.Discard))...)
			c := svctest.Client(t)
			for path, wantTag := range map[string]string{"/plain": "", "/tagged": "yes"} {
				resp, err := c.Get(app.PublicURL + path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("X-Tagged") != wantTag {
					t.Errorf("GET %s = %d, X-Tagged %q; want 200, %q", path, resp.StatusCode, resp.Header.Get("X-Tagged"), wantTag)
				}
			}
		})
	}
}

func helloRoutes(r chi.Router) { r.Get("/hello/{name}", func(http.ResponseWriter, *http.Request) {}) }

func otherHello(r chi.Router) {
	r.Route("/hello", func(r chi.Router) { r.Get("/{name}", func(http.ResponseWriter, *http.Request) {}) })
}

func healthz(r chi.Router) { r.Handle("/healthz", http.NotFoundHandler()) }

// A method and pattern registered by two modules fails New with one line
// naming both (one used to shadow the other silently).
func TestDuplicateRoutesFailNew(t *testing.T) {
	tests := []struct {
		name string
		opts []svc.Option
		want []string
	}{
		{"same pattern", []svc.Option{svc.PublicRoutes(helloRoutes), svc.PublicRoutes(otherHello)},
			[]string{"GET /hello/{name}", "helloRoutes", "otherHello"}},
		{"a framework route", []svc.Option{svc.PrivateRoutes(healthz)},
			[]string{"/healthz", "svc", "healthz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append(tt.opts, svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}), svc.WithOutput(io.Discard, io.Discard))
			_, err := svc.New("dup", 70, opts...)
			if err == nil {
				t.Fatal("New succeeded; want a duplicate route error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not name %q", msg, w)
				}
			}
		})
	}
	// Different methods on one pattern are fine.
	_, err := svc.New("dup", 70, svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}), svc.WithOutput(io.Discard, io.Discard),
		svc.PublicRoutes(helloRoutes),
		svc.PublicRoutes(func(r chi.Router) { r.Post("/hello/{name}", func(http.ResponseWriter, *http.Request) {}) }))
	if err != nil {
		t.Errorf("GET and POST of one pattern in two modules: %v", err)
	}
}

type greeting struct {
	Greeting string        `key:"greeting" default:"hello" doc:"the greeting" live:"true"`
	Timeout  time.Duration `key:"timeout" default:"2s" doc:"a startup-only duration"`
}

func (g *greeting) Validate() error {
	if strings.Contains(g.Greeting, "!") {
		return errors.New("hello.greeting must not shout")
	}
	return nil
}

// A typo in any key of a file is caught at start naming the file, the line
// and the nearest declared key.
func TestUndeclaredKeyInFileFailsStart(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"framework key", "{\n  \"log\": {\"levle\": \"debug\"}\n}", []string{"t.json:2", "unknown key log.levle", "did you mean log.level?"}},
		{"service key", "{\"hello\": {\n\"greting\": \"hi\"}}", []string{"t.json:2", "hello.greting", "did you mean hello.greeting?"}},
		{"nothing near", `{"zzzzzzzz": 1}`, []string{"t.json:1", "unknown key zzzzzzzz"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, "t.json", tt.file)
			var stderr bytes.Buffer
			_, err := svc.New("t", 70, svc.WithEnv(map[string]string{"CONFIG_DIR": dir}), svc.WithOutput(io.Discard, &stderr), svc.Config[greeting]("hello"))
			if err == nil {
				t.Fatal("New succeeded; want an unknown-key error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

// Under etcd, an undeclared key in the service's own prefix fails the
// start naming the etcd key; one under _all is ignored.
func TestUndeclaredKeyInEtcd(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client(t)
	put(t, cli, "svc/dev/config/_all/other-service.knob", "1") // another service's key: ignored
	env := map[string]string{"CONFIG_DIR": t.TempDir(), "ETCD_ENDPOINTS": strings.Join(etcd.Endpoints(), ",")}
	app, err := svc.New("und", 70, svc.WithEnv(env), svc.WithOutput(io.Discard, io.Discard), svc.Config[greeting]("hello"))
	if err != nil {
		t.Fatalf("an undeclared key under _all: %v; want it ignored", err)
	}
	t.Cleanup(func() { app.Stop(context.Background()) })
	if _, ok := app.Config().Lookup("other-service.knob"); ok {
		t.Error("an undeclared _all key shows in the configuration")
	}
	put(t, cli, "svc/dev/config/und/hello.greeeting", "hi")
	_, err = svc.New("und", 70, svc.WithEnv(env), svc.WithOutput(io.Discard, io.Discard), svc.Config[greeting]("hello"))
	if err == nil || !strings.Contains(err.Error(), "etcd key svc/dev/config/und/hello.greeeting") || !strings.Contains(err.Error(), "did you mean hello.greeting?") {
		t.Errorf("undeclared own etcd key: err = %v; want it named with a suggestion", err)
	}
}

// A declared, live key of the service follows reloads; a reload that
// brings an undeclared key, a value of the wrong type or one Validate
// refuses is rejected and the previous configuration stays.
func TestDeclaredConfigReload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "rl.json", `{"hello":{"greeting":"hi"}}`)
	var got *config.Struct[greeting]
	app := svctest.StartWith(t, "rl", 70, svctest.Options{Env: map[string]string{"CONFIG_DIR": dir}},
		svc.WithOutput(io.Discard, io.Discard), svc.Config[greeting]("hello"),
		svc.Invoke(func(s *config.Struct[greeting]) { got = s }))
	if g := got.Get(); g.Greeting != "hi" || g.Timeout != 2*time.Second {
		t.Fatalf("at start: %+v; want hi, 2s", g)
	}
	c := svctest.Client(t)
	reload := func(file string) map[string]any {
		t.Helper()
		writeFile(t, dir, "rl.json", file)
		r := do(t, c, "POST", app.AdminURL+"/admin/config/reload", "")
		var rep map[string]any
		_ = json.Unmarshal([]byte(r.body), &rep)
		return rep
	}
	// The file watcher may apply a change before the POST does: what
	// counts is the state after it, and the rejections it reports.
	if reload(`{"hello":{"greeting":"hey"}}`); got.Get().Greeting != "hey" {
		t.Errorf("live change: greeting %q; want hey", got.Get().Greeting)
	}
	for name, file := range map[string]string{
		"undeclared":   `{"hello":{"greeting":"yo","greting":"x"}}`,
		"wrong type":   `{"hello":{"greeting":"hey","timeout":"soon"}}`,
		"validate":     `{"hello":{"greeting":"yo!"}}`,
		"restart-only": `{"hello":{"greeting":"hey","timeout":"forever"}}`,
	} {
		reload(`{"hello":{"greeting":"hey"}}`)
		rep := reload(file)
		if rejected, _ := rep["rejected"].([]any); len(rejected) == 0 {
			t.Errorf("%s: reload reports no rejection: %v", name, rep)
		}
		if g := got.Get(); g.Greeting != "hey" || g.Timeout != 2*time.Second {
			t.Errorf("%s: %+v after a rejected reload; want hey, 2s kept", name, g)
		}
	}
}

// Settings carry the admin token and the etcd password into every
// constructor: however they are printed or logged, the secrets and the
// credentials in endpoints stay hidden.
func TestSettingsPrintRedacted(t *testing.T) {
	var logs svctest.LogBuffer
	var st svc.Settings
	svctest.StartWith(t, "sec", 70, svctest.Options{
		Env:    map[string]string{"ETCD_PASSWORD": "hunter2"},
		Values: map[string]string{"admin.token": "t0ken-value"},
	}, svc.WithOutput(io.Discard, &logs), svc.Invoke(func(s svc.Settings, log *slog.Logger) {
		st = s
		log.Info("settings", "settings", s)
	}))
	st.Etcd.Endpoints = []string{"http://root:pa55word@10.0.0.1:2379"}
	b, _ := json.Marshal(st)
	for _, shown := range []string{
		fmt.Sprintf("%v", st), fmt.Sprintf("%+v", st), fmt.Sprintf("%#v", st), string(b), logs.String(),
	} {
		for _, secret := range []string{"t0ken-value", "hunter2", "pa55word"} {
			if strings.Contains(shown, secret) {
				t.Errorf("%q shows the secret %q", shown, secret)
			}
		}
	}
	if st.AdminToken.Reveal() != "t0ken-value" {
		t.Error("Reveal does not return the token")
	}
}

// A hook appended by a top-level svc.Invoke starts before the listeners
// bind and stops after they stopped, like a constructor's inside a module
// (it used to start after registration and stop first).
func TestTopLevelInvokeHooksWrapTheListeners(t *testing.T) {
	var portAtStart = -1
	var publicAddr string
	var dialAtStop error
	app := svctest.Start(t, "order", 70, svc.WithOutput(io.Discard, io.Discard),
		svc.Invoke(func(lc fx.Lifecycle, in *svc.Instance) {
			lc.Append(fx.Hook{
				OnStart: func(context.Context) error { portAtStart = in.Info().Ports.Public; return nil },
				OnStop: func(context.Context) error {
					c, err := net.DialTimeout("tcp", publicAddr, time.Second)
					if err == nil {
						c.Close()
					}
					dialAtStop = err
					return nil
				},
			})
		}))
	publicAddr = app.PublicAddr()
	if portAtStart != 0 {
		t.Errorf("the service's start hook saw public port %d; want 0 (not bound yet)", portAtStart)
	}
	if err := app.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if dialAtStop == nil {
		t.Error("the service's stop hook could still connect to the public port; want the servers stopped first")
	}
}

// A configuration change is an audit line whatever the log level.
func TestConfigChangesAreAuditedAtLevelError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "aud.json", `{"log":{"level":"error","format":"json"},"hello":{"greeting":"hi"}}`)
	var logs svctest.LogBuffer
	app := svctest.StartWith(t, "aud", 70, svctest.Options{Env: map[string]string{"CONFIG_DIR": dir}},
		svc.WithOutput(io.Discard, &logs), svc.Config[greeting]("hello"))
	writeFile(t, dir, "aud.json", `{"log":{"level":"error","format":"json"},"hello":{"greeting":"hey"}}`)
	if r := do(t, svctest.Client(t), "POST", app.AdminURL+"/admin/config/reload", ""); r.code != 200 {
		t.Fatalf("reload = %d %s", r.code, r.body)
	}
	line := firstLine(t, &logs, `"key":"hello.greeting"`)
	if !strings.Contains(line, `"audit":true`) || !strings.Contains(line, `"value":"hey"`) {
		t.Errorf("config change at level error: %s; want an audit line", line)
	}
}

// A bad value of a startup-only key is rejected at reload, the old one
// stays in force, and /admin/config reports the rejection; a good one
// waits for a restart and is reported so.
func TestAdminConfigReportsHeldValues(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "held.json", `{"shutdown":{"timeout":"10s"}}`)
	app := svctest.StartWith(t, "held", 70, svctest.Options{Env: map[string]string{"CONFIG_DIR": dir}}, svc.WithOutput(io.Discard, io.Discard))
	c := svctest.Client(t)
	type held struct{ Key, Value, Error string }
	type view struct {
		Keys            []struct{ Key, Value, Layer string }
		Rejected        []held
		RestartRequired []struct{ Key string } `json:"restart_required"`
	}
	get := func() view {
		return decode[view](t, do(t, c, "GET", app.AdminURL+"/admin/config", ""))
	}
	inForce := func(v view) string {
		for _, k := range v.Keys {
			if k.Key == "shutdown.timeout" {
				return k.Value
			}
		}
		return ""
	}
	writeFile(t, dir, "held.json", `{"shutdown":{"timeout":"soon"}}`)
	do(t, c, "POST", app.AdminURL+"/admin/config/reload", "")
	v := get()
	if len(v.Rejected) != 1 || v.Rejected[0].Key != "shutdown.timeout" || v.Rejected[0].Value != "soon" || v.Rejected[0].Error == "" {
		t.Errorf("/admin/config rejected = %+v; want shutdown.timeout's bad value and why", v.Rejected)
	}
	if got := inForce(v); got != "10s" {
		t.Errorf("shutdown.timeout in force = %q; want 10s kept", got)
	}
	writeFile(t, dir, "held.json", `{"shutdown":{"timeout":"20s"}}`)
	do(t, c, "POST", app.AdminURL+"/admin/config/reload", "")
	if v := get(); len(v.Rejected) != 0 || len(v.RestartRequired) != 1 || v.RestartRequired[0].Key != "shutdown.timeout" {
		t.Errorf("/admin/config after a good startup-only change: rejected %+v, restart_required %+v", v.Rejected, v.RestartRequired)
	}
}
