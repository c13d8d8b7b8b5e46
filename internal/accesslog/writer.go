package accesslog

import (
	"bytes"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Options' zero fields.
const (
	DefaultBufferSize    = 1 << 20 // 1 MiB
	DefaultBatchSize     = 64 << 10
	DefaultFlushInterval = 100 * time.Millisecond
)

// maxPooledLine is the largest line buffer returned to the pool; a longer
// line (a hostile path) is encoded into a buffer that is then dropped.
const maxPooledLine = 4 << 10

// Options configure a Writer. The zero value works: JSON lines, a 1 MiB
// buffer, 64 KiB batches, a flush every 100 ms, drops not exported.
type Options struct {
	// Service is the "service" attribute of every line, as svc's logger
	// adds it to its own lines.
	Service string
	// Format is JSON (the zero value) or Text.
	Format Format
	// BufferSize bounds the bytes held in memory: lines waiting and the
	// batch being written. A line that does not fit is dropped and counted.
	// If zero, DefaultBufferSize is used.
	BufferSize int
	// BatchSize is the most bytes handed to the sink in one Write (a
	// longer line is written alone); reaching it wakes the writer before
	// the next tick. If zero, DefaultBatchSize is used.
	BatchSize int
	// FlushInterval is the longest a line waits before it is written. If
	// zero, DefaultFlushInterval is used.
	FlushInterval time.Duration
	// Dropped, if not nil, counts the lines dropped: the buffer was full,
	// the Writer was closed, or the sink returned an error. See
	// NewDroppedCounter.
	Dropped prometheus.Counter
}

// NewDroppedCounter registers svc_access_log_dropped_total with reg, for
// Options.Dropped.
func NewDroppedCounter(reg prometheus.Registerer) (prometheus.Counter, error) {
	c := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "svc_access_log_dropped_total",
		Help: "Access-log lines dropped: buffer full (the sink was slower than the requests), written after close, or a write error.",
	})
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	return c, nil
}

// Writer is an asynchronous access log. Log encodes a line and appends it
// to a bounded buffer; one goroutine, started by the first Log and ended by Close,
// writes the buffer to the sink in batches of whole lines. Its methods are
// safe for concurrent use; the methods of a nil *Writer do nothing.
type Writer struct {
	out     io.Writer
	format  Format
	service string
	// The JSON heads (jsonHead) of svc's two servers, encoded once.
	publicHead, privateHead string
	limit                   int // Options.BufferSize
	batch                   int // Options.BatchSize
	dropped                 prometheus.Counter
	ndropped                atomic.Uint64
	lines                   sync.Pool // *[]byte, one line being encoded

	mu       sync.Mutex // guards pending, inflight, closed
	pending  []byte     // whole lines not yet taken by the writer goroutine
	inflight int        // bytes taken and not yet written
	closed   bool       // no more lines accepted

	wake     chan struct{}   // cap 1: a batch is ready
	flushes  chan chan error // Flush's requests
	tick     <-chan time.Time
	stopTick func()
	started  sync.Once     // starts the writer goroutine, or, from Close, stands for it
	done     chan struct{} // closed by Close: write what is left and return
	exited   chan struct{} // closed when the writer goroutine returns
	closeErr error         // set before exited is closed
}

// New returns a Writer writing to out. Its writer goroutine starts with
// the first Log or Flush (a Writer that never logs holds none) and Close
// stops it. out receives whole lines only: each Write is a run of
// complete lines. If out is shared with other loggers (svc's slog lines go
// to the same stderr), lines interleave but bytes within a line do not, as
// long as every writer writes whole lines through the same *os.File (or
// another io.Writer that serialises its Write calls): Go holds an
// *os.File's write lock for a whole Write, and a pipe or a file keeps one
// write(2) together.
func New(out io.Writer, opts Options) *Writer {
	t := time.NewTicker(orDefault(opts.FlushInterval, DefaultFlushInterval))
	return newWriter(out, opts, t.C, t.Stop)
}

// newWriter is New with the flush tick supplied, so tests drive it.
func newWriter(out io.Writer, opts Options, tick <-chan time.Time, stopTick func()) *Writer {
	w := &Writer{
		out:     out,
		format:  opts.Format,
		service: opts.Service,

		publicHead:  jsonHead(opts.Service, "public"),
		privateHead: jsonHead(opts.Service, "private"),
		limit:       orDefault(opts.BufferSize, DefaultBufferSize),
		batch:       orDefault(opts.BatchSize, DefaultBatchSize),
		dropped:     opts.Dropped,
		wake:        make(chan struct{}, 1),
		flushes:     make(chan chan error),
		tick:        tick,
		stopTick:    stopTick,
		done:        make(chan struct{}),
		exited:      make(chan struct{}),
	}
	w.batch = min(w.batch, w.limit)
	w.pending = make([]byte, 0, w.batch)
	return w
}

// head returns jsonHead(w.service, server).
func (w *Writer) head(server string) string {
	switch server {
	case "public":
		return w.publicHead
	case "private":
		return w.privateHead
	}
	return jsonHead(w.service, server)
}

// start starts the writer goroutine, once.
func (w *Writer) start() { w.started.Do(func() { go w.run() }) }

// orDefault returns v, or def when v is zero or negative.
func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Log encodes e and queues the line. It never blocks on the sink: when the
// buffer has no room for the line, or after Close, the line is dropped and
// counted. It does not allocate in the steady state. It does not look at
// log levels: access lines are info lines, so a caller with a live level
// skips Log while that level is above info, as it would skip slog.
func (w *Writer) Log(e *Entry) {
	if w == nil {
		return
	}
	w.start()
	bp, _ := w.lines.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, 512)
		bp = &b
	}
	line := appendLineHead((*bp)[:0], w.format, w.service, w.head(e.Server), e)

	w.mu.Lock()
	ok := !w.closed && len(w.pending)+w.inflight+len(line) <= w.limit
	full := false
	if ok {
		w.pending = append(w.pending, line...)
		full = len(w.pending) >= w.batch
	}
	w.mu.Unlock()

	if cap(line) <= maxPooledLine {
		*bp = line
		w.lines.Put(bp)
	}
	switch {
	case !ok:
		w.drop(1)
	case full:
		select {
		case w.wake <- struct{}{}:
			// Let the writer run now: on a busy single-CPU process it
			// would otherwise wait for this goroutine to block or be
			// preempted (up to 10 ms), while the buffer fills.
			runtime.Gosched()
		default: // already woken
		}
	}
}

func (w *Writer) drop(n int) {
	w.ndropped.Add(uint64(n))
	if w.dropped != nil {
		w.dropped.Add(float64(n))
	}
}

// Dropped returns the number of lines dropped so far.
func (w *Writer) Dropped() uint64 {
	if w == nil {
		return 0
	}
	return w.ndropped.Load()
}

// Flush writes every line logged before it was called and returns the
// first write error since the previous Flush, if any. It blocks while the
// sink blocks. After Close it does nothing and returns nil.
func (w *Writer) Flush() error {
	if w == nil {
		return nil
	}
	w.start()
	reply := make(chan error, 1)
	select {
	case w.flushes <- reply:
		return <-reply
	case <-w.exited:
		return nil
	}
}

// Close stops accepting lines, writes every line already accepted, stops
// the writer goroutine and returns the first write error not yet returned
// by Flush. It blocks while the sink blocks. Closing again returns the
// same error. Close does not close the sink.
func (w *Writer) Close() error {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	first := !w.closed
	w.closed = true
	w.mu.Unlock()
	if first {
		close(w.done)
	}
	// Never started: nothing was logged, and no goroutine will start now.
	w.started.Do(func() {
		w.stopTick()
		close(w.exited)
	})
	<-w.exited
	return w.closeErr
}

// run is the writer goroutine: it writes the pending lines on each tick,
// when a batch is ready, on Flush and on Close.
func (w *Writer) run() {
	defer close(w.exited)
	defer w.stopTick()
	var spare []byte // the buffer last written, reused as the next pending
	var err error    // first write error not yet reported
	for {
		var reply chan error
		select {
		case <-w.tick:
		case <-w.wake:
		case reply = <-w.flushes:
		case <-w.done:
			_, err = w.writePending(spare, err)
			w.closeErr = err
			return
		}
		spare, err = w.writePending(spare, err)
		if reply != nil {
			reply <- err
			err = nil
		}
	}
}

// writePending takes the pending lines, leaving spare in their place, and
// writes them in batches of whole lines. It returns the written buffer, to
// be the next spare, and err or, if err is nil, the first write error.
func (w *Writer) writePending(spare []byte, err error) ([]byte, error) {
	w.mu.Lock()
	buf := w.pending
	w.pending = spare[:0]
	w.inflight = len(buf)
	w.mu.Unlock()

	for rest := buf; len(rest) > 0; {
		chunk := rest
		if len(chunk) > w.batch {
			// Cut after the last newline within the batch, or after the
			// first line when that line alone is longer.
			i := bytes.LastIndexByte(chunk[:w.batch], '\n')
			if i < 0 {
				i = bytes.IndexByte(chunk, '\n')
			}
			chunk = chunk[:i+1]
		}
		rest = rest[len(chunk):]
		n, werr := w.out.Write(chunk)
		if werr == nil && n < len(chunk) {
			werr = io.ErrShortWrite
		}
		if werr != nil {
			w.drop(bytes.Count(chunk[min(n, len(chunk)):], []byte{'\n'}))
			if err == nil {
				err = werr
			}
		}
		w.mu.Lock()
		w.inflight = len(rest)
		w.mu.Unlock()
	}
	return buf, err
}
