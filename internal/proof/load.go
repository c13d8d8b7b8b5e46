package proof

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/svc-dev/svc/registry"
)

// Sample is the outcome of one request of a [Load].
type Sample struct {
	At     time.Time     // when it was sent
	Took   time.Duration // until the body was read, or the error
	Err    string        // class of failure ("" for a 2xx): see Classify
	Detail string        // the error or status, for failures
	Addr   string        // the instance's host:port, once resolved
	Reused bool          // the last connection got came from the idle pool
	// Retried reports that net/http asked for a second connection for
	// the request: it retried it after a reused connection failed under
	// it (the server closed it as the request went out).
	Retried bool
}

// Load sends GET requests to a URL at a steady rate from a fixed number of
// workers, through one HTTP client with connection reuse, and keeps every
// outcome. Start it with [StartLoad]; Stop ends it.
type Load struct {
	client *http.Client
	url    string
	rate   int

	runner
}

// runner is the goroutines of a load and the samples they record; Load
// and RawLoad share it.
type runner struct {
	stop chan struct{}
	wg   sync.WaitGroup // the goroutines

	mu      sync.Mutex // guards samples
	samples []Sample
}

func newRunner() runner { return runner{stop: make(chan struct{})} }

// record keeps one outcome.
func (w *runner) record(s Sample) {
	w.mu.Lock()
	w.samples = append(w.samples, s)
	w.mu.Unlock()
}

// StartLoad starts workers goroutines that together send rate requests per
// second to url through client. A worker whose request took longer than
// its slot sends the next at once, without catching up on missed slots.
func StartLoad(client *http.Client, url string, rate, workers int) *Load {
	l := &Load{client: client, url: url, rate: rate, runner: newRunner()}
	interval := time.Duration(workers) * time.Second / time.Duration(rate)
	begin := time.Now()
	for i := range workers {
		l.wg.Go(func() {
			next := begin.Add(time.Duration(i) * interval / time.Duration(workers))
			for {
				if d := time.Until(next); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-l.stop:
						t.Stop()
						return
					case <-t.C:
					}
				} else {
					select {
					case <-l.stop:
						return
					default:
					}
				}
				s := l.one()
				l.record(s)
				next = next.Add(interval)
				if now := time.Now(); next.Before(now.Add(-interval)) {
					next = now
				}
			}
		})
	}
	return l
}

func (l *Load) one() Sample {
	s := Sample{At: time.Now()}
	attempts := 0 // connections asked for
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GetConn: func(hostPort string) {
			s.Addr = hostPort
			s.Retried = attempts > 0
			attempts++
		},
		GotConn: func(info httptrace.GotConnInfo) { s.Reused = info.Reused },
	})
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.url, nil)
	if err != nil {
		panic(err) // the URL is the harness's own
	}
	resp, err := l.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	s.Took = time.Since(s.At)
	if err != nil {
		s.Err, s.Detail = Classify(err), err.Error()
	}
	return s
}

// Stop stops the workers and waits for their last requests.
func (w *runner) Stop() {
	close(w.stop)
	w.wg.Wait()
}

// Samples returns the outcomes of the requests sent in [from, to).
func (w *runner) Samples(from, to time.Time) []Sample {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Sample
	for _, s := range w.samples {
		if !s.At.Before(from) && s.At.Before(to) {
			out = append(out, s)
		}
	}
	return out
}

// Window summarizes the requests sent in [from, to).
func (l *Load) Window(from, to time.Time) Stats { return Summarize(l.Samples(from, to)) }

// Stats summarizes samples.
type Stats struct {
	Sent, Failed  int
	Retried       int            // requests net/http retried on a new connection (see Sample.Retried)
	Errors        map[string]int // failures by class
	P50, P99, Max time.Duration  // latency of all requests, failed ones included
}

// Summarize computes Stats of samples.
func Summarize(samples []Sample) Stats {
	st := Stats{Sent: len(samples), Errors: map[string]int{}}
	lat := make([]time.Duration, 0, len(samples))
	for _, s := range samples {
		lat = append(lat, s.Took)
		if s.Retried {
			st.Retried++
		}
		if s.Err != "" {
			st.Failed++
			st.Errors[s.Err]++
		}
	}
	st.P50, st.P99, st.Max = Percentile(lat, 0.50), Percentile(lat, 0.99), Percentile(lat, 1)
	return st
}

// ErrorsString lists the failure classes as "class: n, class: n".
func (st Stats) ErrorsString() string {
	if len(st.Errors) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(st.Errors)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, st.Errors[k]))
	}
	return strings.Join(parts, ", ")
}

// Percentile returns the p-quantile (0..1) of ds by the nearest-rank
// method; 0 for no sample. ds is sorted in place.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(p*float64(len(ds))+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

// Classify names the kind of a request failure: "connection refused",
// "connection reset", "EOF", "timeout", "no instance", "status N", or the
// error's text.
func Classify(err error) string {
	var noInstance *registry.NoInstanceError
	var netErr net.Error
	switch {
	case errors.As(err, &noInstance):
		return "no instance"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "EOF"
	case errors.As(err, &netErr) && netErr.Timeout():
		return "timeout"
	case strings.HasPrefix(err.Error(), "status "):
		return err.Error()
	}
	return err.Error()
}
