package proof

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SlowlorisResult is what [Slowloris] saw.
type SlowlorisResult struct {
	Conns  int             // connections opened
	Cut    []time.Duration // per connection cut by the server: from the first byte sent to the close
	NotCut int             // still open when the harness gave up
	Status map[string]int  // status lines the server sent before closing, if any
	// Refused counts connections reset or refused as they were made: past
	// a listener's connection cap, svc sheds the excess.
	Refused int
}

// Slowloris opens n connections to addr; each sends the start of a
// request, then one more header line every interval, never finishing the
// headers. It returns how long the server took to close each connection,
// giving up after limit.
func Slowloris(addr string, n int, interval, limit time.Duration) (SlowlorisResult, error) {
	res := SlowlorisResult{Status: map[string]int{}}
	var mu sync.Mutex // guards res
	var wg sync.WaitGroup
	var dialErr error
	for i := range n {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			dialErr = err
			res.Refused++
			continue
		}
		res.Conns++
		wg.Go(func() {
			defer c.Close()
			start := time.Now()
			_, err := fmt.Fprintf(c, "GET /hello/slow HTTP/1.1\r\nHost: proof\r\nX-Slow-%d-0: a\r\n", i)
			br := bufio.NewReader(c)
			for line := 1; err == nil && time.Since(start) < limit; line++ {
				_ = c.SetReadDeadline(time.Now().Add(interval))
				var status string
				status, err = br.ReadString('\n')
				if status != "" || (err != nil && !isTimeout(err)) {
					mu.Lock()
					if status != "" {
						res.Status[strings.TrimSpace(status)]++
					}
					res.Cut = append(res.Cut, time.Since(start))
					mu.Unlock()
					return
				}
				_, err = fmt.Fprintf(c, "X-Slow-%d-%d: a\r\n", i, line)
			}
			mu.Lock()
			if err != nil && !isTimeout(err) { // a write failed: the server closed
				res.Cut = append(res.Cut, time.Since(start))
			} else {
				res.NotCut++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if res.Conns > 0 {
		dialErr = nil // the others were shed at the connection cap
	}
	return res, dialErr
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// RawRequest writes head, then body bytes (if any), to addr on a fresh
// connection and returns the status line of the response. The write runs
// concurrently with the read, since a server may answer (and close)
// before it has read everything.
func RawRequest(addr, head string, body int64) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	go func() {
		if _, err := io.WriteString(c, head); err != nil {
			return
		}
		if body > 0 {
			_, _ = io.CopyN(c, zeros{}, body)
		}
	}()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(c).ReadString('\n')
	if status == "" {
		return "", fmt.Errorf("proof: no response from %s: %w", addr, err)
	}
	return strings.TrimSpace(status), nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// FloodResult is what [Flood] saw.
type FloodResult struct {
	Opened, Failed int           // connects that succeeded, failed
	OpenTook       time.Duration // to open them all
	Closed         int           // closed by the server within the limit
	ClosedBy       time.Duration // when the last of those was closed, from the start
	Errors         map[string]int
}

// Flood opens n connections to addr, at most parallel dials at a time,
// and holds each open and silent until the server closes it or limit
// passes. A server without a header timeout keeps them all.
func Flood(addr string, n, parallel int, limit time.Duration) FloodResult {
	res := FloodResult{Errors: map[string]int{}}
	var mu sync.Mutex // guards res
	var dials, holds sync.WaitGroup
	sem := make(chan struct{}, parallel)
	start := time.Now()
	for range n {
		sem <- struct{}{}
		dials.Go(func() {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			<-sem
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				res.Errors[Classify(err)]++
				return
			}
			res.Opened++
			holds.Go(func() {
				defer c.Close()
				_ = c.SetReadDeadline(start.Add(limit))
				_, err := c.Read(make([]byte, 1))
				if isTimeout(err) {
					return
				}
				mu.Lock()
				res.Closed++
				res.ClosedBy = max(res.ClosedBy, time.Since(start))
				mu.Unlock()
			})
		})
	}
	dials.Wait()
	res.OpenTook = time.Since(start)
	holds.Wait()
	return res
}

// ChurnResult is what [Churn] saw.
type ChurnResult struct {
	OK, Failed int
	Took       time.Duration
	Errors     map[string]int
}

// Churn sends n requests to url, parallel at a time, each on a new
// connection (keep-alive off): connection setup and teardown at full
// speed.
func Churn(url string, n, parallel int) ChurnResult {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	res := ChurnResult{Errors: map[string]int{}}
	var mu sync.Mutex // guards res
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	start := time.Now()
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := c.Get(url)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %d", resp.StatusCode)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Failed++
				res.Errors[Classify(err)]++
				return
			}
			res.OK++
		})
	}
	wg.Wait()
	res.Took = time.Since(start)
	return res
}

// Metric returns the value of an unlabelled metric from the process's
// /metrics, or -1.
func Metric(c *http.Client, p *Process, name string) float64 {
	resp, err := c.Get(p.PrivateURL() + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return -1
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// OpenFiles counts the open file descriptors of the process.
func OpenFiles(p *Process) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.Pid()))
	if err != nil {
		return -1
	}
	return len(ents)
}

// Alive reports whether the process still runs.
func Alive(p *Process) bool {
	select {
	case <-p.Exited():
		return false
	default:
		return p.cmd.Process.Signal(syscall.Signal(0)) == nil
	}
}
