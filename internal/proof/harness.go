package proof

import (
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/registry"
)

// Service is the name the example registers under.
const Service = "example"

// Harness holds what every scenario needs: the binaries, built once, and
// the report.
type Harness struct {
	Example string // example-service binary
	Bare    string // the bare net/http baseline
	Report  *Report
}

// New builds the binaries into t's temporary directory.
func New(t *testing.T) *Harness {
	t.Helper()
	return &Harness{
		Example: Build(t, "github.com/svc-dev/svc/cmd/example-service"),
		Bare:    Build(t, "github.com/svc-dev/svc/internal/proof/barehttp"),
		Report:  NewReport(),
	}
}

// NewLoadClient returns an HTTP client that resolves "http://<service>/..."
// through r for every request, reusing connections (up to 64 idle per
// instance), with a 10s timeout. Its idle connections close when t ends.
func NewLoadClient(t testing.TB, r registry.Resolver) *http.Client {
	base := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: registry.NewTransport(r, registry.ClientOptions{Base: base}), Timeout: 10 * time.Second}
}

// NewDiscovery returns a discovery over cli in environment env, closed
// when t ends.
func NewDiscovery(t testing.TB, cli *clientv3.Client, env string) *registry.Discovery {
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: cli, Environment: env})
	t.Cleanup(func() { d.Close() })
	return d
}

// WaitInstances polls src until cond holds of the instances of Service,
// failing t after d.
func WaitInstances(t testing.TB, src Instances, d time.Duration, what string, cond func([]registry.Instance) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		insts, err := src.Instances(Service)
		if err == nil && cond(insts) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proof: %s: not within %v (instances %v, err %v)", what, d, insts, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// hasKey reports whether insts holds the instance id of Service in env.
func hasKey(insts []registry.Instance, env, id string) bool {
	for _, in := range insts {
		if in.Key == registry.Prefix(env, Service)+id {
			return true
		}
	}
	return false
}
