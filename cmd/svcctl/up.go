//go:build unix

package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/term"

	"github.com/svc-dev/svc/internal/convention"
)

const upHelp = `Usage: svcctl up [FILE] [--watch]

Runs the whole stack on this machine with no configuration: every service
of the port catalog FILE (default $CONFIG_DIR/services.json) that names its
Go package,

  {"services": {"orders": {"offset": 20, "package": "./cmd/orders",
                           "env": {"LOG_LEVEL": "debug"}}}}

is built with go build (packages are relative to the current directory)
and started in the current directory on its catalog ports: ADMIN_PORT,
PUBLIC_PORT and PRIVATE_PORT come from the catalog offset, whatever offset
the service was compiled with. Each also gets its env and
SERVICES_<NAME>_OFFSET of every catalog service, so that discovery by
convention agrees with the catalog. Every output line is prefixed with the
service's name. A table is printed once every service is ready; a service
that exits is started again, with backoff. Ctrl-C or SIGTERM stops every
service (SIGTERM, SIGKILL after 30s) and exits 0.

It refuses to start, with one line, when the catalog collides (see svcctl
ports) or one of its ports is taken.

With --watch, a change to a Go file, go.mod or go.sum that a service's
package depends on (in the main module) rebuilds that service: a failed
build prints the compiler's errors and keeps the running process; a good
one replaces the binary and restarts the service in place (SIGUSR2), so
that its clients see no error.
`

// Timing of svcctl up.
const (
	upPoll        = 100 * time.Millisecond // readiness and process polls
	upBackoffMin  = 500 * time.Millisecond // first delay before starting a crashed service again
	upBackoffMax  = 10 * time.Second       // longest delay
	upStableAfter = 10 * time.Second       // a run this long resets the backoff
	upStopTimeout = 30 * time.Second       // SIGTERM to SIGKILL
	upDebounce    = 300 * time.Millisecond // file events must pause this long before a rebuild
	upWaitNote    = 30 * time.Second       // how often the wait for readiness is reported
	upSwapTimeout = 60 * time.Second       // after SIGUSR2, when a pid that still serves is reported
)

// upColors are the ANSI colours of the prefixes, one per service in turn.
var upColors = []int{36, 33, 32, 35, 34, 31, 96, 93, 92, 95, 94, 91}

// upRun is one run of svcctl up: the services, their binaries and the
// output they share.
type upRun struct {
	dir     string   // temporary directory of the binaries
	environ []string // the environment every service starts from
	out     *upOutput
	client  *http.Client
	svcs    []*upService
	offsets []string // SERVICES_<NAME>_OFFSET of every catalog service
	reaper  bool     // successors become svcctl's children (adoptOrphans)
}

// upService is one service svcctl up runs and restarts.
type upService struct {
	catalogEntry
	run   *upRun
	bin   string // the built binary; replaced in place by --watch
	color int
	done  chan struct{} // closed when supervise returns

	mu       sync.Mutex  // guards the fields below
	proc     *os.Process // the process serving now; nil between runs
	readyPID int         // the pid last seen ready
	lastErr  string      // the last line the service wrote to stderr
	crash    string      // the last "panic: " or "fatal error: " line, if any
}

func cmdUp(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	watch := fs.Bool("watch", false, "rebuild and restart in place a service whose Go sources change")
	pos, err := parseFlags(fs, args, upHelp)
	if err != nil {
		return err
	}
	file, err := catalogFile(e, "up", pos)
	if err != nil {
		return err
	}
	entries, err := readCatalog(file)
	if err != nil {
		return err
	}
	if cs, _ := checkCatalog(entries); len(cs) > 0 {
		parts := make([]string, len(cs))
		for i, c := range cs {
			parts[i] = c.String()
		}
		return fmt.Errorf("%s: %s (svcctl ports %s suggests a free offset)", file, strings.Join(parts, "; "), file)
	}
	dir, err := os.MkdirTemp("", "svcctl-up-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	u := &upRun{dir: dir, environ: e.environ(), client: &http.Client{Timeout: time.Second}, reaper: adoptOrphans()}
	u.out = newUpOutput(e, entries)
	for _, en := range entries {
		u.offsets = append(u.offsets, convention.EnvName("services."+en.Name+".offset")+"="+strconv.Itoa(en.Offset))
		if en.Package == "" {
			fmt.Fprintf(e.stderr, "svcctl: %s names no package in %s: not started\n", en.Name, file)
			continue
		}
		u.svcs = append(u.svcs, &upService{catalogEntry: en, run: u, bin: filepath.Join(dir, en.Name),
			color: upColors[len(u.svcs)%len(upColors)], done: make(chan struct{})})
	}
	if len(u.svcs) == 0 {
		return fmt.Errorf("%s: no service names its package (services.<name>.package, such as ./cmd/orders)", file)
	}
	if err := u.checkPorts(); err != nil {
		return err
	}
	if err := u.buildAll(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var w *upWatcher
	if *watch {
		if w, err = u.newWatcher(ctx); err != nil {
			return err
		}
		defer w.close()
	}
	for _, s := range u.svcs {
		go s.supervise(ctx)
	}
	u.announce(ctx, e)
	if w != nil {
		go w.loop(ctx)
	}
	<-ctx.Done()
	u.stop(e)
	return nil
}

// checkPorts tries to bind every port of every service as the service
// will (admin on loopback, public and private on all interfaces) and
// names the first one taken.
func (u *upRun) checkPorts() error {
	for _, s := range u.svcs {
		for _, p := range s.uses() {
			host := ""
			if p.use.Listener == "admin" {
				host = "127.0.0.1"
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p.port)))
			if err != nil {
				return fmt.Errorf("port %d (%s %s, offset %d) is taken: another process listens on it (svcctl ps lists svc services; svcctl ports suggests a free offset)",
					p.port, s.Name, p.use.Listener, s.Offset)
			}
			ln.Close()
		}
	}
	return nil
}

// buildAll builds every service at once and returns the errors of those
// that failed, with the compiler's output.
func (u *upRun) buildAll(ctx context.Context) error {
	errs := make([]error, len(u.svcs))
	var wg sync.WaitGroup
	for i, s := range u.svcs {
		wg.Go(func() {
			if out, err := goBuild(ctx, s.bin, s.Package); err != nil {
				errs[i] = fmt.Errorf("%s: go build %s: %v\n%s", s.Name, s.Package, err, strings.TrimSpace(string(out)))
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// goBuild builds pkg into out.
func goBuild(ctx context.Context, out, pkg string) ([]byte, error) {
	return exec.CommandContext(ctx, "go", "build", "-o", out, pkg).CombinedOutput()
}

// announce waits until every service is ready, then prints the table.
func (u *upRun) announce(ctx context.Context, e *env) {
	tick := time.NewTicker(upPoll)
	defer tick.Stop()
	note := time.Now().Add(upWaitNote)
	for {
		var waiting []string
		for _, s := range u.svcs {
			if s.ready() == 0 {
				waiting = append(waiting, s.Name)
			}
		}
		if len(waiting) == 0 {
			break
		}
		if time.Now().After(note) {
			u.out.global(e.stderr, fmt.Sprintf("svcctl: waiting for %s to be ready\n", strings.Join(waiting, ", ")))
			note = time.Now().Add(upWaitNote)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
	rows := make([][]string, len(u.svcs))
	for i, s := range u.svcs {
		rows[i] = []string{s.Name, strconv.Itoa(s.ready()), strconv.Itoa(s.Admin), strconv.Itoa(s.Public), strconv.Itoa(s.Private), s.Package}
	}
	var b bytes.Buffer
	table(&b, []string{"NAME", "PID", "ADMIN", "PUBLIC", "PRIVATE", "PACKAGE"}, rows)
	fmt.Fprintf(&b, "%s ready; Ctrl-C stops them\n", plural(len(u.svcs), "service"))
	u.out.global(e.stdout, b.String())
}

// stop sends SIGTERM to every service, waits for them, and sends SIGKILL
// to those still running after upStopTimeout.
func (u *upRun) stop(e *env) {
	u.out.global(e.stderr, fmt.Sprintf("svcctl: stopping %s\n", plural(len(u.svcs), "service")))
	for _, s := range u.svcs {
		s.signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(upStopTimeout)
	defer deadline.Stop()
	for _, s := range u.svcs {
		select {
		case <-s.done:
		case <-deadline.C:
			s.note("still running %s after SIGTERM: SIGKILL", upStopTimeout)
			s.signal(syscall.SIGKILL)
			<-s.done
		}
	}
	u.out.global(e.stderr, "svcctl: every service stopped\n")
}

// environ is the service's environment: svcctl's own, the catalog's
// offsets, the service's env, then its ports.
func (s *upService) environ() []string {
	env := slices.Concat(s.run.environ, s.run.offsets)
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		env = append(env, k+"="+s.Env[k])
	}
	return append(env,
		"ADMIN_PORT="+strconv.Itoa(s.Admin),
		"PUBLIC_PORT="+strconv.Itoa(s.Public),
		"PRIVATE_PORT="+strconv.Itoa(s.Private))
}

// supervise runs the service until ctx is done: it starts the binary,
// follows the successors of in-place restarts, and starts it again, with
// backoff, when it exits.
func (s *upService) supervise(ctx context.Context) {
	defer close(s.done)
	failures := 0
	for {
		delay := time.Duration(0)
		cmd, err := s.start()
		if err != nil {
			s.note("cannot start %s: %v", s.bin, err)
			delay = backoff(failures)
			failures++
		} else {
			begun := time.Now()
			s.setProc(cmd.Process)
			if ctx.Err() != nil { // stop may have looked before setProc
				_ = cmd.Process.Signal(syscall.SIGTERM)
			}
			go s.watchReady(ctx, cmd.Process.Pid)
			_ = cmd.Wait()
			why := cmd.ProcessState.String()
			pid := cmd.Process.Pid
			// An in-place restart hands over to a successor, which is not
			// our child: follow it until it exits, or its own successor.
			for next := s.successor(pid); next != nil; next = s.successor(pid) {
				s.setProc(next)
				if ctx.Err() != nil {
					_ = next.Signal(syscall.SIGTERM)
				} else {
					s.note("restarted in place: pid %d -> %d", pid, next.Pid)
					go s.watchReady(ctx, next.Pid)
				}
				s.run.waitGone(next)
				pid, why, begun = next.Pid, "exited", time.Now()
			}
			s.setProc(nil)
			if ctx.Err() != nil {
				return
			}
			if time.Since(begun) > upStableAfter {
				failures = 0
			}
			ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus)
			killed := pid == cmd.Process.Pid && ws.Signaled()
			if killed && ws.Signal() == syscall.SIGUSR2 {
				s.note("pid %d died of SIGUSR2: its svc does not restart in place; starting the new build", pid)
			} else {
				delay = backoff(failures)
				failures++
				s.note("pid %d %s%s; starting it again in %s", pid, why, s.lastLine(killed), delay)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// backoff is the delay before the next start after failures failures.
func backoff(failures int) time.Duration {
	d := upBackoffMin
	for range failures {
		if d *= 2; d >= upBackoffMax {
			return upBackoffMax
		}
	}
	return d
}

// start starts the binary with its stdout and stderr copied, line by
// line and prefixed, to svcctl's. The pipes are files the process (and
// any successor it hands over to) writes to directly.
func (s *upService) start() (*exec.Cmd, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	cmd := exec.Command(s.bin)
	cmd.Env = s.environ()
	cmd.Stdout, cmd.Stderr = outW, errW
	// Its own process group: Ctrl-C reaches svcctl only, which stops the
	// services in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	go s.copyLines(outR, s.run.out.stdout, false)
	go s.copyLines(errR, s.run.out.stderr, true)
	return cmd, nil
}

// copyLines writes each line of r to w with the service's prefix; with
// keep, it remembers the last one (for the reason of an exit).
func (s *upService) copyLines(r *os.File, w io.Writer, keep bool) {
	defer r.Close()
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if text := strings.TrimRight(string(line), "\r\n"); len(line) > 0 {
			s.run.out.line(w, s.Name, s.color, text)
			if keep && strings.TrimSpace(text) != "" {
				s.mu.Lock()
				s.lastErr = text
				if strings.HasPrefix(text, "panic: ") || strings.HasPrefix(text, "fatal error: ") {
					s.crash = text
				}
				s.mu.Unlock()
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// lastLine is "; last stderr: LINE" when the service wrote to stderr:
// its panic or fatal error, or else, unless a signal killed it, its last
// line. It forgets both, for the next run.
func (s *upService) lastLine(killed bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	line := s.crash
	if !killed {
		line = cmp.Or(line, s.lastErr)
	}
	s.crash, s.lastErr = "", ""
	if line == "" {
		return ""
	}
	return "; last stderr: " + shown(line)
}

// shown cuts a long line for a note.
func shown(line string) string {
	const max = 300
	if len(line) <= max {
		return line
	}
	return line[:max] + "..."
}

// successor returns the process that took over from pid by an in-place
// restart, as the admin port names it, or nil.
func (s *upService) successor(pid int) *os.Process {
	var p struct {
		PID int `json:"pid"`
	}
	resp, err := s.run.client.Get("http://127.0.0.1:" + strconv.Itoa(s.Admin) + "/admin/process")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&p) != nil || p.PID <= 0 || p.PID == pid {
		return nil
	}
	proc, err := os.FindProcess(p.PID)
	if err != nil || proc.Signal(syscall.Signal(0)) != nil {
		return nil
	}
	return proc
}

// waitGone waits until p, the successor of an in-place restart, has
// exited: it waits for it as a child when svcctl adopts orphans, and
// polls it otherwise.
func (u *upRun) waitGone(p *os.Process) {
	if u.reaper {
		if _, err := p.Wait(); err == nil {
			return
		}
	}
	for p.Signal(syscall.Signal(0)) == nil {
		time.Sleep(upPoll)
	}
}

// watchReady polls the service's /readyz until it answers 200, while pid
// is the process serving.
func (s *upService) watchReady(ctx context.Context, pid int) {
	url := "http://127.0.0.1:" + strconv.Itoa(s.Private) + "/readyz"
	tick := time.NewTicker(upPoll)
	defer tick.Stop()
	for s.pid() == pid {
		if resp, err := s.run.client.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				s.mu.Lock()
				again := s.readyPID != 0
				s.readyPID = pid
				s.mu.Unlock()
				if again {
					s.note("ready: pid %d", pid)
				}
				return
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *upService) setProc(p *os.Process) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc = p
}

// pid is the pid of the process serving now, 0 if none.
func (s *upService) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc == nil {
		return 0
	}
	return s.proc.Pid
}

// ready is the pid last seen ready, 0 if none yet.
func (s *upService) ready() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readyPID
}

func (s *upService) signal(sig os.Signal) {
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	if p != nil {
		_ = p.Signal(sig)
	}
}

// note writes one line of svcctl's own about the service, under its
// prefix, to stderr.
func (s *upService) note(format string, args ...any) {
	s.run.out.line(s.run.out.stderr, s.Name, s.color, "svcctl: "+fmt.Sprintf(format, args...))
}

// rebuild builds the service again and, if the binary changed, swaps it
// in: rename over the binary, then SIGUSR2 for an in-place restart (the
// successor starts from the executable's path). A failed build prints the
// compiler's output and leaves the running process alone.
func (s *upService) rebuild(ctx context.Context) {
	tmp := filepath.Join(s.run.dir, "."+s.Name+".new")
	out, err := goBuild(ctx, tmp, s.Package)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		running := "nothing runs"
		if pid := s.pid(); pid != 0 {
			running = fmt.Sprintf("pid %d keeps running", pid)
		}
		s.note("build of %s failed (%v); %s:", s.Package, err, running)
		for l := range strings.Lines(strings.TrimSpace(string(out))) {
			s.run.out.line(s.run.out.stderr, s.Name, s.color, strings.TrimRight(l, "\n"))
		}
		return
	}
	if same(tmp, s.bin) {
		os.Remove(tmp)
		s.note("rebuilt %s: the binary is unchanged", s.Package)
		return
	}
	if err := os.Rename(tmp, s.bin); err != nil {
		s.note("cannot replace the binary: %v", err)
		return
	}
	pid := s.pid()
	if pid == 0 {
		s.note("rebuilt %s; its next start runs it", s.Package)
		return
	}
	s.note("rebuilt %s; restarting pid %d in place (SIGUSR2)", s.Package, pid)
	s.signal(syscall.SIGUSR2)
	go s.watchSwap(ctx, pid)
}

// watchSwap says so when pid still serves upSwapTimeout after SIGUSR2.
func (s *upService) watchSwap(ctx context.Context, pid int) {
	t := time.NewTimer(upSwapTimeout)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
		if s.pid() == pid {
			s.note("pid %d still serves %s after SIGUSR2: no in-place restart happened (its successor failed, see its log, or its svc does not restart in place); the new build runs from its next start", pid, upSwapTimeout)
		}
	}
}

// same reports whether the files a and b have the same contents.
func same(a, b string) bool {
	sum := func(p string) ([]byte, bool) {
		f, err := os.Open(p)
		if err != nil {
			return nil, false
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(h, f); err != nil {
			return nil, false
		}
		return h.Sum(nil), true
	}
	ha, ok1 := sum(a)
	hb, ok2 := sum(b)
	return ok1 && ok2 && bytes.Equal(ha, hb)
}

// upOutput writes the prefixed lines of every service, one whole line at
// a time, coloured on a terminal.
type upOutput struct {
	mu             sync.Mutex // one line at a time
	stdout, stderr io.Writer  // svcctl's own, unescaped
	tty            map[io.Writer]bool
	width          int // the longest service name
}

func newUpOutput(e *env, entries []catalogEntry) *upOutput {
	o := &upOutput{stdout: e.rawStdout, stderr: e.rawStderr, tty: map[io.Writer]bool{}}
	for _, w := range []io.Writer{o.stdout, o.stderr} {
		if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			o.tty[w] = true
		}
	}
	for _, en := range entries {
		o.width = max(o.width, len(en.Name))
	}
	return o
}

// line writes "name | text" to w, text escaped like everything svcctl
// prints (control characters as \x1b, ...).
func (o *upOutput) line(w io.Writer, name string, color int, text string) {
	b := make([]byte, 0, len(text)+o.width+16)
	pad := strings.Repeat(" ", max(0, o.width-len(name)))
	if o.tty[w] {
		b = fmt.Appendf(b, "\x1b[%dm%s%s |\x1b[0m ", color, name, pad)
	} else {
		b = fmt.Appendf(b, "%s%s | ", name, pad)
	}
	b = appendEscaped(b, []byte(text), true)
	b = append(b, '\n')
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = w.Write(b)
}

// global writes text, svcctl's own, to w (a termWriter) between lines.
func (o *upOutput) global(w io.Writer, text string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, _ = io.WriteString(w, text)
}

// upWatcher rebuilds the services whose sources change.
type upWatcher struct {
	u       *upRun
	w       *fsnotify.Watcher
	modRoot string                         // the main module's directory: go.mod, go.sum
	deps    map[*upService]map[string]bool // each service's package directories in the main module
	watched map[string]bool
}

func (u *upRun) newWatcher(ctx context.Context) (*upWatcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("--watch: %w", err)
	}
	w := &upWatcher{u: u, w: fw, deps: map[*upService]map[string]bool{}, watched: map[string]bool{}}
	if out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			w.modRoot = filepath.Dir(mod)
			w.add(w.modRoot)
		}
	}
	for _, s := range u.svcs {
		if err := w.refresh(ctx, s); err != nil {
			fw.Close()
			return nil, err
		}
	}
	return w, nil
}

func (w *upWatcher) close() { w.w.Close() }

// refresh lists the directories of s's package and its dependencies in
// the main module, and watches them.
func (w *upWatcher) refresh(ctx context.Context, s *upService) error {
	out, err := exec.CommandContext(ctx, "go", "list", "-e", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", s.Package).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%v: %s", err, strings.TrimSpace(string(ee.Stderr)))
		}
		return fmt.Errorf("--watch: go list -deps %s: %w", s.Package, err)
	}
	deps := map[string]bool{}
	for dir := range strings.Lines(string(out)) {
		if dir = strings.TrimSpace(dir); dir != "" {
			deps[dir] = true
			w.add(dir)
		}
	}
	w.deps[s] = deps
	return nil
}

func (w *upWatcher) add(dir string) {
	if w.watched[dir] {
		return
	}
	if err := w.w.Add(dir); err == nil {
		w.watched[dir] = true
	}
}

// affects reports whether ev may change s's binary: a Go file (not a
// test) in one of its directories, or the module's go.mod or go.sum.
func (w *upWatcher) affects(s *upService, ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	dir, base := filepath.Dir(ev.Name), filepath.Base(ev.Name)
	if dir == w.modRoot && (base == "go.mod" || base == "go.sum") {
		return true
	}
	return w.deps[s][dir] && strings.HasSuffix(base, ".go") && !strings.HasSuffix(base, "_test.go")
}

// loop rebuilds, once events have paused for upDebounce, every service a
// change affects, until ctx is done.
func (w *upWatcher) loop(ctx context.Context) {
	pending := map[*upService]bool{}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			for _, s := range w.u.svcs {
				if w.affects(s, ev) {
					pending[s] = true
					timer.Reset(upDebounce)
				}
			}
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.u.out.global(w.u.out.stderr, fmt.Sprintf("svcctl: --watch: %v\n", err))
		case <-timer.C:
			for _, s := range w.u.svcs {
				if !pending[s] {
					continue
				}
				delete(pending, s)
				s.rebuild(ctx)
				if err := w.refresh(ctx, s); err != nil && ctx.Err() == nil {
					s.note("%v", err)
				}
			}
		}
	}
}
