package registry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/registry"
)

func ExamplePrefix() {
	fmt.Println(registry.Prefix("dev", "orders"))
	rec := registry.Record{Name: "orders", ID: "7f3c", Environment: "dev"}
	fmt.Println(rec.Key())
	// Output:
	// svc/dev/services/orders/
	// svc/dev/services/orders/7f3c
}

func ExampleRecord_MarshalValue() {
	rec := registry.Record{
		Name: "orders", ID: "7f3c", Environment: "dev",
		Host: "10.0.0.7", PublicPort: 8010, PrivatePort: 8011, AdminPort: 4010,
		URISpec: "/1.x/{territory}/orders/{id}", Version: "1.4.2",
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	b, _ := rec.MarshalValue()
	fmt.Println(string(b))
	// Output:
	// {"Op":0,"Addr":"10.0.0.7:8010","Metadata":{"name":"orders","id":"7f3c","environment":"dev","host":"10.0.0.7","public_port":8010,"private_port":8011,"admin_port":4010,"uri_spec":"/1.x/{territory}/orders/{id}","version":"1.4.2","started_at":"2025-01-02T03:04:05Z"}}
}

func ExampleExpand() {
	u, err := registry.Expand("/1.x/{territory}/users/{userid}", map[string]string{
		"territory": "fr",
		"userid":    "jean dupont",
	})
	fmt.Println(u, err)
	_, err = registry.Expand("/1.x/{territory}/users/{userid}", map[string]string{"territory": "fr"})
	fmt.Println(err)
	// Output:
	// /1.x/fr/users/jean%20dupont <nil>
	// registry: expand "/1.x/{territory}/users/{userid}": no value for {userid}
}

// Without a registry, names resolve through overrides and the port
// convention.
func ExampleDiscovery_BaseURL() {
	config := map[string]string{
		"services.users.offset":       "20",
		"discovery.override.payments": "http://localhost:9000",
	}
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Self:       "orders",
		SelfOffset: 10,
		Lookup: func(key string) (string, bool) {
			v, ok := config[key]
			return v, ok
		},
	})
	defer d.Close()
	for _, name := range []string{"orders", "users", "payments", "stock"} {
		u, err := d.BaseURL(name)
		fmt.Println(name, u, err)
	}
	// Output:
	// orders http://localhost:8010 <nil>
	// users http://localhost:8020 <nil>
	// payments http://localhost:9000 <nil>
	// stock  registry: no instance of service "stock": no registry configured, and neither discovery.override.stock nor services.stock.offset is set
}

// An override can be a URL template, which URL expands.
func ExampleDiscovery_URL() {
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Lookup: func(key string) (string, bool) {
			if key == "discovery.override.users" {
				return "http://localhost:9000/1.x/{territory}/users/{userid}", true
			}
			return "", false
		},
	})
	defer d.Close()
	u, err := d.URL("users", map[string]string{"territory": "fr", "userid": "42"})
	fmt.Println(u, err)
	// Output:
	// http://localhost:9000/1.x/fr/users/42 <nil>
}

func ExampleNewTransport() {
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "users got %s", r.URL.Path)
	}))
	defer users.Close()
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Lookup: func(key string) (string, bool) {
			if key == "discovery.override.users" {
				return users.URL, true
			}
			return "", false
		},
	})
	defer d.Close()
	client := &http.Client{Transport: registry.NewTransport(d, nil)}
	defer client.CloseIdleConnections()

	resp, err := client.Get("http://users/1.x/fr/users/42")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(string(body))
	// Output:
	// users got /1.x/fr/users/42
}

// A service registers once healthy and deregisters at shutdown (this
// example needs an etcd, so it is not run).
func ExampleRegistrar() {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"127.0.0.1:2379"}})
	if err != nil {
		panic(err)
	}
	defer cli.Close()
	r, err := registry.NewRegistrar(cli, registry.Record{
		Name: "orders", ID: "7f3c", Environment: "dev",
		Host: "10.0.0.7", PublicPort: 8010, PrivatePort: 8011, AdminPort: 4010,
	}, registry.RegistrarOptions{})
	if err != nil {
		panic(err)
	}
	checkHealth := func(ctx context.Context) error { return nil } // the service's readiness checks
	if err := r.Register(context.Background(), checkHealth); err != nil {
		panic(err) // never healthy: startup fails
	}
	fmt.Println(r.Status().Registered) // maybe not yet: registration goes on in the background

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Deregister(ctx); err != nil {
		fmt.Println(err)
	}
}
