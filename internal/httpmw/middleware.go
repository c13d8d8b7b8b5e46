package httpmw

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/internal/accesslog"
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
	// the middleware was given, so whatever puts the trace in it runs
	// before this middleware.
	TraceID func(context.Context) string
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
// request, the request id, metrics and the access line, panic recovery,
// the body limit. It wraps the response writer once, for everyone, and
// resolves the metrics' children once per label set. Like [Observe] it
// must wrap the chi router itself (router.Use) so the route pattern is
// known when the handler returns.
//
// Per request it makes one allocation for its own state (the response
// writer, and the context and header value that carry the request id),
// and, with RequestID, the request that carries that context
// (r.WithContext) and the id when it makes one; the access line and the
// metrics allocate nothing.
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
		return &handler{
			o:        o,
			next:     next,
			ids:      ids,
			tooLarge: tooLarge,
			wrap:     o.Metrics != nil || o.Access != nil || o.Recover,
		}
	}
}

type handler struct {
	o        Options
	next     http.Handler
	ids      *idSource // nil without Options.RequestID
	tooLarge []byte    // the 413's body, with Options.MaxBodyBytes
	wrap     bool      // a step needs the response's status
}

// request is what one request needs beside the *http.Request, in one
// allocation.
type request struct {
	w     responseWriter
	start time.Time
	id    idState // the request id, when this middleware sets it
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.o.CloseChunked {
		closeIfChunked(w, r)
	}
	if !h.wrap {
		if h.ids != nil {
			r = h.ids.set(w, r, &idState{})
		}
		h.serve(w, w, r)
		return
	}
	rq := &request{}
	if h.ids != nil {
		r = h.ids.set(w, r, &rq.id)
	}
	rw, ok := w.(*responseWriter) // already wrapped by an outer instance
	if !ok {
		rq.w.ResponseWriter = w
		rw = &rq.w
	}
	rq.start = time.Now()
	defer h.finish(rq, rw, r)
	h.serve(rw, w, r)
}

// serve applies the body limit and calls the next handler. raw is the
// writer net/http gave, for http.MaxBytesReader.
func (h *handler) serve(w, raw http.ResponseWriter, r *http.Request) {
	if n := h.o.MaxBodyBytes; n > 0 {
		if r.ContentLength > n {
			refuseTooLarge(w, h.tooLarge)
			return
		}
		// A body of known length is framed by it already: only a body of
		// unknown length (chunked) can run past the limit.
		if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(raw, r.Body, n)
		}
	}
	h.next.ServeHTTP(w, r)
}

// finish runs when the handler returns or panics: it recovers (with
// Options.Recover), then records the metrics and the access line, then
// lets a panic that must go on (http.ErrAbortHandler, or one after the
// headers went out) go on.
func (h *handler) finish(rq *request, rw *responseWriter, r *http.Request) {
	var repanic any
	if h.o.Recover {
		if v := recover(); v != nil {
			repanic = h.recovered(v, rw, r, rq.id.ctx.id)
		}
	}
	h.record(rq, rw, r)
	if repanic != nil {
		panic(repanic)
	}
}

// record counts the request and writes its access line.
func (h *handler) record(rq *request, rw *responseWriter, r *http.Request) {
	if h.o.Metrics == nil && h.o.Access == nil {
		return
	}
	end := time.Now()
	elapsed := end.Sub(rq.start)
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	ctx := r.Context()
	route := Unmatched
	if rc := chi.RouteContext(ctx); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			route = p
		}
	}
	if m := h.o.Metrics; m != nil {
		s := m.of(seriesKey{h.o.Server, methodLabel(r.Method), route, codeKey(status)})
		s.requests.Inc()
		s.duration.Observe(elapsed.Seconds())
	}
	if h.o.Access == nil || !h.o.Log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	id := rq.id.ctx.id
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
		Bytes:     rw.bytes,
		Duration:  elapsed,
		RequestID: id,
		Remote:    r.RemoteAddr,
	}
	if h.o.TraceID != nil {
		e.TraceID = h.o.TraceID(ctx)
	}
	h.o.Access.Log(&e)
}
