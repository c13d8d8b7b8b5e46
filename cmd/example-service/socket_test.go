package main

// Socket activation: the binary serves on sockets passed with the systemd
// protocol (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), binds the listeners
// not passed, and refuses sockets it cannot place.

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/svctest"
)

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// With systemd's own tool: systemd-socket-activate listens on the admin
// and public ports and starts the binary at the first connection, whose
// request is answered; the private listener, not passed, is bound as
// usual. An in-place restart then hands all three sockets on. The test
// skips only when the tool is missing (Debian package systemd);
// TestInheritedSocketsWithoutSystemd covers the same code path without
// it.
func TestSocketActivation(t *testing.T) {
	tool, err := exec.LookPath("systemd-socket-activate")
	if err != nil {
		t.Skip("systemd-socket-activate is not installed (Debian package systemd); TestInheritedSocketsWithoutSystemd passes the sockets itself")
	}
	admin, public := freeAddr(t), freeAddr(t)
	args := []string{"-l", admin, "-l", public, "--fdname=admin:public"}
	for _, kv := range restartEnv(t) {
		if !strings.HasPrefix(kv, "PUBLIC_") && !strings.HasPrefix(kv, "ADMIN_") {
			args = append(args, "-E", kv)
		}
	}
	p := startPiped(t, t.TempDir(), nil, tool, append(args, binary)...)
	svctest.WaitFor(t, 10*time.Second, "systemd-socket-activate listening", func() bool {
		return strings.Count(p.stderr.String(), "Listening on") == 2
	})
	c := svctest.Client(t)
	// The first connection starts the service, which answers it.
	r := do(t, c, "GET", "http://"+public+"/hello/activated", "")
	if r.code != http.StatusOK || !strings.Contains(r.body, "hello, activated") {
		t.Fatalf("GET /hello/activated = %d %s; want 200", r.code, r.body)
	}
	s := parseStarted(t, p)
	if s.admin != admin || s.public != public || s.private == "" {
		t.Errorf("started on admin %s, public %s, private %s; want the inherited %s, %s and a bound private port", s.admin, s.public, s.private, admin, public)
	}
	if !strings.Contains(p.stderr.String(), `"inherited":"admin,public"`) {
		t.Errorf("the started line does not say inherited admin,public:\n%s", p.stderr.String())
	}
	s.waitReady(t, c, "http://"+s.private+"/readyz")

	// systemd-socket-activate exec'd the service: its pid is the service's.
	if pid := servingPID(t, c, admin); pid != p.cmd.Process.Pid {
		t.Errorf("pid %d serves; want %d (LISTEN_PID)", pid, p.cmd.Process.Pid)
	}
	if code, body := postRestart(t, c, admin); code != http.StatusOK {
		t.Fatalf("POST /admin/restart = %d %s; want 200", code, body)
	}
	c.CloseIdleConnections()
	svctest.WaitFor(t, 10*time.Second, "the successor serving", func() bool {
		return servingPID(t, c, admin) != p.cmd.Process.Pid
	})
	succ := servingPID(t, c, admin)
	for _, url := range []string{"http://" + public + "/hello/again", "http://" + s.private + "/readyz"} {
		if r := do(t, c, "GET", url, ""); r.code != http.StatusOK {
			t.Errorf("GET %s after the restart = %d %s; want 200", url, r.code, r.body)
		}
	}
	if code := p.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the activated process exited %d after handing over; want 0", code)
	}
	if err := syscall.Kill(succ, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	svctest.WaitFor(t, 20*time.Second, "the successor stopped", func() bool {
		_, err := net.Dial("tcp", admin)
		return err != nil
	})
}

// startActivated starts the binary with the listening sockets of lns
// passed as systemd passes them: descriptors 3, 4, ... (os/exec's
// ExtraFiles), LISTEN_FDS, LISTEN_FDNAMES = names, and LISTEN_PID = the
// service's pid, set by a shell that then execs the binary (os/exec
// cannot know the pid before the process exists). pid replaces LISTEN_PID
// when not empty.
func startActivated(t *testing.T, names, pid string, env []string, lns ...net.Listener) *proc {
	t.Helper()
	env = append(env, "LISTEN_FDS="+strconv.Itoa(len(lns)), "LISTEN_FDNAMES="+names)
	script := `LISTEN_PID=$$ exec "$0"`
	if pid != "" {
		script = `LISTEN_PID=` + pid + ` exec "$0"`
	}
	p := newProc()
	p.cmd = newCmd("/bin/sh", t.TempDir(), env)
	p.cmd.Args = []string{"sh", "-c", script, binary}
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	for _, ln := range lns {
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		p.cmd.ExtraFiles = append(p.cmd.ExtraFiles, f)
	}
	p.start(t)
	return p
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// The same code path without systemd: sockets passed by the test itself.
// Named sockets are served, the listener not passed is bound; sockets
// for another pid are ignored; a socket named otherwise fails the start
// with one line.
func TestInheritedSocketsWithoutSystemd(t *testing.T) {
	env := restartEnv(t)
	t.Run("served", func(t *testing.T) {
		admin, public := listenLoopback(t), listenLoopback(t)
		p := startActivated(t, "admin:public", "", env, admin, public)
		admin.Close() // the service's copies are the only ones now
		public.Close()
		s := parseStarted(t, p)
		if s.admin != admin.Addr().String() || s.public != public.Addr().String() {
			t.Errorf("started on admin %s, public %s; want the inherited %s, %s", s.admin, s.public, admin.Addr(), public.Addr())
		}
		c := svctest.Client(t)
		s.waitReady(t, c, "http://"+s.private+"/readyz")
		if r := do(t, c, "GET", "http://"+s.public+"/hello/inherited", ""); r.code != http.StatusOK {
			t.Errorf("GET /hello/inherited = %d %s; want 200", r.code, r.body)
		}
		c.CloseIdleConnections()
		p.cmd.Process.Signal(syscall.SIGTERM)
		if code := p.wait(t, 20*time.Second); code != 0 {
			t.Errorf("exit code %d; want 0", code)
		}
	})
	t.Run("another pid's", func(t *testing.T) {
		public := listenLoopback(t)
		p := startActivated(t, "public", "1", env, public)
		s := parseStarted(t, p)
		if s.public == public.Addr().String() || strings.Contains(p.stderr.String(), `"inherited"`) {
			t.Errorf("served the socket of LISTEN_PID=1 (%s); want it ignored and a port bound", s.public)
		}
		p.cmd.Process.Signal(syscall.SIGTERM)
		p.wait(t, 20*time.Second)
	})
	t.Run("misnamed", func(t *testing.T) {
		public := listenLoopback(t)
		p := startActivated(t, "web", "", env, public)
		if code := p.wait(t, 20*time.Second); code != 1 {
			t.Errorf("exit code %d; want 1", code)
		}
		line := strings.TrimSuffix(p.stderr.String(), "\n")
		if strings.Contains(line, "\n") || !strings.Contains(line, `inherited socket "web"`) || !strings.Contains(line, "admin, public or private") {
			t.Errorf("stderr %q; want one line naming the socket and the names wanted", line)
		}
	})
}

// sd_notify, as systemd would receive it on NOTIFY_SOCKET (an abstract
// socket here): READY=1 once ready, WATCHDOG=1 every half WATCHDOG_USEC,
// MAINPID=<successor> on an in-place restart, whose successor says
// READY=1 and pings too, and STOPPING=1 when the successor stops.
func TestSdNotify(t *testing.T) {
	name := "@svc-test-notify-" + strconv.Itoa(os.Getpid())
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	got := make(chan string, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, _, err := sock.ReadFromUnix(buf)
			if err != nil {
				close(got)
				return
			}
			got <- string(buf[:n])
		}
	}()
	// want waits for a datagram equal to msg, failing on STOPPING=1 unless
	// that is what is wanted.
	want := func(msg string) {
		t.Helper()
		timeout := time.After(15 * time.Second)
		for {
			select {
			case m := <-got:
				if m == msg {
					return
				}
				if m == "STOPPING=1" {
					t.Fatalf("STOPPING=1 while waiting for %q", msg)
				}
			case <-timeout:
				t.Fatalf("no %q on NOTIFY_SOCKET within 15s", msg)
			}
		}
	}
	s := startGroup(t, t.TempDir(), restartEnv(t, "NOTIFY_SOCKET="+name, "WATCHDOG_USEC=200000"), binary)
	want("READY=1")
	want("WATCHDOG=1")
	want("WATCHDOG=1")
	c := svctest.Client(t)
	code, body := postRestart(t, c, s.admin)
	if code != http.StatusOK {
		t.Fatalf("POST /admin/restart = %d %s", code, body)
	}
	var ans struct{ PID int }
	if err := json.Unmarshal([]byte(body), &ans); err != nil {
		t.Fatal(err)
	}
	want("MAINPID=" + strconv.Itoa(ans.PID))
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("the first process exited %d; want 0", code)
	}
	want("WATCHDOG=1") // from the successor: the first process is gone
	if err := syscall.Kill(ans.PID, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	want("STOPPING=1")
}
