package admin

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/pprof"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/config"
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
	Level   *slog.LevelVar        // the live log level; nil disables /admin/loglevel
	Config  func() []config.Value // effective configuration
	Drain   func(context.Context) error
	Undrain func(context.Context) error
	Tasks   []Task
	// Registry, when set, serves GET /admin/registry: the registry's status.
	Registry func() any
	// Instance, when set, serves GET /admin/instance: this instance's
	// record as advertised in the registry.
	Instance func() any
	// Reload, when set, serves POST /admin/config/reload: it re-reads the
	// configuration and answers what changed as JSON; an error is a 500.
	Reload func(context.Context) (any, error)
	// Token, when not empty, is required as "Authorization: Bearer <Token>".
	Token  string
	Logger *slog.Logger // admin actions are logged here; nil: discard
}

// Server is the admin HTTP handler. It is safe for concurrent use.
type Server struct {
	p       Params
	mux     *chi.Mux
	tasks   map[string]Task
	entries []entry

	mu     sync.Mutex  // guards revert
	revert *time.Timer // pending log-level revert, if any
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
	s := &Server{p: p, mux: chi.NewRouter(), tasks: make(map[string]Task)}
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
	s.entries = append(s.entries, entry{method, path, help})
	s.mux.Method(method, path, h)
}

func (s *Server) routes() {
	s.mux.Use(s.authenticate, s.audit)
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
// The command line (pprof's cmdline) is not published.
func (s *Server) pprof() {
	s.handle(http.MethodGet, "/debug/pprof/", "pprof index; /debug/pprof/{heap,goroutine,allocs,block,mutex,threadcreate}", pprof.Index)
	s.mux.Get("/debug/pprof/{profile}", pprof.Index)
	s.handle(http.MethodGet, "/debug/pprof/profile", "CPU profile; ?seconds=30", pprof.Profile)
	s.handle(http.MethodGet, "/debug/pprof/trace", "execution trace; ?seconds=1", pprof.Trace)
	s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
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

// audit logs every admin request that changes something (who, what, result).
func (s *Server) audit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			next.ServeHTTP(w, r)
			return
		}
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		s.p.Logger.LogAttrs(r.Context(), slog.LevelInfo, "admin action",
			slog.String("remote", r.RemoteAddr), slog.String("method", r.Method),
			slog.String("path", r.URL.RequestURI()), slog.Int("status", rec.status))
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int)        { w.status = code; w.ResponseWriter.WriteHeader(code) }
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) getLevel(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"level": levelName(s.p.Level.Level())})
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
	prev := s.setLevel(lvl, d)
	resp := map[string]string{"level": levelName(lvl), "previous": levelName(prev)}
	if d > 0 {
		resp["reverts_at"] = time.Now().Add(d).UTC().Format(time.RFC3339)
	}
	writeJSON(w, http.StatusOK, resp)
}

// setLevel sets the level; with d > 0 the previous level returns after d.
func (s *Server) setLevel(lvl slog.Level, d time.Duration) (prev slog.Level) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev = s.p.Level.Level()
	if s.revert != nil {
		s.revert.Stop()
		s.revert = nil
	}
	s.p.Level.Set(lvl)
	if d > 0 {
		var t *time.Timer
		t = time.AfterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.revert != t {
				// Superseded: a later PUT or Close stopped this timer
				// too late, while it waited for mu.
				return
			}
			s.p.Level.Set(prev)
			s.revert = nil
			s.p.Logger.Info("log level reverted", "level", levelName(prev))
		})
		s.revert = t
	}
	return prev
}

// Close stops a pending log-level revert.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revert != nil {
		s.revert.Stop()
		s.revert = nil
	}
}

func levelName(l slog.Level) string { return strings.ToLower(l.String()) }

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	vals := s.p.Config()
	out := make([]config.Value, len(vals))
	for i, v := range vals {
		out[i] = config.Value{Key: v.Key, Value: v.Display(), Layer: v.Layer}
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": out})
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
