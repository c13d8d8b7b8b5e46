//go:build unix

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/convention"
	"github.com/svc-dev/svc/svctest"
)

// The tests of svcctl up run the built svcctl in the module's root
// directory, so that catalog packages (./cmd/example-service) resolve as
// they would for a developer, and signal it as a terminal would.

var (
	svcctlOnce sync.Once
	svcctlBin  string // the built svcctl, shared by the tests of this file
	svcctlErr  error
	svcctlDir  string // where it was built; removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if svcctlDir != "" {
		os.RemoveAll(svcctlDir)
	}
	os.Exit(code)
}

// builtSvcctl builds svcctl once for the tests that run it as a process.
func builtSvcctl(t *testing.T) string {
	t.Helper()
	svcctlOnce.Do(func() {
		if svcctlDir, svcctlErr = os.MkdirTemp("", "svcctl-up-test-"); svcctlErr != nil {
			return
		}
		svcctlBin = filepath.Join(svcctlDir, "svcctl")
		out, err := exec.Command("go", "build", "-o", svcctlBin, ".").CombinedOutput()
		if err != nil {
			svcctlErr = fmt.Errorf("go build ./cmd/svcctl: %v\n%s", err, out)
		}
	})
	if svcctlErr != nil {
		t.Fatal(svcctlErr)
	}
	return svcctlBin
}

// moduleRoot is the directory of go.mod, where svcctl up runs.
func moduleRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	offsetsMu   sync.Mutex // guards offsetsUsed
	offsetsUsed = map[int]bool{}
)

// freeOffset returns a free offset that no other test of this process
// took (svctest.FreeOffset).
func freeOffset(t *testing.T) int {
	t.Helper()
	offsetsMu.Lock()
	defer offsetsMu.Unlock()
	o := svctest.FreeOffset(t, func(o int) bool { return offsetsUsed[o] })
	offsetsUsed[o] = true
	return o
}

// upProc is a running svcctl up.
type upProc struct {
	cmd            *exec.Cmd
	stdout, stderr *svctest.LogBuffer
	exited         chan struct{}
	err            error // Wait's, once exited is closed
}

// startUp runs svcctl up with args in the module root, with the test's
// environment and CONFIG_DIR a fresh directory. It is stopped when the
// test ends.
func startUp(t *testing.T, args ...string) *upProc {
	t.Helper()
	p := &upProc{stdout: &svctest.LogBuffer{}, stderr: &svctest.LogBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(builtSvcctl(t), append([]string{"up"}, args...)...)
	p.cmd.Dir = moduleRoot(t)
	p.cmd.Env = append(os.Environ(), "CONFIG_DIR="+t.TempDir())
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(45 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			t.Logf("svcctl up stdout:\n%s\nstderr:\n%s", p.stdout, p.stderr)
		}
	})
	return p
}

// waitOutput waits until stdout or stderr matches re and returns the
// submatches.
func (p *upProc) waitOutput(t *testing.T, d time.Duration, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var m []string
	svctest.WaitFor(t, d, "svcctl up to print "+re, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("svcctl up exited (%v) before printing %s\nstdout:\n%s\nstderr:\n%s", p.err, re, p.stdout, p.stderr)
		default:
		}
		if m = rx.FindStringSubmatch(p.stdout.String()); m == nil {
			m = rx.FindStringSubmatch(p.stderr.String())
		}
		return m != nil
	})
	return m
}

// writeCatalog writes a catalog of services, each name's value its JSON.
func writeCatalog(t *testing.T, services map[string]string) string {
	t.Helper()
	parts := []string{}
	for name, v := range services {
		parts = append(parts, strconv.Quote(name)+": "+v)
	}
	return writeFile(t, t.TempDir(), "services.json", `{"services": {`+strings.Join(parts, ", ")+`}}`)
}

// get answers the body of a GET, or the error.
func get(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s: %s: %s", url, resp.Status, b)
	}
	return string(b), nil
}

// adminPID is the pid the service on admin port says it has, 0 if none
// answers.
func adminPID(client *http.Client, admin int) int {
	body, err := get(client, "http://127.0.0.1:"+strconv.Itoa(admin)+"/admin/process")
	if err != nil {
		return 0
	}
	var p struct {
		PID int `json:"pid"`
	}
	json.Unmarshal([]byte(body), &p)
	return p.PID
}

func gone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// TestUp starts two services from a catalog (the example service twice,
// at two offsets), checks the table and the prefixed output, kills one
// with SIGKILL and sees it served again, then stops svcctl with SIGTERM:
// exit 0, every service gone.
func TestUp(t *testing.T) {
	t.Parallel()
	one, two := freeOffset(t), freeOffset(t)
	file := writeCatalog(t, map[string]string{
		"one": fmt.Sprintf(`{"offset": %d, "package": "./cmd/example-service", "env": {"SHUTDOWN_DRAIN": "0s", "LOG_ACCESS": "false"}}`, one),
		"two": fmt.Sprintf(`{"offset": %d, "package": "./cmd/example-service", "env": {"SHUTDOWN_DRAIN": "0s", "LOG_ACCESS": "false", "hello.greeting": "hi"}}`, two),
	})
	p := startUp(t, file)
	p.waitOutput(t, 2*time.Minute, `2 services ready; Ctrl-C stops them`)
	pids := map[string]int{}
	for name, off := range map[string]int{"one": one, "two": two} {
		ports := convention.PortsOf(off)
		m := p.waitOutput(t, time.Second, fmt.Sprintf(`(?m)^%s\s+(\d+)\s+%d\s+%d\s+%d\s+\./cmd/example-service$`, name, ports.Admin, ports.Public, ports.Private))
		pids[name], _ = strconv.Atoi(m[1])
	}
	client := svctest.Client(t)
	for name, want := range map[string]string{"one": "hello, bob", "two": "hi, bob"} {
		off := map[string]int{"one": one, "two": two}[name]
		body, err := get(client, fmt.Sprintf("http://127.0.0.1:%d/hello/bob", convention.PortsOf(off).Public))
		if err != nil || !strings.Contains(body, want) {
			t.Errorf("%s /hello/bob = %q, %v; want %q (catalog env)", name, body, err, want)
		}
		if got := adminPID(client, convention.PortsOf(off).Admin); got != pids[name] {
			t.Errorf("%s answers as pid %d; the table says %d", name, got, pids[name])
		}
	}
	for _, name := range []string{"one", "two"} {
		if !regexp.MustCompile(`(?m)^` + name + ` \| \{.*"msg":"started"`).MatchString(p.stderr.String()) {
			t.Errorf("no line of %s prefixed with %q:\n%s", name, name+" | ", p.stderr)
		}
	}

	// Killed: started again on the same ports.
	if err := syscall.Kill(pids["one"], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.waitOutput(t, 10*time.Second, fmt.Sprintf(`one \| svcctl: pid %d signal: killed(; last stderr: .*)?; starting it again in 500ms`, pids["one"]))
	m := p.waitOutput(t, time.Minute, `one \| svcctl: ready: pid (\d+)`)
	again, _ := strconv.Atoi(m[1])
	if again == pids["one"] || adminPID(client, convention.PortsOf(one).Admin) != again {
		t.Errorf("one after SIGKILL: pid %d, answering as %d; want a new process", again, adminPID(client, convention.PortsOf(one).Admin))
	}

	// SIGTERM: every service stopped, exit 0.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(45 * time.Second):
		t.Fatal("svcctl up still running 45s after SIGTERM")
	}
	if p.err != nil {
		t.Errorf("svcctl up after SIGTERM: %v; want exit 0", p.err)
	}
	for _, pid := range []int{again, pids["two"]} {
		if !gone(pid) {
			t.Errorf("pid %d still runs after svcctl up exited", pid)
		}
	}
	if !strings.Contains(p.stderr.String(), "svcctl: every service stopped") {
		t.Errorf("stderr lacks the stop:\n%s", p.stderr)
	}
}

// TestUpRefuses: a catalog that collides, or a port taken, stops svcctl
// up before it builds anything, with one line.
func TestUpRefuses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	collides := writeFile(t, dir, "collides.json", `{"services": {"orders": {"offset": 20, "package": "./x"}, "users": {"offset": 21, "package": "./y"}}}`)
	r := svcctl(t, nil, "up", collides)
	want(t, r, exitError, collides+": port 8021 is used by orders (private, offset 20) and users (public, offset 21)")
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("want one line, got:\n%s", r.stderr)
	}

	off := freeOffset(t)
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(convention.PortsOf(off).Public))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := writeFile(t, dir, "taken.json", fmt.Sprintf(`{"services": {"orders": {"offset": %d, "package": "./cmd/example-service"}}}`, off))
	r = svcctl(t, nil, "up", taken)
	want(t, r, exitError, fmt.Sprintf("svcctl: port %d (orders public, offset %d) is taken", convention.PortsOf(off).Public, off))
	if strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("want one line, got:\n%s", r.stderr)
	}

	none := writeFile(t, dir, "none.json", `{"services": {"orders": {"offset": 20}}}`)
	want(t, svcctl(t, nil, "up", none), exitError, "no service names its package")
	want(t, svcctl(t, map[string]string{"CONFIG_DIR": dir}, "up"), exitError, "port catalog "+filepath.Join(dir, "services.json")+" does not exist")
	want(t, svcctl(t, nil, "up", "a", "b"), exitUsage, "up takes one FILE")
}

// watchedService writes a tiny service into a new directory under
// testdata (inside this module, so that its imports resolve) and returns
// its package path relative to the module root and its main.go.
func watchedService(t *testing.T) (pkg, mainGo string) {
	t.Helper()
	dir, err := os.MkdirTemp("testdata", "up-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	mainGo = filepath.Join(dir, "main.go")
	writeVersion(t, mainGo, "v1")
	return "./cmd/svcctl/" + filepath.ToSlash(dir), mainGo
}

// writeVersion writes the watched service's main.go, answering version
// at GET /version; "" writes a syntax error.
func writeVersion(t *testing.T, mainGo, version string) {
	t.Helper()
	src := `package main

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/svc"
)

const version = "` + version + `"

func main() {
	svc.Run("upwatch", 0, svc.PublicRoutes(func(r chi.Router) {
		r.Get("/version", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(version)) })
	}))
}
`
	if version == "" {
		src = "package main\n\nfunc main() {\n\tbroken(\n}\n"
	}
	tmp := mainGo + ".tmp"
	if err := os.WriteFile(tmp, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, mainGo); err != nil {
		t.Fatal(err)
	}
}

// TestUpWatchCompileError: with --watch, an edit that does not compile
// prints the compiler's error and leaves the running process serving.
func TestUpWatchCompileError(t *testing.T) {
	t.Parallel()
	pkg, mainGo := watchedService(t)
	off := freeOffset(t)
	ports := convention.PortsOf(off)
	p := startUp(t, "--watch", writeCatalog(t, map[string]string{
		"upwatch": fmt.Sprintf(`{"offset": %d, "package": %q, "env": {"SHUTDOWN_DRAIN": "0s", "LOG_ACCESS": "false"}}`, off, pkg),
	}))
	m := p.waitOutput(t, 2*time.Minute, `(?m)^upwatch\s+(\d+)\s`)
	pid, _ := strconv.Atoi(m[1])
	client := svctest.Client(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/version", ports.Public)
	if v, err := get(client, url); v != "v1" {
		t.Fatalf("GET /version = %q, %v; want v1", v, err)
	}

	writeVersion(t, mainGo, "")
	p.waitOutput(t, time.Minute, fmt.Sprintf(`upwatch \| svcctl: build of %s failed \(exit status 1\); pid %d keeps running:`, regexp.QuoteMeta(pkg), pid))
	p.waitOutput(t, time.Second, `upwatch \| .*main.go:\d+:\d+: syntax error`)
	if v, err := get(client, url); v != "v1" || adminPID(client, ports.Admin) != pid {
		t.Errorf("after a failed build: GET /version = %q, %v, pid %d; want v1 from pid %d", v, err, adminPID(client, ports.Admin), pid)
	}
}

// TestUpWatchSwap: with --watch, a good edit is built and swapped in with
// the in-place restart (SIGUSR2): the new code answers from a new process
// and a client calling in a loop, over new and kept connections, sees no
// error. This depends on svc's in-place restart on SIGUSR2; without it,
// SIGUSR2 kills the service, svcctl starts the new build, and the client
// sees refused connections: the test fails.
func TestUpWatchSwap(t *testing.T) {
	t.Parallel()
	pkg, mainGo := watchedService(t)
	off := freeOffset(t)
	ports := convention.PortsOf(off)
	// A drain, as in production: kept connections get Connection: close on
	// their next request instead of being closed under it (a drain of 0s
	// closes idle kept connections at once, which a client may be reusing).
	p := startUp(t, "--watch", writeCatalog(t, map[string]string{
		"upwatch": fmt.Sprintf(`{"offset": %d, "package": %q, "env": {"SHUTDOWN_DRAIN": "1s", "LOG_ACCESS": "false"}}`, off, pkg),
	}))
	m := p.waitOutput(t, 2*time.Minute, `(?m)^upwatch\s+(\d+)\s`)
	pid, _ := strconv.Atoi(m[1])
	url := fmt.Sprintf("http://127.0.0.1:%d/version", ports.Public)

	var calls, failures atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for _, keep := range []bool{true, false} {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: !keep}}
		t.Cleanup(client.CloseIdleConnections)
		wg.Go(func() {
			pace := time.NewTicker(2 * time.Millisecond)
			defer pace.Stop()
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				calls.Add(1)
				if _, err := get(client, url); err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	writeVersion(t, mainGo, "v2")
	client := svctest.Client(t)
	svctest.WaitFor(t, 2*time.Minute, "v2 to answer", func() bool {
		if strings.Contains(p.stderr.String(), "no in-place restart happened") {
			t.Fatalf("no swap: svcctl says %q (does the service restart in place on SIGUSR2?)", "no in-place restart happened")
		}
		v, _ := get(client, url)
		return v == "v2"
	})
	close(stop)
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d of %d calls failed during the swap (first: %v); want none (does the service restart in place on SIGUSR2?)", n, calls.Load(), firstErr.Load())
	}
	if now := adminPID(client, ports.Admin); now == pid || now == 0 {
		t.Errorf("after the swap the service answers as pid %d; want a new process (was %d)", now, pid)
	}
	p.waitOutput(t, 10*time.Second, fmt.Sprintf(`upwatch \| svcctl: restarted in place: pid %d -> \d+`, pid))
}

// TestUpFollowsSuccessor: a service that restarts in place on SIGUSR2
// (testdata/handover stands in for svc's in-place restart) is followed to
// its successor, which is neither restarted as crashed nor left running
// when svcctl up stops.
func TestUpFollowsSuccessor(t *testing.T) {
	t.Parallel()
	off := freeOffset(t)
	ports := convention.PortsOf(off)
	p := startUp(t, writeCatalog(t, map[string]string{
		"handover": fmt.Sprintf(`{"offset": %d, "package": "./cmd/svcctl/testdata/handover"}`, off),
	}))
	m := p.waitOutput(t, 2*time.Minute, `(?m)^handover\s+(\d+)\s`)
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	m = p.waitOutput(t, 30*time.Second, fmt.Sprintf(`handover \| svcctl: restarted in place: pid %d -> (\d+)`, pid))
	next, _ := strconv.Atoi(m[1])
	p.waitOutput(t, 30*time.Second, fmt.Sprintf(`handover \| svcctl: ready: pid %d`, next))
	p.waitOutput(t, time.Second, fmt.Sprintf(`handover \| handover: serving as pid %d`, next)) // its output is followed too
	if got := adminPID(svctest.Client(t), ports.Admin); got != next {
		t.Errorf("the admin port answers as pid %d; want the successor %d", got, next)
	}
	if strings.Contains(p.stderr.String(), "starting it again") {
		t.Errorf("the handover was taken for a crash:\n%s", p.stderr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(45 * time.Second):
		t.Fatal("svcctl up still running 45s after SIGTERM")
	}
	if p.err != nil || !gone(next) {
		t.Errorf("after SIGTERM: svcctl %v, successor gone %v; want exit 0 and the successor stopped", p.err, gone(next))
	}
}
