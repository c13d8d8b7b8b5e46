package svctest

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
	"time"
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
