package registry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// etcdWatchers returns the number of watchers etcd reports in
// etcd_debugging_mvcc_watcher_total on srv's /metrics. The gauge is
// per process: callers compare it within one test that does not run in
// parallel with others.
func etcdWatchers(t testing.TB, srv *etcdtest.Server) int {
	t.Helper()
	resp, err := http.Get(srv.Endpoints()[0] + "/metrics")
	if err != nil {
		t.Fatalf("scrape etcd metrics: %v", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "etcd_debugging_mvcc_watcher_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("etcd_debugging_mvcc_watcher_total %q: %v", v, err)
			}
			return int(f)
		}
	}
	t.Fatalf("etcd /metrics has no etcd_debugging_mvcc_watcher_total (scan error %v)", sc.Err())
	return 0
}

// heapInUse returns the bytes of heap and goroutine stacks in use after a
// garbage collection.
func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// TestUnknownNamesReleased: a burst of thousands of names nobody
// registered starts a watch each (two goroutines, one etcd watcher), and
// once the names are idle the watches are released: goroutines, etcd
// watchers and memory return to their baseline. Before the fix every
// watch lived until Close (20,000 names: 40,000 goroutines, 534 MB).
// Not parallel: it compares process-wide counts.
func TestUnknownNamesReleased(t *testing.T) {
	const names, idle = 2000, 3 * time.Second
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	if _, err := cli.Get(context.Background(), "warm-up"); err != nil {
		t.Fatal(err)
	}
	watchers0, goroutines0, heap0 := etcdWatchers(t, srv), runtime.NumGoroutine(), heapInUse()
	leaks := goleak.IgnoreCurrent()

	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Client: cli, Environment: "test", IdleTimeout: idle, MaxServices: 2 * names, Logger: testLogger(t, nil),
	})
	defer d.Close()
	// Sample the peak while the burst runs: names are kept at least
	// IdleTimeout, but a slow machine may start releasing the first names
	// before the last are asked for.
	var peakGoroutines, peakWatchers atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > peakGoroutines.Load() {
				peakGoroutines.Store(n)
			}
			if n := int64(etcdWatchers(t, srv)); n > peakWatchers.Load() {
				peakWatchers.Store(n)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := next.Add(1); i <= names; i = next.Add(1) {
				name := fmt.Sprintf("unknown-%d", i)
				var noInstance *registry.NoInstanceError
				if _, err := d.Pick(name, nil); !errors.As(err, &noInstance) || noInstance.Err != nil {
					t.Errorf("Pick(%s) = %v; want a *NoInstanceError (none registered)", name, err)
					return
				}
			}
		})
	}
	wg.Wait()
	// The client creates its watches one at a time on one stream, so etcd
	// counts them with a delay: keep sampling for up to IdleTimeout.
	for deadline := time.Now().Add(idle); peakWatchers.Load() < int64(watchers0+names/2) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	sampler.Wait()
	t.Logf("%d unknown names: peak %d goroutines (baseline %d), %d etcd watchers (baseline %d)",
		names, peakGoroutines.Load(), goroutines0, peakWatchers.Load(), watchers0)
	// A sanity bound, not a measure: the burst must have been seen (each
	// watched name holds two goroutines), though on a loaded machine the
	// first names are released before the last are asked for.
	if peakGoroutines.Load() < int64(goroutines0+names/2) || peakWatchers.Load() < int64(watchers0+names/10) {
		t.Fatalf("%d unknown names: peak %d goroutines, %d etcd watchers; want the burst visible (baselines %d, %d)",
			names, peakGoroutines.Load(), peakWatchers.Load(), goroutines0, watchers0)
	}

	waitFor(t, 10*idle, func() bool {
		return runtime.NumGoroutine() <= goroutines0+5 && etcdWatchers(t, srv) <= watchers0
	}, func() string {
		return fmt.Sprintf("%d goroutines (baseline %d), %d etcd watchers (baseline %d) after the names went idle",
			runtime.NumGoroutine(), goroutines0, etcdWatchers(t, srv), watchers0)
	})
	if err := goleak.Find(leaks); err != nil {
		t.Errorf("goroutines left after the idle names were released: %v", err)
	}
	const slack = 8 << 20
	if heap := heapInUse(); heap > heap0+slack {
		t.Errorf("heap and stacks in use %d MiB after release; want at most %d MiB (baseline %d MiB + 8)",
			heap>>20, (heap0+slack)>>20, heap0>>20)
	}

	// A released name resolves again, from a fresh listing.
	register(t, newRegistrar(t, srv.Client(t), record("unknown-1", "a", 8010), registry.RegistrarOptions{}))
	if got, err := d.Pick("unknown-1", nil); err != nil || got != "http://127.0.0.1:8010" {
		t.Errorf("Pick(unknown-1) after release and registration = %q, %v; want http://127.0.0.1:8010", got, err)
	}
}

// TestMaxServices: past MaxServices watched names a new name fails with a
// *TooManyServicesError naming the cap, names already watched and
// overrides still resolve, and a slot frees when a name goes idle.
func TestMaxServices(t *testing.T) {
	t.Parallel()
	srv := etcdtest.Start(t)
	register(t, newRegistrar(t, srv.Client(t), record("orders", "a", 8010), registry.RegistrarOptions{}))
	const idle = 200 * time.Millisecond
	d := registry.NewDiscovery(registry.DiscoveryOptions{
		Client: srv.Client(t), Environment: "test", MaxServices: 3, IdleTimeout: idle,
		Lookup: lookup(map[string]string{"discovery.override.mock": "http://127.0.0.1:9000"}),
	})
	defer d.Close()

	tests := []struct {
		name    string
		want    string // base URL; "" for an error
		wantErr any    // pointer to the error type wanted
	}{
		{"orders", "http://127.0.0.1:8010", nil},
		{"unknown-1", "", new(*registry.NoInstanceError)},
		{"unknown-2", "", new(*registry.NoInstanceError)},
		{"unknown-3", "", new(*registry.TooManyServicesError)},
		{"orders", "http://127.0.0.1:8010", nil},
		{"unknown-1", "", new(*registry.NoInstanceError)},
		{"mock", "http://127.0.0.1:9000", nil}, // an override watches nothing
		{"Bad", "", nil},
	}
	for _, tc := range tests {
		got, err := d.Pick(tc.name, nil)
		switch {
		case tc.want != "":
			if err != nil || got != tc.want {
				t.Errorf("Pick(%s) = %q, %v; want %q", tc.name, got, err, tc.want)
			}
		case tc.wantErr != nil:
			if !errors.As(err, tc.wantErr) {
				t.Errorf("Pick(%s) = %q, %v; want an error of type %T", tc.name, got, err, tc.wantErr)
			}
		default:
			if err == nil || !strings.Contains(err.Error(), "must match") {
				t.Errorf("Pick(%s) = %q, %v; want an invalid name error", tc.name, got, err)
			}
		}
	}
	_, err := d.Pick("unknown-3", nil)
	var tooMany *registry.TooManyServicesError
	if !errors.As(err, &tooMany) || tooMany.Max != 3 || tooMany.Service != "unknown-3" ||
		!strings.Contains(err.Error(), "3") || !strings.Contains(err.Error(), "MaxServices") {
		t.Fatalf("Pick(unknown-3) past the cap = %v; want a *TooManyServicesError naming the cap 3 and MaxServices", err)
	}
	// Keep orders in use; unknown-2 and unknown-1 go idle and free slots.
	waitFor(t, 20*idle, func() bool {
		if _, err := d.Pick("orders", nil); err != nil {
			t.Fatalf("Pick(orders) while waiting: %v", err)
		}
		_, err := d.Pick("unknown-3", nil)
		return !errors.As(err, &tooMany)
	}, func() string { return "unknown-3 still refused: no idle name was released" })
	if got, err := d.Pick("orders", nil); err != nil || got != "http://127.0.0.1:8010" {
		t.Errorf("Pick(orders) after the sweep = %q, %v; want it kept", got, err)
	}
}
