// Command gate is `make bench-gate`: it measures svc against the fair
// baseline (internal/bench/fairbase) as a user would, in interleaved
// rounds, prints the ratios and exits 1 when one misses its target:
//
//	throughput (req/s) of svc >= 0.95 x fairbase's
//	startup (exec to first 200) <= 1.15 x fairbase's
//	idle RSS <= 1.25 x fairbase's
//
// svc is internal/bench/svchello with its default configuration (access
// log on, JSON lines since stderr is no terminal), polled at /readyz on
// its private port; fairbase is polled at /hello/ready, every ~0.18 ms
// (internal/bench/poll says why not with time.Sleep). Each server's
// stderr is a pipe that the gate drains, as journald or a container
// runtime would. Throughput is wrk (-t1 -c32) over loopback, the server
// pinned to CPU 1 and wrk to CPU 0 when taskset is there; wrk is required.
// Idle RSS is VmRSS one second after the server is ready, before any load.
// A run whose baseline moved more than 30% between rounds fails as
// disturbed: a ratio measured beside other load on the machine is noise.
//
//	go run ./internal/bench/gate [-rounds 5] [-duration 5s] [-env GOGC=200] [-variant 'GOMEMLIMIT=256MiB GOGC=off'] [-bin old=/tmp/svchello-old]
//
// -env adds a variable to both servers' environment; each -variant adds
// another svc run, with those variables, to every round, and each -bin
// NAME=PATH another build of svchello (from another commit, or with a
// change being tried), both reported beside svc, never gated. Needs ports
// 8020, 8021, 4020 and 8096 free, or others with -offset.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/svc-dev/svc/internal/bench/poll"
)

// Targets of the gate: svc against fairbase.
const (
	minThroughput = 0.95
	maxStartup    = 1.15
	maxIdleRSS    = 1.25

	// maxSpread is the most fairbase's req/s may move between rounds,
	// (max-min)/median, for the run to count.
	maxSpread = 0.30
)

// server is one program measured.
type server struct {
	name  string
	bin   string
	env   []string
	ready string // polled until 200
	load  string // what wrk requests
}

// result is one server's measurements over all rounds.
type result struct {
	startup  []time.Duration
	rps      []float64
	p99      []time.Duration
	cpuPerRq []time.Duration
	idleRSS  []int64 // KiB
	peakRSS  []int64 // KiB
	logBytes []int64 // stderr bytes per request
}

type envList []string

func (e *envList) String() string     { return strings.Join(*e, " ") }
func (e *envList) Set(s string) error { *e = append(*e, s); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench-gate:", err)
		os.Exit(2)
	}
}

func run() error {
	rounds := flag.Int("rounds", 5, "interleaved throughput rounds")
	starts := flag.Int("starts", 30, "interleaved startups per server")
	duration := flag.Duration("duration", 5*time.Second, "wrk duration per server per round")
	conns := flag.Int("c", 32, "wrk connections")
	offset := flag.Int("offset", 20, "svchello's port offset (admin 4000+, public 8000+, private 8001+); fairbase listens on 8076+offset")
	var env, variants, bins envList
	flag.Var(&env, "env", "KEY=VALUE added to both servers' environment (repeatable)")
	flag.Var(&variants, "variant", "space-separated KEY=VALUE list: one more svc run per round with them (repeatable)")
	flag.Var(&bins, "bin", "NAME=PATH: one more run per round of another svchello build, e.g. one from another commit (repeatable)")
	flag.Parse()

	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return errors.New("wrk not found: install it (apt-get install -y wrk) to run the gate")
	}
	admin, public, private, fair := 4000+*offset, 8000+*offset, 8001+*offset, 8076+*offset
	for _, port := range []int{public, private, admin, fair} {
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return fmt.Errorf("port %s is taken; stop whatever holds it", addr)
		}
	}
	bin, err := os.MkdirTemp("", "bench-gate-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bin)
	out, err := exec.Command("go", "build", "-o", bin+"/", "./internal/bench/svchello", "./internal/bench/fairbase").CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}

	servers := []server{
		{"fairbase", filepath.Join(bin, "fairbase"), append(slices.Clone(env), fmt.Sprintf("ADDR=:%d", fair)),
			fmt.Sprintf("http://127.0.0.1:%d/hello/ready", fair), fmt.Sprintf("http://127.0.0.1:%d/hello/ann", fair)},
		{"svc", filepath.Join(bin, "svchello"), append(slices.Clone(env), fmt.Sprintf("ADMIN_PORT=%d", admin),
			fmt.Sprintf("PUBLIC_PORT=%d", public), fmt.Sprintf("PRIVATE_PORT=%d", private)),
			fmt.Sprintf("http://127.0.0.1:%d/readyz", private), fmt.Sprintf("http://127.0.0.1:%d/hello/ann", public)},
	}
	for _, v := range variants {
		s := servers[1]
		s.name = "svc " + v
		s.env = append(slices.Clone(s.env), strings.Fields(v)...)
		servers = append(servers, s)
	}
	for _, b := range bins {
		name, path, ok := strings.Cut(b, "=")
		if !ok {
			return fmt.Errorf("-bin %q: want NAME=PATH", b)
		}
		s := servers[1]
		s.name, s.bin = name, path
		servers = append(servers, s)
	}
	results := make([]result, len(servers))
	pin := pinning()
	dir, err := os.MkdirTemp("", "bench-gate-cwd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Printf("# %s, go %s, %d CPUs, load %s, wrk -t1 -c%d -d%s, %d rounds, %d startups each, env %q, pinned %v\n",
		time.Now().UTC().Format("2006-01-02T15:04Z"), runtime.Version(), runtime.NumCPU(), loadavg(),
		*conns, *duration, *rounds, *starts, env, pin != nil)

	// Startup: one untimed start each, then interleaved, rotating who goes first.
	for i := -1; i < *starts; i++ {
		for j := range servers {
			k := (max(i, 0) + j) % len(servers)
			p, err := start(servers[k], dir, nil)
			if err != nil {
				return err
			}
			p.stop()
			if i >= 0 {
				results[k].startup = append(results[k].startup, p.startup)
			}
		}
	}

	// Throughput and RSS.
	fmt.Printf("%-5s %-36s %10s %9s %10s %9s %9s %8s\n", "round", "server", "req/s", "p99", "cpu/req", "idle_rss", "peak_rss", "log_B/rq")
	for round := 1; round <= *rounds; round++ {
		for j := range servers {
			k := (round + j) % len(servers)
			if err := measure(servers[k], dir, pin, wrk, *conns, *duration, &results[k]); err != nil {
				return err
			}
			r := &results[k]
			n := len(r.rps) - 1
			fmt.Printf("%-5d %-36s %10.0f %9s %10s %8dK %8dK %8d\n", round, servers[k].name, r.rps[n], r.p99[n],
				r.cpuPerRq[n], r.idleRSS[n], r.peakRSS[n], r.logBytes[n])
		}
	}

	fmt.Println()
	fmt.Printf("%-36s %10s %10s %12s %10s %10s %10s\n", "medians", "req/s", "p99", "cpu/req", "startup", "idle_rss", "peak_rss")
	for k, s := range servers {
		r := results[k]
		fmt.Printf("%-36s %10.0f %10s %12s %10s %9dK %9dK\n", s.name, median(r.rps), median(r.p99), median(r.cpuPerRq),
			median(r.startup).Round(10*time.Microsecond), median(r.idleRSS), median(r.peakRSS))
	}
	fmt.Println()
	base := results[0]
	for k := 2; k < len(servers); k++ {
		r := results[k]
		fmt.Printf("%s (not gated): throughput x%.3f, CPU/request x%.3f, startup x%.3f, idle RSS x%.3f, peak RSS x%.3f of fairbase\n", servers[k].name,
			median(r.rps)/median(base.rps), ratio(median(r.cpuPerRq), median(base.cpuPerRq)), ratio(median(r.startup), median(base.startup)),
			ratio(median(r.idleRSS), median(base.idleRSS)), ratio(median(r.peakRSS), median(base.peakRSS)))
	}
	svc := results[1]
	fmt.Printf("(not gated) CPU per request fairbase/svc x%.3f: the throughput ratio of a CPU-bound server, less disturbed by other load\n",
		ratio(median(base.cpuPerRq), median(svc.cpuPerRq)))
	failed := false
	check := func(what string, got, limit float64, atLeast bool) {
		ok := got <= limit
		if atLeast {
			ok = got >= limit
		}
		verdict, op := "ok", "<="
		if atLeast {
			op = ">="
		}
		if !ok {
			verdict, failed = "FAIL", true
		}
		fmt.Printf("%-4s %-34s x%.3f (target %s %.2f)\n", verdict, what, got, op, limit)
	}
	// A ratio of medians is only as good as the rounds: when the
	// baseline's own throughput moved a lot, other load was on the machine.
	lo, hi := slices.Min(base.rps), slices.Max(base.rps)
	disturbed := (hi-lo)/median(base.rps) > maxSpread
	if disturbed {
		fmt.Printf("FAIL disturbed run: fairbase's req/s ranged %.0f-%.0f over the rounds (more than %.0f%% of its median); rerun on a quiet machine\n",
			lo, hi, 100*maxSpread)
		fmt.Printf("n/a  %-34s x%.3f (not judged: disturbed run)\n", "throughput svc/fairbase", median(svc.rps)/median(base.rps))
		failed = true
	} else {
		check("throughput svc/fairbase", median(svc.rps)/median(base.rps), minThroughput, true)
	}
	check("startup svc/fairbase", ratio(median(svc.startup), median(base.startup)), maxStartup, false)
	check("idle RSS svc/fairbase", ratio(median(svc.idleRSS), median(base.idleRSS)), maxIdleRSS, false)
	if failed {
		fmt.Println("bench-gate: FAIL")
		os.Exit(1)
	}
	fmt.Println("bench-gate: ok")
	return nil
}

func ratio[T time.Duration | int64](a, b T) float64 { return float64(a) / float64(b) }

// loadavg returns the 1, 5 and 15 minute load averages.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// pinning returns the taskset prefix for the server (CPU 1), or nil when
// taskset is missing or there is only one CPU. wrk then gets CPU 0.
func pinning() []string {
	if runtime.NumCPU() < 2 {
		return nil
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil
	}
	return []string{"taskset", "-c", "1"}
}

// proc is a running server.
type proc struct {
	cmd     *exec.Cmd
	stderr  *counter
	startup time.Duration // exec to the first 200 of its ready URL
}

// counter counts and discards what the server writes to stderr: the gate
// is the other end of its pipe.
type counter struct{ n atomic.Int64 }

func (c *counter) Write(p []byte) (int, error) { c.n.Add(int64(len(p))); return len(p), nil }

// start execs s in dir with only s.env (prefixed by pin) and waits for
// s.ready to answer 200, polling every ~0.18 ms (internal/bench/poll).
func start(s server, dir string, pin []string) (*proc, error) {
	args := append(slices.Clone(pin), s.bin)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append([]string{}, s.env...)
	p := &proc{cmd: cmd, stderr: &counter{}}
	cmd.Stderr = p.stderr // a pipe, drained by exec's goroutine
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready, err := poll.OK(s.ready, t0.Add(10*time.Second))
	if err != nil {
		p.stop()
		return nil, fmt.Errorf("%s: %v", s.name, err)
	}
	p.startup = ready.Sub(t0)
	return p, nil
}

// stop kills the server (the gate does not time shutdown) and reaps it.
func (p *proc) stop() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

// measure starts s pinned, reads its idle RSS after a second, warms it up
// with wrk for a second, then runs wrk for d and records the results.
func measure(s server, dir string, pin []string, wrk string, conns int, d time.Duration, r *result) error {
	p, err := start(s, dir, pin)
	if err != nil {
		return err
	}
	defer p.stop()
	pid := p.cmd.Process.Pid
	time.Sleep(time.Second)
	idle, err := status(pid, "VmRSS")
	if err != nil {
		return err
	}
	wrkCmd := func(d time.Duration, latency bool) *exec.Cmd {
		args := []string{wrk, "-t1", "-c" + strconv.Itoa(conns), "-d" + d.String()}
		if latency {
			args = append(args, "--latency")
		}
		args = append(args, s.load)
		if pin != nil {
			args = append([]string{"taskset", "-c", "0"}, args...)
		}
		return exec.Command(args[0], args[1:]...)
	}
	if out, err := wrkCmd(time.Second, false).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: wrk warm-up: %v\n%s", s.name, err, out)
	}
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	log0 := p.stderr.n.Load()
	out, err := wrkCmd(d, true).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: wrk: %v\n%s", s.name, err, out)
	}
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	peak, err := status(pid, "VmHWM")
	if err != nil {
		return err
	}
	w, err := parseWrk(out)
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", s.name, err, out)
	}
	r.rps = append(r.rps, w.rps)
	r.p99 = append(r.p99, w.p99)
	r.cpuPerRq = append(r.cpuPerRq, (cpu1-cpu0)/time.Duration(w.requests))
	r.idleRSS = append(r.idleRSS, idle)
	r.peakRSS = append(r.peakRSS, peak)
	r.logBytes = append(r.logBytes, (p.stderr.n.Load()-log0)/w.requests)
	return nil
}

// wrkResult is what the gate reads from wrk's output.
type wrkResult struct {
	rps      float64
	p99      time.Duration
	requests int64
}

// parseWrk reads req/s, p99 and the request count from wrk --latency's
// output, and fails on socket errors or non-2xx answers.
func parseWrk(out []byte) (wrkResult, error) {
	var w wrkResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 0:
		case f[0] == "Socket" || f[0] == "Non-2xx":
			return w, fmt.Errorf("wrk: %s", sc.Text())
		case f[0] == "Requests/sec:" && len(f) == 2:
			w.rps, _ = strconv.ParseFloat(f[1], 64)
		case f[0] == "99%" && len(f) == 2:
			w.p99, _ = time.ParseDuration(f[1])
		case len(f) >= 3 && f[1] == "requests" && f[2] == "in":
			w.requests, _ = strconv.ParseInt(f[0], 10, 64)
		}
	}
	if w.rps == 0 || w.requests == 0 {
		return w, errors.New("wrk: no Requests/sec or request count in its output")
	}
	return w, nil
}

// status returns a "kB" field of /proc/PID/status (VmRSS, VmHWM) in KiB.
func status(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// cpuTime returns the user+system CPU time of pid from /proc/PID/stat
// (clock ticks of USER_HZ, 100 on Linux).
func cpuTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

func median[T time.Duration | int64 | float64](s []T) T {
	if len(s) == 0 {
		return 0
	}
	s = slices.Clone(s)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
