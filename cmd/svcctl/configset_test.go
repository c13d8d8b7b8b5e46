package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeConfigAdmin stands in for an admin listener that serves PUT and
// DELETE /admin/config/{key} and POST /admin/restart as the contract
// describes them (the server side is not built yet). It records the
// requests it gets.
type fakeConfigAdmin struct {
	mu       sync.Mutex // guards got, restarts, gets
	got      []string   // "METHOD path?query body"
	restarts int
	gets     int // GET / since the last restart
}

func (f *fakeConfigAdmin) start(t *testing.T, withRestart bool) string {
	t.Helper()
	js := func(w http.ResponseWriter, code int, v string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		io.WriteString(w, v)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/admin/config/{key}", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.got = append(f.got, r.Method+" "+r.URL.RequestURI()+" "+string(b))
		f.mu.Unlock()
		switch key := r.PathValue("key"); {
		case r.Method == http.MethodPut && key == "hello.greeting":
			js(w, 200, `{"key":"hello.greeting","value":"`+string(b)+`","layer":"admin","previous":{"value":"hello","layer":"default"},"expires":"2026-12-01T10:05:00Z"}`)
		case r.Method == http.MethodDelete && key == "hello.greeting":
			js(w, 200, `{"key":"hello.greeting","value":"hello","layer":"default","previous":"hi"}`)
		case r.Method == http.MethodPut && key == "hello.count":
			js(w, 400, `{"error":"config: hello.count = \"`+string(b)+`\": want an integer"}`)
		case r.Method == http.MethodPut && key == "public.port":
			js(w, 409, `{"error":"public.port is startup-only: it takes effect at the next start"}`)
		case r.Method == http.MethodPut && key == "registry.ttl":
			js(w, 202, `{"key":"registry.ttl","value":"20s","restart_required":true}`)
		case r.Method == http.MethodPut && key == "hello.motd":
			js(w, 200, `{"message":"hello.motd set to \"\u001b[2Jhi\" on 3 listeners"}`)
		default:
			js(w, 400, `{"error":"admin: unknown key `+key+`"}`)
		}
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.gets++
		instance := "i1"
		if f.restarts > 0 && f.gets > 2 { // the new process answers from the third GET on
			instance = "i2"
		}
		js(w, 200, `{"name":"alpha","instance":"`+instance+`","started_at":"2026-12-01T10:00:00Z","ports":{"admin":1}}`)
	})
	if withRestart {
		mux.HandleFunc("POST /admin/restart", func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			f.restarts++
			f.gets = 0
			f.mu.Unlock()
			js(w, 202, `{"state":"restarting"}`)
		})
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestConfigSetUnset(t *testing.T) {
	t.Parallel()
	f := &fakeConfigAdmin{}
	svc := f.start(t, true)
	for _, tc := range []struct {
		args []string
		code int
		want []string // in stdout on success, in stderr otherwise
		sent string   // the request the service got, "" for none
	}{
		{[]string{"set", "hello.greeting", "hi", "--for", "5m"}, 0,
			[]string{"hello.greeting = hi (from admin); was hello from default; reverts at 2026-12-01T10:05:00Z"},
			"PUT /admin/config/hello.greeting?for=5m0s hi"},
		{[]string{"set", "hello.greeting", "hi there"}, 0, []string{"hello.greeting = hi there"}, "PUT /admin/config/hello.greeting hi there"},
		{[]string{"unset", "hello.greeting"}, 0, []string{"hello.greeting = hello (from default); was hi"}, "DELETE /admin/config/hello.greeting "},
		{[]string{"set", "hello.count", "many"}, exitError, []string{`config: hello.count = "many": want an integer`}, "PUT /admin/config/hello.count many"},
		{[]string{"set", "public.port", "9000"}, exitError,
			[]string{"public.port is startup-only", "then svcctl " + svc + " restart"}, "PUT /admin/config/public.port 9000"},
		{[]string{"set", "registry.ttl", "20s"}, 0,
			[]string{"registry.ttl = 20s; not in force yet", "restart required: registry.ttl is startup-only; the value in force stays, and a restart drops overrides: set it in a file, etcd or the environment, then svcctl " + svc + " restart"},
			"PUT /admin/config/registry.ttl 20s"},
		{[]string{"set", "hello.motd", "x"}, 0, []string{`hello.motd set to "\x1b[2Jhi" on 3 listeners`}, "PUT /admin/config/hello.motd x"},
		{[]string{"set", "hello.greeting", "hi", "--json"}, 0, []string{`"layer": "admin"`}, "PUT /admin/config/hello.greeting hi"},
		{[]string{"set", "hello.greeting"}, exitUsage, []string{"usage: svcctl"}, ""},
		{[]string{"unset", "hello.greeting", "--for", "1m"}, exitUsage, []string{"config unset takes no --for"}, ""},
		{[]string{"set", "a/b", "x"}, exitUsage, []string{`"a/b" is not a configuration key`}, ""},
		{[]string{"set", "k", "v", "--for", "-1m"}, exitUsage, []string{"want a positive duration"}, ""},
		{[]string{"--for", "1m"}, exitUsage, []string{"config --for goes with config set"}, ""},
		{[]string{"frob", "k"}, exitUsage, []string{"usage: svcctl"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f.mu.Lock()
			f.got = nil
			f.mu.Unlock()
			r := svcctl(t, nil, append([]string{svc, "config"}, tc.args...)...)
			want(t, r, tc.code, tc.want...)
			assertSafe(t, "stdout", r.stdout)
			assertSafe(t, "stderr", r.stderr)
			f.mu.Lock()
			defer f.mu.Unlock()
			switch {
			case tc.sent == "" && len(f.got) != 0:
				t.Errorf("sent %q; want nothing sent", f.got)
			case tc.sent != "" && (len(f.got) != 1 || f.got[0] != tc.sent):
				t.Errorf("sent %q; want [%q]", f.got, tc.sent)
			}
		})
	}
	r := svcctl(t, nil, svc, "config", "set", "hello.greeting", "hi", "--json")
	var v map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v["value"] != "hi" {
		t.Errorf("config set --json = %v, %v; want the service's JSON", v, err)
	}
}

// A service whose svc has no PUT /admin/config/{key} answers the admin
// listener's 404; svcctl says why.
func TestConfigSetUnsupported(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"error":"no such admin endpoint; GET /admin lists them"}`)
	}))
	t.Cleanup(srv.Close)
	want(t, svcctl(t, nil, strings.TrimPrefix(srv.URL, "http://"), "config", "set", "log.level", "debug"), exitError,
		"the service's svc version does not serve config changes")
}

func TestRestart(t *testing.T) {
	t.Parallel()
	f := &fakeConfigAdmin{}
	svc := f.start(t, true)
	want(t, svcctl(t, nil, svc, "restart"), 0, svc+": restarting")
	r := svcctl(t, nil, svc, "restart", "--wait", "30s")
	want(t, r, 0, svc+": restarting", svc+": restarted: instance i2, started at 2026-12-01T10:00:00Z")
	f.mu.Lock()
	if f.restarts != 2 || f.gets != 3 {
		t.Errorf("restarts %d, GET / after the last %d; want 2, and polling until the third answered a new instance", f.restarts, f.gets)
	}
	f.mu.Unlock()
	want(t, svcctl(t, nil, svc, "restart", "--wait", "-1s"), exitUsage, "want a positive duration")

	old := (&fakeConfigAdmin{}).start(t, false)
	want(t, svcctl(t, nil, old, "restart"), exitError, "does not restart in place")
}

// TestConfigSetUnsetService drives config set and unset against a real
// service: the answers svcctl reads are the ones the admin port sends.
func TestConfigSetUnsetService(t *testing.T) {
	t.Parallel()
	alpha := startService(t, "alpha", 10, nil)
	port := strconv.Itoa(adminPort(alpha))
	env := scanEnv(adminPort(alpha))
	label := "alpha (127.0.0.1:" + port + ")"

	want(t, svcctl(t, env, "alpha", "config", "set", "log.level", "debug", "--for", "1h"), 0,
		"log.level = debug (from admin); was info from convention; reverts at ")
	want(t, svcctl(t, env, "alpha", "loglevel"), 0, "debug")
	r := svcctl(t, env, "alpha", "config")
	want(t, r, 0, "admin until ")
	if !regexp.MustCompile(`(?m)^log\.level +debug +admin until \d{4}-\d\d-\d\dT`).MatchString(r.stdout) {
		t.Errorf("config does not show log.level from admin with its expiry:\n%s", r.stdout)
	}
	want(t, svcctl(t, env, "alpha", "config", "set", "log.level", "loud"), exitError,
		label+`: config: log.level = "loud" (from admin): must be debug, info, warn or error`)
	want(t, svcctl(t, env, "alpha", "config", "set", "log.levle", "warn"), exitError, "unknown key log.levle (did you mean log.level?)")
	want(t, svcctl(t, env, port, "config", "set", "shutdown.timeout", "20s"), 0,
		"shutdown.timeout = 20s (from admin); was 10s from convention; not in force yet",
		"restart required: shutdown.timeout is startup-only")
	r = svcctl(t, env, port, "config", "set", "log.level", "warn", "--json")
	want(t, r, 0, `"layer": "admin"`, `"result": "applied"`)
	want(t, svcctl(t, env, "alpha", "config", "unset", "log.level"), 0, "log.level = info (from convention); was warn from admin")
	want(t, svcctl(t, env, "alpha", "loglevel"), 0, "info")
	want(t, svcctl(t, env, "alpha", "config", "unset", "log.level"), exitError, "admin: log.level has no override")
}
