package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/httpmw"
)

// Task is an operation a service exposes on its admin listener, in the
// spirit of Dropwizard's tasks: POST /admin/tasks/{Name} runs it.
type Task struct {
	Name string // URL path segment: lower-case letters, digits, '-'
	Help string // one line shown by GET /admin/tasks
	// Run performs the task. args holds the query parameters or the
	// fields of a JSON object body; output written to w is streamed back.
	// A returned error is reported to the caller with status 500.
	Run func(ctx context.Context, args url.Values, w io.Writer) error
}

// Params configures a [Server]. Nil functions disable their endpoints.
type Params struct {
	Info    func() any            // JSON for GET /
	Level   *Level                // the live log level; nil disables /admin/loglevel
	Config  func() []config.Value // effective configuration
	Drain   func(context.Context) error
	Undrain func(context.Context) error
	Tasks   []Task
	// Registry, when set, serves GET /admin/registry: the registry's status.
	Registry func() any
	// Instance, when set, serves GET /admin/instance: this instance's
	// record as advertised in the registry.
	Instance func() any
	// Flight, when set, serves the flight recorder's endpoints under
	// /admin/flight (flight.go). Whoever makes it stops it on shutdown.
	Flight *FlightRecorder
	// Reload, when set, serves POST /admin/config/reload: it re-reads the
	// configuration and answers what changed as JSON; an error is a 500.
	Reload func(context.Context) (any, error)
	// Held, when set, adds to GET /admin/config the values the last
	// reload rejected and the startup-only changes waiting for a restart.
	Held func() (rejected []config.Rejection, restart []config.Change)
	// Restart, when set, serves POST /admin/restart: it restarts the
	// process in place and answers its result as JSON (see restart.go).
	Restart func(context.Context) (any, error)
	// Overrides, when set, serves PUT and DELETE /admin/config/{key}: a
	// value set by hand above every other layer, for ?for=D or until
	// deleted or the process ends (overrides.go). It must be a layer of
	// the Live behind Config; /admin/config then shows each override and
	// its expiry.
	Overrides *config.Overrides
	// Token, when not empty, is required as "Authorization: Bearer <Token>".
	// When empty, only requests whose Host is a loopback name or address
	// (localhost, 127.0.0.0/8, ::1) are served: see the package doc.
	Token string
	// MaxProfileDuration caps the seconds parameter of /debug/pprof/
	// (profile, trace and delta profiles such as heap?seconds=); a larger
	// value is refused with 400. If zero, DefaultMaxProfileDuration is used.
	MaxProfileDuration time.Duration
	// Logger receives what the admin server has to say besides audit
	// lines; nil: discard.
	Logger *slog.Logger
	// Audit receives one line, with audit=true, for every request that
	// may change something (any method but GET, HEAD and OPTIONS) and for
	// every request refused with 401 or 403: method, path, remote
	// address, status and outcome; never the Authorization header, and
	// query values of secret-looking keys are redacted. Give it a logger
	// that writes whatever the live level is. If nil, AuditLogger(Logger)
	// is used.
	Audit *slog.Logger
}

// DefaultMaxProfileDuration is the default of Params.MaxProfileDuration.
const DefaultMaxProfileDuration = 60 * time.Second

// Server is the admin HTTP handler. It is safe for concurrent use.
type Server struct {
	p       Params
	mux     *chi.Mux
	tasks   map[string]Task
	entries []entry
	cop     *http.CrossOriginProtection
}

type entry struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Help   string `json:"help"`
}

var _ http.Handler = (*Server)(nil)

// New returns the admin handler for p. It returns an error for a task with
// an invalid or duplicate name.
func New(p Params) (*Server, error) {
	if p.Logger == nil {
		p.Logger = slog.New(slog.DiscardHandler)
	}
	if p.Audit == nil {
		p.Audit = AuditLogger(p.Logger)
	}
	if p.MaxProfileDuration <= 0 {
		p.MaxProfileDuration = DefaultMaxProfileDuration
	}
	s := &Server{p: p, mux: chi.NewRouter(), tasks: make(map[string]Task), cop: http.NewCrossOriginProtection()}
	for _, t := range p.Tasks {
		if !validTaskName(t.Name) || t.Run == nil {
			return nil, fmt.Errorf("admin: task %q: name must be lower-case letters, digits or '-' and Run must be set", t.Name)
		}
		if _, dup := s.tasks[t.Name]; dup {
			return nil, fmt.Errorf("admin: task %q registered twice", t.Name)
		}
		s.tasks[t.Name] = t
	}
	s.routes()
	return s, nil
}

func validTaskName(n string) bool {
	if n == "" || len(n) > 63 {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return false
		}
	}
	return true
}

// ServeHTTP serves the admin endpoints.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) handle(method, path, help string, h http.HandlerFunc) {
	s.handleIn(s.mux, method, path, help, h)
}

// handleIn routes method and path to h in r and lists them in GET /admin.
func (s *Server) handleIn(r chi.Router, method, path, help string, h http.HandlerFunc) {
	s.entries = append(s.entries, entry{method, path, help})
	r.Method(method, path, h)
}

func (s *Server) routes() {
	s.mux.Use(s.audit, httpmw.CloseChunked(), s.checkHost, s.crossOrigin, s.authenticate)
	s.mux.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such admin endpoint; GET /admin lists them")
	})
	if s.p.Info != nil {
		s.handle(http.MethodGet, "/", "the service's info (same as /info on the private port)", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, s.p.Info())
		})
	}
	s.handle(http.MethodGet, "/admin", "this index", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"endpoints": s.entries})
	})
	s.pprof()
	s.runtimeRoutes() // runtime.go
	s.flightRoutes()  // flight.go
	if s.p.Level != nil {
		s.handle(http.MethodGet, "/admin/loglevel", "current log level", s.getLevel)
		s.handle(http.MethodPut, "/admin/loglevel", "set the log level: body debug|info|warn|error; ?for=5m reverts afterwards", s.putLevel)
	}
	if s.p.Config != nil {
		s.handle(http.MethodGet, "/admin/config", "effective configuration: key, value, layer; secrets redacted", s.config)
	}
	if s.p.Reload != nil {
		s.handle(http.MethodPost, "/admin/config/reload", "re-read config files and etcd now; reports what changed, what was rejected, what needs a restart", s.reload)
	}
	if s.p.Restart != nil {
		s.handle(http.MethodPost, "/admin/restart", "restart in place: a successor from the executable on disk takes the sockets once ready; this process drains", s.restart)
	}
	if s.p.Overrides != nil {
		s.handle(http.MethodPut, "/admin/config/{key}", "override KEY: body the value, ?for=5m ends it then; startup-only keys answer 202 restart required", s.putOverride)
		s.handle(http.MethodDelete, "/admin/config/{key}", "drop KEY's override: its value comes from the other layers again", s.deleteOverride)
	}
	if s.p.Drain != nil {
		s.handle(http.MethodPost, "/admin/drain", "readiness 503 and deregister; requests are still served", s.action(s.p.Drain, "draining"))
	}
	if s.p.Undrain != nil {
		s.handle(http.MethodPost, "/admin/undrain", "ready again and re-register", s.action(s.p.Undrain, "serving"))
	}
	s.handle(http.MethodGet, "/admin/tasks", "tasks this service registered", s.listTasks)
	s.handle(http.MethodPost, "/admin/tasks/{name}", "run a task; arguments in the query or a JSON object body", s.runTask)
}

// pprof mounts net/http/pprof explicitly: never through http.DefaultServeMux.
// The command line (pprof's cmdline) is not published. A seconds parameter
// above MaxProfileDuration is refused (capSeconds).
func (s *Server) pprof() {
	s.mux.Group(func(r chi.Router) {
		r.Use(s.capSeconds)
		s.handleIn(r, http.MethodGet, "/debug/pprof/", "pprof index; /debug/pprof/{heap,goroutine,allocs,block,mutex,threadcreate}", pprof.Index)
		r.Get("/debug/pprof/{profile}", pprof.Index)
		s.handleIn(r, http.MethodGet, "/debug/pprof/profile", fmt.Sprintf("CPU profile; ?seconds=30 (at most %v)", s.p.MaxProfileDuration), pprof.Profile)
		s.handleIn(r, http.MethodGet, "/debug/pprof/trace", fmt.Sprintf("execution trace; ?seconds=1 (at most %v)", s.p.MaxProfileDuration), pprof.Trace)
		r.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	})
}

// pprofDefaultSeconds is what net/http/pprof assumes without ?seconds=.
var pprofDefaultSeconds = map[string]float64{"/debug/pprof/profile": 30, "/debug/pprof/trace": 1}

// capSeconds refuses, with 400, a pprof request whose seconds parameter
// (or, for profile and trace, its default) exceeds MaxProfileDuration:
// one request cannot hold a CPU profile, a trace or a delta profile for
// hours. A seconds value pprof cannot parse is left to pprof.
func (s *Server) capSeconds(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sec, given := pprofDefaultSeconds[r.URL.Path], false
		if v := r.URL.Query().Get("seconds"); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				next.ServeHTTP(w, r)
				return
			}
			sec, given = f, true
		}
		if limit := s.p.MaxProfileDuration.Seconds(); sec > limit || math.IsNaN(sec) {
			what := fmt.Sprintf("seconds=%s", r.URL.Query().Get("seconds"))
			if !given {
				what = fmt.Sprintf("the default seconds=%g", sec)
			}
			writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: %s exceeds the cap of %v (admin.max-profile-duration); ask for less", what, s.p.MaxProfileDuration))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkHost, while no token is set, refuses a request whose Host is not
// a loopback name or address: a DNS-rebinding page (evil.example resolving
// to 127.0.0.1) reaches the listener with Host evil.example. With a token
// the token is the defence and any Host is served.
func (s *Server) checkHost(next http.Handler) http.Handler {
	if s.p.Token != "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !LoopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("admin: Host %q is not a loopback name or address; without admin.token the admin listener answers only Host localhost, 127.0.0.0/8 or [::1] (DNS-rebinding protection)", r.Host))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// LoopbackHost reports whether host, the Host header of a request with or
// without a port, names the loopback interface: "localhost" (any case,
// with or without a final dot), an address of 127.0.0.0/8, or ::1 (also
// as an IPv4-mapped address). The empty Host of an HTTP/1.0 request is
// accepted: no browser sends one.
func LoopbackHost(host string) bool {
	if host == "" {
		return true
	}
	if h, port, err := net.SplitHostPort(host); err == nil {
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return false
		}
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	addr, err := netip.ParseAddr(host)
	return err == nil && addr.Zone() == "" && addr.Unmap().IsLoopback()
}

// crossOrigin refuses state-changing requests (any method but GET, HEAD
// and OPTIONS) that a browser marks as cross-origin, with
// http.CrossOriginProtection (Sec-Fetch-Site, else Origin against Host).
// Requests with neither header (curl, svcctl, Go clients) pass.
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.cop.Check(r); err != nil {
			writeError(w, http.StatusForbidden, "admin: cross-origin request refused: "+err.Error()+"; the admin port takes state-changing requests only from same-origin pages and non-browser clients")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// authenticate requires the bearer token when one is configured.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if s.p.Token == "" {
		return next
	}
	want := []byte("Bearer " + s.p.Token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(r.Header.Get("Authorization"))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="svc admin"`)
			writeError(w, http.StatusUnauthorized, "admin: a valid bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// audit writes one audit line for every request that may change
// something and every refused request (see Params.Audit).
func (s *Server) audit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		rec := &auditWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		refused := rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden
		if safe && !refused {
			return
		}
		outcome := "ok"
		switch {
		case refused:
			outcome = "refused"
		case rec.status >= 400:
			outcome = "failed"
		}
		attrs := append([]slog.Attr{
			slog.String("method", r.Method), slog.String("path", redactedURI(r.URL)),
			slog.String("remote", r.RemoteAddr), slog.Int("status", rec.status),
			slog.String("outcome", outcome),
		}, rec.attrs...)
		s.p.Audit.LogAttrs(r.Context(), slog.LevelInfo, "admin action", attrs...)
	})
}

// redactedURI is u's path and query, in the order sent, with the values
// of secret-looking query keys ([config.IsSecret]) replaced by
// "[redacted]".
func redactedURI(u *url.URL) string {
	if u.RawQuery == "" {
		return u.EscapedPath()
	}
	parts := strings.Split(u.RawQuery, "&")
	for i, p := range parts {
		k, _, _ := strings.Cut(p, "=")
		if key, err := url.QueryUnescape(k); err != nil || config.IsSecret(key) {
			parts[i] = k + "=[redacted]"
		}
	}
	return u.EscapedPath() + "?" + strings.Join(parts, "&")
}

// auditWriter records the status of a response and what the handler adds
// to its audit line (auditAttrs).
type auditWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
	attrs  []slog.Attr
}

func (w *auditWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *auditWriter) Write(p []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(p)
}

func (w *auditWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// auditAttrs adds attrs to the audit line of the request w answers.
func auditAttrs(w http.ResponseWriter, attrs ...slog.Attr) {
	for {
		switch x := w.(type) {
		case *auditWriter:
			x.attrs = append(x.attrs, attrs...)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = x.Unwrap()
		default:
			return
		}
	}
}

// AuditLogger returns a logger writing to l's handler whatever l's level,
// with audit=true on every line: the kind of logger Params.Audit and
// NewLevel want. A nil l gives a logger that discards.
func AuditLogger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(alwaysEnabled{l.Handler()}).With(slog.Bool("audit", true))
}

// alwaysEnabled is a handler that reports every level enabled, so the
// handler it wraps writes records its own level would drop (slog's
// built-in handlers test the level only in Enabled).
type alwaysEnabled struct{ slog.Handler }

func (alwaysEnabled) Enabled(context.Context, slog.Level) bool { return true }
func (h alwaysEnabled) WithAttrs(as []slog.Attr) slog.Handler {
	return alwaysEnabled{h.Handler.WithAttrs(as)}
}
func (h alwaysEnabled) WithGroup(name string) slog.Handler {
	return alwaysEnabled{h.Handler.WithGroup(name)}
}

func (s *Server) getLevel(w http.ResponseWriter, r *http.Request) {
	resp := map[string]string{"level": levelName(s.p.Level.Level()), "base": levelName(s.p.Level.Base())}
	if until := s.p.Level.Until(); !until.IsZero() {
		resp["reverts_at"] = until.UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) putLevel(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var lvl slog.Level
	text := strings.Trim(strings.TrimSpace(string(body)), `"`)
	if err := lvl.UnmarshalText([]byte(text)); err != nil || text == "" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: log level %q: want debug, info, warn or error", text))
		return
	}
	var d time.Duration
	if f := r.URL.Query().Get("for"); f != "" {
		if d, err = time.ParseDuration(f); err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: for=%q: want a positive duration such as 5m", f))
			return
		}
	}
	prev := s.p.Level.Set(lvl, d)
	resp := map[string]string{"level": levelName(lvl), "previous": levelName(prev)}
	auditAttrs(w, slog.String("level", levelName(lvl)), slog.String("previous", levelName(prev)))
	if d > 0 {
		resp["reverts_to"] = levelName(s.p.Level.Base())
		if until := s.p.Level.Until(); !until.IsZero() {
			resp["reverts_at"] = until.UTC().Format(time.RFC3339)
		}
		auditAttrs(w, slog.String("for", d.String()))
	}
	writeJSON(w, http.StatusOK, resp)
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.configView())
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	report, err := s.p.Reload(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, report)
}

func (s *Server) action(f func(context.Context) error, state string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := f(r.Context()); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"state": state})
	}
}

func (s *Server) listTasks(w http.ResponseWriter, r *http.Request) {
	type item struct {
		Name string `json:"name"`
		Help string `json:"help"`
	}
	items := []item{}
	for _, n := range slices.Sorted(maps.Keys(s.tasks)) {
		items = append(items, item{n, s.tasks[n].Help})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tasks": items})
}

func (s *Server) runTask(w http.ResponseWriter, r *http.Request) {
	t, ok := s.tasks[chi.URLParam(r, "name")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("admin: no task %q; GET /admin/tasks lists them", chi.URLParam(r, "name")))
		return
	}
	args, err := taskArgs(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	fw := &flushWriter{w: w, rc: http.NewResponseController(w)}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := t.Run(r.Context(), args, fw); err != nil {
		if !fw.wrote {
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("task %s: %v", t.Name, err))
			return
		}
		fmt.Fprintf(fw, "\nerror: task %s: %v\n", t.Name, err)
	}
}

// taskArgs merges query parameters and a JSON object body.
func taskArgs(r *http.Request) (url.Values, error) {
	args := r.URL.Query()
	if r.ContentLength == 0 {
		return args, nil
	}
	var body map[string]any
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	if err := dec.Decode(&body); err != nil {
		if err == io.EOF {
			return args, nil
		}
		return nil, fmt.Errorf("admin: task arguments: want a JSON object body: %v", err)
	}
	for k, v := range body {
		switch v := v.(type) {
		case string:
			args.Add(k, v)
		default:
			b, _ := json.Marshal(v)
			args.Add(k, string(b))
		}
	}
	return args, nil
}

// flushWriter streams task output: every write is flushed to the client.
type flushWriter struct {
	w     io.Writer
	rc    *http.ResponseController
	wrote bool
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.wrote = true
	n, err := f.w.Write(p)
	if err == nil {
		_ = f.rc.Flush()
	}
	return n, err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
