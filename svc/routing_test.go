package svc_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

// showRoute answers what the handler sees of its routing.
func showRoute(w http.ResponseWriter, r *http.Request) {
	rc := chi.RouteContext(r.Context())
	_, _ = fmt.Fprintf(w, "pattern=%s r.Pattern=%s params=%v/%v id=%t",
		rc.RoutePattern(), r.Pattern, rc.URLParams.Keys, rc.URLParams.Values,
		middleware.GetReqID(r.Context()) != "")
}

// Two route modules with groups, a Route with middleware of its own and
// a mounted router: through the public server, each request is routed as
// chi routes it, with its URL parameters, r.PathValue, the route pattern
// as its metrics and access-line route, and the request id in its
// context; 404 and 405 are svc's and "unmatched"; a panic in a
// sub-router is a 500.
func TestPublicRouting(t *testing.T) {
	users := func(r chi.Router) {
		r.Use(func(next http.Handler) http.Handler { // this module's only
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Users", "1")
				next.ServeHTTP(w, r)
			})
		})
		r.Get("/hello/{name}", func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "hello "+chi.URLParam(r, "name")+" "+r.PathValue("name"))
		})
		r.Route("/api", func(r chi.Router) {
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Api", "1")
					next.ServeHTTP(w, r)
				})
			})
			r.Get("/users/{id}", showRoute)
			r.Get("/panic", func(http.ResponseWriter, *http.Request) { panic("boom in api") })
		})
	}
	files := func(r chi.Router) {
		sub := chi.NewRouter()
		sub.Get("/{dir}/{file}", showRoute)
		r.Mount("/files", sub)
	}
	logs := &svctest.LogBuffer{}
	app := svctest.Start(t, "test", 30, svc.PublicRoutes(users), svc.PublicRoutes(files), svc.WithOutput(io.Discard, logs))
	c := svctest.Client(t)

	tests := []struct {
		method, path string
		code         int
		body, route  string
	}{
		{"GET", "/hello/ann", 200, "hello ann ann", "/hello/{name}"},
		{"GET", "/api/users/7", 200, "pattern=/api/users/{id} r.Pattern=/api/users/{id} params=[* id]/[ 7] id=true", "/api/users/{id}"},
		{"GET", "/files/a/b.txt", 200, "pattern=/files/{dir}/{file} r.Pattern=/files/{dir}/{file} params=[* dir file]/[ a b.txt] id=true", "/files/{dir}/{file}"},
		{"GET", "/hello/bob", 200, "hello bob bob", "/hello/{name}"},
		{"GET", "/nope", 404, `{"error":"not found"}`, "unmatched"},
		{"DELETE", "/hello/ann", 405, `{"error":"method not allowed"}`, "unmatched"},
		{"GET", "/api/panic", 500, "internal server error", "/api/panic"},
	}
	for _, tt := range tests {
		r := do(t, c, tt.method, app.PublicURL+tt.path, "")
		if r.code != tt.code || !strings.Contains(r.body, tt.body) {
			t.Errorf("%s %s = %d %q; want %d and %q", tt.method, tt.path, r.code, r.body, tt.code, tt.body)
		}
		if r.header.Get("X-Request-Id") == "" {
			t.Errorf("%s %s: no X-Request-Id", tt.method, tt.path)
		}
		if got, want := r.header.Get("X-Api") == "1", strings.HasPrefix(tt.path, "/api/"); got != want {
			t.Errorf("%s %s: the /api middleware ran: %v; want %v", tt.method, tt.path, got, want)
		}
		if got, want := r.header.Get("X-Users") == "1", tt.route == "/hello/{name}" || strings.HasPrefix(tt.path, "/api/"); got != want {
			t.Errorf("%s %s: the users module's middleware ran: %v; want %v", tt.method, tt.path, got, want)
		}
	}

	reqs := series(scrape(t, c, app.PrivateURL), "http_requests_total")
	for k, want := range map[string]float64{
		"code=200,method=GET,route=/hello/{name},server=public":       2,
		"code=200,method=GET,route=/api/users/{id},server=public":     1,
		"code=200,method=GET,route=/files/{dir}/{file},server=public": 1,
		"code=404,method=GET,route=unmatched,server=public":           1,
		"code=405,method=DELETE,route=unmatched,server=public":        1,
		"code=500,method=GET,route=/api/panic,server=public":          1,
	} {
		if got := reqs[k].GetCounter().GetValue(); got != want {
			t.Errorf("http_requests_total{%s} = %v; want %v", k, got, want)
		}
	}
	for _, tt := range tests {
		svctest.WaitFor(t, 5*time.Second, "the access line of "+tt.path, func() bool {
			return svctest.HasLine(logs.String(), `"msg":"request"`, `"path":"`+tt.path+`"`,
				`"route":"`+tt.route+`"`, fmt.Sprintf(`"status":%d`, tt.code), `"request_id":"`)
		})
	}
}

// A service without public routes still has the public pass: a request
// gets svc's 404, a request id, a metric and an access line.
func TestPublicWithoutRoutes(t *testing.T) {
	logs := &svctest.LogBuffer{}
	app := svctest.Start(t, "test", 30, svc.WithOutput(io.Discard, logs))
	c := svctest.Client(t)
	r := do(t, c, "GET", app.PublicURL+"/nope", "")
	if r.code != 404 || r.body != `{"error":"not found"}`+"\n" || r.header.Get("X-Request-Id") == "" {
		t.Errorf("GET /nope = %d %q %v; want svc's 404 with a request id", r.code, r.body, r.header)
	}
	reqs := series(scrape(t, c, app.PrivateURL), "http_requests_total")
	if got := reqs["code=404,method=GET,route=unmatched,server=public"].GetCounter().GetValue(); got != 1 {
		t.Errorf("http_requests_total{public GET unmatched 404} = %v; want 1", got)
	}
	svctest.WaitFor(t, 5*time.Second, "the access line of /nope", func() bool {
		return svctest.HasLine(logs.String(), `"msg":"request"`, `"path":"/nope"`, `"route":"unmatched"`)
	})
}
