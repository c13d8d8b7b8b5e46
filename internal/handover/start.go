package handover

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The variables of the handover protocol (see the package documentation).
const (
	// EnvNotify names the unixgram socket on which a successor sends
	// "READY=1" to its parent. Its presence also lets [Inherit] take
	// sockets without LISTEN_PID.
	EnvNotify = "SVC_HANDOVER_NOTIFY"
	// EnvStderr is the descriptor, in the successor, of its parent's own
	// stderr: [Inherited.Ready] moves it onto descriptor 2.
	EnvStderr = "SVC_HANDOVER_STDERR"
)

// Defaults of [Options].
const (
	DefaultTimeout = 30 * time.Second
	DefaultGrace   = 10 * time.Second
	DefaultTail    = 20
)

// Listener is a listening socket handed to the successor under Name
// (LISTEN_FDNAMES). Conn is usually a *net.TCPListener; it is only
// duplicated, never put in blocking mode, and stays the caller's.
type Listener struct {
	Name string
	Conn syscall.Conn
}

// Options configure [Start].
type Options struct {
	// Path is the executable to start. Resolve it just before the call
	// (os.Executable) so that a binary replaced on disk is picked up.
	Path string
	// Args is the successor's argv, argv[0] included. If empty, Path.
	Args []string
	// Env is the successor's environment. LISTEN_PID, LISTEN_FDS,
	// LISTEN_FDNAMES, WATCHDOG_PID and the protocol's own variables are
	// replaced (WATCHDOG_PID is dropped: it names the parent).
	Env []string
	// Listeners are passed as descriptors 3, 4, ... in this order.
	Listeners []Listener
	// Stderr receives the successor's stderr, line by line, until the
	// successor is ready (after that the successor writes to this
	// process's descriptor 2 directly). If nil, os.Stderr.
	Stderr io.Writer
	// Timeout bounds the wait for READY=1. If zero, DefaultTimeout.
	Timeout time.Duration
	// Grace is how long a successor that is being stopped (not ready in
	// time, or ctx cancelled) has to exit after SIGTERM before SIGKILL: it
	// may already be serving connections it accepted, which a graceful
	// stop finishes. If zero, DefaultGrace.
	Grace time.Duration
	// Tail is how many of the successor's last stderr lines an [Error]
	// keeps. If zero, DefaultTail.
	Tail int
}

// Successor is a started successor that reported ready.
type Successor struct {
	Pid  int
	Took time.Duration // from Start to READY=1
}

// Error is a successor that failed: it exited, was not ready in time, or
// the start was cancelled. The successor has exited when Start returns it.
type Error struct {
	Reason string   // what happened, e.g. "exited before it was ready"
	Pid    int      // 0 if it never started
	Status string   // how it ended, e.g. "exit status 3"; empty if unknown
	Stderr []string // its last stderr lines
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("handover: successor")
	if e.Pid > 0 {
		fmt.Fprintf(&b, " (pid %d)", e.Pid)
	}
	b.WriteString(" " + e.Reason)
	if e.Status != "" {
		b.WriteString(" (" + e.Status + ")")
	}
	if len(e.Stderr) > 0 {
		b.WriteString("; its last stderr lines: " + strings.Join(e.Stderr, " | "))
	}
	return b.String()
}

// Start starts the successor described by o and waits until it sends
// READY=1, it exits, o.Timeout passes or ctx ends. On success the
// successor keeps running (Start leaves a goroutine that relays its
// stderr until it is ready and one that reaps it if it exits while this
// process lives). Otherwise the successor is stopped (SIGTERM, then
// SIGKILL after o.Grace), and the error is an [*Error]; errors before the
// successor exists (no executable, a listener that cannot be duplicated)
// are returned as they are.
func Start(ctx context.Context, o Options) (*Successor, error) {
	o = o.withDefaults()
	begin := time.Now()
	dir, err := os.MkdirTemp("", "svc-handover-") // 0700: only this user can send READY
	if err != nil {
		return nil, fmt.Errorf("handover: %w", err)
	}
	defer os.RemoveAll(dir)
	sockPath := filepath.Join(dir, "notify")
	sock, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sockPath, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("handover: notify socket: %w", err)
	}
	defer sock.Close()

	pid, stderr, err := spawn(o, sockPath)
	if err != nil {
		return nil, err
	}
	tail := newTail(o.Tail)
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		relay(stderr, o.Stderr, tail)
	}()
	exited := make(chan string, 1) // the exit status
	go func() { exited <- reap(pid) }()
	ready := make(chan struct{})
	go func() {
		if waitReady(sock) {
			close(ready)
		}
	}()

	timer := time.NewTimer(o.Timeout)
	defer timer.Stop()
	fail := func(reason, status string) error {
		if status == "" {
			status = stop(pid, exited, o.Grace)
		}
		select { // the pipe ends once the successor (and what it started) is gone
		case <-relayed:
		case <-time.After(time.Second):
		}
		return &Error{Reason: reason, Pid: pid, Status: status, Stderr: tail.lines()}
	}
	select {
	case <-ready:
		return &Successor{Pid: pid, Took: time.Since(begin)}, nil
	case status := <-exited:
		return nil, fail("exited before it was ready", status)
	case <-timer.C:
		return nil, fail(fmt.Sprintf("was not ready within %v; stopped it", o.Timeout), "")
	case <-ctx.Done():
		return nil, fail(fmt.Sprintf("start cancelled (%v); stopped it", context.Cause(ctx)), "")
	}
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.Tail <= 0 {
		o.Tail = DefaultTail
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if len(o.Args) == 0 {
		o.Args = []string{o.Path}
	}
	return o
}

// spawn forks and execs the successor with descriptors 0: /dev/null, 1:
// this process's 1, 2: a pipe (returned), 3...: the listeners, then this
// process's 2 (EnvStderr).
func spawn(o Options, notify string) (int, *os.File, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, fmt.Errorf("handover: %w", err)
	}
	defer devnull.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, fmt.Errorf("handover: stderr pipe: %w", err)
	}
	defer w.Close()
	files := []uintptr{devnull.Fd(), 1, w.Fd()}
	names := make([]string, 0, len(o.Listeners))
	for _, l := range o.Listeners {
		fd, err := dupCloexec(l.Conn)
		if err != nil {
			r.Close()
			return 0, nil, fmt.Errorf("handover: %s listener: %w", l.Name, err)
		}
		defer syscall.Close(fd)
		files = append(files, uintptr(fd))
		names = append(names, l.Name)
	}
	files = append(files, 2)
	env := append(filterEnv(o.Env),
		"LISTEN_FDS="+strconv.Itoa(len(o.Listeners)),
		"LISTEN_FDNAMES="+strings.Join(names, ":"),
		EnvNotify+"="+notify,
		EnvStderr+"="+strconv.Itoa(len(files)-1),
	)
	pid, err := syscall.ForkExec(o.Path, o.Args, &syscall.ProcAttr{Env: env, Files: files})
	if err != nil {
		r.Close()
		return 0, nil, &Error{Reason: fmt.Sprintf("could not be started from %s: %v", o.Path, err)}
	}
	return pid, r, nil
}

// dupCloexec duplicates c's descriptor (close-on-exec, so that no other
// fork inherits it). The duplicate shares the socket and its flags: it
// stays non-blocking.
func dupCloexec(c syscall.Conn) (int, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var dupErr error
	err = rc.Control(func(fd uintptr) {
		r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		if errno != 0 {
			dupErr = errno
			return
		}
		nfd = int(r)
	})
	if err == nil {
		err = dupErr
	}
	return nfd, err
}

// filterEnv drops the variables Start sets or that would mislead the
// successor.
func filterEnv(env []string) []string {
	out := make([]string, 0, len(env)+4)
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_PID", EnvNotify, EnvStderr:
			continue
		}
		out = append(out, kv)
	}
	return out
}

// waitReady reads sd_notify datagrams until one holds READY=1 (true) or
// the socket is closed (false).
func waitReady(sock *net.UnixConn) bool {
	buf := make([]byte, 4096)
	for {
		n, _, err := sock.ReadFromUnix(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return false
			}
			continue
		}
		for line := range strings.Lines(string(buf[:n])) {
			if strings.TrimSpace(line) == "READY=1" {
				return true
			}
		}
	}
}

// reap waits for pid to exit and describes how it ended.
func reap(pid int) string {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return "unknown: " + err.Error()
		}
		break
	}
	switch {
	case ws.Exited():
		return "exit status " + strconv.Itoa(ws.ExitStatus())
	case ws.Signaled():
		return "signal: " + ws.Signal().String()
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// stop sends SIGTERM to pid and SIGKILL after grace, and returns its exit
// status.
func stop(pid int, exited <-chan string, grace time.Duration) string {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case s := <-exited:
		return s
	case <-t.C:
		_ = syscall.Kill(pid, syscall.SIGKILL)
		return <-exited
	}
}

// relay copies r to w line by line and keeps the last lines in t, until r
// ends.
func relay(r *os.File, w io.Writer, t *tail) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			_, _ = io.WriteString(w, line)
			t.add(strings.TrimRight(line, "\r\n"))
		}
		if err != nil {
			return
		}
	}
}

// tail keeps the last n lines it was given.
type tail struct {
	mu  sync.Mutex // guards buf
	n   int
	buf []string
}

func newTail(n int) *tail { return &tail{n: n} }

func (t *tail) add(line string) {
	const max = 1000 // bytes kept of one line
	if len(line) > max {
		line = line[:max] + "..."
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, line)
	if len(t.buf) > t.n {
		t.buf = t.buf[len(t.buf)-t.n:]
	}
}

func (t *tail) lines() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.buf...)
}
