package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/svc-dev/svc/internal/etcdtest"
)

// evil holds what a hostile registry value or admin answer may carry: an
// OSC that sets the window title, a CSI that clears the screen, a C1 CSI,
// a carriage return, DEL, a right-to-left override, a tab and a newline.
const evil = "\x1b]0;pwned\x07\x1b[2J\u009b31m\rx\x7f\u202eab\tc\nd"

// evilShown is evil as a table cell shows it.
const evilShown = `\x1b]0;pwned\x07\x1b[2J\u009b31m\rx\x7f\u202eab\tc\nd`

// assertSafe fails unless every rune of out may reach a terminal raw:
// graphic, a newline or a tab, valid UTF-8.
func assertSafe(t *testing.T, what, out string) {
	t.Helper()
	for i, r := range out {
		if (r == utf8.RuneError && !strings.HasPrefix(out[i:], "\uFFFD")) || !(unicode.IsGraphic(r) || r == '\n' || r == '\t') {
			t.Errorf("%s: rune %U at byte %d reaches the terminal raw:\n%q", what, r, i, out)
			return
		}
	}
}

func TestCleanCell(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"plain v1.2.3", "plain v1.2.3"},
		{"héllo wörld 日本 ✓", "héllo wörld 日本 ✓"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"a\tb\nc\rd", `a\tb\nc\rd`},
		{"\x00\x7f", `\x00\x7f`},
		{"\u009b2J", `\u009b2J`},
		{"\u202eevil\u2066", `\u202eevil\u2066`},
		{"\u2028", `\u2028`},
		{"bad\xffutf8\xc3", `bad\xffutf8\xc3`},
		{"\U000E0001tag", `\U000e0001tag`},
		{evil, evilShown},
	} {
		if got := cleanCell(tc.in); got != tc.want {
			t.Errorf("cleanCell(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

func TestTermWriter(t *testing.T) {
	t.Parallel()
	const in = "ok ✓ 日本\n\tindented\x1b[31mred\u009b\r\u202e\xff end é"
	const want = "ok ✓ 日本\n\tindented\\x1b[31mred\\u009b\\r\\u202e\\xff end é"
	// Every way of cutting the input in two writes gives the same output:
	// a rune split across writes is held back, not escaped byte by byte.
	for cut := range len(in) + 1 {
		var out bytes.Buffer
		tw := &termWriter{w: &out}
		for _, part := range []string{in[:cut], in[cut:]} {
			if n, err := tw.Write([]byte(part)); n != len(part) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", part, n, err)
			}
		}
		if err := tw.Flush(); err != nil {
			t.Fatal(err)
		}
		if out.String() != want {
			t.Fatalf("cut at %d: wrote %q; want %q", cut, out.String(), want)
		}
	}
	// A rune cut short at the very end is escaped as the bytes it is.
	var out bytes.Buffer
	tw := &termWriter{w: &out}
	tw.Write([]byte("end \xe6\x97"))
	if out.String() != "end " {
		t.Errorf("before Flush: %q; want the incomplete rune held back", out.String())
	}
	tw.Flush()
	if out.String() != `end \xe6\x97` {
		t.Errorf("after Flush: %q", out.String())
	}
}

func TestEscapeJSON(t *testing.T) {
	t.Parallel()
	v := map[string]any{"name": evil, "list": []string{"\U0001F600 \u009b \U000E0001", "plain"}, "n": 1}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got := escapeJSON(b)
	assertSafe(t, "escapeJSON", string(got))
	var back map[string]any
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("escapeJSON made invalid JSON: %v\n%s", err, got)
	}
	if want := map[string]any{"name": evil, "list": []any{"\U0001F600 \u009b \U000E0001", "plain"}, "n": 1.0}; !reflect.DeepEqual(back, want) {
		t.Errorf("escapeJSON changed the value: %#v; want %#v", back, want)
	}
	if !strings.Contains(string(got), `\u009b`) || !strings.Contains(string(got), `\udb40\udc01`) {
		t.Errorf("escapeJSON: want \\u escapes of the C1 control and the tag character:\n%s", got)
	}
}

// TestHostileRegistry plants hostile values in a real etcd: ls shows them
// escaped, in the table, in warnings and in JSON.
func TestHostileRegistry(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	val, _ := json.Marshal(map[string]any{
		"Op": 0, "Addr": "127.0.0.1:1",
		"Metadata": map[string]any{"name": evil, "id": evil, "version": evil, "host": "127.0.0.1", "started_at": evil},
	})
	put(t, cli,
		"svc/evil/services/x/i1", string(val),
		"svc/evil/services/y/\x1b]0;key\x07", "\x1b]0;not json\x07",
	)
	env := map[string]string{"ETCD_ENDPOINTS": strings.Join(srv.Endpoints(), ",")}

	r := svcctl(t, env, "ls", "--env", "evil")
	want(t, r, 0, evilShown, "1 instance of 1 service in evil")
	assertSafe(t, "ls stdout", r.stdout)
	assertSafe(t, "ls stderr", r.stderr)
	if !strings.Contains(r.stderr, `skipping svc/evil/services/y/\x1b]0;key\x07`) {
		t.Errorf("ls: want the unreadable value's key escaped in the warning:\n%s", r)
	}

	r = svcctl(t, env, "ls", "--env", "evil", "--json")
	want(t, r, 0)
	assertSafe(t, "ls --json", r.stdout)
	var got struct {
		Services map[string][]instance `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("ls --json: %v\n%s", err, r.stdout)
	}
	if in := got.Services[evil]; len(in) != 1 || in[0].Name != evil || in[0].Version != evil {
		t.Errorf("ls --json = %+v; want the instance with its values intact", got)
	}
}

// fakeAdmin stands in for a hostile service's admin and private ports:
// every string it answers is evil.
func fakeAdmin(t *testing.T) (hostport string, port int) {
	t.Helper()
	var self int
	mux := http.NewServeMux()
	js := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"name": evil, "environment": evil, "version": evil, "instance": evil,
			"ports": map[string]int{"admin": self, "public": self, "private": self}})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		js(w, 503, map[string]string{"status": evil})
	})
	mux.HandleFunc("GET /admin/process", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"pid": 1, "go_version": evil, "uptime": evil, "os": evil, "arch": evil, "executable": evil})
	})
	mux.HandleFunc("GET /admin/config", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"keys": []map[string]string{{"key": evil, "value": evil, "layer": evil}}})
	})
	mux.HandleFunc("GET /admin/loglevel", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]string{"level": evil})
	})
	mux.HandleFunc("PUT /admin/loglevel", func(w http.ResponseWriter, r *http.Request) {
		js(w, 400, map[string]string{"error": evil})
	})
	mux.HandleFunc("POST /admin/drain", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]string{"state": evil})
	})
	mux.HandleFunc("GET /admin/tasks", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"tasks": []map[string]string{{"name": evil, "help": evil}}})
	})
	mux.HandleFunc("POST /admin/tasks/{name}", func(w http.ResponseWriter, r *http.Request) {
		for i := range 3 {
			fmt.Fprintf(w, "line %d %s\n", i, evil)
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("GET /admin/stack", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "goroutine 1 [running]:\n\t"+evil+"\n")
	})
	mux.HandleFunc("GET /admin/build", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"go_version": evil, "path": evil, "main": map[string]string{"path": evil, "version": evil},
			"deps": []map[string]string{{"path": evil, "version": evil}}, "settings": map[string]string{evil: evil}})
	})
	mux.HandleFunc("GET /admin/memstats", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"last_pause": evil, "pause_total": evil})
	})
	mux.HandleFunc("POST /admin/gc", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"duration": evil})
	})
	mux.HandleFunc("GET /admin/registry", func(w http.ResponseWriter, r *http.Request) {
		js(w, 200, map[string]any{"state": evil})
	})
	mux.HandleFunc("GET /admin/text", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, evil)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	self, _ = strconv.Atoi(u.Port())
	return u.Host, self
}

// TestHostileService runs every command that prints a service's answers
// against a fake admin listener whose every string is hostile.
func TestHostileService(t *testing.T) {
	t.Parallel()
	hostport, port := fakeAdmin(t)
	env := scanEnv(port)
	for _, tc := range []struct {
		args []string
		code int
		want string // in stdout on success, in stderr otherwise
	}{
		{[]string{"ps"}, 0, evilShown},
		{[]string{"ps", "--json"}, 0, `\u001b]0;pwned\u0007`},
		{[]string{hostport, "info"}, 0, evilShown},
		{[]string{hostport, "info", "--json"}, 0, `\u009b31m`},
		{[]string{hostport, "config"}, 0, evilShown},
		{[]string{hostport, "loglevel"}, 0, evilShown},
		{[]string{hostport, "loglevel", "debug"}, exitError, evilShown},
		{[]string{hostport, "drain"}, 0, evilShown},
		{[]string{hostport, "tasks"}, 0, evilShown},
		{[]string{hostport, "task", "x"}, 0, `line 2 \x1b]0;pwned\x07`},
		{[]string{hostport, "stack"}, 0, "goroutine 1 [running]:\n\t" + `\x1b]0;pwned`},
		{[]string{hostport, "build"}, 0, evilShown},
		{[]string{hostport, "memstats"}, 0, evilShown},
		{[]string{hostport, "gc"}, 0, evilShown},
		{[]string{hostport, "registry"}, 0, `\u001b]0;pwned`},
		{[]string{hostport, "get", "/admin/config"}, 0, `\u001b]0;pwned`},
		{[]string{hostport, "get", "/admin/text"}, 0, `\x1b]0;pwned\x07`},
	} {
		t.Run(strings.ReplaceAll(strings.Join(tc.args, " "), hostport, "svc"), func(t *testing.T) {
			r := svcctl(t, env, tc.args...)
			want(t, r, tc.code, tc.want)
			assertSafe(t, "stdout", r.stdout)
			assertSafe(t, "stderr", r.stderr)
			if strings.HasSuffix(tc.args[len(tc.args)-1], "json") || tc.args[len(tc.args)-1] == "registry" || tc.args[len(tc.args)-1] == "/admin/config" {
				if !json.Valid([]byte(r.stdout)) {
					t.Errorf("not JSON any more:\n%s", r.stdout)
				}
			}
		})
	}

	// --raw is the way to get the bytes as they are, for a pipe.
	r := svcctl(t, env, hostport, "get", "/admin/text", "--raw")
	if want(t, r, 0); r.stdout != evil {
		t.Errorf("get --raw = %q; want %q", r.stdout, evil)
	}
}

// TestPprofFileName: a service's name is not trusted as a file name.
// Not parallel: it changes the working directory.
func TestPprofFileName(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"name":"../../tmp/x\u001b"}`)
	})
	mux.HandleFunc("GET /debug/pprof/heap", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "profile") })
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Chdir(t.TempDir())
	host := strings.TrimPrefix(srv.URL, "http://")
	r := svcctl(t, nil, host, "pprof", "heap")
	_, port, _ := net.SplitHostPort(host)
	want(t, r, 0, "wrote 127.0.0.1-"+port+"-heap-")
}
