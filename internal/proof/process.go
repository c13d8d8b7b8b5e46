package proof

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

// Build builds the main package pkg (an import path) into a temporary
// directory of t and returns the binary's path. The binary is named
// "proof-<last element of pkg>", so that its processes are told apart from
// other runs of the same command on the machine.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "proof-"+filepath.Base(pkg))
	cmd := exec.Command(goTool(), "build", "-o", out, pkg)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}

// goTool returns $GOROOT/bin/go when go test set GOROOT, otherwise go.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// Env returns the environment of an example-service instance that binds
// every listener to a free loopback port and logs JSON, with extra
// settings appended (later entries win). With etcd endpoints it registers
// as 127.0.0.1 with a TTL of ttl.
func Env(configDir, etcdEndpoints string, ttl time.Duration, extra ...string) []string {
	env := []string{
		"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0",
		"PRIVATE_HOST=127.0.0.1", "PRIVATE_PORT=0",
		"ADMIN_PORT=0",
		"LOG_FORMAT=json",
		"LOG_ACCESS=false", // one line per request would measure the logger
		"CONFIG_DIR=" + configDir,
	}
	if etcdEndpoints != "" {
		env = append(env,
			"ETCD_ENDPOINTS="+etcdEndpoints,
			"REGISTRY_HOST=127.0.0.1",
			"REGISTRY_TTL="+ttl.String())
	}
	return append(env, extra...)
}

// Process is a running binary: an example-service instance, or the bare
// baseline server. Its methods are safe for concurrent use.
type Process struct {
	Bin string
	Env []string

	// From the "started" log line: instance id and bound host:port.
	ID, Public, Private, Admin string

	cmd    *exec.Cmd
	log    *svctest.LogBuffer
	exited chan struct{} // closed when the process has exited
	err    error         // Wait's result, once exited is closed
}

// Start starts bin with exactly env and waits (20s at most) for its
// "started" JSON log line on stderr. The process is killed when the test
// ends if it still runs.
func Start(t testing.TB, bin string, env []string) *Process {
	t.Helper()
	p, err := start(bin, env)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	if err := p.waitStarted(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

func start(bin string, env []string) (*Process, error) {
	p := &Process{Bin: bin, Env: env, log: &svctest.LogBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append([]string{}, env...)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("proof: start %s: %w", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *Process) waitStarted(d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		for line := range strings.Lines(p.log.String()) {
			var l struct{ Msg, Instance, Public, Private, Admin string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "started" {
				p.ID, p.Public, p.Private, p.Admin = l.Instance, l.Public, l.Private, l.Admin
				return nil
			}
		}
		select {
		case <-p.exited:
			return fmt.Errorf("proof: %s exited before it started: %v\n%s", p.Bin, p.err, p.log.String())
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("proof: %s did not log started within %v\n%s", p.Bin, d, p.log.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Restart starts the same binary with the same environment on the same
// ports as p (which must have exited), like a supervisor would.
func (p *Process) Restart(t testing.TB) *Process {
	t.Helper()
	env := append(append([]string{}, p.Env...),
		"PUBLIC_PORT="+portOf(p.Public), "PRIVATE_PORT="+portOf(p.Private), "ADMIN_PORT="+portOf(p.Admin))
	// The ports were ours a moment ago; give a socket still closing a
	// little time.
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var q *Process
		if q, err = start(p.Bin, env); err != nil {
			break
		}
		if err = q.waitStarted(20 * time.Second); err == nil {
			t.Cleanup(q.Kill)
			q.Env = p.Env
			return q
		}
		q.Kill()
		if !strings.Contains(err.Error(), "already in use") || time.Now().After(deadline) {
			break
		}
	}
	t.Fatal(err)
	return nil
}

func portOf(hostport string) string {
	i := strings.LastIndexByte(hostport, ':')
	return hostport[i+1:]
}

// PublicURL is "http://" + the public address.
func (p *Process) PublicURL() string { return "http://" + p.Public }

// PrivateURL is "http://" + the private address.
func (p *Process) PrivateURL() string { return "http://" + p.Private }

// AdminURL is "http://" + the admin address.
func (p *Process) AdminURL() string { return "http://" + p.Admin }

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error { return p.cmd.Process.Signal(sig) }

// Kill kills the process if it runs and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Wait waits up to d for the process to exit and returns its exit code
// (-1 for a signal).
func (p *Process) Wait(d time.Duration) (int, error) {
	select {
	case <-p.exited:
	case <-time.After(d):
		return 0, fmt.Errorf("proof: %s (pid %d) still running after %v", p.Bin, p.Pid(), d)
	}
	if ee, ok := errors.AsType[*exec.ExitError](p.err); ok {
		return ee.ExitCode(), nil
	}
	return 0, p.err
}

// Log returns everything the process wrote so far.
func (p *Process) Log() string { return p.log.String() }

// LogCount counts the log lines whose "msg" is msg.
func (p *Process) LogCount(msg string) int {
	n := 0
	needle := `"msg":` + strconv.Quote(msg)
	for line := range strings.Lines(p.log.String()) {
		if strings.Contains(line, needle) {
			n++
		}
	}
	return n
}

// Memory returns VmRSS and VmHWM (peak RSS) of the process, in bytes,
// from /proc/<pid>/status.
func (p *Process) Memory() (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return 0, 0, fmt.Errorf("proof: memory of pid %d: %w", p.Pid(), err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			rss = n << 10
		case "VmHWM:":
			hwm = n << 10
		}
	}
	if rss == 0 {
		return 0, 0, fmt.Errorf("proof: no VmRSS in /proc/%d/status", p.Pid())
	}
	return rss, hwm, nil
}
