package registry_test

// The benchmarks of this file compare resolving from the Discovery cache
// with asking etcd on every call, and measure how long a registration takes
// to reach another process's cache. Reproduce with:
//
//	go test -run '^$' -bench . -benchmem ./registry/

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// discoveryOf3 starts etcd with three instances of "orders" registered and
// returns a discovery that knows them.
func discoveryOf3(tb testing.TB) (*registry.Discovery, *clientv3.Client) {
	tb.Helper()
	srv := etcdtest.Start(tb)
	cli := srv.Client(tb)
	for i := range 3 {
		register(tb, newRegistrar(tb, cli, record("orders", fmt.Sprint(i), 8010+10*i), registry.RegistrarOptions{TTL: 10 * time.Second}))
	}
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(tb), Environment: "test"})
	tb.Cleanup(func() { d.Close() })
	waitFor(tb, 5*time.Second, func() bool { return len(keys(tb, d, "orders")) == 3 },
		func() string { return "instances not discovered" })
	return d, cli
}

func TestBaseURLDoesNotAllocate(t *testing.T) {
	d, _ := discoveryOf3(t)
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := d.BaseURL("orders"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("BaseURL allocates %v times per call; want 0", allocs)
	}
	tried := []string{"http://127.0.0.1:8010"}
	allocs = testing.AllocsPerRun(1000, func() {
		if _, err := d.Pick("orders", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := d.Pick("orders", tried); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Pick allocates %v times per call; want 0", allocs)
	}
}

func BenchmarkBaseURL(b *testing.B) {
	d, _ := discoveryOf3(b)
	b.Run("pick", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.Pick("orders", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := d.BaseURL("orders"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := d.BaseURL("orders"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// BenchmarkEtcdGet is the alternative to the cache: one etcd range request
// per resolve, over loopback to an in-process etcd (a best case).
func BenchmarkEtcdGet(b *testing.B) {
	_, cli := discoveryOf3(b)
	prefix := registry.Prefix("test", "orders")
	for _, bc := range []struct {
		name string
		opts []clientv3.OpOption
	}{
		{"linearizable", []clientv3.OpOption{clientv3.WithPrefix()}},
		{"serializable", []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithSerializable()}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				resp, err := cli.Get(ctx, prefix, bc.opts...)
				if err != nil || len(resp.Kvs) != 3 {
					b.Fatalf("Get = %v, %v", resp, err)
				}
			}
		})
	}
}

// BenchmarkPropagation measures the time from Register to the instance
// being visible in another client's Discovery cache; p50-ms and p99-ms are
// its percentiles.
func BenchmarkPropagation(b *testing.B) {
	srv := etcdtest.Start(b)
	cli := srv.Client(b)
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(b), Environment: "test"})
	defer d.Close()
	if _, err := d.Instances("orders"); err != nil { // starts the watch
		b.Fatal(err)
	}
	ctx := context.Background()
	var samples []time.Duration
	for b.Loop() {
		rec := record("orders", fmt.Sprint("p", len(samples)), 8010)
		r, err := registry.NewRegistrar(cli, rec, registry.RegistrarOptions{TTL: 10 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := r.Register(ctx, nil); err != nil {
			b.Fatal(err)
		}
		key := rec.Key()
		for !visible(b, d, key) {
			time.Sleep(20 * time.Microsecond)
		}
		samples = append(samples, time.Since(start))

		b.StopTimer()
		if err := r.Deregister(ctx); err != nil {
			b.Fatal(err)
		}
		for visible(b, d, key) {
			time.Sleep(20 * time.Microsecond)
		}
		b.StartTimer()
	}
	slices.Sort(samples)
	pct := func(p float64) float64 {
		return float64(samples[int(p*float64(len(samples)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func visible(tb testing.TB, d *registry.Discovery, key string) bool {
	insts, err := d.Instances("orders")
	if err != nil {
		tb.Fatal(err)
	}
	return slices.ContainsFunc(insts, func(in registry.Instance) bool { return in.Key == key })
}
