package registry_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/svc-dev/svc/internal/etcdtest"
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
// convention. BaseURL names the service, never an instance: the client
// picks one per attempt. Pick shows the instance an attempt would reach.
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
		base, err := d.BaseURL(name)
		inst, _ := d.Pick(name, nil)
		fmt.Println(name, base, inst, err)
	}
	// Output:
	// orders http://orders http://localhost:8010 <nil>
	// users http://users http://localhost:8020 <nil>
	// payments http://payments http://localhost:9000 <nil>
	// stock   registry: no instance of service "stock": no registry configured, and neither discovery.override.stock nor services.stock.offset is set
}

// An override can be a URL template, whose path URL expands; the URL
// names the service, and the client sends it to the override's address.
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
	inst, _ := d.Pick("users", nil)
	fmt.Println(inst)
	// Output:
	// http://users/1.x/fr/users/42 <nil>
	// http://localhost:9000
}

func ExampleNewClient() {
	users := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "users got %s", r.URL.Path)
	}))
	defer users.Close()
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Lookup: func(key string) (string, bool) {
			switch key {
			case "discovery.override.users":
				return users.URL, true
			case "services.users.uri-spec":
				return "/1.x/{territory}/users/{userid}", true
			}
			return "", false
		},
	})
	defer d.Close()
	client := registry.NewClient(d, registry.ClientOptions{})
	defer client.CloseIdleConnections()

	u, err := d.URL("users", map[string]string{"territory": "fr", "userid": "42"})
	if err != nil {
		fmt.Println(err)
		return
	}
	resp, err := client.Get(u) // http://users/1.x/fr/users/42
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

// A service registers once healthy and deregisters at shutdown. (svc does
// this for every service when etcd.endpoints is set; here a watch on the
// instance's key shows its key come and go.)
func ExampleRegistrar() {
	endpoints, stop := exampleEtcd() // an embedded etcd; a service has etcd.endpoints
	defer stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	r, err := registry.NewRegistrar(cli, registry.Record{
		Name: "orders", ID: "7f3c", Environment: "dev",
		Host: "10.0.0.7", PublicPort: 8010, PrivatePort: 8011, AdminPort: 4010,
		URISpec: "/orders/{id}", Version: "1.4.2",
		StartedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}, registry.RegistrarOptions{TTL: 10 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := cli.Watch(ctx, r.Key())

	checkHealth := func(context.Context) error { return nil } // the service's readiness checks
	if err := r.Register(ctx, checkHealth); err != nil {
		fmt.Println(err) // never healthy: the start fails
		return
	}
	// Register returned once healthy; the key is written in the background.
	ev := next(events)
	fmt.Println(ev.Type, string(ev.Kv.Key), ev.Kv.Lease != 0)
	fmt.Println(string(ev.Kv.Value))

	if err := r.Deregister(ctx); err != nil {
		fmt.Println(err)
	}
	ev = next(events)
	fmt.Println(ev.Type, string(ev.Kv.Key))
	// Output:
	// PUT svc/dev/services/orders/7f3c true
	// {"Op":0,"Addr":"10.0.0.7:8010","Metadata":{"name":"orders","id":"7f3c","environment":"dev","host":"10.0.0.7","public_port":8010,"private_port":8011,"admin_port":4010,"uri_spec":"/orders/{id}","version":"1.4.2","started_at":"2025-01-02T03:04:05Z"}}
	// DELETE svc/dev/services/orders/7f3c
}

// next returns the next event of a watch, or an empty one when it ends.
func next(w clientv3.WatchChan) *clientv3.Event {
	for resp := range w {
		if len(resp.Events) > 0 {
			return resp.Events[0]
		}
	}
	return &clientv3.Event{Kv: &mvccpb.KeyValue{}}
}

// exampleEtcd starts an embedded etcd for ExampleRegistrar and returns its
// endpoints and the function that stops it.
func exampleEtcd() ([]string, func()) {
	t := &exampleTB{}
	srv := etcdtest.Start(t)
	return srv.Endpoints(), t.end
}

// exampleTB stands in for a test's testing.TB where an example needs an
// etcd: etcdtest.Start calls only the methods it defines.
type exampleTB struct {
	testing.TB
	cleanups []func()
}

func (t *exampleTB) Helper()                           {}
func (t *exampleTB) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *exampleTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

func (t *exampleTB) TempDir() string {
	dir, err := os.MkdirTemp("", "etcd-example")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// end runs the cleanups, last first.
func (t *exampleTB) end() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
