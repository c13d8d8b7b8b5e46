package proof

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
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

// InPlaceConfig is a series of in-place restarts of one instance
// addressed by its ports (no registry), under load.
type InPlaceConfig struct {
	Restarts int           // alternately SIGUSR2 and POST /admin/restart
	Rate     int           // requests per second of each Go load; the raw one matches it
	Workers  int           // goroutines of each load
	Settle   time.Duration // steady load after a swap, before the next
	Drain    time.Duration // shutdown.drain of the instance
}

// Swap is one in-place restart as the clients saw it.
type Swap struct {
	Via        string        // SIGUSR2 or POST /admin/restart
	ToServing  time.Duration // from the signal (or request) to the first answer of the new process
	OldExited  time.Duration // from the signal to the old process's exit
	MaxLatency time.Duration // the slowest request sent between the signal and the old process's exit
	Sent       int           // requests sent in that window, all loads
	Failed     int
}

// InPlaceResult is what InPlace measured.
type InPlaceResult struct {
	Config InPlaceConfig
	Swaps  []Swap
	Loads  map[string]Stats // each load over the whole series
	Errors []string         // the failed requests, at most 20
}

// InPlace starts example-service on free loopback ports, drives three
// loads against its public port (Go's client with kept connections, Go's
// client with a new connection per request, and a raw HTTP/1.1
// keep-alive client that never retries), and restarts it in place
// cfg.Restarts times, alternately with SIGUSR2 and POST /admin/restart,
// waiting after each for the new process to serve and the old one to
// exit, then cfg.Settle.
func InPlace(t *testing.T, bin string, cfg InPlaceConfig) InPlaceResult {
	t.Helper()
	env := Env(t.TempDir(), "", 0, "SHUTDOWN_DRAIN="+cfg.Drain.String())
	first, addrs := startGroup(t, bin, env)
	admin := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	pid := processPID(admin, addrs.Admin)
	if pid != first {
		t.Fatalf("admin port answered by pid %d; want %d", pid, first)
	}
	url := "http://" + addrs.Public + "/hello/proof"
	loads := map[string]sampler{
		"Go client, kept connections": StartLoad(&http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: cfg.Workers}}, url, cfg.Rate, cfg.Workers),
		"Go client, new connection per request": StartLoad(&http.Client{Timeout: 10 * time.Second,
			Transport: &http.Transport{DisableKeepAlives: true}}, url, cfg.Rate, cfg.Workers),
		"raw keep-alive client, never retries": StartRawLoad(addrs.Public, "/hello/proof", cfg.Rate, cfg.Workers),
	}
	from := time.Now()
	time.Sleep(cfg.Settle)

	res := InPlaceResult{Config: cfg, Loads: map[string]Stats{}}
	for i := range cfg.Restarts {
		sw := Swap{Via: "SIGUSR2"}
		t0 := time.Now()
		if i%2 == 0 {
			if err := syscall.Kill(pid, syscall.SIGUSR2); err != nil {
				t.Fatal(err)
			}
		} else {
			sw.Via = "POST /admin/restart"
			go func() { // timed by the poll below, not by the answer
				if resp, err := admin.Post("http://"+addrs.Admin+"/admin/restart", "", nil); err == nil {
					resp.Body.Close()
				}
			}()
		}
		next := pid
		for next == pid || next == 0 {
			if time.Since(t0) > 30*time.Second {
				t.Fatalf("restart %d: no new process serving within 30s", i+1)
			}
			next = processPID(admin, addrs.Admin)
		}
		sw.ToServing = time.Since(t0)
		for alive(pid) {
			if time.Since(t0) > 30*time.Second {
				t.Fatalf("restart %d: pid %d still running 30s after the signal", i+1, pid)
			}
			time.Sleep(time.Millisecond)
		}
		sw.OldExited = time.Since(t0)
		var window []Sample
		for _, l := range loads {
			window = append(window, l.Samples(t0, t0.Add(sw.OldExited))...)
		}
		st := Summarize(window)
		sw.Sent, sw.Failed, sw.MaxLatency = st.Sent, st.Failed, st.Max
		res.Swaps = append(res.Swaps, sw)
		pid = next
		time.Sleep(cfg.Settle)
	}
	to := time.Now()
	for name, l := range loads {
		l.Stop()
		res.Loads[name] = Summarize(l.Samples(from, to))
		for _, s := range l.Samples(from, to) {
			if s.Err != "" && len(res.Errors) < 20 {
				res.Errors = append(res.Errors, fmt.Sprintf("%s: %s (%s)", name, s.Err, s.Detail))
			}
		}
	}
	syscall.Kill(pid, syscall.SIGTERM)
	return res
}

// sampler is a load whose samples can be read: a *Load or a *RawLoad.
type sampler interface {
	Samples(from, to time.Time) []Sample
	Stop()
}

// ReportInPlace writes the restarts and the loads' totals.
func ReportInPlace(r *Report, section string, res InPlaceResult) {
	cfg := res.Config
	r.Printf(section, "One example-service instance on fixed ports, no registry, restarted in place %d times "+
		"(alternately SIGUSR2 and POST /admin/restart) under three loads of %d requests/s each (%d workers): "+
		"Go's client with kept connections, Go's client with a new connection per request, and a raw HTTP/1.1 "+
		"client that keeps its connection and never retries (it reconnects only after a `Connection: close` answer). "+
		"shutdown.drain %v; %v of steady load between swaps. \"To serving\": from the signal to the first answer "+
		"of the new process; \"old exited\": to the old process's exit (drain included); \"max latency\": the slowest "+
		"request sent in between.\n\n",
		cfg.Restarts, cfg.Rate, cfg.Workers, cfg.Drain, cfg.Settle)
	var rows [][]string
	for i, s := range res.Swaps {
		rows = append(rows, []string{strconv.Itoa(i + 1), s.Via, ms(s.ToServing), ms(s.OldExited),
			ms(s.MaxLatency), strconv.Itoa(s.Sent), strconv.Itoa(s.Failed)})
	}
	r.Table(section, []string{"#", "via", "to serving", "old exited", "max latency", "requests", "failed"}, rows)
	var total [][]string
	for _, name := range []string{"Go client, kept connections", "Go client, new connection per request", "raw keep-alive client, never retries"} {
		st := res.Loads[name]
		total = append(total, []string{name, strconv.Itoa(st.Sent), strconv.Itoa(st.Failed), st.ErrorsString(), ms(st.P50), ms(st.P99), ms(st.Max)})
	}
	r.Printf(section, "\n")
	r.Table(section, []string{"load", "sent", "failed", "errors", "p50", "p99", "max"}, total)
	if len(res.Errors) > 0 {
		r.Printf(section, "\nFailed requests: %s\n", strings.Join(res.Errors, "; "))
	}
}

// groupAddrs are the bound addresses from a "started" log line.
type groupAddrs struct{ Public, Private, Admin string }

// startGroup starts bin in a process group of its own, its stderr on a
// pipe (the successors inherit it; os/exec's Wait would wait for them),
// and returns its pid and addresses once it logged "started". The group
// is killed when the test ends.
func startGroup(t *testing.T, bin string, env []string) (int, groupAddrs) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	log := &svctest.LogBuffer{}
	read := make(chan struct{})
	go func() {
		defer close(read)
		io.Copy(log, r)
		r.Close()
	}()
	cmd := exec.Command(bin)
	cmd.Env, cmd.Stderr = env, w
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go cmd.Wait()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-read:
		case <-time.After(10 * time.Second):
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for line := range strings.Lines(log.String()) {
			var l struct{ Msg, Public, Private, Admin string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "started" {
				return cmd.Process.Pid, groupAddrs{l.Public, l.Private, l.Admin}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s did not log started within 20s:\n%s", bin, log.String())
	return 0, groupAddrs{}
}

// processPID asks the admin port for the pid answering it; 0 on error.
func processPID(c *http.Client, admin string) int {
	resp, err := c.Get("http://" + admin + "/admin/process")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var p struct{ PID int }
	if json.NewDecoder(resp.Body).Decode(&p) != nil {
		return 0
	}
	return p.PID
}

// alive reports whether pid runs: it exists and is not a zombie (an
// orphaned successor's predecessor is reaped by whoever adopted it, if
// anyone).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// RawLoad is a load from an HTTP/1.1 client written over net.Conn, as
// most non-Go clients behave: each worker keeps one connection and sends
// its requests on it back to back, opens a new one only after a response
// with "Connection: close", and never retries. Start it with
// StartRawLoad.
type RawLoad struct {
	runner
}

// StartRawLoad starts workers that together send rate GET path requests
// per second to addr.
func StartRawLoad(addr, path string, rate, workers int) *RawLoad {
	l := &RawLoad{runner: newRunner()}
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\n\r\n")
	interval := time.Duration(workers) * time.Second / time.Duration(rate)
	for range workers {
		l.wg.Go(func() {
			var c net.Conn
			var br *bufio.Reader
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				s := Sample{At: time.Now(), Addr: addr, Reused: c != nil}
				err := func() error {
					if c == nil {
						var err error
						if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
							c = nil
							return err
						}
						br = bufio.NewReader(c)
					}
					c.SetDeadline(time.Now().Add(10 * time.Second))
					if _, err := c.Write(req); err != nil {
						return err
					}
					resp, err := http.ReadResponse(br, nil)
					if err != nil {
						return err
					}
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
					if err == nil && resp.Close {
						c.Close()
						c = nil
					}
					return err
				}()
				s.Took = time.Since(s.At)
				if err != nil {
					s.Err, s.Detail = Classify(err), err.Error()
					if c != nil {
						c.Close()
						c = nil
					}
				}
				l.record(s)
			}
		})
	}
	return l
}
