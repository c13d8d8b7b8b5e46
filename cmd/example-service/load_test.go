package main

// Load generators for the restart and stop tests: Go's own client (which
// hides a closed kept connection by retrying idempotent requests) and a
// raw HTTP/1.1 keep-alive client that never retries, as most non-Go
// clients, wrk and proxies behave.

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadStats counts the outcome of a load's requests. It is safe for
// concurrent use.
type loadStats struct {
	ok       atomic.Int64
	closes   atomic.Int64 // responses that carried Connection: close
	maxNanos atomic.Int64 // the slowest successful request

	mu       sync.Mutex // guards failures, connects
	failures []string   // requests that failed: sent, then no complete 200
	connects []string   // fresh connections refused or reset before any answer
}

func (s *loadStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

func (s *loadStats) connectFailed(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.connects = append(s.connects, fmt.Sprintf(format, args...))
}

func (s *loadStats) took(d time.Duration) {
	s.ok.Add(1)
	for {
		cur := s.maxNanos.Load()
		if int64(d) <= cur || s.maxNanos.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

// Failures returns the failed requests and the failed connects.
func (s *loadStats) Failures() (failed, connects []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.failures...), append([]string(nil), s.connects...)
}

func (s *loadStats) String() string {
	f, c := s.Failures()
	return fmt.Sprintf("%d ok, %d failed, %d connects failed, %d Connection: close, slowest %v",
		s.ok.Load(), len(f), len(c), s.closes.Load(), time.Duration(s.maxNanos.Load()).Round(time.Millisecond))
}

// load is a running load generator.
type load struct {
	stop  chan struct{}
	wg    sync.WaitGroup
	stats loadStats
}

// pace is the pause of each worker between two requests: steady load
// that leaves the 2 CPUs of a CI runner to the processes under test.
const pace = 2 * time.Millisecond

// goLoad sends GET url from workers goroutines through Go's client, with
// kept connections or, if !keepAlive, a new connection per request.
func goLoad(url string, workers int, keepAlive bool) *load {
	l := &load{stop: make(chan struct{})}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: workers,
	}}
	for range workers {
		l.wg.Go(func() {
			defer c.CloseIdleConnections()
			for l.running() {
				start := time.Now()
				resp, err := c.Get(url)
				if err != nil {
					l.stats.fail("%v", err)
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					l.stats.fail("reading the body: %v", err)
				case resp.StatusCode != http.StatusOK:
					l.stats.fail("status %d", resp.StatusCode)
				default:
					l.stats.took(time.Since(start))
				}
			}
		})
	}
	return l
}

// rawLoad sends "GET path" from workers goroutines, each on one kept
// connection to addr, back to back; it opens a new connection only after
// a response that says Connection: close, and never retries. A failure on
// a fresh connection before any answer (refused, reset from the accept
// queue of a listener that closed) is a failed connect; any other is a
// failed request.
func rawLoad(addr, path string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	req := []byte("GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: raw-keepalive\r\n\r\n")
	for range workers {
		l.wg.Go(func() {
			var c net.Conn
			var br *bufio.Reader
			fresh := false
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			drop := func() { c.Close(); c = nil }
			for l.running() {
				if c == nil {
					var err error
					if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err != nil {
						l.stats.connectFailed("dial: %v", err)
						c = nil
						continue
					}
					br, fresh = bufio.NewReader(c), true
				}
				start := time.Now()
				c.SetDeadline(start.Add(10 * time.Second))
				if _, err := c.Write(req); err != nil {
					l.failed(fresh, "write: %v", err)
					drop()
					continue
				}
				resp, err := http.ReadResponse(br, nil)
				if err != nil {
					l.failed(fresh, "read: %v", err)
					drop()
					continue
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch {
				case err != nil:
					l.stats.fail("reading the body: %v", err)
					drop()
					continue
				case resp.StatusCode != http.StatusOK:
					l.stats.fail("status %d", resp.StatusCode)
				default:
					l.stats.took(time.Since(start))
				}
				fresh = false
				if resp.Close || strings.EqualFold(resp.Header.Get("Connection"), "close") {
					l.stats.closes.Add(1)
					drop()
				}
			}
		})
	}
	return l
}

// failed records a request that got no answer: a failed connect on a
// fresh connection, a failed request on a kept one.
func (l *load) failed(fresh bool, format string, args ...any) {
	if fresh {
		l.stats.connectFailed(format, args...)
		return
	}
	l.stats.fail("kept connection: "+format, args...)
}

func (l *load) running() bool {
	select {
	case <-l.stop:
		return false
	case <-time.After(pace):
		return true
	}
}

// Stop stops the workers and returns the counts.
func (l *load) Stop() *loadStats {
	close(l.stop)
	l.wg.Wait()
	return &l.stats
}
