package httpmw

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/svc-dev/svc/internal/accesslog"
	"github.com/svc-dev/svc/internal/respwriter"
)

// Options choose the steps of the middleware [New] returns. The zero value
// does nothing but pass the request on.
type Options struct {
	// Server is the server label of the metrics and of the access lines:
	// "public" or "private".
	Server string
	// CloseChunked closes the connection after a request whose body came
	// with a Transfer-Encoding; see [CloseChunked].
	CloseChunked bool
	// RequestID takes or makes the request's X-Request-Id, puts it in the
	// context and echoes it; see [RequestID].
	RequestID bool
	// Metrics, if not nil, counts every request and its duration; see
	// [Observe].
	Metrics *Metrics
	// Access, if not nil, gets one line per request while Log is enabled
	// at info. Access lines are info lines, so a live level above info
	// silences them as it silences slog.
	Access *accesslog.Writer
	// TraceID, if not nil, returns the trace id of a request's context
	// ("" for none) for the access line's trace_id. It reads the context
	// Trace gives the rest of the pass, or without Trace the context the
	// middleware was given: whatever puts the trace in it runs before.
	TraceID func(context.Context) string
	// Trace, if not nil, is the tracing middleware. The pass runs it
	// once the request id and the route context are in the request's
	// context, and before the rest (metrics and the access line,
	// recovery, the body limit): its span can be named after the route
	// once the handler returned, it sees the 500 of a recovered panic,
	// and TraceID finds its span in the context it passes on.
	Trace func(http.Handler) http.Handler
	// Extract, if not nil, returns the request's context with what its
	// headers carry for the calls the handler makes (a trace context,
	// baggage), or ctx itself when they carry nothing. It runs after
	// CloseChunked and before the other steps, and what it returns is
	// the parent of the pass's context. It is what a
	// tracing middleware does when it records no span, for the cost of a
	// function call instead of a handler of its own: svc gives Trace when
	// spans are exported and Extract when they are not.
	Extract func(ctx context.Context, h http.Header) context.Context
	// Recover turns a panic into an error line on Log and a 500; see
	// [Recoverer].
	Recover bool
	// Log is where panics are logged and whose level gates the access
	// lines. If nil, slog.Default() is used.
	Log *slog.Logger
	// MaxBodyBytes caps request bodies; see [BodyLimit]. Zero or less is
	// no limit.
	MaxBodyBytes int64
}

// New returns the middleware svc puts in front of each router: the steps
// Options choose, in one pass, in this order: close after a chunked
// request, Options.Extract, the request id, the route context,
// Options.Trace, metrics and
// the access line, panic recovery, the body limit. It wraps the response
// writer once, for everyone, and resolves the metrics' children once per
// label set.
//
// It goes around a chi router (a *chi.Mux), New(o)(router), as the
// server's handler: then it gives the router its route context (a
// *chi.Context from a pool, as chi's own), in the same context as the
// request id, and chi routes the request as it routes a sub-router's,
// without a request copy and a context of its own. A router below
// another one, which has a route context already, gets that one. New can
// also go inside the router (router.Use), or around any handler; the
// route pattern of the metrics and of the access line is then that of
// the chi router around it, if any.
//
// Per request it makes one allocation for its own state (the response
// writer, and the context that carries the request id and the route
// context), and when that context is new the request that carries it
// (r.WithContext); the access line and the metrics allocate nothing.
//
// As with chi, the route context goes back to the pool when the request
// is served: nothing may use it (chi.RouteContext, chi.URLParam) after
// the handler returns, in a goroutine say, without chi.Context.Clone.
func New(o Options) func(http.Handler) http.Handler {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	var ids *idSource
	if o.RequestID {
		ids = newIDSource()
	}
	var tooLarge []byte
	if o.MaxBodyBytes > 0 {
		tooLarge = tooLargeBody(o.MaxBodyBytes)
	}
	return func(next http.Handler) http.Handler {
		h := &handler{
			epoch:    time.Now(),
			o:        o,
			next:     next,
			ids:      ids,
			tooLarge: tooLarge,
			measure:  o.Metrics != nil || o.Access != nil,
			wrap:     o.Metrics != nil || o.Access != nil || o.Recover,
		}
		if mux, ok := next.(*chi.Mux); ok {
			h.routes = mux
		}
		h.state = h.wrap || h.ids != nil || h.routes != nil
		if o.Trace != nil {
			h.traced = o.Trace(http.HandlerFunc(h.serveTraced))
		}
		return h
	}
}

type handler struct {
	// epoch is when the handler was made: a request's start is kept as
	// the monotonic time since, 8 bytes where a time.Time takes 24.
	epoch time.Time
	// rctxs are the route contexts the pass gives the router, reused as
	// chi reuses its own.
	rctxs    sync.Pool
	o        Options
	next     http.Handler
	routes   chi.Routes   // next, when it is a *chi.Mux: the pass gives it its route context
	traced   http.Handler // Options.Trace around serveTraced, or nil
	ids      *idSource    // nil without Options.RequestID
	tooLarge []byte       // the 413's body, with Options.MaxBodyBytes
	measure  bool         // metrics or access lines: the route pattern is needed
	wrap     bool         // a step needs the response's status
	state    bool         // a request needs a *request: wrap, ids or routes
}

// request is what one request needs beside the *http.Request, in one
// allocation. It is also the request's context from the pass on, when the
// pass puts a request id or a route context in it, or runs Trace: it answers
// middleware.RequestIDKey and chi.RouteCtxKey, and any other key, the
// cancellation and the deadline are its parent's.
type request struct {
	context.Context              // the parent: the request's context as the pass got it
	id              string       // the request id, with Options.RequestID
	rctx            *chi.Context // the route context: the pass's own, or the router's above
	w               respwriter.Writer
	start           time.Duration // when the pass began serving, since the handler's epoch
	hdr             [1]string     // the X-Request-Id header's value
	buf             [32]byte      // a generated id's bytes: the prefix and the counter's digits
}

// stateKey is the key under which a request's context gives its
// *request, for serveTraced.
type stateKey struct{}

func (rq *request) Value(key any) any {
	switch key {
	case chi.RouteCtxKey:
		if rq.rctx != nil {
			return rq.rctx
		}
	case middleware.RequestIDKey:
		if rq.id != "" {
			return rq.id
		}
	case stateKey{}:
		return rq
	}
	return rq.Context.Value(key)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.o.CloseChunked {
		closeIfChunked(w, r)
	}
	ctx := r.Context()
	parent := ctx
	if h.o.Extract != nil {
		ctx = h.o.Extract(ctx, r.Header)
	}
	if !h.state {
		if ctx != parent {
			r = r.WithContext(ctx)
		}
		if h.traced != nil {
			h.traced.ServeHTTP(w, r)
			return
		}
		h.serve(w, r)
		return
	}
	rq := &request{}
	if h.ids != nil {
		h.ids.set(w, r, rq)
	}
	var pooled *chi.Context
	if h.routes != nil || h.measure {
		rq.rctx, _ = ctx.Value(chi.RouteCtxKey).(*chi.Context)
		if rq.rctx == nil && h.routes != nil {
			// What chi's Mux.ServeHTTP does for a router at the top
			// but setting the parent context it keeps, unexported and
			// unused by chi. Mux.ServeHTTP finds this one and routes
			// the request as a sub-router's: it neither copies it
			// again nor makes a context of its own.
			pooled, _ = h.rctxs.Get().(*chi.Context)
			if pooled == nil {
				pooled = chi.NewRouteContext()
			}
			pooled.Reset()
			pooled.Routes = h.routes
			rq.rctx = pooled
		}
	}
	// With Trace, serveTraced finds rq in the context.
	if rq.id != "" || pooled != nil || h.traced != nil || ctx != parent {
		rq.Context = ctx
		r = r.WithContext(rq)
	}
	if h.traced != nil {
		h.traced.ServeHTTP(w, r)
	} else {
		h.observe(w, r, rq)
	}
	if pooled != nil {
		h.rctxs.Put(pooled)
	}
}

// serveTraced is what Options.Trace calls: the rest of the pass, with the
// request's state found in its context.
func (h *handler) serveTraced(w http.ResponseWriter, r *http.Request) {
	if !h.state {
		h.serve(w, r)
		return
	}
	ctx := r.Context()
	rq, ok := ctx.(*request)
	if !ok {
		rq, _ = ctx.Value(stateKey{}).(*request)
	}
	if rq == nil { // Trace gave a context not derived from the pass's
		rq = &request{id: GetID(ctx), rctx: chi.RouteContext(ctx)}
	}
	h.observe(w, r, rq)
}

// observe wraps the response writer, when a step needs it, and serves the
// request with metrics, the access line and recovery.
func (h *handler) observe(w http.ResponseWriter, r *http.Request, rq *request) {
	if !h.wrap {
		h.serve(w, r)
		return
	}
	rw := h.wrapped(w, rq)
	rq.start = time.Since(h.epoch)
	defer h.finish(rq, rw, r)
	h.serve(rw, r)
}

// wrapped returns w as a *respwriter.Writer: w itself when an outer step
// wrapped it already (an outer pass, or Trace: svc's server spans wrap
// the response in a *respwriter.Writer for their status), else rq's.
func (h *handler) wrapped(w http.ResponseWriter, rq *request) *respwriter.Writer {
	if rw, ok := w.(*respwriter.Writer); ok {
		return rw
	}
	rq.w.ResponseWriter = w
	return &rq.w
}

// serve applies the body limit and calls the next handler.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) {
	if n := h.o.MaxBodyBytes; n > 0 {
		if r.ContentLength > n {
			refuseTooLarge(w, h.tooLarge)
			return
		}
		// A body of known length is framed by it already: only a body of
		// unknown length (chunked) can run past the limit. The limit
		// reader is given net/http's own writer, below every wrapper, so
		// that the connection is closed after the 413.
		if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(respwriter.Innermost(w), r.Body, n)
		}
	}
	h.next.ServeHTTP(w, r)
}

// finish runs when the handler returns or panics: it recovers (with
// Options.Recover), then records the metrics and the access line, then
// lets a panic that must go on (http.ErrAbortHandler, or one after the
// headers went out) go on.
func (h *handler) finish(rq *request, rw *respwriter.Writer, r *http.Request) {
	var repanic any
	if h.o.Recover {
		if v := recover(); v != nil {
			repanic = h.recovered(v, rw, r, rq.id)
		}
	}
	h.record(rq, rw, r)
	if repanic != nil {
		panic(repanic)
	}
}

// record counts the request and writes its access line.
func (h *handler) record(rq *request, rw *respwriter.Writer, r *http.Request) {
	if !h.measure {
		return
	}
	end := time.Now()
	elapsed := end.Sub(h.epoch) - rq.start
	status := rw.Status
	if status == 0 {
		status = http.StatusOK
	}
	route := Unmatched
	if p := rq.rctx.RoutePattern(); p != "" { // "" for a nil *chi.Context
		route = p
	}
	if m := h.o.Metrics; m != nil {
		s := m.of(seriesKey{h.o.Server, methodLabel(r.Method), route, codeKey(status)})
		s.requests.Inc()
		s.duration.Observe(elapsed.Seconds())
	}
	ctx := r.Context()
	if h.o.Access == nil || !h.o.Log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	id := rq.id
	if h.ids == nil {
		id = GetID(ctx)
	}
	e := accesslog.Entry{
		Time:      end,
		Server:    h.o.Server,
		Method:    r.Method,
		Route:     route,
		Path:      r.URL.Path,
		Status:    status,
		Bytes:     rw.Bytes,
		Duration:  elapsed,
		RequestID: id,
		Remote:    r.RemoteAddr,
	}
	if h.o.TraceID != nil {
		e.TraceID = h.o.TraceID(ctx)
	}
	h.o.Access.Log(&e)
}
