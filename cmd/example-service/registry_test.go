package main

// Process-level tests of the registry: real example-service processes
// (the binary TestMain builds) registered in an embedded etcd, found by a
// registry.Discovery in the test, balanced by the relay, deregistered on
// SIGTERM, expired after kill -9, and registering late when etcd was
// unreachable at start.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
	"github.com/svc-dev/svc/svctest"
)

// registryTTL is the lease TTL the processes of these tests use: etcd's
// minimum with its default timings, so that an expiry is quick to see.
const registryTTL = 2 * time.Second

// svcProc is a running example-service process and what its "started"
// log line said.
type svcProc struct {
	*proc
	id      string // instance id
	public  string // bound addresses, host:port
	private string
	admin   string
}

// registryEnv is the environment of a process registering in etcd at
// endpoints: every port free, everything on loopback, JSON logs, an empty
// configuration directory.
func registryEnv(t *testing.T, endpoints string) []string {
	return []string{
		"ETCD_ENDPOINTS=" + endpoints,
		"REGISTRY_HOST=127.0.0.1",
		"REGISTRY_TTL=" + registryTTL.String(),
		"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0",
		"PRIVATE_HOST=127.0.0.1", "PRIVATE_PORT=0",
		"ADMIN_PORT=0",
		"LOG_FORMAT=json",
		"CONFIG_DIR=" + t.TempDir(),
	}
}

// startService starts the binary with env and waits for its "started" log
// line, from which it reads the instance id and the bound addresses.
func startService(t *testing.T, env []string) *svcProc {
	t.Helper()
	return parseStarted(t, startBinary(t, t.TempDir(), env))
}

// parseStarted waits for p's "started" log line and reads the instance id
// and the bound addresses from it.
func parseStarted(t *testing.T, p *proc) *svcProc {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for line := range strings.Lines(p.stderr.String()) {
			var l struct {
				Msg, Instance, Public, Private, Admin string
			}
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "started" {
				return &svcProc{proc: p, id: l.Instance, public: l.Public, private: l.Private, admin: l.Admin}
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("example-service exited before logging started: %v\nstderr:\n%s", p.err, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("example-service did not log started within 15s\nstderr:\n%s", p.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fetch returns the status code and body of GET url, or an error.
func fetch(c *http.Client, url string) (int, string, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// registered reads svc_registry_registered from the process's /metrics:
// "0", "1", or "" if the gauge is missing or the scrape failed.
func (s *svcProc) registered(c *http.Client) string {
	_, body, err := fetch(c, "http://"+s.private+"/metrics")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(body) {
		if v, ok := strings.CutPrefix(line, "svc_registry_registered "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// keyOf returns the registry key of the instance id of example in dev.
func keyOf(id string) string { return registry.Prefix("dev", "example") + id }

// keyExists asks etcd whether key is there; errors count as "don't know"
// and fail the test.
func keyExists(t *testing.T, cli *clientv3.Client, key string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("etcd get %s: %v", key, err)
	}
	return len(resp.Kvs) == 1
}

// waitUntil polls cond every 5ms until it holds and returns how long that
// took from start; it fails the test after d.
func waitUntil(t *testing.T, start time.Time, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	deadline := start.Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// TestRegistryProcesses: two processes register and are discovered with
// their bound ports; the relay of either reaches both; SIGTERM removes an
// instance's key within 1s and exits 0; kill -9 lets the key expire within
// TTL+1s.
func TestRegistryProcesses(t *testing.T) {
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	env := registryEnv(t, srv.Endpoints()[0])
	a, b := startService(t, env), startService(t, env)

	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(t), Environment: "dev"})
	t.Cleanup(func() { d.Close() })
	instances := func() []registry.Instance {
		insts, err := d.Instances("example")
		if err != nil {
			t.Fatalf("Instances(example): %v", err)
		}
		return insts
	}
	waitUntil(t, time.Now(), 10*time.Second, "both instances discovered", func() bool { return len(instances()) == 2 })
	for _, s := range []*svcProc{a, b} {
		i := slices.IndexFunc(instances(), func(in registry.Instance) bool { return in.Key == keyOf(s.id) })
		if i < 0 {
			t.Fatalf("instance %s not discovered; have %+v", s.id, instances())
		}
		in := instances()[i]
		wantPrivate, wantAdmin := portNumber(t, s.private), portNumber(t, s.admin)
		if in.Addr != s.public || in.BaseURL != "http://"+s.public || in.Record.ID != s.id ||
			in.Record.PrivatePort != wantPrivate || in.Record.AdminPort != wantAdmin {
			t.Errorf("discovered %+v; want Addr %s, id %s, private port %d, admin port %d",
				in, s.public, s.id, wantPrivate, wantAdmin)
		}
	}

	c := svctest.Client(t)
	for _, via := range []*svcProc{a, b} {
		seen := map[string]int{}
		for range 10 {
			code, body, err := fetch(c, "http://"+via.public+"/call/example/hello/x")
			if err != nil || code != http.StatusOK {
				t.Fatalf("GET %s/call/example/hello/x = %d %s, %v; want 200", via.public, code, body, err)
			}
			var hello struct{ Message, Instance string }
			if err := json.Unmarshal([]byte(body), &hello); err != nil || hello.Message != "hello, x" {
				t.Fatalf("GET %s/call/example/hello/x = %s; want the greeting of an instance", via.public, body)
			}
			seen[hello.Instance]++
		}
		if seen[a.id] == 0 || seen[b.id] == 0 || len(seen) != 2 {
			t.Errorf("10 calls through the relay of %s reached %v; want both %s and %s", via.id, seen, a.id, b.id)
		}
	}
	c.CloseIdleConnections()

	// SIGTERM: the key goes first (within 1s), then the process drains
	// shutdown.drain and exits 0.
	signalled := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	gone := waitUntil(t, signalled, time.Second, "key of "+a.id+" deleted after SIGTERM", func() bool {
		return !keyExists(t, cli, keyOf(a.id))
	})
	waitUntil(t, signalled, time.Second, "instance "+a.id+" gone from discovery after SIGTERM", func() bool {
		return len(instances()) == 1
	})
	t.Logf("SIGTERM: key gone after %v", gone.Round(time.Millisecond))
	if code := a.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; want 0\nstderr:\n%s", code, a.stderr.String())
	}
	if log := a.stderr.String(); !strings.Contains(log, `"msg":"registry: deregistered"`) {
		t.Errorf("log has no deregistered line:\n%s", log)
	}

	// kill -9: nothing deregisters; the lease expires.
	killed := time.Now()
	if err := b.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	gone = waitUntil(t, killed, registryTTL+time.Second, "key of "+b.id+" expired after kill -9", func() bool {
		return !keyExists(t, cli, keyOf(b.id))
	})
	t.Logf("kill -9: key gone after %v (TTL %v)", gone.Round(time.Millisecond), registryTTL)
	waitUntil(t, time.Now(), time.Second, "no instance left in discovery", func() bool { return len(instances()) == 0 })
	b.wait(t, 5*time.Second)
}

// TestRegistryEtcdDownAtStart: with etcd unreachable the process starts and
// serves, /readyz is 200 with the registry check "warn" and
// svc_registry_registered is 0; once etcd answers on that address the
// process registers, without a restart.
func TestRegistryEtcdDownAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused

	s := startService(t, registryEnv(t, "http://"+addr))
	c := svctest.Client(t)
	if code, body, err := fetch(c, "http://"+s.public+"/hello/x"); err != nil || code != http.StatusOK {
		t.Fatalf("GET /hello/x with etcd down = %d %s, %v; want 200", code, body, err)
	}
	var ready struct {
		Status string
		Checks map[string]struct{ Status, Error string }
	}
	code, body, err := fetch(c, "http://"+s.private+"/readyz")
	if err != nil || json.Unmarshal([]byte(body), &ready) != nil {
		t.Fatalf("GET /readyz = %d %s, %v", code, body, err)
	}
	if reg := ready.Checks["registry"]; code != http.StatusOK || ready.Status != "ready" || reg.Status != "warn" || reg.Error == "" {
		t.Errorf("GET /readyz with etcd down = %d %s; want 200, ready, check registry warn with an error", code, body)
	}
	if got := s.registered(c); got != "0" {
		t.Errorf("svc_registry_registered with etcd down = %q; want 0", got)
	}

	// etcd comes up on that address: a forwarder there to a fresh etcd.
	srv := etcdtest.Start(t)
	fwd := forward(t, addr, strings.TrimPrefix(srv.Endpoints()[0], "http://"))
	defer fwd.close()
	up := time.Now()
	took := waitUntil(t, up, 15*time.Second, "registered once etcd is reachable", func() bool {
		return s.registered(c) == "1"
	})
	t.Logf("registered %v after etcd became reachable", took.Round(time.Millisecond))
	if !keyExists(t, srv.Client(t), keyOf(s.id)) {
		t.Errorf("svc_registry_registered is 1 but etcd has no key %s", keyOf(s.id))
	}
	code, body, err = fetch(c, "http://"+s.private+"/readyz")
	if err != nil || json.Unmarshal([]byte(body), &ready) != nil || code != http.StatusOK || ready.Checks["registry"].Status != "ok" {
		t.Errorf("GET /readyz once registered = %d %s, %v; want 200 with check registry ok", code, body, err)
	}
	if !strings.Contains(s.stderr.String(), `"msg":"registry: registered"`) {
		t.Errorf("log has no registered line:\n%s", s.stderr.String())
	}
	c.CloseIdleConnections()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(t, 20*time.Second); code != 0 {
		t.Errorf("exit code after SIGTERM = %d; want 0\nstderr:\n%s", code, s.stderr.String())
	}
}

// portNumber returns the port of a host:port.
func portNumber(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	var n int
	if err == nil {
		_, err = fmt.Sscan(p, &n)
	}
	if err != nil {
		t.Fatalf("address %q: %v", hostport, err)
	}
	return n
}

// forwarder listens on a given loopback address and copies every
// connection to a target: etcd appearing on an address that refused
// connections before.
type forwarder struct {
	ln    net.Listener
	wg    sync.WaitGroup // accept loop and copies
	mu    sync.Mutex     // guards conns
	conns []net.Conn
}

// forward listens on addr (retrying for a while: the port was free a
// moment ago) and forwards to target until close.
func forward(t *testing.T, addr, target string) *forwarder {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("listen on %s again: %v", addr, err)
	}
	f := &forwarder{ln: ln}
	f.wg.Go(func() {
		for {
			down, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				down.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, down, up)
			f.mu.Unlock()
			f.wg.Go(func() { _, _ = io.Copy(up, down); up.Close(); down.Close() })
			f.wg.Go(func() { _, _ = io.Copy(down, up); up.Close(); down.Close() })
		}
	})
	return f
}

// close stops accepting, closes every connection and waits for the copies.
func (f *forwarder) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}
