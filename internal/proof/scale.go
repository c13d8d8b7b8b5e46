package proof

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// ScaleConfig is the scale scenario.
type ScaleConfig struct {
	Services   int // services registered
	PerService int // instances of each
	Watched    int // services a cache watches
	Churn      int // background puts per second during the second propagation run
	Samples    int // propagation samples per run
}

// ScaleResult is what the scale scenario measured.
type ScaleResult struct {
	Config    ScaleConfig
	Keys      int
	Bytes     int64         // keys and values written
	WriteTook time.Duration // to write them all, 100 puts per txn

	WatchStart time.Duration // first resolve of Watched services at once, in-process
	RawGets    time.Duration // baseline: the same number of prefix Gets at once

	ProcWatchStart        time.Duration // Watched relay calls to a real process, 10 at a time, each starting a watch
	HeapBefore, HeapAfter float64       // that process's heap after GC, before and after
	RSSBefore, RSSAfter   int64
	WatchedBytes          int64 // keys and values of the watched services' records

	Quiet, Churned       [2]time.Duration // propagation p50, p99 into the cache
	RawQuiet, RawChurned [2]time.Duration // a raw watch of the same prefix
	ChurnPuts            int              // puts done by the churn
}

// Scale writes cfg.Services x cfg.PerService records into one etcd and
// measures watch start, the memory of a cache in a real process, and
// propagation with and without background writes.
func Scale(t *testing.T, bin string, cfg ScaleConfig) ScaleResult {
	t.Helper()
	const env = "scale"
	res := ScaleResult{Config: cfg}
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := t.Context()

	// A loopback port nothing listens on: the records' address, so that
	// a relay call to one of them is refused at once and goes nowhere.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	name := func(i int) string { return fmt.Sprintf("s-%04d", i) }
	value := func(svc string, i int) (string, string) {
		rec := registry.Record{
			Name: svc, ID: fmt.Sprintf("i-%02d", i), Environment: env,
			Host: "127.0.0.1", PublicPort: deadPort, PrivatePort: deadPort, AdminPort: deadPort,
			URISpec: "/1.x/{territory}/" + svc + "/{id}", Version: "v1.0.0", StartedAt: time.Now(),
		}
		v, err := rec.MarshalValue()
		if err != nil {
			t.Fatal(err)
		}
		return rec.Key(), string(v)
	}
	watched := func(i int) string { return name(i * cfg.Services / cfg.Watched) }

	begin := time.Now()
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			t.Fatal(err)
		}
		ops = ops[:0]
	}
	for s := range cfg.Services {
		for i := range cfg.PerService {
			k, v := value(name(s), i)
			ops = append(ops, clientv3.OpPut(k, v))
			res.Keys++
			res.Bytes += int64(len(k) + len(v))
			if isWatched(s, cfg) {
				res.WatchedBytes += int64(len(k) + len(v))
			}
			if len(ops) == 100 {
				flush()
			}
		}
	}
	flush()
	res.WriteTook = time.Since(begin)

	// Watch start in-process, against the same number of raw Gets.
	cli2 := srv.Client(t)
	if _, err := cli2.Get(ctx, "warm-up"); err != nil {
		t.Fatal(err)
	}
	all := func(f func(i int)) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for i := range cfg.Watched {
			wg.Go(func() { f(i) })
		}
		wg.Wait()
		return time.Since(start)
	}
	// Five rounds, alternating, medians: a fresh discovery each round
	// (the last one stays, for the propagation runs).
	var raws, starts []time.Duration
	var d *registry.Discovery
	for round := range 5 {
		raws = append(raws, all(func(i int) {
			resp, err := cli2.Get(ctx, registry.Prefix(env, watched(i)), clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != cfg.PerService {
				t.Errorf("proof: Get %s: %v, %v", watched(i), resp, err)
			}
		}))
		d = registry.NewDiscovery(registry.DiscoveryOptions{Client: cli2, Environment: env})
		starts = append(starts, all(func(i int) {
			insts, err := d.Instances(watched(i))
			if err != nil || len(insts) != cfg.PerService {
				t.Errorf("proof: Instances(%s) = %d instances, %v", watched(i), len(insts), err)
			}
		}))
		if round < 4 {
			d.Close()
		}
	}
	t.Cleanup(func() { d.Close() })
	res.RawGets, res.WatchStart = Percentile(raws, .5), Percentile(starts, .5)

	res.procCache(t, bin, srv, cfg, watched)

	// Propagation: quiet, then with background writes.
	probe := watched(cfg.Watched / 2)
	res.Quiet, res.RawQuiet = propagation(t, cli, srv.Client(t), d, env, probe, cfg.Samples)
	churnCtx, stopChurn := context.WithCancel(ctx)
	var churn sync.WaitGroup
	churn.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(cfg.Churn/100, 1)
		for {
			select {
			case <-churnCtx.Done():
				return
			case <-tick.C:
			}
			var ops []clientv3.Op
			for range per {
				k, v := value(name(rand.IntN(cfg.Services)), rand.IntN(cfg.PerService))
				ops = append(ops, clientv3.OpPut(k, v))
			}
			if _, err := cli.Txn(churnCtx).Then(ops...).Commit(); err == nil {
				res.ChurnPuts += per
			}
		}
	})
	churnFrom := time.Now()
	res.Churned, res.RawChurned = propagation(t, cli, srv.Client(t), d, env, probe, cfg.Samples)
	stopChurn()
	churn.Wait()
	res.ChurnPuts = int(float64(res.ChurnPuts) / time.Since(churnFrom).Seconds()) // per second
	return res
}

func isWatched(s int, cfg ScaleConfig) bool {
	step := cfg.Services / cfg.Watched
	return s%step == 0 && s/step < cfg.Watched
}

// procCache measures a real example-service process whose discovery
// starts watching the watched services (one relay call each, refused by
// the dead port): the time for those calls, and its heap and RSS before
// and after.
func (res *ScaleResult) procCache(t *testing.T, bin string, srv *etcdtest.Server, cfg ScaleConfig, watched func(int) string) {
	t.Helper()
	p := Start(t, bin, Env(t.TempDir(), srv.Endpoints()[0], 10*time.Second, "ENVIRONMENT=scale"))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer c.CloseIdleConnections()
	heap := func() float64 {
		// pprof's heap profile with gc=1 collects first.
		resp, err := c.Get(p.AdminURL() + "/debug/pprof/heap?gc=1")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return Metric(c, p, "go_memstats_heap_alloc_bytes")
	}
	time.Sleep(time.Second)
	res.HeapBefore = heap()
	res.RSSBefore, _, _ = p.Memory()
	start := time.Now()
	sem := make(chan struct{}, 10)
	var wg sync.WaitGroup
	var mu sync.Mutex // guards codes
	codes := map[int]int{}
	for i := range cfg.Watched {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			resp, err := c.Get(p.PublicURL() + "/call/" + watched(i) + "/hello")
			code := 0
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				code = resp.StatusCode
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		})
	}
	wg.Wait()
	res.ProcWatchStart = time.Since(start)
	if codes[http.StatusBadGateway] != cfg.Watched {
		t.Errorf("proof: relay calls to the watched services answered %v; want %d x 502 (found, then refused)", codes, cfg.Watched)
	}
	time.Sleep(500 * time.Millisecond)
	res.HeapAfter = heap()
	res.RSSAfter, _, _ = p.Memory()
	p.Kill()
}

// propagation puts and deletes a probe instance of svc n times and returns
// p50 and p99 of the time until d's cache shows each change, and of a raw
// watch of the same prefix on wcli.
func propagation(t *testing.T, cli, wcli *clientv3.Client, d *registry.Discovery, env, svc string, n int) (cache, raw [2]time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	key := registry.Prefix(env, svc) + "probe"
	events := make(chan time.Time, 2*n+8)
	wch := wcli.Watch(ctx, registry.Prefix(env, svc), clientv3.WithPrefix())
	go func() {
		for wr := range wch {
			now := time.Now()
			for _, ev := range wr.Events {
				if string(ev.Kv.Key) == key {
					events <- now
				}
			}
		}
	}()
	rec := registry.Record{Name: svc, ID: "probe", Environment: env, Host: "127.0.0.1", PublicPort: 1}
	val, err := rec.MarshalValue()
	if err != nil {
		t.Fatal(err)
	}
	var inCache, inRaw []time.Duration
	for i := range 2 * n {
		put := i%2 == 0
		// Write in the background: the watch may deliver before the
		// write's answer arrives.
		done := make(chan error, 1)
		start := time.Now()
		go func() {
			var err error
			if put {
				_, err = cli.Put(ctx, key, string(val))
			} else {
				_, err = cli.Delete(ctx, key)
			}
			done <- err
		}()
		for deadline := start.Add(10 * time.Second); ; time.Sleep(20 * time.Microsecond) {
			insts, err := d.Instances(svc)
			if err == nil && containsKey(insts, key) == put {
				inCache = append(inCache, time.Since(start))
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("proof: %s not propagated within 10s", key)
			}
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		select {
		case at := <-events:
			inRaw = append(inRaw, at.Sub(start))
		case <-time.After(10 * time.Second):
			t.Fatal("proof: the raw watch saw nothing within 10s")
		}
	}
	return [2]time.Duration{Percentile(inCache, .5), Percentile(inCache, .99)},
		[2]time.Duration{Percentile(inRaw, .5), Percentile(inRaw, .99)}
}

func containsKey(insts []registry.Instance, key string) bool {
	for _, in := range insts {
		if in.Key == key {
			return true
		}
	}
	return false
}

// ReportScale writes the scale tables.
func ReportScale(r *Report, section string, res ScaleResult) {
	c := res.Config
	r.Printf(section, "%d services x %d instances = %d keys (%s of keys and values) written into one etcd in %s (100 puts per txn).\n\n",
		c.Services, c.PerService, res.Keys, mib(res.Bytes), ms(res.WriteTook))
	r.Table(section, []string{"measure", "value", "baseline", "ratio"}, [][]string{
		{fmt.Sprintf("watch start: first resolve of %d services at once (list + watch each), in-process, median of 5", c.Watched),
			ms(res.WatchStart), fmt.Sprintf("%d prefix Gets at once: %s", c.Watched, ms(res.RawGets)),
			ratio(float64(res.WatchStart), float64(res.RawGets))},
		{fmt.Sprintf("watch start in a real process: %d relay calls, 10 at a time, each starting a watch", c.Watched),
			ms(res.ProcWatchStart), "", ""},
		{fmt.Sprintf("heap of that process's cache of %d services (%d instances), after GC", c.Watched, c.Watched*c.PerService),
			mib(int64(res.HeapAfter - res.HeapBefore)), fmt.Sprintf("raw keys and values: %s", mib(res.WatchedBytes)),
			ratio(res.HeapAfter-res.HeapBefore, float64(res.WatchedBytes))},
		{"RSS of that process, before -> after", mib(res.RSSBefore) + " -> " + mib(res.RSSAfter), "", ""},
		{"propagation p50 / p99 into the cache, quiet", ms(res.Quiet[0]) + " / " + ms(res.Quiet[1]),
			"raw watch: " + ms(res.RawQuiet[0]) + " / " + ms(res.RawQuiet[1]), ratio(float64(res.Quiet[0]), float64(res.RawQuiet[0]))},
		{fmt.Sprintf("propagation p50 / p99 under %d puts/s to random instances", res.ChurnPuts), ms(res.Churned[0]) + " / " + ms(res.Churned[1]),
			"raw watch: " + ms(res.RawChurned[0]) + " / " + ms(res.RawChurned[1]), ratio(float64(res.Churned[0]), float64(res.RawChurned[0]))},
	})
	r.Printf(section, "Propagation: %d puts and %d deletes of a probe instance of one watched service, each timed until visible.\n\n", c.Samples, c.Samples)
}
