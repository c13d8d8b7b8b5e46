// Package poll waits for a starting server to answer, for the startup
// measurements of internal/bench (BenchmarkStartup and the gate), at the
// resolution they claim.
//
// time.Sleep cannot wait 100 µs in a program that has nothing else to do:
// the Go runtime then sleeps in its network poller, whose timeout is whole
// milliseconds, so time.Sleep(100*time.Microsecond) returns after about
// 1.1 ms and a startup polled that way is quantised to that step. Until
// 2026-11-28 both measurements were. OK sleeps with nanosleep(2), which
// blocks the thread for the interval asked, and before the server listens
// it tries a bare TCP connect (socket, connect, close: a few microseconds
// of CPU) rather than an HTTP request (tens of microseconds, and a
// goroutine), so that polling often does not take the CPU the starting
// server needs.
package poll

import (
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"time"
)

// Interval is the time between two attempts.
const Interval = 100 * time.Microsecond

// OK polls rawURL every Interval with fresh connections until it answers
// 200, and returns when it did; it fails after deadline. When the URL's
// host is an IP address, it first waits for its port to accept TCP
// connections.
func OK(rawURL string, deadline time.Time) (time.Time, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return time.Time{}, err
	}
	if ap, err := netip.ParseAddrPort(u.Host); err == nil {
		for !accepts(ap) {
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("%s: nothing accepts connections on %s", rawURL, ap)
			}
			sleep(Interval)
		}
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: time.Second}
	for {
		resp, err := c.Get(rawURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Now(), nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%s did not answer 200 (last: %v)", rawURL, err)
		}
		sleep(Interval)
	}
}
