package registry_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// echo serves "<name> <host header> <path>".
func echo(name string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s", name, r.Host, r.URL.EscapedPath())
	}))
}

func port(t *testing.T, srv *httptest.Server) int {
	u, _ := url.Parse(srv.URL)
	p, err := strconv.Atoi(u.Port())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func get(t *testing.T, c *http.Client, u string) (string, error) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// TestTransportThroughRegistry sends http://orders/... to two registered
// instances, round-robin.
func TestTransportThroughRegistry(t *testing.T) {
	t.Parallel()
	one, two := echo("one"), echo("two")
	defer one.Close()
	defer two.Close()
	srv := etcdtest.Start(t)
	register(t, newRegistrar(t, srv.Client(t), record("orders", "1", port(t, one)), registry.RegistrarOptions{}))
	register(t, newRegistrar(t, srv.Client(t), record("orders", "2", port(t, two)), registry.RegistrarOptions{}))
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(t), Environment: "test"})
	defer d.Close()
	c := &http.Client{Transport: registry.NewTransport(d, registry.ClientOptions{})}
	defer c.CloseIdleConnections()

	seen := map[string]bool{}
	for range 4 {
		body, err := get(t, c, "http://orders/1.x/fr/users/a%2Fb")
		if err != nil {
			t.Fatalf("GET: %v", err)
		}
		name, rest, _ := strings.Cut(body, " ")
		seen[name] = true
		if !strings.HasSuffix(rest, " /1.x/fr/users/a%2Fb") || !strings.HasPrefix(rest, "127.0.0.1:") {
			t.Errorf("instance saw %q; want host 127.0.0.1:<port> and the escaped path", rest)
		}
	}
	if !seen["one"] || !seen["two"] {
		t.Errorf("instances reached = %v; want both", seen)
	}

	var noInstance *registry.NoInstanceError
	if _, err := get(t, c, "http://users/x"); !errors.As(err, &noInstance) || noInstance.Service != "users" {
		t.Errorf("GET http://users/x error = %v; want *NoInstanceError for users", err)
	}
}

// fixed resolves every name to one base URL.
type fixed string

func (f fixed) Pick(string, []string) (string, error) { return string(f), nil }

// TestTransportBasePath: a base URL with a path prefixes the request's
// path, and the request given to RoundTrip is not modified. (Requests for
// addresses are refused: TestTransportRefusesNonServiceURLs.)
func TestTransportBasePath(t *testing.T) {
	target := echo("target")
	defer target.Close()
	c := &http.Client{Transport: registry.NewTransport(fixed(target.URL+"/prefix/"), registry.ClientOptions{})}
	defer c.CloseIdleConnections()
	if body, err := get(t, c, "http://orders/a"); err != nil || !strings.HasPrefix(body, "target 127.0.0.1:") {
		t.Errorf("GET http://orders/a = %q, %v; want target 127.0.0.1:...", body, err)
	}
	if body, _ := get(t, c, "http://orders/a"); !strings.HasSuffix(body, " /prefix/a") {
		t.Errorf("GET http://orders/a with a base URL path = %q; want path /prefix/a", body)
	}

	// The request given to RoundTrip is not modified.
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://orders/a", nil)
	resp, err := registry.NewTransport(fixed(target.URL), registry.ClientOptions{}).RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.URL.Host != "orders" || req.Host != "orders" {
		t.Errorf("request after RoundTrip has URL.Host %q, Host %q; want orders unchanged", req.URL.Host, req.Host)
	}
}
