package svc

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// readiness answers /readyz from the checks of the group svc.checks (the
// service's and the framework's) and the drain state.
type readiness struct {
	checks   []Check
	timeout  time.Duration
	draining atomic.Bool // true from the moment shutdown (or a drain) begins
}

func newReadiness() *readiness { return &readiness{timeout: 2 * time.Second} }

type checkResult struct {
	Status   string  `json:"status"` // ok, fail or warn (informational)
	Error    string  `json:"error,omitempty"`
	Duration float64 `json:"duration_ms"`
}

type readyBody struct {
	Status string                 `json:"status"` // ready, not ready, draining
	Checks map[string]checkResult `json:"checks"`
}

// check runs every check concurrently and reports whether all critical ones
// passed.
func (rd *readiness) check(ctx context.Context) (bool, map[string]checkResult) {
	ctx, cancel := context.WithTimeout(ctx, rd.timeout)
	defer cancel()
	results := make(map[string]checkResult, len(rd.checks))
	var mu sync.Mutex // guards results
	var wg sync.WaitGroup
	ok := atomic.Bool{}
	ok.Store(true)
	for _, c := range rd.checks {
		wg.Go(func() {
			start := time.Now()
			err := c.Func(ctx)
			res := checkResult{Status: "ok", Duration: float64(time.Since(start).Microseconds()) / 1000}
			if err != nil {
				res.Error = err.Error()
				res.Status = "fail"
				if c.Informational {
					res.Status = "warn"
				} else {
					ok.Store(false)
				}
			}
			mu.Lock()
			results[c.Name] = res
			mu.Unlock()
		})
	}
	wg.Wait()
	return ok.Load(), results
}

// healthy is the gate the registrar waits on: every critical check passes.
func (rd *readiness) healthy(ctx context.Context) error {
	ok, res := rd.check(ctx)
	if ok {
		return nil
	}
	for name, r := range res {
		if r.Status == "fail" {
			return &checkError{name: name, msg: r.Error}
		}
	}
	return nil
}

type checkError struct{ name, msg string }

func (e *checkError) Error() string { return "readiness check " + e.name + ": " + e.msg }

func (rd *readiness) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ok, results := rd.check(r.Context())
	body := readyBody{Status: "ready", Checks: results}
	code := http.StatusOK
	switch {
	case rd.draining.Load():
		body.Status, code = "draining", http.StatusServiceUnavailable
	case !ok:
		body.Status, code = "not ready", http.StatusServiceUnavailable
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
