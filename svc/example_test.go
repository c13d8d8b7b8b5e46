package svc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/svc"
)

func ExampleURL() {
	// Bound addresses as net.Listener reports them, turned into base URLs
	// for a client on the same host.
	fmt.Println(svc.URL("[::]:8010"))
	fmt.Println(svc.URL("127.0.0.1:4010"))
	// Output:
	// http://127.0.0.1:8010
	// http://127.0.0.1:4010
}

// New builds the same service Run would, without running it: start it,
// talk to it, stop it. Port 0 picks free ports (svctest.Start does this in
// one line).
func ExampleNew() {
	app, err := svc.New("greeter", 10,
		svc.PublicRoutes(func(r chi.Router) {
			r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprintf(w, "hello, %s\n", chi.URLParam(r, "name"))
			})
		}),
		svc.WithEnv(map[string]string{"CONFIG_DIR": "testdata/none"}),
		svc.WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"public.host": "127.0.0.1", "private.host": "127.0.0.1",
			"shutdown.drain": "0s",
		}),
		svc.WithOutput(io.Discard, io.Discard), // no logs in the example
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer app.Stop(ctx)

	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, url := range []string{
		svc.URL(app.PublicAddr()) + "/hello/ann",
		svc.URL(app.PrivateAddr()) + "/healthz",
	} {
		resp, err := c.Get(url)
		if err != nil {
			fmt.Println(err)
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%d %s", resp.StatusCode, body)
	}
	// Output:
	// 200 hello, ann
	// 200 {"status":"ok"}
}

// A bad name fails before anything starts, naming the rule.
func ExampleNew_badName() {
	_, err := svc.New("Orders", 20)
	fmt.Println(err)
	// Output:
	// svc: service name "Orders" must match ^[a-z][a-z0-9-]{0,62}$ (lower-case letter first, then up to 62 lower-case letters, digits or '-')
}

// Hello is a module's own configuration: the keys under "hello.", each
// declared once by a tagged field. hello.greeting is live: a reload that
// changes it reaches Get without a restart.
type Hello struct {
	Greeting string `key:"greeting" default:"hello" doc:"the word before the name" live:"true"`
}

// Validate keeps the greeting short; a bad value fails the start, and is
// rejected at a reload.
func (h *Hello) Validate() error {
	if len(h.Greeting) > 64 {
		return errors.New("hello.greeting must be at most 64 bytes")
	}
	return nil
}

// greetRoutes reads the greeting in force at each request.
func greetRoutes(cfg *config.Struct[Hello]) svc.Routes {
	return func(r chi.Router) {
		r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s, %s\n", cfg.Get().Greeting, chi.URLParam(r, "name"))
		})
	}
}

// Config declares a module's keys, typed and documented, and hands the
// decoded values to its constructors. A key a file sets that nobody
// declared fails the start, with the nearest declared key.
func ExampleConfig() {
	dir, err := os.MkdirTemp("", "svc-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	opts := []svc.Option{
		svc.Config[Hello]("hello"), // declares hello.greeting
		svc.PublicRoutes(greetRoutes),
		svc.WithEnv(map[string]string{"CONFIG_DIR": dir}),
		svc.WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"public.host": "127.0.0.1", "private.host": "127.0.0.1",
			"shutdown.drain": "0s",
		}),
		svc.WithOutput(io.Discard, io.Discard),
	}
	write := func(s string) { _ = os.WriteFile(filepath.Join(dir, "greeter.json"), []byte(s), 0o600) }

	// The value comes from any layer: here <CONFIG_DIR>/greeter.json.
	write(`{"hello": {"greeting": "bonjour"}}`)
	app, err := svc.New("greeter", 10, opts...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get(svc.URL(app.PublicAddr()) + "/hello/ann"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Print(string(body))
	}
	if err := app.Stop(ctx); err != nil {
		fmt.Println(err)
	}

	// A typo is not silently ignored: New fails naming the file, the line
	// and the declared key nearest to it (the temporary directory is cut
	// from the message to keep the output stable).
	write("{\n  \"hello\": {\"greting\": \"hi\"}\n}")
	_, err = svc.New("greeter", 10, opts...)
	fmt.Println(strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), ""))
	// Output:
	// bonjour, ann
	// config greeter.json:2: unknown key hello.greting (did you mean hello.greeting?)
}

// Each PublicRoutes gets a router group of its own: middleware it adds
// with Use applies to its routes only, whatever the order of the modules.
// Two modules registering one method and pattern fail New, naming both.
func ExamplePublicRoutes() {
	api := svc.PublicRoutes(func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler { // this module's routes only
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Api", "v1")
				next.ServeHTTP(w, r)
			})
		})
		r.Get("/api/items", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "items") })
	})
	pages := svc.PublicRoutes(func(r chi.Router) {
		r.Get("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "home") })
	})
	local := []svc.Option{
		svc.WithEnv(map[string]string{"CONFIG_DIR": "testdata/none"}),
		svc.WithValues(map[string]string{
			"admin.port": "0", "public.port": "0", "private.port": "0",
			"public.host": "127.0.0.1", "private.host": "127.0.0.1",
			"shutdown.drain": "0s",
		}),
		svc.WithOutput(io.Discard, io.Discard),
	}
	app, err := svc.New("shop", 30, append(local, api, pages)...)
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := app.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, path := range []string{"/api/items", "/"} {
		resp, err := c.Get(svc.URL(app.PublicAddr()) + path)
		if err != nil {
			fmt.Println(err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s %d X-Api=%q %s", path, resp.StatusCode, resp.Header.Get("X-Api"), body)
	}
	if err := app.Stop(ctx); err != nil {
		fmt.Println(err)
	}

	// Another module that also serves GET /: New fails before anything
	// binds (the message goes on to name both functions and their files).
	again := svc.PublicRoutes(func(r chi.Router) {
		r.Get("/", func(http.ResponseWriter, *http.Request) {})
	})
	_, err = svc.New("shop", 30, append(local, pages, again)...)
	msg, _, _ := strings.Cut(err.Error(), ": by ")
	fmt.Println(msg)
	// Output:
	// /api/items 200 X-Api="v1" items
	// / 200 X-Api="" home
	// svc: public route GET / is registered twice
}
