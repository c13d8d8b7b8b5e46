package proof

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/convention"
	"github.com/svc-dev/svc/svctest"
)

// UpWatchConfig is a series of edits of a service that `svcctl up
// --watch` runs, under load.
type UpWatchConfig struct {
	Edits       int           // good edits: each changes the default greeting
	BrokenAfter int           // after this many good edits, one with a syntax error (fixed by the next)
	Rate        int           // requests per second of each Go load; the raw one matches it
	Workers     int           // goroutines of each load
	Settle      time.Duration // steady load after a swap, before the next edit; the broken edit is watched twice as long
	Drain       time.Duration // shutdown.drain of the service
}

// WatchSwap is one good edit as the clients saw it. Every time is from
// the file's write.
type WatchSwap struct {
	Greeting   string
	Signal     time.Duration // to svcctl's "restarting pid N in place (SIGUSR2)": debounce and build
	ToServing  time.Duration // to the first answer with the new greeting
	OldExited  time.Duration // to the old process's exit (drain included)
	MaxLatency time.Duration // the slowest request sent between the SIGUSR2 and the old process's exit
	SlowestAt  time.Duration // when that request was sent, from the SIGUSR2
	BuildMax   time.Duration // the slowest request sent between the write and the SIGUSR2 (the build)
	Sent       int           // requests sent from the write to the old process's exit, all loads
	Failed     int
	From, To   int // the pids
}

// BrokenEdit is the edit with a syntax error.
type BrokenEdit struct {
	Reported   time.Duration // from the write to svcctl's "build ... failed"
	Compiler   []string      // the compiler's lines svcctl printed
	Held       time.Duration // how long the service was watched afterwards
	PID        int           // the process serving before the edit
	Kept       bool          // the same pid and the old greeting answered throughout
	Seen       string        // what broke Kept, if anything
	MaxLatency time.Duration // the slowest request sent from the write to the end of Held
	Sent       int
	Failed     int
}

// UpWatchResult is what UpWatch measured.
type UpWatchResult struct {
	Config UpWatchConfig
	Swaps  []WatchSwap
	Broken BrokenEdit
	Loads  map[string]Stats // each load over the whole series
	Errors []string         // the failed requests, at most 20
}

// UpWatch copies cmd/example-service's sources (not its tests) into a
// new directory under internal/proof/testdata (inside the module, so that
// its imports resolve; removed when t ends), runs `svcctl up --watch` on a
// catalog naming that package at a free offset, drives the three loads
// of [InPlace] against its public port, and edits the copy's example.go:
// cfg.Edits times the default of hello.greeting, waiting each time for
// the new greeting to answer and the old process to exit, and once, after
// cfg.BrokenAfter edits, a syntax error, watched for 2*cfg.Settle.
func UpWatch(t *testing.T, svcctl string, cfg UpWatchConfig) UpWatchResult {
	t.Helper()
	root := moduleDir(t)
	pkgDir, pkg := copyExample(t, root)
	exampleGo := filepath.Join(pkgDir, "example.go")
	src, err := os.ReadFile(exampleGo)
	if err != nil {
		t.Fatal(err)
	}
	greetingRe := regexp.MustCompile(`key:"greeting" default:"[^"]*"`)
	if !greetingRe.Match(src) {
		t.Fatalf("%s: no `key:\"greeting\" default:\"...\"` to edit", exampleGo)
	}
	withGreeting := func(g string) []byte {
		return greetingRe.ReplaceAll(src, []byte(`key:"greeting" default:"`+g+`"`))
	}

	off := svctest.FreeOffset(t, nil)
	ports := convention.PortsOf(off)
	catalog := filepath.Join(t.TempDir(), "services.json")
	if err := os.WriteFile(catalog, fmt.Appendf(nil,
		`{"services": {"example": {"offset": %d, "package": %q, "env": {"SHUTDOWN_DRAIN": %q, "LOG_ACCESS": "false", "LOG_FORMAT": "json"}}}}`,
		off, pkg, cfg.Drain.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	log := startSvcctlUp(t, svcctl, root, "up", "--watch", catalog)
	if _, _, ok := log.wait(time.Time{}, 3*time.Minute, regexp.MustCompile(`1 service ready`), nil); !ok {
		t.Fatalf("svcctl up --watch: no \"1 service ready\" within 3 minutes:\n%s", log.tail(40))
	}
	adminAddr := "127.0.0.1:" + strconv.Itoa(ports.Admin)
	public := "127.0.0.1:" + strconv.Itoa(ports.Public)
	admin := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	probe := &http.Client{Timeout: 5 * time.Second}
	defer probe.CloseIdleConnections()
	greeting := func() string {
		resp, err := probe.Get("http://" + public + "/hello/probe")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		var m struct{ Message string }
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil {
			return ""
		}
		g, _, _ := strings.Cut(m.Message, ", probe")
		return g
	}
	if g := greeting(); g != "hello" {
		t.Fatalf("before any edit the service greets %q; want hello", g)
	}

	url := "http://" + public + "/hello/proof"
	loads := map[string]sampler{
		"Go client, kept connections": StartLoad(&http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers}}, url, cfg.Rate, cfg.Workers),
		"Go client, new connection per request": StartLoad(&http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{DisableKeepAlives: true}}, url, cfg.Rate, cfg.Workers),
		"raw keep-alive client, never retries": StartRawLoad(public, "/hello/proof", cfg.Rate, cfg.Workers),
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			for _, l := range loads {
				l.Stop()
			}
		}
	}
	defer stop()
	window := func(from, to time.Time) Stats {
		var all []Sample
		for _, l := range loads {
			all = append(all, l.Samples(from, to)...)
		}
		return Summarize(all)
	}
	from := time.Now()
	time.Sleep(cfg.Settle)

	res := UpWatchResult{Config: cfg, Loads: map[string]Stats{}}
	buildFailed := regexp.MustCompile(`example \| svcctl: build of \S+ failed`)
	noSwap := regexp.MustCompile(`no in-place restart happened|starting it again`)
	for i := 1; i <= cfg.Edits; i++ {
		if i == cfg.BrokenAfter+1 {
			res.Broken = brokenEdit(t, log, exampleGo, append(withGreeting(res.lastGreeting()), "\nfunc broken() {\n"...),
				2*cfg.Settle, res.lastGreeting(), admin, adminAddr, greeting, window, buildFailed)
		}
		sw := WatchSwap{Greeting: "edit-" + strconv.Itoa(i), From: processPID(admin, adminAddr)}
		t0 := time.Now()
		if err := os.WriteFile(exampleGo, withGreeting(sw.Greeting), 0o644); err != nil {
			t.Fatal(err)
		}
		for greeting() != sw.Greeting {
			if time.Since(t0) > 3*time.Minute {
				t.Fatalf("edit %d: greeting %q not served within 3 minutes:\n%s", i, sw.Greeting, log.tail(40))
			}
			if l, _, ok := log.find(t0, buildFailed); ok {
				t.Fatalf("edit %d: %s\n%s", i, l.Text, log.tail(40))
			}
			if l, _, ok := log.find(t0, noSwap); ok {
				t.Fatalf("edit %d: no in-place swap: %s\n%s", i, l.Text, log.tail(40))
			}
			time.Sleep(time.Millisecond)
		}
		sw.ToServing = time.Since(t0)
		sw.To = processPID(admin, adminAddr)
		if sw.To == sw.From || sw.To == 0 {
			t.Errorf("edit %d: %q answered by pid %d; want a new process (was %d)", i, sw.Greeting, sw.To, sw.From)
		}
		sig, _, ok := log.find(t0, regexp.MustCompile(`restarting pid \d+ in place \(SIGUSR2\)`))
		if !ok {
			t.Fatalf("edit %d: svcctl did not say it restarted in place:\n%s", i, log.tail(40))
		}
		sw.Signal = sig.At.Sub(t0)
		for alive(sw.From) {
			if time.Since(t0) > 3*time.Minute {
				t.Fatalf("edit %d: pid %d still running", i, sw.From)
			}
			time.Sleep(time.Millisecond)
		}
		sw.OldExited = time.Since(t0)
		st := window(t0, t0.Add(sw.OldExited))
		sw.Sent, sw.Failed = st.Sent, st.Failed
		sw.MaxLatency, sw.SlowestAt = slowest(loads, sig.At, t0.Add(sw.OldExited))
		sw.BuildMax, _ = slowest(loads, t0, sig.At)
		res.Swaps = append(res.Swaps, sw)
		time.Sleep(cfg.Settle)
	}
	to := time.Now()
	stop()
	for name, l := range loads {
		samples := l.Samples(from, to)
		res.Loads[name] = Summarize(samples)
		for _, s := range samples {
			if s.Err != "" && len(res.Errors) < 20 {
				res.Errors = append(res.Errors, fmt.Sprintf("%s: %s (%s)", name, s.Err, s.Detail))
			}
		}
	}
	if t.Failed() {
		t.Logf("svcctl up output (last lines):\n%s", log.tail(60))
	}
	return res
}

// slowest is the latency of the slowest request of loads sent in [from,
// to), and when it was sent, from from.
func slowest(loads map[string]sampler, from, to time.Time) (took, at time.Duration) {
	for _, l := range loads {
		for _, s := range l.Samples(from, to) {
			if s.Took > took {
				took, at = s.Took, s.At.Sub(from)
			}
		}
	}
	return took, at
}

// lastGreeting is the greeting the last good edit set, "hello" before any.
func (r *UpWatchResult) lastGreeting() string {
	if len(r.Swaps) == 0 {
		return "hello"
	}
	return r.Swaps[len(r.Swaps)-1].Greeting
}

// brokenEdit writes src, which does not compile, to file, waits for
// svcctl's "build ... failed" and watches the service for hold: the same
// pid must answer with greeting throughout.
func brokenEdit(t *testing.T, log *stampedLog, file string, src []byte, hold time.Duration, greeting string,
	admin *http.Client, adminAddr string, served func() string, window func(from, to time.Time) Stats, failed *regexp.Regexp) BrokenEdit {
	t.Helper()
	b := BrokenEdit{PID: processPID(admin, adminAddr), Kept: true, Held: hold}
	t0 := time.Now()
	if err := os.WriteFile(file, src, 0o644); err != nil {
		t.Fatal(err)
	}
	l, _, ok := log.wait(t0, 3*time.Minute, failed, nil)
	if !ok {
		t.Fatalf("broken edit: svcctl did not report the failed build within 3 minutes:\n%s", log.tail(40))
	}
	b.Reported = l.At.Sub(t0)
	end := time.Now().Add(hold)
	for time.Now().Before(end) {
		if g, pid := served(), processPID(admin, adminAddr); b.Kept && (g != greeting || pid != b.PID) {
			b.Kept, b.Seen = false, fmt.Sprintf("greeting %q from pid %d at %s after the write", g, pid, ms(time.Since(t0)))
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, line := range log.since(l.At) {
		if text, ok := strings.CutPrefix(line.Text, "example | "); ok && !strings.HasPrefix(text, "{") && !strings.HasPrefix(text, "svcctl: build of") {
			b.Compiler = append(b.Compiler, text)
		}
	}
	st := window(t0, end)
	b.Sent, b.Failed, b.MaxLatency = st.Sent, st.Failed, st.Max
	return b
}

// ReportUpWatch writes the swaps, the broken edit and the loads' totals.
func ReportUpWatch(r *Report, section string, res UpWatchResult) {
	cfg := res.Config
	r.Printf(section, "`svcctl up --watch` on a catalog naming a copy of cmd/example-service (no registry, its catalog "+
		"ports); the copy's example.go edited %d times (the default of hello.greeting), plus once with a syntax error "+
		"after edit %d, under three loads of %d requests/s each (%d workers): Go's client with kept connections, Go's "+
		"client with a new connection per request, and the raw HTTP/1.1 client that never retries. shutdown.drain %v; "+
		"%v of steady load after each swap. Times are from the file's write: \"SIGUSR2\" when svcctl, the rebuild done, "+
		"signals the service (includes its 300 ms debounce); \"new greeting\" the first answer with the new greeting; "+
		"\"old exited\" the old process's exit (drain included). \"Max latency, build\": the slowest request sent between "+
		"the write and the SIGUSR2; \"max latency, swap\": the slowest sent between the SIGUSR2 and the old process's exit, "+
		"\"sent at\" when, from the SIGUSR2; \"requests\"/\"failed\": from the write to the old process's exit.\n\n",
		cfg.Edits, cfg.BrokenAfter, cfg.Rate, cfg.Workers, cfg.Drain, cfg.Settle)
	var rows [][]string
	for i, s := range res.Swaps {
		rows = append(rows, []string{strconv.Itoa(i + 1), s.Greeting, ms(s.Signal), ms(s.ToServing), ms(s.OldExited),
			ms(s.BuildMax), ms(s.MaxLatency), "+" + ms(s.SlowestAt), strconv.Itoa(s.Sent), strconv.Itoa(s.Failed)})
	}
	r.Table(section, []string{"#", "greeting", "SIGUSR2", "new greeting", "old exited", "max latency, build",
		"max latency, swap", "sent at", "requests", "failed"}, rows)
	b := res.Broken
	kept := "the same pid kept answering with the same greeting"
	if !b.Kept {
		kept = "**not kept**: " + b.Seen
	}
	r.Printf(section, "\nThe syntax error: svcctl reported the failed build %s after the write; over the next %v %s; "+
		"%d requests, %d failed, max latency %s. What svcctl printed:\n\n```\n%s\n```\n\n",
		ms(b.Reported), b.Held, kept, b.Sent, b.Failed, ms(b.MaxLatency), strings.Join(b.Compiler, "\n"))
	var total [][]string
	for _, name := range []string{"Go client, kept connections", "Go client, new connection per request", "raw keep-alive client, never retries"} {
		st := res.Loads[name]
		total = append(total, []string{name, strconv.Itoa(st.Sent), strconv.Itoa(st.Failed), st.ErrorsString(), ms(st.P50), ms(st.P99), ms(st.Max)})
	}
	r.Table(section, []string{"load", "sent", "failed", "errors", "p50", "p99", "max"}, total)
	if len(res.Errors) > 0 {
		r.Printf(section, "\nFailed requests: %s\n", strings.Join(res.Errors, "; "))
	}
}

// moduleDir is the directory of the main module's go.mod.
func moduleDir(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		t.Fatalf("go env GOMOD: %q, %v", mod, err)
	}
	return filepath.Dir(mod)
}

// copyExample copies cmd/example-service's non-test Go files into a new
// directory under internal/proof/testdata, removed when t ends, and
// returns it and its package path relative to root.
func copyExample(t *testing.T, root string) (dir, pkg string) {
	t.Helper()
	base := filepath.Join(root, "internal", "proof", "testdata")
	if err := os.MkdirAll(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp(base, "upwatch-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		os.RemoveAll(dir)
		os.Remove(base) // only if empty
	})
	files, err := filepath.Glob(filepath.Join(root, "cmd", "example-service", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rel, err := filepath.Rel(root, dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, "./" + filepath.ToSlash(rel)
}

// startSvcctlUp runs svcctl with args in dir, with CONFIG_DIR an empty
// directory and the go command of this test first on PATH, its output
// (stdout and stderr on one stream) in the returned log. When t ends it
// is stopped with SIGTERM (SIGKILL after 45s), and any service process
// still running is killed.
func startSvcctlUp(t *testing.T, svcctl, dir string, args ...string) *stampedLog {
	t.Helper()
	log := &stampedLog{}
	cmd := exec.Command(svcctl, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CONFIG_DIR="+t.TempDir(),
		"PATH="+filepath.Dir(goTool())+string(os.PathListSeparator)+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(45 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		for _, pid := range log.pids() {
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	return log
}

// stampedLog is svcctl's output, line by line, each with the time it
// was read.
type stampedLog struct {
	mu      sync.Mutex // guards the fields below
	partial []byte
	lines   []stampedLine
}

type stampedLine struct {
	At   time.Time
	Text string
}

func (l *stampedLog) Write(p []byte) (int, error) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, stampedLine{At: now, Text: string(l.partial[:i])})
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// since returns the lines read at or after from.
func (l *stampedLog) since(from time.Time) []stampedLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []stampedLine
	for _, s := range l.lines {
		if !s.At.Before(from) {
			out = append(out, s)
		}
	}
	return out
}

// find returns the first line read at or after from that matches re,
// and its submatches.
func (l *stampedLog) find(from time.Time, re *regexp.Regexp) (stampedLine, []string, bool) {
	for _, s := range l.since(from) {
		if m := re.FindStringSubmatch(s.Text); m != nil {
			return s, m, true
		}
	}
	return stampedLine{}, nil, false
}

// wait polls find for d; it gives up at once when abort (if not nil)
// matches a line.
func (l *stampedLog) wait(from time.Time, d time.Duration, re, abort *regexp.Regexp) (stampedLine, []string, bool) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if s, m, ok := l.find(from, re); ok {
			return s, m, true
		}
		if abort != nil {
			if _, _, ok := l.find(from, abort); ok {
				break
			}
		}
		time.Sleep(time.Millisecond)
	}
	return stampedLine{}, nil, false
}

// tail is the last n lines.
func (l *stampedLog) tail(n int) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, s := range l.lines[max(0, len(l.lines)-n):] {
		b.WriteString(s.Text + "\n")
	}
	return b.String()
}

// pids are the service pids svcctl named: in its table and in its
// "restarted in place" and "ready" notes.
func (l *stampedLog) pids() []int {
	re := regexp.MustCompile(`(?:^example\s+(\d+)\s|-> (\d+)|ready: pid (\d+)|restarting pid (\d+))`)
	var out []int
	for _, s := range l.since(time.Time{}) {
		for _, m := range re.FindAllStringSubmatch(s.Text, -1) {
			for _, g := range m[1:] {
				if n, err := strconv.Atoi(g); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}
