package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/svctest"
)

// proc is the built binary running in a temporary directory with an empty
// environment.
type proc struct {
	cmd    *exec.Cmd
	stdout *svctest.LogBuffer
	stderr *svctest.LogBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, once exited is closed
}

// startBinary starts the binary with args in dir, with only env as its
// environment. The process is killed when the test ends if still running.
func startBinary(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	return startCommand(t, dir, env, binary, args...)
}

// startCommand is startBinary for any command: name with args.
func startCommand(t *testing.T, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	p := newProc()
	p.cmd = exec.Command(name, args...)
	p.cmd.Dir = dir
	p.cmd.Env = append([]string{}, env...) // non-nil: nothing inherited
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.start(t)
	return p
}

// newProc returns a proc with empty output buffers, to start.
func newProc() *proc {
	return &proc{stdout: &svctest.LogBuffer{}, stderr: &svctest.LogBuffer{}, exited: make(chan struct{})}
}

// start starts p.cmd, records its end in p.err and p.exited, and kills it
// when the test ends if it still runs.
func (p *proc) start(t *testing.T) {
	t.Helper()
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", p.cmd.Path, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	})
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(d):
		t.Fatalf("process still running after %v\nstderr:\n%s", d, p.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// runBinary runs the binary to completion and returns its exit code,
// stdout and stderr.
func runBinary(t *testing.T, dir string, env []string, args ...string) (int, string, string) {
	t.Helper()
	p := startBinary(t, dir, env, args...)
	code := p.wait(t, 20*time.Second)
	return code, p.stdout.String(), p.stderr.String()
}

// waitReady polls url until it answers 200; it fails at once if the
// process exits first.
func (p *proc) waitReady(t *testing.T, c *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-p.exited:
			t.Fatalf("process exited before %s answered 200: %v\nstderr:\n%s", url, p.err, p.stderr.String())
		default:
		}
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer 200 within 15s (last: %v)\nstderr:\n%s", url, err, p.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// conventionalPorts are the example's ports at offset 10 with no
// configuration at all.
var conventionalPorts = []struct {
	name, addr string
}{
	{"admin", "127.0.0.1:4010"},
	{"public", ":8010"},
	{"private", ":8011"},
}

// requireConventionalPortsFree fails the test clearly when another process
// holds 4010, 8010 or 8011: the point of these tests is that the binary
// serves there with no configuration.
func requireConventionalPortsFree(t *testing.T) {
	t.Helper()
	for _, p := range conventionalPorts {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			t.Fatalf("the %s port %s is taken by another process (%v): this test runs the built binary with no configuration, "+
				"so it needs 4010, 8010 and 8011 free; stop whatever holds it (ss -ltnp)", p.name, p.addr, err)
		}
		ln.Close()
	}
}

// TestBinaryConventionalPorts: no flags, an empty environment and an empty
// working directory serve admin 4010, public 8010 and private 8011;
// SIGTERM exits 0.
func TestBinaryConventionalPorts(t *testing.T) {
	requireConventionalPortsFree(t)
	p := startBinary(t, t.TempDir(), nil)
	c := svctest.Client(t)
	p.waitReady(t, c, "http://127.0.0.1:8011/readyz")

	r := do(t, c, "GET", "http://127.0.0.1:8010/hello/world", "")
	hello := decode[struct {
		Message  string
		Port     int
		Instance string
	}](t, r)
	if r.code != 200 || hello.Message != "hello, world" || hello.Port != 8010 || hello.Instance == "" {
		t.Errorf("GET :8010/hello/world = %d %s; want 200 hello, world on port 8010", r.code, r.body)
	}
	type ports struct{ Public, Private, Admin int }
	want := ports{Public: 8010, Private: 8011, Admin: 4010}
	for _, url := range []string{"http://127.0.0.1:8011/info", "http://127.0.0.1:4010/"} {
		r := do(t, c, "GET", url, "")
		got := decode[struct {
			Name, Environment, Instance string
			Ports                       ports
		}](t, r)
		if r.code != 200 || got.Name != "example" || got.Environment != "dev" || got.Instance != hello.Instance || got.Ports != want {
			t.Errorf("GET %s = %d %s; want example, dev, instance %s, ports %+v", url, r.code, r.body, hello.Instance, want)
		}
	}
	if r := do(t, c, "GET", "http://127.0.0.1:8011/healthz", ""); r.code != 200 {
		t.Errorf("GET :8011/healthz = %d; want 200", r.code)
	}
	// The admin listener is on loopback only: not on another local address.
	if addrs := nonLoopbackIPv4(); len(addrs) > 0 {
		if conn, err := net.DialTimeout("tcp", net.JoinHostPort(addrs[0], "4010"), time.Second); err == nil {
			conn.Close()
			t.Errorf("admin port 4010 answers on %s; want loopback only", addrs[0])
		}
	}
	c.CloseIdleConnections()

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; want 0\nstderr:\n%s", code, p.stderr.String())
	}
	for _, want := range []string{`"msg":"started"`, `"public":"[::]:8010"`, `"msg":"shutting down"`, `"msg":"stopped"`} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("log has no %s:\n%s", want, p.stderr.String())
		}
	}
}

func nonLoopbackIPv4() []string {
	var out []string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			out = append(out, ipn.IP.String())
		}
	}
	return out
}

// TestBinaryGracefulShutdown: SIGTERM during /work?ms=1500 turns /readyz
// 503 while the drain lasts, the request still completes with 200, and the
// process exits 0.
func TestBinaryGracefulShutdown(t *testing.T) {
	requireConventionalPortsFree(t)
	p := startBinary(t, t.TempDir(), nil)
	c := svctest.Client(t)
	p.waitReady(t, c, "http://127.0.0.1:8011/readyz")

	type result struct {
		code    int
		body    string
		elapsed time.Duration
		err     error
	}
	done := make(chan result, 1)
	sent := make(chan struct{})
	go func() {
		start := time.Now()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(sent) },
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:8010/work?ms=1500", nil)
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{code: resp.StatusCode, body: string(b), elapsed: time.Since(start), err: err}
	}()
	<-sent
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// shutdown.drain is 1s by convention: /readyz answers 503 in it.
	svctest.WaitFor(t, 5*time.Second, "/readyz 503 during the drain", func() bool {
		resp, err := c.Get("http://127.0.0.1:8011/readyz")
		if err != nil {
			t.Fatalf("GET /readyz after SIGTERM: %v (want 503 while draining)", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	c.CloseIdleConnections()

	r := <-done
	if r.err != nil || r.code != 200 || !strings.Contains(r.body, `"slept_ms":1500`) {
		t.Errorf("in-flight GET /work?ms=1500 = %d %q, %v; want 200 slept_ms 1500", r.code, r.body, r.err)
	}
	if r.elapsed < 1500*time.Millisecond {
		t.Errorf("in-flight request took %v; want at least 1.5s", r.elapsed)
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code = %d; want 0\nstderr:\n%s", code, p.stderr.String())
	}
}

func TestBinaryHelp(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config", "example.json"), []byte(`{"log":{"level":"debug"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, arg := range []string{"--help", "-h", "-help"} {
		t.Run(arg, func(t *testing.T) {
			code, stdout, stderr := runBinary(t, dir, nil, arg)
			if code != 0 || stderr != "" {
				t.Fatalf("example-service %s: exit %d, stderr %q; want 0 and nothing on stderr", arg, code, stderr)
			}
			for _, want := range []string{
				// ports and their keys
				"admin", "127.0.0.1:4010", ":8010", ":8011", "ADMIN_PORT", "PUBLIC_PORT", "PRIVATE_PORT",
				// files looked for
				"config/example.json (found)", "config/example.dev.json (not found)", "CONFIG_DIR",
				// keys, variables, values and layers
				"log.level", "LOG_LEVEL", "debug", "file config/example.json",
				"shutdown.drain", "SHUTDOWN_DRAIN", "admin.token", "ADMIN_TOKEN", "etcd.endpoints", "ETCD_ENDPOINTS",
			} {
				if !strings.Contains(stdout, want) {
					t.Errorf("--help output has no %q:\n%s", want, stdout)
				}
			}
		})
	}
}

// TestBinaryBadInput: each bad input exits 1 with one clear line on
// stderr, before serving anything.
func TestBinaryBadInput(t *testing.T) {
	busy, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // not defer: the subtests run in parallel, after this function returns
	busyPort := strconv.Itoa(busy.Addr().(*net.TCPAddr).Port)

	tests := []struct {
		name  string
		args  []string
		env   []string
		files map[string]string // under the working directory
		want  []string          // substrings of the one line, in order
	}{
		{
			name: "unknown flag", args: []string{"--port=9000"},
			want: []string{`unknown argument "--port=9000"`, "--help"},
		},
		{
			name:  "malformed JSON",
			files: map[string]string{"config/example.json": "{\n  \"public\": {\n    \"port\": 9000,\n  }\n}\n"},
			want:  []string{"config/example.json:4:3", "invalid character '}'"},
		},
		{
			name: "wrong type in env", env: []string{"PUBLIC_PORT=abc"},
			want: []string{`public.port = "abc"`, "(from env PUBLIC_PORT)", "not an integer"},
		},
		{
			name:  "wrong type in a file",
			files: map[string]string{"config/example.json": `{"public": {"port": "abc"}}`},
			want:  []string{`public.port = "abc"`, "(from file config/example.json)", "not an integer"},
		},
		{
			name:  "wrong type in the environment's file",
			env:   []string{"ENVIRONMENT=qa"},
			files: map[string]string{"config/example.qa.json": `{"shutdown": {"timeout": 10}}`},
			want:  []string{`shutdown.timeout = "10"`, "(from file config/example.qa.json)", "duration"},
		},
		{
			name: "port in use", env: []string{"PUBLIC_PORT=" + busyPort, "ADMIN_PORT=0", "PRIVATE_PORT=0"},
			want: []string{"public listener", "port " + busyPort, "already in use", "public.port", "PUBLIC_PORT"},
		},
		{
			name: "admin off loopback without a token", env: []string{"ADMIN_HOST=0.0.0.0"},
			want: []string{`admin.host = "0.0.0.0"`, "(from env ADMIN_HOST)", "admin.token", "ADMIN_TOKEN"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			for name, content := range tt.files {
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			code, stdout, stderr := runBinary(t, dir, tt.env, tt.args...)
			if code != 1 {
				t.Errorf("exit code %d; want 1", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q; want nothing", stdout)
			}
			line := strings.TrimSuffix(stderr, "\n")
			if line == "" || strings.Contains(line, "\n") {
				t.Fatalf("stderr:\n%s\nwant exactly one line", stderr)
			}
			rest := line
			for _, w := range tt.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("stderr %q\nwant it to contain, in order, %q", line, tt.want)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

// TestBinarySecondSignal: SIGINT starts the same graceful shutdown as
// SIGTERM; a second signal during it ends the process at once, without
// waiting for the drain or an in-flight request.
func TestBinarySecondSignal(t *testing.T) {
	requireConventionalPortsFree(t)
	p := startBinary(t, t.TempDir(), nil)
	c := svctest.Client(t)
	p.waitReady(t, c, "http://127.0.0.1:8011/readyz")

	sent := make(chan struct{})
	go func() {
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			WroteRequest: func(httptrace.WroteRequestInfo) { close(sent) },
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:8010/work?ms=20000", nil)
		if resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-sent
	if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	svctest.WaitFor(t, 5*time.Second, "/readyz 503 after SIGINT", func() bool {
		resp, err := c.Get("http://127.0.0.1:8011/readyz")
		if err != nil {
			t.Fatalf("GET /readyz after SIGINT: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	c.CloseIdleConnections()
	start := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.wait(t, 5*time.Second)
	if d := time.Since(start); d > 900*time.Millisecond {
		t.Errorf("process took %v to end after the second signal; want it at once (before the 1s drain ends)", d)
	}
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGTERM {
		t.Errorf("process state %v; want killed by the second SIGTERM", p.cmd.ProcessState)
	}
}
