package main

// In-place restarts of the built binary (SIGUSR2, POST /admin/restart)
// under load, a successor that fails, a plain SIGTERM under a keep-alive
// client that never retries, and SIGHUP.

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/svctest"
)

// startGroup starts exe in a process group of its own, with its stderr on
// a pipe the test reads (not through os/exec's copying goroutine, whose
// Wait would last as long as the successors that inherit the pipe). The
// whole group, successors included, is killed when the test ends.
func startGroup(t *testing.T, dir string, env []string, exe string) *svcProc {
	t.Helper()
	return parseStarted(t, startPiped(t, dir, env, exe))
}

// startPiped is startGroup for any command, without waiting for it to
// start.
func startPiped(t *testing.T, dir string, env []string, name string, args ...string) *proc {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := newProc()
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(p.stderr, r)
		r.Close()
	}()
	p.cmd = newCmd(name, dir, env)
	p.cmd.Args = append(p.cmd.Args, args...)
	p.cmd.Stderr = w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	w.Close()
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	pgid := p.cmd.Process.Pid
	t.Cleanup(func() {
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
		select {
		case <-read:
		case <-time.After(10 * time.Second):
			t.Errorf("the stderr pipe of process group %d is still open 10s after SIGKILL", pgid)
		}
	})
	return p
}

// newCmd is exe in dir with only env as its environment.
func newCmd(exe, dir string, env []string) *exec.Cmd {
	cmd := exec.Command(exe)
	cmd.Dir = dir
	cmd.Env = append([]string{}, env...) // non-nil: nothing inherited
	return cmd
}

// restartEnv is the environment of a restart test: free ports, loopback,
// JSON logs, no access log, a short drain.
func restartEnv(t *testing.T, extra ...string) []string {
	return append([]string{
		"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0",
		"PRIVATE_HOST=127.0.0.1", "PRIVATE_PORT=0",
		"ADMIN_PORT=0", "LOG_FORMAT=json", "LOG_ACCESS=false",
		"SHUTDOWN_DRAIN=300ms",
		"CONFIG_DIR=" + t.TempDir(),
	}, extra...)
}

// servingPID asks the admin port which process answers it.
func servingPID(t *testing.T, c *http.Client, admin string) int {
	t.Helper()
	code, body, err := fetch(c, "http://"+admin+"/admin/process")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /admin/process = %d %q, %v", code, body, err)
	}
	var p struct{ PID int }
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	return p.PID
}

// postRestart sends POST /admin/restart and returns the status and body.
func postRestart(t *testing.T, c *http.Client, admin string) (int, string) {
	t.Helper()
	resp, err := c.Post("http://"+admin+"/admin/restart", "", nil)
	if err != nil {
		t.Fatalf("POST /admin/restart: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// loads starts the three loads the restart tests run: Go's client with
// kept connections, Go's client with a new connection per request, and
// the raw keep-alive client that never retries.
func loads(s *svcProc) map[string]*load {
	url := "http://" + s.public + "/hello/load"
	return map[string]*load{
		"go keep-alive":      goLoad(url, 4, true),
		"go new connections": goLoad(url, 2, false),
		"raw keep-alive":     rawLoad(s.public, "/hello/load", 4),
	}
}

// stopLoads stops ls and fails the test for any failed request or
// connect; it returns the raw keep-alive client's counts.
func stopLoads(t *testing.T, ls map[string]*load) {
	t.Helper()
	for name, l := range ls {
		st := l.Stop()
		t.Logf("%s: %s", name, st)
		failed, connects := st.Failures()
		if len(failed)+len(connects) > 0 || st.ok.Load() == 0 {
			t.Errorf("%s: %d failed requests %q and %d failed connects %q (of %d ok); want none",
				name, len(failed), first(failed, 5), len(connects), first(connects, 5), st.ok.Load())
		}
	}
}

// okCount sums the successful requests of ls.
func okCount(ls map[string]*load) int64 {
	var n int64
	for _, l := range ls {
		n += l.stats.ok.Load()
	}
	return n
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// Ten in-place restarts, alternately SIGUSR2 and POST /admin/restart,
// under steady load from Go's client and from a raw keep-alive client
// that never retries: not one request fails and no connection is refused
// or reset. Each successor is a new process with a new instance id on the
// same ports; the first process exits 0.
func TestRestartInPlaceUnderLoad(t *testing.T) {
	// The drain must outlast the longest pause of a client between two
	// requests on a kept connection: only a request during the drain gets
	// the Connection: close that ends the connection cleanly. On a loaded
	// 2-core machine running the race detector, pauses of 300ms were seen.
	s := startGroup(t, t.TempDir(), restartEnv(t, "SHUTDOWN_DRAIN=1500ms"), binary)
	c := svctest.Client(t)
	s.waitReady(t, c, "http://"+s.private+"/readyz")
	first := servingPID(t, c, s.admin)
	ls := loads(s)

	pid := first
	seen := map[int]bool{pid: true}
	for i := range 10 {
		if i%2 == 0 {
			if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
				t.Fatal(err)
			}
		} else if code, body := postRestart(t, c, s.admin); code != http.StatusOK || !strings.Contains(body, `"state": "restarted"`) {
			t.Fatalf("restart %d: POST /admin/restart = %d %s; want 200 restarted", i+1, code, body)
		}
		svctest.WaitFor(t, 30*time.Second, "a new process serving the admin port", func() bool {
			next := servingPID(t, c, s.admin)
			if seen[next] {
				return false
			}
			seen[next], pid = true, next
			return true
		})
		c.CloseIdleConnections() // the next GET /admin/process reaches the new process
		// Steady load on the new process before the next restart.
		before := okCount(ls)
		svctest.WaitFor(t, 10*time.Second, "100 more requests served", func() bool { return okCount(ls) >= before+100 })
	}
	stopLoads(t, ls)

	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("first process exit code %d; want 0", code)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	svctest.WaitFor(t, 20*time.Second, "every process stopped", func() bool {
		return strings.Count(s.stderr.String(), `"msg":"stopped"`) == 11
	})
	log := s.stderr.String()
	if n := strings.Count(log, `"msg":"restarted in place"`); n != 10 {
		t.Errorf("%d restarted in place lines; want 10", n)
	}
	if n := strings.Count(log, `"inherited":"admin,public,private"`); n != 10 {
		t.Errorf("%d processes started on inherited sockets; want 10", n)
	}
}

// A successor that fails leaves the old process serving, under load, with
// no failed request: an executable replaced by a script that exits 3 is
// reported with its status and stderr; one that is not ready within
// restart.timeout is stopped. The real binary put back restarts.
func TestRestartFailedSuccessorKeepsServing(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "example-service")
	replace := func(content []byte) {
		t.Helper()
		// Remove first: a running executable cannot be written (ETXTBSY).
		if err := os.Remove(exe); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(exe, content, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	real, err := os.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, real, 0o755); err != nil {
		t.Fatal(err)
	}
	s := startGroup(t, dir, restartEnv(t, "RESTART_TIMEOUT=1s"), exe)
	c := svctest.Client(t)
	s.waitReady(t, c, "http://"+s.private+"/readyz")
	pid := servingPID(t, c, s.admin)
	ls := loads(s)

	replace([]byte("#!/bin/sh\necho starting >&2\necho boom >&2\nexit 3\n"))
	code, body := postRestart(t, c, s.admin)
	if code != http.StatusInternalServerError {
		t.Errorf("POST /admin/restart to a failing executable = %d %s; want 500", code, body)
	}
	for _, want := range []string{"exit status 3", "boom", "serves on"} {
		if !strings.Contains(body, want) {
			t.Errorf("the restart's error %s does not say %q", body, want)
		}
	}
	if got := servingPID(t, c, s.admin); got != pid {
		t.Fatalf("pid %d serves after a failed restart; want %d still", got, pid)
	}

	// SIGUSR2 to an executable that never gets ready: stopped after 1s.
	replace([]byte("#!/bin/sh\necho waiting forever >&2\nexec sleep 60\n"))
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	svctest.WaitFor(t, 20*time.Second, "the restart failure logged", func() bool {
		return strings.Contains(s.stderr.String(), "was not ready within 1s")
	})
	if got := servingPID(t, c, s.admin); got != pid {
		t.Fatalf("pid %d serves after a timed-out restart; want %d still", got, pid)
	}

	replace(real)
	if code, body := postRestart(t, c, s.admin); code != http.StatusOK {
		t.Fatalf("POST /admin/restart with the real binary back = %d %s; want 200", code, body)
	}
	stopLoads(t, ls)
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code of the process that handed over %d; want 0", code)
	}
}

// A plain SIGTERM under a raw keep-alive client that never retries: from
// the start of the drain every response says Connection: close, so not
// one request on a kept connection fails (before, the server closed kept
// connections under the client's next request: EOF or reset). Connects
// that fail once nothing listens are not failures of a request.
func TestSIGTERMUnderKeepAliveClient(t *testing.T) {
	s := startGroup(t, t.TempDir(), restartEnv(t, "SHUTDOWN_DRAIN=1500ms"), binary)
	c := svctest.Client(t)
	s.waitReady(t, c, "http://"+s.private+"/readyz")
	l := rawLoad(s.public, "/hello/load", 8)
	svctest.WaitFor(t, 10*time.Second, "load flowing", func() bool { return l.stats.ok.Load() > 100 })
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d; want 0", code)
	}
	st := l.Stop()
	t.Logf("raw keep-alive: %s", st)
	failed, _ := st.Failures()
	if len(failed) > 0 {
		t.Errorf("%d requests on kept connections failed during the stop: %q; want none", len(failed), first(failed, 5))
	}
	if st.closes.Load() == 0 {
		t.Error("no response said Connection: close during the drain")
	}
}

// SIGHUP reloads the configuration and logs what it found.
func TestSIGHUPReloads(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(conf, "example.json")
	if err := os.WriteFile(file, []byte(`{"hello":{"greeting":"hello"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := restartEnv(t)
	env[len(env)-1] = "CONFIG_DIR=" + conf
	s := startGroup(t, dir, env, binary)
	c := svctest.Client(t)
	s.waitReady(t, c, "http://"+s.private+"/readyz")

	if err := os.WriteFile(file, []byte(`{"hello":{"greeting":"hi"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	svctest.WaitFor(t, 10*time.Second, "the SIGHUP reload logged", func() bool {
		return strings.Contains(s.stderr.String(), `"msg":"SIGHUP: configuration reloaded"`)
	})
	r := do(t, c, "GET", "http://"+s.public+"/hello/you", "")
	if !strings.Contains(r.body, `"hi, you"`) {
		t.Errorf("GET /hello/you after SIGHUP = %s; want hi, you", r.body)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code %d; want 0", code)
	}
}
