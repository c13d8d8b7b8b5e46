package proof

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svc-dev/svc/svctest"
)

// Usage is what a process holds at one moment, from its private /metrics
// right after a forced garbage collection (POST /admin/gc), so that two
// readings compare live memory rather than garbage.
type Usage struct {
	Heap       float64 // go_memstats_heap_inuse_bytes
	Goroutines float64 // go_goroutines
}

// UsageOf forces a garbage collection in p through its admin port and
// reads heap in use and goroutines from its /metrics; -1 for what it could
// not read.
func UsageOf(c *http.Client, p *Process) Usage {
	if resp, err := c.Post(p.AdminURL()+"/admin/gc", "", nil); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	m := Metrics(c, p)
	u := Usage{Heap: -1, Goroutines: -1}
	if v, ok := m["go_memstats_heap_inuse_bytes"]; ok {
		u.Heap = v
	}
	if v, ok := m["go_goroutines"]; ok {
		u.Goroutines = v
	}
	return u
}

// Metrics returns the unlabelled samples of p's /metrics by name; empty
// when it could not be read.
func Metrics(c *http.Client, p *Process) map[string]float64 {
	m := map[string]float64{}
	body, err := get(c, p.PrivateURL()+"/metrics")
	if err != nil {
		return m
	}
	for line := range strings.Lines(body) {
		name, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			m[name] = f
		}
	}
	return m
}

// MetricsSize returns the size in bytes of p's /metrics, its number of
// series (sample lines) and the number of those of family, or -1s.
func MetricsSize(c *http.Client, p *Process, family string) (size, series, ofFamily int) {
	body, err := get(c, p.PrivateURL()+"/metrics")
	if err != nil {
		return -1, -1, -1
	}
	for line := range strings.Lines(body) {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		series++
		if strings.HasPrefix(line, family) {
			ofFamily++
		}
	}
	return len(body), series, ofFamily
}

func get(c *http.Client, url string) (string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// Answer is one HTTP response, reduced to what the scenario checks.
type Answer struct {
	Code  int
	Body  string
	Close bool // the server announced Connection: close
	Err   error
}

// String is "403" or the error.
func (a Answer) String() string {
	if a.Err != nil {
		return Classify(a.Err)
	}
	return strconv.Itoa(a.Code)
}

// Do sends one request with c. hdr holds name, value pairs; "Host" sets
// the request's Host.
func Do(c *http.Client, method, url, body string, hdr ...string) Answer {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return Answer{Err: err}
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		return Answer{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return Answer{Code: resp.StatusCode, Body: string(b), Close: resp.Close, Err: err}
}

// Counter is a loopback listener that counts the connections it accepts
// and closes them: a target nothing the service is asked may ever reach.
type Counter struct {
	ln       net.Listener
	accepted atomic.Int64
	wg       sync.WaitGroup
}

// NewCounter listens on a free loopback port until t ends.
func NewCounter(t testing.TB) *Counter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &Counter{ln: ln}
	c.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			c.accepted.Add(1)
			conn.Close()
		}
	})
	t.Cleanup(func() { ln.Close(); c.wg.Wait() })
	return c
}

// Port is the listener's port.
func (c *Counter) Port() string { return strconv.Itoa(c.ln.Addr().(*net.TCPAddr).Port) }

// Accepted is the number of connections accepted so far.
func (c *Counter) Accepted() int64 { return c.accepted.Load() }

// StartLimited starts bin like [Start], through sh with its open-file
// limit (soft and hard) lowered to nofile first; sh execs bin, so the
// process id is bin's.
func StartLimited(t testing.TB, bin string, env []string, nofile int) *Process {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("proof: sh is needed to lower the open-file limit: %v", err)
	}
	p := &Process{Bin: bin, Env: env, log: &svctest.LogBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(sh, "-c", "ulimit -n "+strconv.Itoa(nofile)+" && exec \"$0\"", bin)
	p.cmd.Env = append([]string{}, env...)
	p.cmd.Stdout = p.log
	p.cmd.Stderr = p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("proof: start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(p.Kill)
	if err := p.waitStarted(20 * time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// HeldFlood is what [FloodKeepAlive] saw.
type HeldFlood struct {
	Held   []net.Conn     // answered 200 and kept open, idle
	Shed   int            // answered 503 (and closed)
	Other  map[string]int // anything else, by class or status
	Took   time.Duration
	closed bool
}

// FloodKeepAlive opens n connections to addr, parallel at a time, sends
// one GET of path on each and keeps the connections that were answered
// 200 open and idle (keep-alive); the others are closed. Release closes
// the held ones.
func FloodKeepAlive(addr, path string, n, parallel int) *HeldFlood {
	res := &HeldFlood{Other: map[string]int{}}
	var mu sync.Mutex // guards res
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	start := time.Now()
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			code, conn, err := keepAliveGet(addr, path)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				res.Other[Classify(err)]++
			case code == http.StatusOK:
				res.Held = append(res.Held, conn)
			case code == http.StatusServiceUnavailable:
				res.Shed++
			default:
				res.Other["status "+strconv.Itoa(code)]++
			}
		})
	}
	wg.Wait()
	res.Took = time.Since(start)
	return res
}

// Release closes the held connections.
func (f *HeldFlood) Release() {
	if f.closed {
		return
	}
	f.closed = true
	for _, c := range f.Held {
		c.Close()
	}
}

// keepAliveGet sends one GET on a new connection and reads the response;
// on a 200 the connection is returned open, otherwise it is closed.
func keepAliveGet(addr, path string) (int, net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, nil, err
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: proof\r\n\r\n", path); err != nil {
		c.Close()
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return 0, nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusOK || resp.Close {
		c.Close()
		return resp.StatusCode, nil, nil
	}
	return resp.StatusCode, c, nil
}

// Smuggle writes a request framed both by Content-Length and by
// Transfer-Encoding: chunked, with a second request after the chunked
// body, and reports the status of the first response, whether the server
// closed the connection after it and the status of any second response.
func Smuggle(addr string) (first string, closed bool, second string, err error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", false, "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	const smuggled = "GET /hello/smuggled HTTP/1.1\r\nHost: proof\r\n\r\n"
	req := "POST /hello/x HTTP/1.1\r\nHost: proof\r\nContent-Length: " + strconv.Itoa(5+len(smuggled)) +
		"\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled
	if _, err := io.WriteString(c, req); err != nil {
		return "", false, "", err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return "", false, "", err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	first = resp.Status
	resp2, err := http.ReadResponse(br, nil)
	if err != nil { // EOF: closed, nothing more served; a timeout: held open
		return first, !isTimeout(err), "", nil
	}
	resp2.Body.Close()
	return first, resp.Close, resp2.Status, nil
}

// EtcdWatchers returns etcd_debugging_mvcc_watcher_total from the /metrics
// of the etcd at endpoint, or -1.
func EtcdWatchers(endpoint string) float64 {
	body, err := get(http.DefaultClient, endpoint+"/metrics")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, "etcd_debugging_mvcc_watcher_total "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// fmtUsage formats a before and after reading: "3.1 -> 3.2 MiB", "25 -> 25".
func fmtUsage(before, after Usage) (heap, goroutines string) {
	return fmt.Sprintf("%.1f → %.1f MiB", before.Heap/(1<<20), after.Heap/(1<<20)),
		fmt.Sprintf("%.0f → %.0f", before.Goroutines, after.Goroutines)
}
