package handover_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/handover"
)

// childMode, when set in the environment, makes the test binary act as a
// successor instead of running the tests.
const childMode = "HANDOVER_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childMode); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(m.Run())
}

// child is the successor: "serve" serves one line on the inherited
// "public" socket until killed; "boom" fails; "hang" never gets ready.
func child(mode string) int {
	switch mode {
	case "boom":
		fmt.Fprintln(os.Stderr, "starting")
		fmt.Fprintln(os.Stderr, "boom")
		return 3
	case "hang":
		select {}
	}
	in, err := handover.Inherit()
	if err != nil || len(in.Listeners) != 1 || in.Listeners[0].Name() != "public" || !in.FromParent() {
		fmt.Fprintf(os.Stderr, "inherit: %v %v\n", in, err)
		return 1
	}
	for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", handover.EnvNotify} {
		if v, ok := os.LookupEnv(k); ok {
			fmt.Fprintf(os.Stderr, "%s=%s still set\n", k, v)
			return 1
		}
	}
	ln, err := net.FileListener(in.Listeners[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	in.Listeners[0].Close()
	fmt.Fprintln(os.Stderr, "child ready")
	if err := in.Ready(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			return 1
		}
		fmt.Fprintf(c, "child %d\n", os.Getpid())
		c.Close()
	}
}

func listen(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

func options(t *testing.T, mode string, ln *net.TCPListener, stderr *syncBuf) handover.Options {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return handover.Options{
		Path:      exe,
		Args:      []string{exe},
		Env:       append(os.Environ(), childMode+"="+mode),
		Listeners: []handover.Listener{{Name: "public", Conn: ln}},
		Stderr:    stderr,
		Timeout:   10 * time.Second,
		Grace:     2 * time.Second,
	}
}

// nonBlocking reports whether the socket of ln is in non-blocking mode.
func nonBlocking(t *testing.T, ln *net.TCPListener) bool {
	t.Helper()
	rc, err := ln.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags uintptr
	rc.Control(func(fd uintptr) {
		flags, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	})
	return flags&syscall.O_NONBLOCK != 0
}

// A successor takes the socket and serves on it; the parent's socket
// stays non-blocking and its Close still wakes a pending Accept (the
// pitfall of os/exec's ExtraFiles).
func TestStartHandsOverTheSocket(t *testing.T) {
	ln := listen(t)
	stderr := &syncBuf{}
	succ, err := handover.Start(t.Context(), options(t, "serve", ln, stderr))
	if err != nil {
		t.Fatalf("Start: %v\nstderr:\n%s", err, stderr)
	}
	t.Cleanup(func() { syscall.Kill(succ.Pid, syscall.SIGKILL) })
	if !strings.Contains(stderr.String(), "child ready") {
		t.Errorf("the successor's stderr was not relayed: %q", stderr)
	}
	if !nonBlocking(t, ln) {
		t.Error("the parent's listening socket is in blocking mode after the handover; want non-blocking")
	}

	accepted := make(chan error, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				accepted <- err
				return
			}
			c.Close()
		}
	}()
	// The successor answers on the shared socket (the parent's Accept
	// races it; dial until the successor's answer is seen).
	want := fmt.Sprintf("child %d", succ.Pid)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if strings.TrimSpace(line) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answer %q from the successor within 10s", want)
		}
	}
	ln.Close()
	select {
	case err := <-accepted:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Accept after Close: %v; want net.ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the parent's Accept still blocks 2s after Close")
	}
}

// A successor that exits is reported with its status and last stderr
// lines.
func TestStartReportsAFailedSuccessor(t *testing.T) {
	ln := listen(t)
	_, err := handover.Start(t.Context(), options(t, "boom", ln, &syncBuf{}))
	var he *handover.Error
	if !errors.As(err, &he) {
		t.Fatalf("Start = %v; want a *handover.Error", err)
	}
	if he.Status != "exit status 3" || !strings.Contains(strings.Join(he.Stderr, "\n"), "boom") {
		t.Errorf("Error = %+v; want exit status 3 and boom", he)
	}
	for _, w := range []string{"exited before it was ready", "exit status 3", "boom"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q does not say %q", err, w)
		}
	}
}

// A successor that is not ready in time is stopped.
func TestStartStopsASlowSuccessor(t *testing.T) {
	ln := listen(t)
	o := options(t, "hang", ln, &syncBuf{})
	o.Timeout = 300 * time.Millisecond
	_, err := handover.Start(t.Context(), o)
	var he *handover.Error
	if !errors.As(err, &he) || !strings.Contains(he.Reason, "not ready within 300ms") || he.Status != "signal: terminated" {
		t.Fatalf("Start = %v; want not ready within 300ms, ended by SIGTERM", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := handover.Start(ctx, options(t, "hang", ln, &syncBuf{})); !errors.As(err, &he) || !strings.Contains(he.Reason, "cancelled") {
		t.Fatalf("Start with a cancelled context = %v; want cancelled", err)
	}
}

func TestStartWithoutExecutable(t *testing.T) {
	ln := listen(t)
	o := options(t, "serve", ln, &syncBuf{})
	o.Path = "/nonexistent/svc"
	if _, err := handover.Start(t.Context(), o); err == nil || !strings.Contains(err.Error(), "/nonexistent/svc") {
		t.Fatalf("Start = %v; want an error naming the path", err)
	}
}

type syncBuf struct {
	mu sync.Mutex // guards b
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
