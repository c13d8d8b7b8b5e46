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

// OK polls rawURL every Interval (and the timer slack) with fresh
// connections until it answers 200, and returns when it did; it fails
// after deadline. When the URL's host is a loopback address, it first
// waits for its port to accept TCP connections.
func OK(rawURL string, deadline time.Time) (time.Time, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return time.Time{}, fmt.Errorf("poll: %w", err)
	}
	if ap, err := netip.ParseAddrPort(u.Host); err == nil && ap.Addr().IsLoopback() {
		for !accepts(ap) {
			if time.Now().After(deadline) {
				return time.Time{}, fmt.Errorf("poll %s: nothing accepts connections on %s", rawURL, ap)
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
			return time.Time{}, fmt.Errorf("poll %s: no 200 before the deadline: %w", rawURL, err)
		}
		sleep(Interval)
	}
}
