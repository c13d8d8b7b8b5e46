package accesslog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sink is an io.Writer that records its writes and can block or fail.
type sink struct {
	mu     sync.Mutex // guards buf, writes, err
	buf    bytes.Buffer
	writes []int // length of each Write
	err    error // returned by the next Write, then cleared

	wrote   chan struct{} // if not nil, gets a value after each Write
	entered chan struct{} // if not nil, gets a value when a Write starts
	release chan struct{} // if not nil, each Write waits for a value
}

func (s *sink) Write(p []byte) (int, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.release != nil {
		<-s.release
	}
	s.mu.Lock()
	s.writes = append(s.writes, len(p))
	err := s.err
	s.err = nil
	if err == nil {
		s.buf.Write(p)
	}
	s.mu.Unlock()
	if s.wrote != nil {
		s.wrote <- struct{}{}
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// entry returns an entry whose line has the same length for every i < 1000.
func entry(i int) *Entry {
	return &Entry{Time: when, Server: "public", Method: "GET", Route: "/hello/{name}",
		Path: fmt.Sprintf("/hello/%03d", i), Status: 200, Bytes: 6, RequestID: fmt.Sprintf("id-%03d", i)}
}

func lineLen() int { return len(appendLine(nil, JSON, "", entry(0))) }

func TestCloseLosesNothing(t *testing.T) {
	out := &sink{}
	const batch = 1 << 10
	w := New(out, Options{BatchSize: batch, BufferSize: 64 << 20})
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				w.Log(&Entry{Server: "public", RequestID: fmt.Sprintf("%d-%d", g, i), Path: "/x\n\"y\xff"})
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if n := w.Dropped(); n != 0 {
		t.Fatalf("Dropped() = %d; want 0", n)
	}
	seen := make(map[string]bool)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var d decoded
		if err := json.Unmarshal([]byte(line), &d); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if seen[d.RequestID] {
			t.Errorf("request id %s written twice", d.RequestID)
		}
		seen[d.RequestID] = true
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d distinct lines written; want %d", len(seen), goroutines*each)
	}
	// Every Write is whole lines, at most one batch unless one line is longer.
	all := out.String()
	for _, n := range out.writes {
		chunk := all[:n]
		all = all[n:]
		if !strings.HasSuffix(chunk, "\n") {
			t.Fatalf("a Write of %d bytes does not end a line: %q", n, chunk)
		}
		if n > batch && strings.Count(chunk, "\n") > 1 {
			t.Errorf("a Write of %d bytes (%d lines) exceeds the batch size %d", n, strings.Count(chunk, "\n"), batch)
		}
	}
}

func TestDropsWhenSinkBlocks(t *testing.T) {
	out := &sink{entered: make(chan struct{}), release: make(chan struct{})}
	reg := prometheus.NewRegistry()
	dropped, err := NewDroppedCounter(reg)
	if err != nil {
		t.Fatal(err)
	}
	l := lineLen()
	tick := make(chan time.Time)
	w := newWriter(out, Options{BufferSize: 5 * l, BatchSize: 5 * l, Dropped: dropped}, tick, func() {})

	w.Log(entry(0))
	tick <- time.Time{} // the writer takes line 0 and blocks in Write
	<-out.entered
	const n = 10
	for i := 1; i <= n; i++ {
		w.Log(entry(i)) // never blocks: lines 1-4 fit beside line 0, 5-10 do not
	}
	if got, want := w.Dropped(), uint64(n-4); got != want {
		t.Errorf("Dropped() = %d; want %d", got, want)
	}
	if got, want := counterValue(t, dropped), float64(n-4); got != want {
		t.Errorf("svc_access_log_dropped_total = %v; want %v", got, want)
	}
	go func() {
		for range out.entered {
			out.release <- struct{}{}
		}
	}()
	out.release <- struct{}{}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	close(out.entered)
	want := ""
	for i := range 5 {
		want += string(appendLine(nil, JSON, "", entry(i)))
	}
	if got := out.String(); got != want {
		t.Errorf("written:\n%s\nwant:\n%s", got, want)
	}
}

func TestTickFlushes(t *testing.T) {
	out := &sink{wrote: make(chan struct{}, 1)}
	tick := make(chan time.Time)
	w := newWriter(out, Options{}, tick, func() {})
	defer w.Close()

	w.Log(entry(1))
	if got := out.String(); got != "" {
		t.Fatalf("written before a tick, a full batch or Flush: %q", got)
	}
	tick <- time.Time{}
	<-out.wrote
	if got, want := out.String(), string(appendLine(nil, JSON, "", entry(1))); got != want {
		t.Errorf("after a tick: %q; want %q", got, want)
	}
}

func TestNewFlushesPeriodically(t *testing.T) {
	out := &sink{wrote: make(chan struct{}, 1)}
	w := New(out, Options{FlushInterval: time.Millisecond})
	defer w.Close()
	w.Log(entry(2))
	<-out.wrote // no Flush, no Close: only the ticker writes
	if got := out.String(); !strings.Contains(got, `"request_id":"id-002"`) {
		t.Errorf("written: %q", got)
	}
}

func TestFullBatchWakesWriter(t *testing.T) {
	out := &sink{wrote: make(chan struct{}, 1)}
	l := lineLen()
	w := newWriter(out, Options{BatchSize: 3 * l}, nil, func() {}) // never ticks
	defer w.Close()
	w.Log(entry(1))
	w.Log(entry(2))
	if got := out.String(); got != "" {
		t.Fatalf("written before the batch filled: %q", got)
	}
	w.Log(entry(3))
	<-out.wrote
	if got := strings.Count(out.String(), "\n"); got != 3 {
		t.Errorf("%d lines written; want 3", got)
	}
}

func TestFlush(t *testing.T) {
	out := &sink{}
	w := newWriter(out, Options{Format: Text, Service: "s"}, nil, func() {})
	defer w.Close()
	w.Log(entry(1))
	if err := w.Flush(); err != nil {
		t.Fatalf("Flush() = %v", err)
	}
	if got, want := out.String(), string(appendLine(nil, Text, "s", entry(1))); got != want {
		t.Errorf("after Flush: %q; want %q", got, want)
	}
}

func TestWriteErrorCountsLostLines(t *testing.T) {
	broken := errors.New("broken pipe")
	out := &sink{err: broken}
	w := newWriter(out, Options{}, nil, func() {})
	w.Log(entry(1))
	w.Log(entry(2))
	if err := w.Flush(); !errors.Is(err, broken) {
		t.Errorf("Flush() = %v; want %v", err, broken)
	}
	if got := w.Dropped(); got != 2 {
		t.Errorf("Dropped() = %d; want 2", got)
	}
	w.Log(entry(3))
	if err := w.Flush(); err != nil {
		t.Errorf("second Flush() = %v; want nil (the error was reported)", err)
	}
	out.err = broken
	w.Log(entry(4))
	if err := w.Close(); !errors.Is(err, broken) {
		t.Errorf("Close() = %v; want %v", err, broken)
	}
	if got, want := out.String(), string(appendLine(nil, JSON, "", entry(3))); got != want {
		t.Errorf("written %q; want %q", got, want)
	}
}

func TestAfterClose(t *testing.T) {
	out := &sink{}
	w := New(out, Options{})
	w.Log(entry(1))
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	w.Log(entry(2))
	if got := w.Dropped(); got != 1 {
		t.Errorf("Dropped() after Log after Close = %d; want 1", got)
	}
	if err := w.Flush(); err != nil {
		t.Errorf("Flush() after Close = %v", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if got, want := out.String(), string(appendLine(nil, JSON, "", entry(1))); got != want {
		t.Errorf("written %q; want %q", got, want)
	}
}

func TestNilWriter(t *testing.T) {
	var w *Writer
	w.Log(entry(1))
	if w.Dropped() != 0 || w.Flush() != nil || w.Close() != nil {
		t.Error("a nil *Writer should do nothing")
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func TestUnusedWriterHoldsNoGoroutine(t *testing.T) {
	out := &sink{}
	w := New(out, Options{})
	if err := goleak.Find(); err != nil {
		t.Errorf("a Writer that never logged holds a goroutine: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	w.Log(entry(1))
	if err := w.Flush(); err != nil {
		t.Errorf("Flush() after Close = %v", err)
	}
	if got := w.Dropped(); got != 1 {
		t.Errorf("Dropped() after Log after Close = %d; want 1", got)
	}
	if got := out.String(); got != "" {
		t.Errorf("written %q; want nothing", got)
	}
}

// A Writer's lines, written with the heads it keeps encoded, are slog's
// lines, for svc's two servers and any other, with every method.
func TestWriterLinesAreSlogs(t *testing.T) {
	for _, server := range []string{"public", "private", "other \"one\""} {
		for _, method := range []string{"GET", "DELETE", "TRACE", "get", "BREW\n"} {
			out := &sink{}
			w := New(out, Options{Service: "svc-\"x\""})
			e := entry(1)
			e.Server, e.Method = server, method
			w.Log(e)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got, want := out.String(), string(slogLine(t, JSON, "svc-\"x\"", e)); got != want {
				t.Errorf("server %q method %q:\n got %s\nwant %s", server, method, got, want)
			}
		}
	}
}
