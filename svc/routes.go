package svc

import (
	"fmt"
	"net/http"
	"reflect"
	"runtime"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Routes registers handlers on a router. Each Routes of [PublicRoutes] and
// [PrivateRoutes] gets a router of its own (a chi group), so its Use
// applies to its routes only, whatever the order of the modules.
type Routes func(r chi.Router)

// routeTable remembers who registered each method and pattern of one
// listener, so that two modules registering the same one fail at New
// instead of one silently shadowing the other.
type routeTable struct {
	server string            // public or private
	owner  map[string]string // "GET /x" -> who
	err    error             // the first conflict
}

func newRouteTable(server string) *routeTable {
	return &routeTable{server: server, owner: map[string]string{}}
}

// add records method (or "*" for every method) and pattern for who.
func (t *routeTable) add(who, method, pattern string) {
	if t.err != nil {
		return
	}
	for k, prev := range t.owner {
		m, p, _ := strings.Cut(k, " ")
		if p == pattern && (m == method || m == "*" || method == "*") {
			t.err = fmt.Errorf("svc: %s route %s %s is registered twice: by %s and by %s", t.server, method, pattern, prev, who)
			return
		}
	}
	t.owner[method+" "+pattern] = who
}

// install adds each module's routes to r in a group of its own.
func (t *routeTable) install(r chi.Router, routes []Routes) error {
	for _, add := range routes {
		who := funcName(add)
		r.Group(func(g chi.Router) {
			add(&recorder{Router: g, table: t, who: who})
		})
	}
	return t.err
}

// funcName names a Routes for errors: its function and where it is
// defined.
func funcName(f any) string {
	fn := runtime.FuncForPC(reflect.ValueOf(f).Pointer())
	if fn == nil {
		return "a Routes"
	}
	file, line := fn.FileLine(fn.Entry())
	name := strings.TrimSuffix(fn.Name(), "-fm")
	return fmt.Sprintf("%s (%s:%d)", name, shortPath(file), line)
}

// shortPath keeps the last two elements of a path.
func shortPath(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, "/")
}

// recorder is a chi.Router that records what a module registers, with
// the prefix of the Route it is in.
type recorder struct {
	chi.Router
	table  *routeTable
	who    string
	prefix string
}

func (r *recorder) wrap(sub chi.Router, prefix string) chi.Router {
	return &recorder{Router: sub, table: r.table, who: r.who, prefix: prefix}
}

func (r *recorder) rec(method, pattern string) { r.table.add(r.who, method, r.prefix+pattern) }

func (r *recorder) With(mw ...func(http.Handler) http.Handler) chi.Router {
	return r.wrap(r.Router.With(mw...), r.prefix)
}

func (r *recorder) Group(fn func(chi.Router)) chi.Router {
	return r.wrap(r.Router.Group(func(g chi.Router) { fn(r.wrap(g, r.prefix)) }), r.prefix)
}

func (r *recorder) Route(pattern string, fn func(chi.Router)) chi.Router {
	prefix := r.prefix + strings.TrimSuffix(pattern, "/")
	return r.wrap(r.Router.Route(pattern, func(sub chi.Router) { fn(r.wrap(sub, prefix)) }), prefix)
}

func (r *recorder) Mount(pattern string, h http.Handler) {
	r.rec("*", strings.TrimSuffix(pattern, "/")+"/*")
	r.Router.Mount(pattern, h)
}

func (r *recorder) Handle(pattern string, h http.Handler) {
	r.rec("*", pattern)
	r.Router.Handle(pattern, h)
}

func (r *recorder) HandleFunc(pattern string, h http.HandlerFunc) {
	r.rec("*", pattern)
	r.Router.HandleFunc(pattern, h)
}

func (r *recorder) Method(method, pattern string, h http.Handler) {
	r.rec(strings.ToUpper(method), pattern)
	r.Router.Method(method, pattern, h)
}

func (r *recorder) MethodFunc(method, pattern string, h http.HandlerFunc) {
	r.rec(strings.ToUpper(method), pattern)
	r.Router.MethodFunc(method, pattern, h)
}

func (r *recorder) Connect(p string, h http.HandlerFunc) { r.MethodFunc(http.MethodConnect, p, h) }
func (r *recorder) Delete(p string, h http.HandlerFunc)  { r.MethodFunc(http.MethodDelete, p, h) }
func (r *recorder) Get(p string, h http.HandlerFunc)     { r.MethodFunc(http.MethodGet, p, h) }
func (r *recorder) Head(p string, h http.HandlerFunc)    { r.MethodFunc(http.MethodHead, p, h) }
func (r *recorder) Options(p string, h http.HandlerFunc) { r.MethodFunc(http.MethodOptions, p, h) }
func (r *recorder) Patch(p string, h http.HandlerFunc)   { r.MethodFunc(http.MethodPatch, p, h) }
func (r *recorder) Post(p string, h http.HandlerFunc)    { r.MethodFunc(http.MethodPost, p, h) }
func (r *recorder) Put(p string, h http.HandlerFunc)     { r.MethodFunc(http.MethodPut, p, h) }
func (r *recorder) Query(p string, h http.HandlerFunc)   { r.MethodFunc("QUERY", p, h) }
func (r *recorder) Trace(p string, h http.HandlerFunc)   { r.MethodFunc(http.MethodTrace, p, h) }
