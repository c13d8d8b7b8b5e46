package proof

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// MemResult is the memory of one server binary, idle and under load.
type MemResult struct {
	Name      string
	Idle      int64   // VmRSS after start and 2s idle
	LoadMax   int64   // highest VmRSS sampled every 100ms under load
	HWM       int64   // VmHWM (peak RSS) at the end
	Rate      float64 // requests per second the load achieved
	Failed    int
	P50, P99  time.Duration
	Goroutine float64 // go_goroutines idle; -1 for the bare server
}

// Memory measures the RSS of the bare net/http server (the baseline), the
// example-service without etcd, and the example-service registered in
// etcd, each alone, idle and then under a closed loop of 16 workers on
// GET /hello for loadFor.
func Memory(t *testing.T, h *Harness, loadFor time.Duration) []MemResult {
	t.Helper()
	srv := etcdtest.Start(t)
	cases := []struct {
		name string
		bin  string
		env  []string
	}{
		{"bare net/http (baseline)", h.Bare, []string{"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0"}},
		{"example-service, no etcd", h.Example, Env(t.TempDir(), "", 0)},
		{"example-service, registered in etcd", h.Example, Env(t.TempDir(), srv.Endpoints()[0], 10*time.Second)},
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections()
	var out []MemResult
	for _, cs := range cases {
		p := Start(t, cs.bin, cs.env)
		res := MemResult{Name: cs.name, Goroutine: -1}
		time.Sleep(2 * time.Second)
		var err error
		if res.Idle, _, err = p.Memory(); err != nil {
			code, werr := p.Wait(time.Second)
			t.Fatalf("%s: %v (exit %d, %v); its output:\n%s", cs.name, err, code, werr, p.Log())
		}
		if p.Private != "" {
			res.Goroutine = Metric(c, p, "go_goroutines")
		}
		load := StartLoad(c, p.PublicURL()+"/hello/load", 1_000_000, 16)
		from := time.Now()
		for time.Since(from) < loadFor {
			time.Sleep(100 * time.Millisecond)
			rss, _, err := p.Memory()
			if err != nil {
				code, werr := p.Wait(time.Second)
				t.Fatalf("%s under load: %v (exit %d, %v); its output:\n%s", cs.name, err, code, werr, p.Log())
			}
			res.LoadMax = max(res.LoadMax, rss)
		}
		load.Stop()
		st := load.Window(from, time.Now())
		res.Rate = float64(st.Sent) / time.Since(from).Seconds()
		res.Failed, res.P50, res.P99 = st.Failed, st.P50, st.P99
		if _, res.HWM, err = p.Memory(); err != nil {
			t.Fatal(err)
		}
		c.CloseIdleConnections()
		p.Kill()
		out = append(out, res)
	}
	return out
}

// ReportMemory writes the memory table, as ratios to the first row.
func ReportMemory(r *Report, section string, loadFor time.Duration, res []MemResult) {
	r.Printf(section, "VmRSS from /proc/<pid>/status of the real binaries, each running alone; load: 16 workers in a closed loop on "+
		"GET /hello/{name} over keep-alive connections for %v (load generator on the same 2 cores).\n\n", loadFor)
	var rows [][]string
	base := res[0]
	for _, m := range res {
		rows = append(rows, []string{
			m.Name,
			mib(m.Idle), ratio(float64(m.Idle), float64(base.Idle)),
			mib(m.LoadMax), ratio(float64(m.LoadMax), float64(base.LoadMax)),
			mib(m.HWM),
			fmt.Sprintf("%.0f", m.Rate),
			fmt.Sprint(m.Failed),
		})
	}
	r.Table(section, []string{"server", "RSS idle", "vs bare", "RSS under load (max)", "vs bare", "peak (VmHWM)",
		"req/s reached", "failed"}, rows)
	r.Printf(section, "The request rate is context for the memory under load, not a throughput benchmark (that is internal/bench, against bare chi).\n\n")
}

// ResolveResult compares a resolve from the discovery cache with an etcd
// read per call.
type ResolveResult struct {
	Name   string
	NsOp   float64
	Allocs int64
}

// Resolve benchmarks Discovery.BaseURL against clientv3 Get of the
// service's prefix (linearizable and serializable), 3 instances
// registered, in one process with an embedded etcd.
func Resolve(t *testing.T) []ResolveResult {
	t.Helper()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	ctx := t.Context()
	for i := range 3 {
		rec := registry.Record{Name: "orders", ID: fmt.Sprint("i", i), Environment: "proof", Host: "127.0.0.1", PublicPort: 1 + i}
		v, err := rec.MarshalValue()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cli.Put(ctx, rec.Key(), string(v)); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDiscovery(t, srv.Client(t), "proof")
	if insts, err := d.Instances("orders"); err != nil || len(insts) != 3 {
		t.Fatalf("proof: discovery of orders = %v, %v", insts, err)
	}
	prefix := registry.Prefix("proof", "orders")
	bench := func(name string, f func(b *testing.B)) ResolveResult {
		r := testing.Benchmark(func(b *testing.B) {
			b.ReportAllocs()
			f(b)
		})
		return ResolveResult{Name: name, NsOp: float64(r.T.Nanoseconds()) / float64(r.N), Allocs: r.AllocsPerOp()}
	}
	get := func(opts ...clientv3.OpOption) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				resp, err := cli.Get(context.Background(), prefix, append(opts, clientv3.WithPrefix())...)
				if err != nil || len(resp.Kvs) != 3 {
					b.Fatalf("Get = %v, %v", resp, err)
				}
			}
		}
	}
	return []ResolveResult{
		bench("Discovery.BaseURL (cache)", func(b *testing.B) {
			for b.Loop() {
				if _, err := d.BaseURL("orders"); err != nil {
					b.Fatal(err)
				}
			}
		}),
		bench("etcd Get per call, linearizable (baseline)", get()),
		bench("etcd Get per call, serializable", get(clientv3.WithSerializable())),
	}
}

// ReportResolve writes the resolve table, as ratios to the linearizable
// etcd read.
func ReportResolve(r *Report, section string, res []ResolveResult) {
	var rows [][]string
	for _, x := range res {
		rows = append(rows, []string{x.Name, fmt.Sprintf("%.0f ns", x.NsOp), fmt.Sprint(x.Allocs), ratio(x.NsOp, res[1].NsOp)})
	}
	r.Table(section, []string{"resolve", "time/op", "allocs/op", "vs etcd Get"}, rows)
}

// PropagationResult is registration propagation across processes.
type PropagationResult struct {
	Samples                     int
	Register, Deregister        [2]time.Duration // p50, p99 into the discovery cache
	RawRegister, RawDeregister  [2]time.Duration // p50, p99 of a raw etcd watch in the same process
	RegisterMax, DeregisterMax  time.Duration
	RawRegisterMax, RawDeregMax time.Duration
}

// Propagation measures, n times, how long an instance's registration
// (POST /admin/undrain to the example-service process) and
// deregistration (POST /admin/drain) take to reach another process's
// discovery cache, and, as the baseline, a raw etcd watch of the prefix in
// that process.
func Propagation(t *testing.T, bin string, n int) PropagationResult {
	t.Helper()
	srv := etcdtest.Start(t)
	p := Start(t, bin, Env(t.TempDir(), srv.Endpoints()[0], 10*time.Second))
	d := NewDiscovery(t, srv.Client(t), "dev")
	WaitInstances(t, d, 10*time.Second, "instance registered", func(insts []registry.Instance) bool { return hasKey(insts, "dev", p.ID) })

	// The raw watch: the time each event arrives, by type.
	wcli := srv.Client(t)
	wctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type rawEvent struct {
		at  time.Time
		put bool
	}
	events := make(chan rawEvent, 2*n+8)
	key := registry.Prefix("dev", Service) + p.ID
	wch := wcli.Watch(wctx, registry.Prefix("dev", Service), clientv3.WithPrefix())
	go func() {
		for wr := range wch {
			now := time.Now()
			for _, ev := range wr.Events {
				if string(ev.Kv.Key) == key {
					events <- rawEvent{now, ev.Type == clientv3.EventTypePut}
				}
			}
		}
	}()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	// post sends the admin request in the background, so that the cache
	// is watched while the request runs (a drain answers after its delete
	// and revoke); the returned channel gives its error.
	post := func(path string) <-chan error {
		done := make(chan error, 1)
		go func() {
			resp, err := c.Post(p.AdminURL()+path, "", nil)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("POST %s = %d", path, resp.StatusCode)
				}
			}
			done <- err
		}()
		return done
	}
	wait := func(start time.Time, want bool) (disc, raw time.Duration) {
		t.Helper()
		deadline := start.Add(10 * time.Second)
		for {
			insts, err := d.Instances(Service)
			if err == nil && hasKey(insts, "dev", p.ID) == want {
				disc = time.Since(start)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("proof: registration %v not propagated within 10s", want)
			}
			time.Sleep(20 * time.Microsecond)
		}
		for {
			select {
			case ev := <-events:
				if ev.put == want {
					return disc, ev.at.Sub(start)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("proof: the raw watch saw nothing within 10s")
			}
		}
	}
	var reg, dereg, rawReg, rawDereg []time.Duration
	for range n {
		start := time.Now()
		done := post("/admin/drain")
		dd, rd := wait(start, false)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		dereg, rawDereg = append(dereg, dd), append(rawDereg, rd)
		start = time.Now()
		done = post("/admin/undrain")
		dr, rr := wait(start, true)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		reg, rawReg = append(reg, dr), append(rawReg, rr)
	}
	pp := func(ds []time.Duration) [2]time.Duration {
		return [2]time.Duration{Percentile(ds, .5), Percentile(ds, .99)}
	}
	return PropagationResult{
		Samples: n, Register: pp(reg), Deregister: pp(dereg), RawRegister: pp(rawReg), RawDeregister: pp(rawDereg),
		RegisterMax: Percentile(reg, 1), DeregisterMax: Percentile(dereg, 1),
		RawRegisterMax: Percentile(rawReg, 1), RawDeregMax: Percentile(rawDereg, 1),
	}
}

// ReportPropagation writes the propagation table.
func ReportPropagation(r *Report, section string, p PropagationResult) {
	r.Printf(section, "From the admin request to the example-service process (`POST /admin/undrain`: health gate, lease grant, put; "+
		"`POST /admin/drain`: delete, revoke) until the change is in another process's discovery cache; baseline: a raw etcd "+
		"watch of the prefix in that same process. %d samples each.\n\n", p.Samples)
	r.Table(section, []string{"", "p50", "p99", "max", "raw watch p50", "raw watch p99", "p50 vs raw watch"}, [][]string{
		{"registration (undrain)", ms(p.Register[0]), ms(p.Register[1]), ms(p.RegisterMax), ms(p.RawRegister[0]), ms(p.RawRegister[1]),
			ratio(float64(p.Register[0]), float64(p.RawRegister[0]))},
		{"deregistration (drain)", ms(p.Deregister[0]), ms(p.Deregister[1]), ms(p.DeregisterMax), ms(p.RawDeregister[0]), ms(p.RawDeregister[1]),
			ratio(float64(p.Deregister[0]), float64(p.RawDeregister[0]))},
	})
}

// RelayResult is the relay's throughput against calling an instance
// directly, and how many connections it left in TIME_WAIT.
type RelayResult struct {
	Direct, Relay       Stats
	DirectRate, Rate    float64
	TimeWait            int // sockets to the instances' public ports in TIME_WAIT after the relay run
	For                 time.Duration
	Instances, Parallel int
}

// Relay runs two instances registered in etcd and drives, for d each, a
// closed loop of 16 workers: first GET /hello/x on one instance directly
// (the baseline), then GET /call/example/hello/x on it (the relay, through
// its discovery, to either instance).
func Relay(t *testing.T, bin string, d time.Duration) RelayResult {
	t.Helper()
	srv := etcdtest.Start(t)
	env := Env(t.TempDir(), srv.Endpoints()[0], 10*time.Second)
	a, b := Start(t, bin, env), Start(t, bin, env)
	disc := NewDiscovery(t, srv.Client(t), "dev")
	WaitInstances(t, disc, 10*time.Second, "both registered", func(insts []registry.Instance) bool { return len(insts) == 2 })
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer c.CloseIdleConnections()
	res := RelayResult{For: d, Instances: 2, Parallel: 16}
	run := func(url string) (Stats, float64) {
		from := time.Now()
		l := StartLoad(c, url, 1_000_000, res.Parallel)
		time.Sleep(d)
		l.Stop()
		st := l.Window(from, time.Now())
		return st, float64(st.Sent) / time.Since(from).Seconds()
	}
	res.Direct, res.DirectRate = run(a.PublicURL() + "/hello/x")
	tw0 := timeWait(t, a.Public, b.Public)
	res.Relay, res.Rate = run(a.PublicURL() + "/call/" + Service + "/hello/x")
	res.TimeWait = timeWait(t, a.Public, b.Public) - tw0
	return res
}

// timeWait counts the IPv4 sockets in TIME_WAIT whose remote end is one
// of addrs (host:port), from /proc/net/tcp.
func timeWait(t *testing.T, addrs ...string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, a := range addrs {
		ap, err := netip.ParseAddrPort(a)
		if err != nil {
			t.Fatal(err)
		}
		ip := ap.Addr().As4()
		// /proc/net/tcp writes the address as a little-endian hex word.
		want[fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ap.Port())] = true
	}
	n := 0
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) > 3 && f[3] == "06" && want[f[2]] { // 06: TIME_WAIT
			n++
		}
	}
	return n
}

// ReportRelay writes the relay table.
func ReportRelay(r *Report, section string, res RelayResult) {
	r.Printf(section, "%d workers in a closed loop for %v each; %d instances registered; GET /call/example/hello/x relays through the instance's "+
		"discovery (registry.NewTransport) to either instance.\n\n", res.Parallel, res.For, res.Instances)
	r.Table(section, []string{"", "req/s", "p50", "p99", "failed", "sockets left in TIME_WAIT"}, [][]string{
		{"direct GET /hello/x (baseline)", fmt.Sprintf("%.0f", res.DirectRate), ms(res.Direct.P50), ms(res.Direct.P99), fmt.Sprint(res.Direct.Failed), ""},
		{"relayed GET /call/example/hello/x", fmt.Sprintf("%.0f (%s)", res.Rate, ratio(res.Rate, res.DirectRate)), ms(res.Relay.P50), ms(res.Relay.P99),
			fmt.Sprint(res.Relay.Failed), fmt.Sprint(res.TimeWait)},
	})
}
