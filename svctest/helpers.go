package svctest

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/convention"
)

// LogBuffer collects output (a service's log, a process's stderr) that
// other goroutines write while the test reads it. Its zero value is empty
// and ready; it is safe for concurrent use.
type LogBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// HasLine reports whether one line of s (a log) contains every sub.
func HasLine(s string, subs ...string) bool {
	for line := range strings.Lines(s) {
		ok := true
		for _, sub := range subs {
			ok = ok && strings.Contains(line, sub)
		}
		if ok {
			return true
		}
	}
	return false
}

// Client returns an HTTP client with a 10s timeout whose idle connections
// are closed when the test ends, before the apps it started stop, so that
// no connection goroutine outlives the test (goleak).
func Client(t testing.TB) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// WaitFor polls cond every 5ms until it holds, failing the test with what
// after d. Tests wait on a condition this way instead of sleeping.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FreeOffset returns a multiple of 10 in 500..990 whose three
// conventional ports (admin, public and private, bound on every
// interface) are free now, starting from a random one so that parallel
// test processes rarely meet. skip, if not nil, excludes offsets the
// caller already handed out; it is called with none of FreeOffset's
// state held. The test fails if none is free.
func FreeOffset(t testing.TB, skip func(offset int) bool) int {
	t.Helper()
	start := rand.IntN(50)
	for i := range 50 {
		o := 500 + 10*((start+i)%50)
		if skip != nil && skip(o) {
			continue
		}
		if portsFree(convention.PortsOf(o)) {
			return o
		}
	}
	t.Fatal("svctest: no offset in 500..990 with its three ports free")
	return 0
}

// portsFree reports whether the three ports can be bound now.
func portsFree(p convention.Ports) bool {
	for _, port := range []int{p.Admin, p.Public, p.Private} {
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
		if err != nil {
			return false
		}
		ln.Close()
	}
	return true
}
