package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/fx"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/svc"
)

// Module is everything the example adds to the framework: constructors,
// public routes, a readiness check and an admin task.
var Module = svc.Module("example",
	svc.Config[HelloConfig]("hello"),
	svc.Defaults(map[string]string{"registry.uri-spec": "/hello/{name}"}),
	svc.Provide(NewGreeter, NewRelay, NewGreet),
	svc.PublicRoutes(func(g *Greeter) svc.Routes { return g.Routes }),
	svc.PublicRoutes(func(rl *Relay) svc.Routes { return rl.Routes }),
	svc.PublicRoutes(func(g *Greet) svc.Routes { return g.Routes }),
	svc.Readiness(func(g *Greeter) svc.Check { return svc.Check{Name: "greeter", Func: g.Ready} }),
	svc.AdminTask(func(g *Greeter) admin.Task {
		return admin.Task{Name: "reset-counts", Help: "print and reset the per-name greeting counts", Run: g.Reset}
	}),
)

// HelloConfig is the example's own configuration: the keys under hello.,
// declared once here. hello.greeting is live: a change in a file, in etcd
// or through the admin port reaches the next request without a restart.
type HelloConfig struct {
	Greeting string `key:"greeting" default:"hello" doc:"the word before the name in GET /hello/{name}" live:"true"`
}

// Validate keeps the greeting to one short line.
func (c *HelloConfig) Validate() error {
	if c.Greeting == "" || len(c.Greeting) > 64 || strings.ContainsAny(c.Greeting, "\r\n") {
		return errors.New("hello.greeting must be 1 to 64 characters on one line")
	}
	return nil
}

// maxWork bounds /work so that a typo cannot pin a connection for hours.
const maxWork = time.Minute

// workMargin is kept between the longest /work and the public write
// timeout, so that every accepted request gets its response.
const workMargin = 100 * time.Millisecond

// Greeter holds the example's state: how often each name was greeted.
type Greeter struct {
	instance *svc.Instance
	cfg      *config.Struct[HelloConfig]
	maxWork  time.Duration // longest /work: below public.write-timeout

	mu     sync.Mutex     // guards counts
	counts map[string]int // greetings per name
	warm   bool           // set once started; the readiness check reports it
}

// NewGreeter returns a Greeter that becomes ready when the app starts.
func NewGreeter(lc fx.Lifecycle, in *svc.Instance, st svc.Settings, cfg *config.Struct[HelloConfig]) *Greeter {
	g := &Greeter{instance: in, cfg: cfg, counts: map[string]int{}, maxWork: maxWork}
	if wt := st.Public.WriteTimeout; wt > 0 && wt-workMargin < g.maxWork {
		g.maxWork = max(wt-workMargin, 0)
	}
	lc.Append(fx.StartHook(func() {
		g.mu.Lock()
		g.warm = true
		g.mu.Unlock()
	}))
	return g
}

// Routes registers the public API.
func (g *Greeter) Routes(r chi.Router) {
	r.Get("/hello/{name}", g.hello)
	r.Get("/work", g.work)
}

func (g *Greeter) hello(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	g.mu.Lock()
	g.counts[name]++
	n := g.counts[name]
	g.mu.Unlock()
	info := g.instance.Info()
	writeJSON(w, http.StatusOK, map[string]any{
		"message":  g.cfg.Get().Greeting + ", " + name,
		"count":    n,
		"instance": info.Instance,
		"port":     info.Ports.Public,
	})
}

// work sleeps ms milliseconds: a stand-in for real work, to watch a
// graceful shutdown finish it.
func (g *Greeter) work(w http.ResponseWriter, r *http.Request) {
	ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
	if err != nil || ms < 0 || time.Duration(ms)*time.Millisecond > g.maxWork {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": fmt.Sprintf(
			"ms must be an integer number of milliseconds in 0..%d (public.write-timeout less %s)",
			g.maxWork.Milliseconds(), workMargin)})
		return
	}
	t := time.NewTimer(time.Duration(ms) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		writeJSON(w, http.StatusOK, map[string]any{"slept_ms": ms, "instance": g.instance.Info().Instance})
	case <-r.Context().Done(): // the client went away
	}
}

// Ready reports whether the greeter has started.
func (g *Greeter) Ready(context.Context) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.warm {
		return errors.New("not started yet")
	}
	return nil
}

// Reset is the admin task: it prints the counts and clears them.
func (g *Greeter) Reset(_ context.Context, _ url.Values, w io.Writer) error {
	g.mu.Lock()
	counts := g.counts
	g.counts = map[string]int{}
	g.mu.Unlock()
	for name, n := range counts {
		fmt.Fprintf(w, "%s\t%d\n", name, n)
	}
	_, err := fmt.Fprintf(w, "reset %d names\n", len(counts))
	return err
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
