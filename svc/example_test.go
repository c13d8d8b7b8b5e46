package svc_test

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"

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
