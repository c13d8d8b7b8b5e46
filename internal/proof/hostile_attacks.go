package proof

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/config/etcdsource"
	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// AttacksSection is the report section of [Attacks].
const AttacksSection = "Hostile callers and unlucky operators (issue 9)"

// discoveryIdle is the discovery.idle-timeout of the attacked instance:
// short, so that the names of a burst are released within the scenario.
const discoveryIdle = 2 * time.Second

// attacks collects the rows of [Attacks].
type attacks struct {
	t     *testing.T
	c     *http.Client
	probe *Load // relays /call/example/hello/probe through the attacked instance
	rows  [][]string
}

// row records one attack: what was sent, what was wanted, what the
// process did, its heap and goroutines before and after, and the relay
// probe's failures meanwhile; it fails t when ok is false.
func (a *attacks) row(attack, sent, want, got string, before, after Usage, from time.Time, ok bool) {
	a.t.Helper()
	verdict := "ok"
	if !ok {
		verdict = "**FAIL**"
		a.t.Errorf("%s: sent %s; got %s; want %s", attack, sent, got, want)
	}
	heap, goroutines := "-", "-"
	if before.Heap > 0 || after.Heap > 0 {
		heap, goroutines = fmtUsage(before, after)
	}
	probed := "-"
	if a.probe != nil && !from.IsZero() {
		if st := a.probe.Window(from, time.Now()); st.Sent > 0 {
			probed = fmt.Sprintf("%d / %d", st.Failed, st.Sent)
		}
	}
	a.rows = append(a.rows, []string{attack, sent, want, got, heap, goroutines, probed, verdict})
}

// Attacks runs the attacks of issue 9 against the built example-service
// with an embedded etcd: an open relay, a relay loop, invented methods,
// unknown names, browser requests to the admin port, overlapping
// temporary log levels, request smuggling, a long pprof, a bad
// startup-only value, etcd wiped, restored and replaced under the
// service, secrets in values, and a flood of idle keep-alive connections.
// Each row says what was sent and what the process did, with its heap in
// use and goroutines (after a forced GC) before and after; t fails on any
// broken guarantee.
func Attacks(t *testing.T, bin string, r *Report) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	configDir := t.TempDir()
	env := Env(configDir, srv.Endpoints()[0], 2*time.Second, "DISCOVERY_IDLE_TIMEOUT="+discoveryIdle.String())
	p := Start(t, bin, env)
	c := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	t.Cleanup(c.CloseIdleConnections)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok, err := selfRegistered(c, p); ok && err == nil {
			break
		}
	}
	// The probe keeps the instance relaying to itself through discovery
	// (so the name "example" stays watched) from start to end.
	probeClient := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(probeClient.CloseIdleConnections)
	probe := StartLoad(probeClient, p.PublicURL()+"/call/"+Service+"/hello/probe", 20, 2)
	var stopProbe sync.Once
	defer stopProbe.Do(probe.Stop)
	a := &attacks{t: t, c: c, probe: probe}
	time.Sleep(500 * time.Millisecond)

	r.Printf(AttacksSection, "One instance registered in an embedded etcd (registry TTL 2s, discovery.idle-timeout %v, "+
		"everything else at its default), attacked in turn; a probe relays GET /call/example/hello/probe through it "+
		"(discovery to itself) at 20 req/s throughout. Heap is go_memstats_heap_inuse_bytes and goroutines go_goroutines "+
		"from its /metrics, each read right after POST /admin/gc. Rows 8, 9 and 10 use processes of their own.\n\n", discoveryIdle)

	a.openRelay(p, srv)
	a.relayLoop(p)
	a.inventedMethods(p)
	a.unknownNames(p, srv)
	a.browser(p, cli)
	a.logLevels(p, cli)
	a.smuggling(p)
	a.pprofCap(p)
	a.etcdReplaced(bin, env, p, srv, cli)
	if !Alive(p) {
		t.Errorf("the attacked instance died:\n%s", p.Log())
	}
	stopProbe.Do(probe.Stop)
	a.startupOnly(bin)
	a.secrets(bin, srv)
	a.flood(bin)

	r.Table(AttacksSection, []string{"attack", "sent", "want", "what the process did", "heap before → after",
		"goroutines before → after", "probe failed / sent", "verdict"}, a.rows)
}

// 1. The relay is not an open proxy.
func (a *attacks) openRelay(p *Process, srv *etcdtest.Server) {
	own := NewCounter(a.t)
	etcdPort := portOf(srv.Endpoints()[0])
	paths := []struct{ path, content string }{
		{"/call/127.0.0.1:" + portOf(p.Admin) + "/admin/config", "public.port"},
		{"/call/localhost:" + portOf(p.Admin) + "/debug/pprof/cmdline", "proof-"},
		{"/call/localhost:" + portOf(p.Private) + "/metrics", "go_goroutines"},
		{"/call/127.0.0.1:" + etcdPort + "/version", "etcdserver"},
		{"/call/localhost:" + etcdPort + "/metrics", "etcd_"},
		{"/call/127.0.0.1:" + own.Port() + "/x", ""},
		{"/call/localhost:" + own.Port() + "/x", ""},
		{"/call/[::1]:" + own.Port() + "/x", ""},
		{"/call/127.0.0.1%3A" + own.Port() + "/x", ""},
		{"/call/user@localhost:" + own.Port() + "/x", ""},
		{"/call/2130706433/x", ""},
		{"/call/localhost/x", ""},
	}
	before, from := UsageOf(a.c, p), time.Now()
	codes := map[string]int{}
	leaked := 0
	for _, tc := range paths {
		ans := Do(a.c, http.MethodGet, p.PublicURL()+tc.path, "")
		codes[ans.String()]++
		if ans.Code != http.StatusBadRequest {
			a.t.Errorf("open relay: GET %s = %s %.200s; want 400", tc.path, ans, ans.Body)
		}
		if tc.content != "" && strings.Contains(ans.Body, tc.content) {
			leaked++
			a.t.Errorf("open relay: GET %s answered the target's content (%q)", tc.path, tc.content)
		}
	}
	n := own.Accepted()
	a.row("1. open relay",
		fmt.Sprintf("%d GETs of /call/{addr}/...: the admin port's /admin/config and pprof, the private port's /metrics, etcd's /version and /metrics, and a listener of the proof's as 127.0.0.1:P, localhost:P, [::1]:P, 127.0.0.1%%3AP, user@localhost:P, 2130706433, localhost", len(paths)),
		"all 400, no target content, 0 connections to the proof's listener",
		fmt.Sprintf("answers %s; %d with target content; %d connections to the proof's listener", fmtCounts(codes), leaked, n),
		before, UsageOf(a.c, p), from, codes["400"] == len(paths) && leaked == 0 && n == 0)
}

// 2. A relay loop ends in 508 with open files bounded.
func (a *attacks) relayLoop(p *Process) {
	const depth, callers = 100, 50
	before, from := UsageOf(a.c, p), time.Now()
	fds0 := OpenFiles(p)
	var peak atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if n := int64(OpenFiles(p)); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	})
	path := strings.Repeat("/call/"+Service, depth) + "/hello/x"
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: callers}}
	defer c.CloseIdleConnections()
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Go(func() {
			ans := Do(c, http.MethodGet, p.PublicURL()+path, "")
			mu.Lock()
			codes[ans.String()]++
			mu.Unlock()
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	sampler.Wait()
	c.CloseIdleConnections()
	limit := int64(fds0 + callers*(2*registry.MaxHops+4))
	time.Sleep(time.Second)
	fds1 := OpenFiles(p)
	a.row("2. relay loop",
		fmt.Sprintf("%d concurrent GET /call/example/call/example/... (%d deep), the instance resolving example to itself", callers, depth),
		fmt.Sprintf("all 508; open files at most baseline + %d × (2 × %d hops + 4)", callers, registry.MaxHops),
		fmt.Sprintf("answers %s in %s; open files %d, peak %d (bound %d), %d after (idle keep-alive connections of the relay, closed by the idle timeouts)",
			fmtCounts(codes), ms(took), fds0, peak.Load(), limit, fds1),
		before, UsageOf(a.c, p), from, codes["508"] == callers && peak.Load() <= limit && int64(fds1) <= limit)
}

// 3. Invented methods add no series.
func (a *attacks) inventedMethods(p *Process) {
	const n, workers = 12000, 32
	before, from := UsageOf(a.c, p), time.Now()
	size0, series0, req0 := MetricsSize(a.c, p, "http_requests_total")
	var next atomic.Int64
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				ans := Do(a.c, fmt.Sprintf("X%dINVENTED", i), p.PublicURL()+"/hello/x", "")
				mu.Lock()
				codes[ans.String()]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	size1, series1, req1 := MetricsSize(a.c, p, "http_requests_total")
	a.row("3. invented methods",
		fmt.Sprintf("%d requests to /hello/x, each with its own method X1INVENTED, X2INVENTED, ...", n),
		"/metrics bounded: at most a few new series (method=\"unknown\")",
		fmt.Sprintf("answers %s; /metrics %s → %s, %d → %d series, http_requests_total %d → %d series",
			fmtCounts(codes), kib(size0), kib(size1), series0, series1, req0, req1),
		before, UsageOf(a.c, p), from, size1 >= 0 && series1-series0 <= 40 && size1-size0 <= 16<<10)
}

// 4. Unknown names: refused past the cap, released when idle.
func (a *attacks) unknownNames(p *Process, srv *etcdtest.Server) {
	const n, workers = 20000, 32
	ep := srv.Endpoints()[0]
	before, from := UsageOf(a.c, p), time.Now()
	watchers0 := EtcdWatchers(ep)
	var peakG, peakW atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			if g := Metric(a.c, p, "go_goroutines"); int64(g) > peakG.Load() {
				peakG.Store(int64(g))
			}
			if w := EtcdWatchers(ep); int64(w) > peakW.Load() {
				peakW.Store(int64(w))
			}
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	var next, refused atomic.Int64
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for i := next.Add(1); i <= n; i = next.Add(1) {
				ans := Do(a.c, http.MethodGet, p.PublicURL()+"/call/unknown-"+strconv.FormatInt(i, 10)+"/x", "")
				if strings.Contains(ans.Body, "MaxServices") {
					refused.Add(1)
				}
				mu.Lock()
				codes[ans.String()]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	sampler.Wait()
	ready := Do(a.c, http.MethodGet, p.PrivateURL()+"/readyz", "")
	// Idle names are released between one and two idle periods after
	// their last resolve.
	var after Usage
	var watchers1 float64
	released := time.Now()
	for deadline := time.Now().Add(15 * discoveryIdle); ; time.Sleep(200 * time.Millisecond) {
		after, watchers1 = UsageOf(a.c, p), EtcdWatchers(ep)
		if (after.Goroutines <= before.Goroutines+5 && watchers1 <= watchers0) || time.Now().After(deadline) {
			break
		}
	}
	releasedIn := time.Since(released)
	const slack = 8 << 20
	a.row("4. unknown names",
		fmt.Sprintf("%d GET /call/unknown-N/x, %d at a time, no such service registered", n, workers),
		fmt.Sprintf("all 503, those past discovery.max-services (%d) refused naming it; goroutines bounded by the cap (at most 4 per watched name), then goroutines, etcd watchers and heap (+8 MiB) back to baseline after the idle period (%v)",
			registry.DefaultMaxServices, discoveryIdle),
		fmt.Sprintf("answers %s in %s (%.0f req/s), %d refused naming MaxServices; peak %d goroutines, %d etcd watchers (baseline %.0f, %.0f); /readyz during: %s; back to %.0f goroutines, %.0f watchers %s after the burst",
			fmtCounts(codes), ms(took), float64(n)/took.Seconds(), refused.Load(), peakG.Load(), peakW.Load(), before.Goroutines, watchers0, ready,
			after.Goroutines, watchers1, ms(releasedIn)),
		before, after, from,
		codes["503"] == n && refused.Load() > 0 && peakG.Load() <= int64(before.Goroutines)+4*registry.DefaultMaxServices+200 &&
			after.Goroutines <= before.Goroutines+5 && watchers1 <= watchers0 && after.Heap <= before.Heap+slack)
}

// 5. A browser page cannot drive or read the admin port.
func (a *attacks) browser(p *Process, cli *clientv3.Client) {
	const evil = "http://evil.example"
	host := "evil.example:" + portOf(p.Admin)
	tests := []struct {
		method, path string
		hdr          []string
	}{
		{http.MethodPost, "/admin/drain", []string{"Origin", evil, "Sec-Fetch-Site", "cross-site"}},
		{http.MethodPost, "/admin/drain", []string{"Origin", evil}},
		{http.MethodPost, "/admin/tasks/reset-counts", []string{"Origin", evil, "Content-Type", "text/plain"}},
		{http.MethodPut, "/admin/loglevel", []string{"Sec-Fetch-Site", "cross-site"}},
		{http.MethodGet, "/admin/config", []string{"Host", host}},
		{http.MethodGet, "/debug/pprof/cmdline", []string{"Host", host}},
		{http.MethodPost, "/admin/drain", []string{"Host", host, "Origin", "http://" + host, "Sec-Fetch-Site", "same-origin"}},
	}
	before, from := UsageOf(a.c, p), time.Now()
	codes := map[string]int{}
	for _, tc := range tests {
		body := ""
		if tc.method == http.MethodPut {
			body = "debug"
		}
		ans := Do(a.c, tc.method, p.AdminURL()+tc.path, body, tc.hdr...)
		codes[ans.String()]++
		if ans.Code != http.StatusForbidden {
			a.t.Errorf("browser: %s %s %v = %s %.200s; want 403", tc.method, tc.path, tc.hdr, ans, ans.Body)
		}
	}
	ready := Do(a.c, http.MethodGet, p.PrivateURL()+"/readyz", "")
	lv := Do(a.c, http.MethodGet, p.AdminURL()+"/admin/loglevel", "")
	resp, err := cli.Get(context.Background(), registry.Prefix("dev", Service)+p.ID)
	registered := err == nil && len(resp.Kvs) == 1
	audited := p.LogCount("admin action")
	a.row("5. browser on the admin port",
		"cross-site POST /admin/drain (Origin: http://evil.example, with and without Sec-Fetch-Site: cross-site), a task and PUT /admin/loglevel the same way; "+
			"DNS rebinding: GET /admin/config, /debug/pprof/cmdline and a same-origin POST /admin/drain with Host: evil.example",
		"all 403; still ready and registered, level unchanged",
		fmt.Sprintf("answers %s; /readyz %s, registered %v, level %s; %d audit lines so far", fmtCounts(codes), ready, registered,
			strings.Join(strings.Fields(jsonField(lv.Body, "level")), ""), audited),
		before, UsageOf(a.c, p), from,
		codes["403"] == len(tests) && ready.Code == http.StatusOK && registered && jsonField(lv.Body, "level") == "info")
}

// 7. Overlapping temporary log levels end at the base in force.
func (a *attacks) logLevels(p *Process, cli *clientv3.Client) {
	before, from := UsageOf(a.c, p), time.Now()
	key := etcdsource.Prefix("dev", Service) + "log.level"
	first := Do(a.c, http.MethodPut, p.AdminURL()+"/admin/loglevel?for=1h", "debug")
	second := Do(a.c, http.MethodPut, p.AdminURL()+"/admin/loglevel?for=2s", "warn")
	// While the second runs, the base changes through etcd.
	if _, err := cli.Put(context.Background(), key, "error"); err != nil {
		a.t.Fatal(err)
	}
	var during, ended, after string
	during = jsonField(Do(a.c, http.MethodGet, p.AdminURL()+"/admin/loglevel", "").Body, "level")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ended = jsonField(Do(a.c, http.MethodGet, p.AdminURL()+"/admin/loglevel", "").Body, "level")
		if ended != "warn" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	endedAfter := time.Since(from)
	if _, err := cli.Delete(context.Background(), key); err != nil {
		a.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		after = jsonField(Do(a.c, http.MethodGet, p.AdminURL()+"/admin/loglevel", "").Body, "level")
		if after == "info" || time.Now().After(deadline) {
			break
		}
	}
	a.row("7. overlapping temporary log levels",
		"PUT /admin/loglevel?for=1h debug, then ?for=2s warn; meanwhile log.level = error in etcd; after, the etcd key deleted",
		"warn for 2s, then the base in force (error), then info once the key is gone",
		fmt.Sprintf("PUTs %s, %s; level %s during, %s after %s, %s once the key was deleted", first, second, during, ended, ms(endedAfter), after),
		before, UsageOf(a.c, p), from,
		first.Code == 200 && second.Code == 200 && during == "warn" && ended == "error" && after == "info")
}

// 11. Request smuggling: the connection is closed after the response.
func (a *attacks) smuggling(p *Process) {
	before, from := UsageOf(a.c, p), time.Now()
	var got []string
	ok := true
	for _, port := range []struct{ name, addr string }{{"public", p.Public}, {"private", p.Private}, {"admin", p.Admin}} {
		first, closed, second, err := Smuggle(port.addr)
		if err != nil {
			got = append(got, fmt.Sprintf("%s: %v", port.name, err))
			ok = false
			continue
		}
		s := fmt.Sprintf("%s: %s, closed %v", port.name, first, closed)
		if second != "" {
			s += ", smuggled request answered " + second
		}
		got = append(got, s)
		ok = ok && closed && second == ""
	}
	a.row("11. request smuggling shape",
		"POST /hello/x with Content-Length and Transfer-Encoding: chunked, a GET hidden after the chunked body, on each port",
		"a response, then the connection closed; the hidden GET never answered",
		strings.Join(got, "; "), before, UsageOf(a.c, p), from, ok)
}

// 12. pprof caps seconds.
func (a *attacks) pprofCap(p *Process) {
	before, from := UsageOf(a.c, p), time.Now()
	var got []string
	ok := true
	for _, path := range []string{"/debug/pprof/profile?seconds=100000", "/debug/pprof/trace?seconds=100000", "/debug/pprof/heap?seconds=100000"} {
		start := time.Now()
		ans := Do(a.c, http.MethodGet, p.AdminURL()+path, "")
		got = append(got, fmt.Sprintf("%s %s in %s", strings.TrimPrefix(path, "/debug/pprof/"), ans, ms(time.Since(start))))
		ok = ok && ans.Code == http.StatusBadRequest && time.Since(start) < 2*time.Second
	}
	a.row("12. pprof for 28 hours",
		"GET /debug/pprof/profile, /trace and /heap with seconds=100000",
		"400 at once (cap admin.max-profile-duration, 60s)",
		strings.Join(got, "; "), before, UsageOf(a.c, p), from, ok)
}

// 6. etcd wiped, restored from a backup and replaced by a new cluster
// under the running instance.
func (a *attacks) etcdReplaced(bin string, env []string, p *Process, srv *etcdtest.Server, cli *clientv3.Client) {
	ctx := context.Background()
	greetingKey := etcdsource.Prefix("dev", Service) + "hello.greeting"
	myKey := registry.Prefix("dev", Service) + p.ID
	greeting := func() string {
		return jsonField(Do(a.c, http.MethodGet, p.PublicURL()+"/hello/x", "").Body, "message")
	}
	waitFor := func(d time.Duration, cond func() bool) (time.Duration, bool) {
		start := time.Now()
		for deadline := start.Add(d); ; time.Sleep(10 * time.Millisecond) {
			if cond() {
				return time.Since(start), true
			}
			if time.Now().After(deadline) {
				return time.Since(start), false
			}
		}
	}
	// The backup holds a greeting the restore brings back.
	if _, err := cli.Put(ctx, greetingKey, "backed-up"); err != nil {
		a.t.Fatal(err)
	}
	if _, ok := waitFor(10*time.Second, func() bool { return greeting() == "backed-up, x" }); !ok {
		a.t.Fatalf("etcd replaced: the greeting set in etcd before any replacement did not take effect: %q", greeting())
	}
	backup := srv.Backup(a.t)
	if _, err := cli.Put(ctx, greetingKey, "after-backup"); err != nil {
		a.t.Fatal(err)
	}
	if _, ok := waitFor(10*time.Second, func() bool { return greeting() == "after-backup, x" }); !ok {
		a.t.Fatalf("etcd replaced: the greeting did not take effect after the backup: %q", greeting())
	}
	for _, kind := range []string{"wiped", "restored from a backup", "replaced by a new cluster"} {
		before, from := UsageOf(a.c, p), time.Now()
		// A cluster in use is far ahead of what a new one reaches in
		// seconds: without this, a replacement overtaken within one check
		// interval (2s) is not told apart (docs/reliability.md).
		for i := range fillerWrites {
			if _, err := cli.Put(ctx, "proof/filler", strconv.Itoa(i)); err != nil {
				a.t.Fatal(err)
			}
		}
		var oldRev int64
		if resp, err := cli.Get(ctx, "proof-revision"); err == nil {
			oldRev = resp.Header.Revision
		}
		switch kind {
		case "wiped":
			srv.Wipe(a.t)
		case "restored from a backup":
			srv.RestoreBackup(a.t, backup)
		default:
			srv.ReplaceCluster(a.t)
		}
		back := time.Now()
		resp, err := cli.Get(ctx, "proof-revision")
		if err != nil {
			a.t.Fatalf("etcd %s: %v", kind, err)
		}
		rev0 := resp.Header.Revision
		// The instance's key, put again in the new etcd.
		reregistered, regOK := waitFor(30*time.Second, func() bool {
			resp, err := cli.Get(ctx, myKey)
			return err == nil && len(resp.Kvs) == 1 && resp.Kvs[0].ModRevision > rev0
		})
		// A greeting written now takes effect.
		want := "howdy-" + strconv.Itoa(int(time.Now().UnixMilli()%100000))
		written := time.Now()
		if _, err := cli.Put(ctx, greetingKey, want); err != nil {
			a.t.Fatal(err)
		}
		_, cfgOK := waitFor(30*time.Second, func() bool { return greeting() == want+", x" })
		configIn := time.Since(written)
		// A new instance registered in the new etcd is relayed to.
		q := Start(a.t, bin, env)
		seenIn, discOK := waitFor(30*time.Second, func() bool {
			seen, _ := relayed(a.c, p, 4)
			return seen[q.ID] > 0
		})
		_ = q.Signal(syscall.SIGTERM)
		code, _ := q.Wait(20 * time.Second)
		_, goneOK := waitFor(10*time.Second, func() bool {
			seen, _ := relayed(a.c, p, 4)
			return seen[q.ID] == 0 && len(seen) == 1
		})
		if !cfgOK {
			var nowRev int64
			if resp, err := cli.Get(ctx, "proof-revision"); err == nil {
				nowRev = resp.Header.Revision
			}
			kvs, _ := cli.Get(ctx, "svc/", clientv3.WithPrefix())
			a.t.Logf("etcd %s: revision before %d, after %d, now %d; keys %v", kind, oldRev, rev0, nowRev, kvs)
			for _, kv := range kvs.Kvs {
				if kv.Lease != 0 {
					ttl, err := cli.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
					a.t.Logf("lease %x of %s: TTL %d, granted %d, %v", kv.Lease, kv.Key, ttl.TTL, ttl.GrantedTTL, err)
				}
			}
			a.t.Logf("/admin/registry: %s\n/readyz: %s", Do(a.c, http.MethodGet, p.AdminURL()+"/admin/registry", "").Body,
				Do(a.c, http.MethodGet, p.PrivateURL()+"/readyz", "").Body)
			a.t.Logf("etcd %s: the instance's log about etcd and config:\n%s", kind, grepLog(p.Log(), "etcd", "config", "registry"))
		}
		ready := Do(a.c, http.MethodGet, p.PrivateURL()+"/readyz", "")
		detected := p.LogCount("etcd config layer: etcd replaced under the service; serving the last known values until listed again")
		a.row("6. etcd "+kind,
			fmt.Sprintf("etcd %s under the running instance (embedded etcd, same address, old revision %d); then hello.greeting written in it and a second instance started", kind, oldRev),
			"instance registered again, the new greeting served, the new instance relayed to, each within seconds; ready",
			fmt.Sprintf("etcd back after %s; key put again %s after; greeting %q served %s after it was written; second instance relayed to %s after it started, gone after it stopped (exit %d): %v; /readyz %s; config layer warned %d times so far",
				ms(back.Sub(from)), ms(reregistered), want, ms(configIn), ms(seenIn), code, goneOK, ready, detected),
			before, UsageOf(a.c, p), from,
			regOK && cfgOK && discOK && goneOK && code == 0 && ready.Code == http.StatusOK &&
				reregistered < 10*time.Second && configIn < 10*time.Second && seenIn < 10*time.Second)
	}
}

// fillerWrites are made before each replacement of etcd, so that the old
// etcd's revision is ahead of the new one by that many.
const fillerWrites = 500

// 8. A bad value of a startup-only key is rejected at reload and the next
// restart works.
func (a *attacks) startupOnly(bin string) {
	dir := a.t.TempDir()
	file := filepath.Join(dir, Service+".json")
	q := Start(a.t, bin, Env(dir, "", 0))
	before, from := UsageOf(a.c, q), time.Now()
	reload := func(contents string) (string, string) {
		if err := os.WriteFile(file, []byte(contents), 0o644); err != nil {
			a.t.Fatal(err)
		}
		ans := Do(a.c, http.MethodPost, q.AdminURL()+"/admin/config/reload", "")
		return jsonField(ans.Body, "result"), configValue(a.c, q, "shutdown.timeout")
	}
	bad, inForce := reload(`{"shutdown": {"timeout": "soon"}}`)
	logged := q.LogCount("config: rejected a new value; the previous value stays in force")
	good, inForce2 := reload(`{"shutdown": {"timeout": "20s"}}`)
	after := UsageOf(a.c, q)
	_ = q.Signal(syscall.SIGTERM)
	code, err := q.Wait(20 * time.Second)
	if err != nil {
		a.t.Fatal(err)
	}
	q2 := q.Restart(a.t)
	restarted := configValue(a.c, q2, "shutdown.timeout")
	q2.Kill()
	// The bad value left in the file: the start fails naming it.
	if err := os.WriteFile(file, []byte(`{"shutdown": {"timeout": "soon"}}`), 0o644); err != nil {
		a.t.Fatal(err)
	}
	q3, err := start(bin, Env(dir, "", 0))
	if err != nil {
		a.t.Fatal(err)
	}
	code3, err := q3.Wait(20 * time.Second)
	if err != nil {
		q3.Kill()
		a.t.Fatal(err)
	}
	line := strings.TrimSpace(q3.Log())
	a.row("8. bad startup-only value",
		"shutdown.timeout = \"soon\" in the config file + POST /admin/config/reload; then 20s + reload; SIGTERM and start again",
		"rejected, 10s kept and logged; 20s: restart_required; the restart runs with 20s",
		fmt.Sprintf("%s, in force %s, %d log line(s); then %s (in force %s); exit %d, restarted with %s. With \"soon\" left in the file a start exits %d: `%s`",
			bad, inForce, logged, good, inForce2, code, restarted, code3, line),
		before, after, from,
		bad == "rejected" && inForce == "10s" && logged >= 1 && good == "restart_required" && inForce2 == "10s" &&
			code == 0 && restarted == "20s" && code3 == 1 && strings.Contains(line, "shutdown.timeout"))
}

// 10. Credentials in values never show.
func (a *attacks) secrets(bin string, srv *etcdtest.Server) {
	dir := a.t.TempDir()
	file := filepath.Join(dir, Service+".json")
	if err := os.WriteFile(file, []byte(`{"hello": {"greeting": "postgres://app:dbS3cret@db:5432/x"}}`), 0o644); err != nil {
		a.t.Fatal(err)
	}
	ep := strings.Replace(srv.Endpoints()[0], "://", "://root:etcdPa55@", 1)
	env := Env(dir, ep, 2*time.Second, "DISCOVERY_OVERRIDE_ORDERS=http://app:ovS3cret@orders.internal:8080")
	secrets := []string{"dbS3cret", "etcdPa55", "ovS3cret", "kvS3cret"}
	q := Start(a.t, bin, env)
	before, from := UsageOf(a.c, q), time.Now()
	cfg := Do(a.c, http.MethodGet, q.AdminURL()+"/admin/config", "")
	// A key=value DSN through a reload: the change is an audit line.
	if err := os.WriteFile(file, []byte(`{"hello": {"greeting": "host=db user=app password=kvS3cret"}}`), 0o644); err != nil {
		a.t.Fatal(err)
	}
	rel := Do(a.c, http.MethodPost, q.AdminURL()+"/admin/config/reload", "")
	cfg2 := Do(a.c, http.MethodGet, q.AdminURL()+"/admin/config", "")
	relay := Do(a.c, http.MethodGet, q.PublicURL()+"/call/orders/x", "")
	regd := false
	for deadline := time.Now().Add(10 * time.Second); !regd && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		regd = Metric(a.c, q, "svc_registry_registered") == 1
	}
	after := UsageOf(a.c, q)
	q.Kill()
	help, err := execOutput(bin, env, "--help")
	if err != nil {
		a.t.Errorf("secrets: %s --help: %v", bin, err)
	}
	places := map[string]string{
		"/admin/config":       cfg.Body + cfg2.Body,
		"the reload's answer": rel.Body,
		"the relay's error":   relay.Body,
		"--help":              help,
		"the log":             q.Log(),
	}
	var shown []string
	for _, where := range slices.Sorted(maps.Keys(places)) {
		for _, s := range secrets {
			if strings.Contains(places[where], s) {
				shown = append(shown, s+" in "+where)
			}
		}
	}
	redactions := strings.Count(cfg.Body+cfg2.Body, "[redacted]")
	got := fmt.Sprintf("no secret shown; %d values redacted in /admin/config; reload %s; relay to orders %s; registered through the endpoint with userinfo: %v; --help %d lines, log %d lines",
		redactions, jsonField(rel.Body, "result"), relay, regd, strings.Count(help, "\n"), strings.Count(q.Log(), "\n"))
	if len(shown) > 0 {
		got = "shown: " + strings.Join(shown, ", ")
	}
	a.row("10. secrets in values",
		"ETCD_ENDPOINTS=http://root:etcdPa55@127.0.0.1:P, DISCOVERY_OVERRIDE_ORDERS=http://app:ovS3cret@orders.internal:8080, hello.greeting a postgres:// URL with a password in the file, "+
			"then a key=value DSN (password=kvS3cret) + reload; GET /admin/config, GET /call/orders/x, --help, the whole log",
		"no password anywhere",
		got, before, after, from, len(shown) == 0 && cfg.Code == 200)
}

// 9. A flood of idle keep-alive connections on the public port.
func (a *attacks) flood(bin string) {
	const n, parallel, nofile = 20000, 200, 4096
	q := StartLimited(a.t, bin, Env(a.t.TempDir(), "", 0), nofile)
	before, from := UsageOf(a.c, q), time.Now()
	fds0 := OpenFiles(q)
	fl := FloodKeepAlive(q.Public, "/hello/flood", n, parallel)
	defer fl.Release()
	fds := OpenFiles(q)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var answers []string
	ok := true
	for _, u := range []string{q.PrivateURL() + "/healthz", q.PrivateURL() + "/readyz", q.AdminURL() + "/", q.AdminURL() + "/admin/config"} {
		ans := Do(hc, http.MethodGet, u, "")
		answers = append(answers, strings.TrimPrefix(strings.TrimPrefix(u, q.PrivateURL()), q.AdminURL())+" "+ans.String())
		ok = ok && ans.Code == http.StatusOK
	}
	past, _, _ := keepAliveGet(q.Public, "/hello/past")
	during := UsageOf(hc, q)
	held := len(fl.Held)
	fl.Release()
	var after Usage
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		after = UsageOf(hc, q)
		if after.Goroutines <= before.Goroutines+5 || time.Now().After(deadline) {
			break
		}
	}
	shedTotal := metricWithLabels(hc, q, `svc_connections_shed_total{listener="public"}`)
	a.row("9. idle keep-alive flood",
		fmt.Sprintf("%d connections to the public port, %d at a time, one GET /hello each, the answered ones held open and idle; the process's open-file limit %d", n, parallel, nofile),
		"health, readiness and admin answer throughout; the excess shed with 503; goroutines back after",
		fmt.Sprintf("%d held, %d shed with 503, other %v, in %s; open files %d → %d (limit %d); during the flood %s; one more connection: %d; svc_connections_shed_total{listener=\"public\"} %.0f; %.0f goroutines with the flood held, %.0f after",
			held, fl.Shed, fl.Other, ms(fl.Took), fds0, fds, nofile, strings.Join(answers, ", "), past, shedTotal, during.Goroutines, after.Goroutines),
		before, after, from,
		ok && fl.Shed > 0 && held > 0 && fds < nofile && past == http.StatusServiceUnavailable && shedTotal > 0 &&
			after.Goroutines <= before.Goroutines+5 && Alive(q))
	q.Kill()
}

// configValue returns the value of key in p's /admin/config.
func configValue(c *http.Client, p *Process, key string) string {
	var cfg struct {
		Keys []struct{ Key, Value, Layer string }
	}
	ans := Do(c, http.MethodGet, p.AdminURL()+"/admin/config", "")
	if json.Unmarshal([]byte(ans.Body), &cfg) != nil {
		return ""
	}
	for _, k := range cfg.Keys {
		if k.Key == key {
			return k.Value
		}
	}
	return ""
}

// metricWithLabels returns the value of the sample line that starts with
// series (name{labels}) in p's /metrics, or -1.
func metricWithLabels(c *http.Client, p *Process, series string) float64 {
	body, err := get(c, p.PrivateURL()+"/metrics")
	if err != nil {
		return -1
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return -1
}

// jsonField returns the string field of a JSON object, or "".
func jsonField(body, field string) string {
	var m map[string]any
	if json.Unmarshal([]byte(body), &m) != nil {
		return ""
	}
	s, _ := m[field].(string)
	return s
}

// fmtCounts formats answer counts: "400 ×12".
func fmtCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// kib formats bytes in KiB.
func kib(n int) string { return fmt.Sprintf("%.1f KiB", float64(n)/1024) }

// execOutput runs bin with exactly env and args and returns its standard
// output and error together.
func execOutput(bin string, env []string, args ...string) (string, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{}, env...)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// grepLog returns the lines of log that contain any of words.
func grepLog(log string, words ...string) string {
	var b strings.Builder
	for line := range strings.Lines(log) {
		for _, w := range words {
			if strings.Contains(line, w) {
				b.WriteString(line)
				break
			}
		}
	}
	return b.String()
}
