package main

// A black-box test of the client path: a caller process relays to two
// callee processes through both call shapes (/call through a base URL,
// /greet through the callee's uri-spec) under load, one callee is killed
// with kill -9, and no request fails: the dead instance is still
// registered (its lease has not expired), so only the client's retries on
// another instance and its ejection keep the calls whole.

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
	"github.com/svc-dev/svc/svctest"
)

// callShapes are the two ways the example calls another service.
var callShapes = []struct{ name, path, want string }{
	{"base URL", "/call/example/hello/load", "hello, load"},
	{"uri-spec", "/greet/example/load", "hello, load"},
}

// shapeLoad is what the load saw on one call shape.
type shapeLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex // guards firstErr
	firstErr   string
}

func (s *shapeLoad) fail(msg string) {
	s.failed.Add(1)
	s.mu.Lock()
	if s.firstErr == "" {
		s.firstErr = msg
	}
	s.mu.Unlock()
}

func TestCallsSurviveKilledInstance(t *testing.T) {
	srv := etcdtest.Start(t)
	// A long TTL: the killed instance stays registered for the whole test.
	env := append(registryEnv(t, srv.Endpoints()[0]), "REGISTRY_TTL=30s", "LOG_ACCESS=false")
	a, b, caller := startService(t, env), startService(t, env), startService(t, env)
	c := svctest.Client(t)
	caller.waitReady(t, c, "http://"+caller.private+"/readyz")
	// The caller is an example too: drained, it deregisters and serves on,
	// so that it calls only a and b.
	if r := do(t, c, http.MethodPost, "http://"+caller.admin+"/admin/drain", ""); r.code != http.StatusOK {
		t.Fatalf("POST /admin/drain = %d %s", r.code, r.body)
	}
	d := registry.NewDiscovery(registry.DiscoveryOptions{Client: srv.Client(t), Environment: "dev"})
	t.Cleanup(func() { d.Close() })
	waitUntil(t, time.Now(), 15*time.Second, "a and b registered, the caller not", func() bool {
		insts, err := d.Instances("example")
		return err == nil && len(insts) == 2 && insts[0].Key != keyOf(caller.id) && insts[1].Key != keyOf(caller.id)
	})
	// Both shapes reach both callees before the load starts.
	for _, sh := range callShapes {
		seen, last := map[string]bool{}, ""
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s: last answer %s", sh.name, last)
			}
		})
		waitUntil(t, time.Now(), 10*time.Second, sh.name+" reaches a and b only", func() bool {
			_, body, err := fetch(c, "http://"+caller.public+sh.path)
			last = body
			var hello struct{ Message, Instance string }
			if err == nil && json.Unmarshal([]byte(body), &hello) == nil && hello.Message == sh.want {
				seen[hello.Instance] = true
			}
			return seen[a.id] && seen[b.id] && !seen[caller.id]
		})
	}

	loads := make([]shapeLoad, len(callShapes))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, sh := range callShapes {
		for range 3 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					code, body, err := fetch(c, "http://"+caller.public+sh.path)
					switch {
					case err != nil:
						loads[i].fail(err.Error())
					case code != http.StatusOK || !strings.Contains(body, sh.want):
						loads[i].fail(body)
					default:
						loads[i].ok.Add(1)
					}
				}
			})
		}
	}
	stopLoad := func() {
		close(stop)
		wg.Wait()
	}
	okAfter := func(n int64) func() bool {
		var from [2]int64
		for i := range loads {
			from[i] = loads[i].ok.Load()
		}
		return func() bool { return loads[0].ok.Load() >= from[0]+n && loads[1].ok.Load() >= from[1]+n }
	}
	waitUntil(t, time.Now(), 10*time.Second, "load running", okAfter(50))

	killed := time.Now()
	if err := a.cmd.Process.Kill(); err != nil {
		stopLoad()
		t.Fatal(err)
	}
	// The caller ejects the dead instance, which is still registered.
	ejected := waitUntil(t, killed, 10*time.Second, "the caller ejects the killed instance", func() bool {
		for line := range strings.Lines(caller.stderr.String()) {
			if strings.Contains(line, `"msg":"registry: instance ejected"`) && strings.Contains(line, a.public) {
				return true
			}
		}
		return false
	})
	waitUntil(t, time.Now(), 10*time.Second, "200 more calls of each shape after the ejection", okAfter(200))
	stopLoad()
	if !keyExists(t, srv.Client(t), keyOf(a.id)) {
		t.Errorf("the killed instance's key expired during the test: the test proves less than it says")
	}
	for i, sh := range callShapes {
		ok, failed := loads[i].ok.Load(), loads[i].failed.Load()
		t.Logf("%s: %d ok, %d failed", sh.name, ok, failed)
		if failed != 0 {
			t.Errorf("%s: %d of %d GETs failed after kill -9 of one of two callees; want 0 (first: %s)",
				sh.name, failed, ok+failed, loads[i].firstErr)
		}
	}
	t.Logf("kill -9: ejected after %v", ejected.Round(time.Millisecond))
}
