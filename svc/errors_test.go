package svc_test

import (
	"context"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/svc-dev/svc/svc"
)

// TestNewErrors: bad input never starts a half-configured service; the one
// error names the rule, or the file and line:column, or the key, value and
// layer.
func TestNewErrors(t *testing.T) {
	tests := []struct {
		name   string
		svc    string
		offset int
		env    map[string]string
		files  map[string]string // in CONFIG_DIR
		values map[string]string
		want   []string // substrings of the error, in order; "DIR" is CONFIG_DIR
	}{
		{name: "empty name", svc: "", want: []string{`svc: service name ""`, "^[a-z][a-z0-9-]{0,62}$"}},
		{name: "upper case", svc: "Orders", want: []string{`service name "Orders"`, "must match"}},
		{name: "digit first", svc: "1orders", want: []string{`"1orders"`, "must match"}},
		{name: "underscore", svc: "user_sessions", want: []string{`"user_sessions"`, "must match"}},
		{name: "64 chars", svc: "a" + strings.Repeat("b", 63), want: []string{"must match"}},
		{name: "offset -1", svc: "ok", offset: -1, want: []string{"svc: offset -1", "0..998"}},
		{name: "offset 999", svc: "ok", offset: 999, want: []string{"svc: offset 999", "0..998"}},
		{
			name: "malformed JSON", svc: "ok",
			files: map[string]string{"ok.json": "{\n  \"public\": {\"port\": 9000,}\n}\n"},
			want:  []string{"DIR/ok.json:2:", "invalid character"},
		},
		{
			name: "malformed JSON in the environment's file", svc: "ok", env: map[string]string{"ENVIRONMENT": "qa"},
			files: map[string]string{"ok.qa.json": `{"log": `},
			want:  []string{"DIR/ok.qa.json:1:", "unexpected end of JSON input"},
		},
		{
			name: "JSON not an object", svc: "ok", files: map[string]string{"ok.json": `[1]`},
			want: []string{"DIR/ok.json:1:1", "JSON object"},
		},
		{
			name: "wrong type from env", svc: "ok", env: map[string]string{"PUBLIC_PORT": "abc"},
			want: []string{`public.port = "abc"`, "env PUBLIC_PORT", "not an integer"},
		},
		{
			name: "wrong type from file", svc: "ok", files: map[string]string{"ok.json": `{"public":{"port":"abc"}}`},
			want: []string{`public.port = "abc"`, "file DIR/ok.json", "not an integer"},
		},
		{
			name: "wrong duration", svc: "ok", env: map[string]string{"SHUTDOWN_DRAIN": "5"},
			want: []string{`shutdown.drain = "5"`, "env SHUTDOWN_DRAIN", "duration"},
		},
		{
			name: "port out of range", svc: "ok", env: map[string]string{"ADMIN_PORT": "70000"},
			want: []string{`admin.port = "70000"`, "env ADMIN_PORT", "0..65535"},
		},
		{
			name: "bad log level", svc: "ok", env: map[string]string{"LOG_LEVEL": "loud"},
			want: []string{`log.level = "loud"`, "env LOG_LEVEL", "debug, info, warn or error"},
		},
		{
			name: "admin off loopback without a token", svc: "ok", env: map[string]string{"ADMIN_HOST": "0.0.0.0"},
			want: []string{`admin.host = "0.0.0.0"`, "env ADMIN_HOST", "admin.token", "ADMIN_TOKEN"},
		},
		{
			name: "admin off loopback without a token, from a file", svc: "ok",
			files: map[string]string{"ok.json": `{"admin":{"host":"10.1.2.3"}}`},
			want:  []string{`admin.host = "10.1.2.3"`, "file DIR/ok.json", "ADMIN_TOKEN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			env := map[string]string{"CONFIG_DIR": dir}
			for k, v := range tt.env {
				env[k] = v
			}
			for name, content := range tt.files {
				writeFile(t, dir, name, content)
			}
			a, err := svc.New(tt.svc, tt.offset, svc.WithEnv(env), svc.WithOutput(io.Discard, io.Discard))
			if err == nil {
				t.Fatalf("New(%q, %d) with %v succeeded; want an error", tt.svc, tt.offset, tt.env)
			}
			if a != nil {
				t.Errorf("New returned an App with its error")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is several lines; want one:\n%s", msg)
			}
			rest := msg
			for _, w := range tt.want {
				w = strings.ReplaceAll(w, "DIR", filepath.ToSlash(dir))
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("New(%q, %d) error:\n  %s\nwant it to contain, in order: %q", tt.svc, tt.offset, msg, tt.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// A port in use fails Start naming the listener, the port and the key; the
// listeners already bound are closed again.
func TestStartPortInUse(t *testing.T) {
	tests := []struct {
		listener, key, env string
	}{
		{"admin", "admin.port", "ADMIN_PORT"},
		{"public", "public.port", "PUBLIC_PORT"},
		{"private", "private.port", "PRIVATE_PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.listener, func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			port := busy.Addr().(*net.TCPAddr).Port
			// Ports for the others: free now, and must be free again after
			// the failed start.
			free := freePorts(t, 3)
			values := map[string]string{
				"admin.host": "127.0.0.1", "public.host": "127.0.0.1", "private.host": "127.0.0.1",
				"admin.port": strconv.Itoa(free[0]), "public.port": strconv.Itoa(free[1]), "private.port": strconv.Itoa(free[2]),
			}
			values[tt.key] = strconv.Itoa(port)
			a, err := svc.New("busy", 60, svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}),
				svc.WithOutput(io.Discard, io.Discard), svc.WithValues(values))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			err = a.Start(context.Background())
			if err == nil {
				_ = a.Stop(context.Background())
				t.Fatalf("Start with %s %d in use succeeded", tt.key, port)
			}
			msg := err.Error()
			for _, want := range []string{tt.listener + " listener", strconv.Itoa(port), "already in use", tt.key, tt.env} {
				if !strings.Contains(msg, want) {
					t.Errorf("Start error %q; want it to name %q", msg, want)
				}
			}
			for _, p := range free {
				ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
				if err != nil {
					t.Errorf("port %d still bound after the failed start: %v", p, err)
					continue
				}
				ln.Close()
			}
		})
	}
}

// freePorts returns n ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

func TestURL(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"127.0.0.1:8010", "http://127.0.0.1:8010"},
		{"[::]:8010", "http://127.0.0.1:8010"},
		{"0.0.0.0:4010", "http://127.0.0.1:4010"},
		{":8011", "http://127.0.0.1:8011"},
		{"10.0.0.5:80", "http://10.0.0.5:80"},
		{"[::1]:8010", "http://[::1]:8010"},
		{"localhost:8010", "http://127.0.0.1:8010"},
		{"", ""},
		{"no-port", ""},
	}
	for _, tt := range tests {
		if got := svc.URL(tt.addr); got != tt.want {
			t.Errorf("URL(%q) = %q; want %q", tt.addr, got, tt.want)
		}
	}
}

func TestAddrsBeforeStart(t *testing.T) {
	a, err := svc.New("idle", 70, svc.WithEnv(map[string]string{"CONFIG_DIR": t.TempDir()}), svc.WithOutput(io.Discard, io.Discard))
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string]string{"AdminAddr": a.AdminAddr(), "PublicAddr": a.PublicAddr(), "PrivateAddr": a.PrivateAddr()} {
		if got != "" {
			t.Errorf("%s() before Start = %q; want \"\"", name, got)
		}
	}
	st := a.Settings()
	if st.Admin.Port != 4070 || st.Public.Port != 8070 || st.Private.Port != 8071 || st.Admin.Host != "127.0.0.1" {
		t.Errorf("Settings ports = admin %s:%d, public %d, private %d; want 127.0.0.1:4070, 8070, 8071",
			st.Admin.Host, st.Admin.Port, st.Public.Port, st.Private.Port)
	}
}
