package proof

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// readHeaderTimeout is the public and private read-header-timeout of the
// hostile scenario, short so that slowloris is cut quickly.
const readHeaderTimeout = time.Second

// Hostile runs one registered instance with a 1s read-header-timeout and
// attacks it: slowloris on both ports, oversized headers and bodies, a
// flood of idle connections, a churn of short connections, and malformed
// values planted in its registry prefix. A probe sends 50 req/s to the
// public port throughout; it reports section by section to r and fails t
// where a guarantee is broken.
func Hostile(t *testing.T, bin string, r *Report) {
	const section = "Bad input and hostile clients"
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	configDir := t.TempDir()
	env := Env(configDir, srv.Endpoints()[0], 10*time.Second,
		"PUBLIC_READ_HEADER_TIMEOUT="+readHeaderTimeout.String(),
		"PRIVATE_READ_HEADER_TIMEOUT="+readHeaderTimeout.String())
	p := Start(t, bin, env)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	t.Cleanup(c.CloseIdleConnections)
	probe := StartLoad(c, p.PublicURL()+"/hello/probe", 50, 2)
	defer probe.Stop()
	// The baseline of goroutines and descriptors: registered, probed,
	// settled.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if ok, err := selfRegistered(c, p); ok && err == nil {
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	goroutines0, fds0 := Metric(c, p, "go_goroutines"), OpenFiles(p)
	r.Printf(section, "One instance, public and private read-header-timeout %v, max-header-bytes and max-body-bytes at their defaults "+
		"(64 KiB, 4 MiB); a probe sends 50 req/s to GET /hello on the public port throughout.\n\n", readHeaderTimeout)

	var rows [][]string
	row := func(attack, port, want, got string, from time.Time, ok bool) {
		st := probe.Window(from, time.Now())
		verdict := "ok"
		if !ok || st.Failed > 0 {
			verdict = "**FAIL**"
			t.Errorf("%s on %s: got %s (probe: %d of %d failed); want %s", attack, port, got, st.Failed, st.Sent, want)
		}
		probed := "-"
		if st.Sent > 0 {
			probed = fmt.Sprintf("%d / %d, p99 %s", st.Failed, st.Sent, ms(st.P99))
		}
		rows = append(rows, []string{attack, port, want, got, probed, verdict})
	}

	ports := []struct{ name, addr string }{{"public", p.Public}, {"private", p.Private}}
	for _, port := range ports {
		from := time.Now()
		res, err := Slowloris(port.addr, 100, 200*time.Millisecond, 10*readHeaderTimeout)
		if err != nil {
			t.Errorf("slowloris on %s: %v", port.name, err)
		}
		var got string
		ok := len(res.Cut) == res.Conns && res.NotCut == 0
		if len(res.Cut) > 0 {
			got = fmt.Sprintf("%d of %d cut after %s .. %s", len(res.Cut), res.Conns, ms(slices.Min(res.Cut)), ms(slices.Max(res.Cut)))
			ok = ok && slices.Max(res.Cut) < readHeaderTimeout+time.Second
		} else {
			got = fmt.Sprintf("none of %d cut", res.Conns)
		}
		if len(res.Status) > 0 {
			got += fmt.Sprintf(" (answered %v)", res.Status)
		}
		if res.Refused > 0 {
			got += fmt.Sprintf("; %d reset at connect (past the listener's connection cap)", res.Refused)
		}
		row("slowloris: 100 connections, one header line every 200ms", port.name,
			"cut after read-header-timeout ("+readHeaderTimeout.String()+")", got, from, ok)
	}
	for _, port := range ports {
		from := time.Now()
		status, err := RawRequest(port.addr, "GET /hello/big HTTP/1.1\r\nHost: proof\r\nX-Big: "+strings.Repeat("a", 128<<10)+"\r\n\r\n", 0)
		if err != nil {
			status = err.Error()
		}
		row("128 KiB header", port.name, "431", status, from, strings.Contains(status, " 431 "))
	}
	for _, port := range ports {
		from := time.Now()
		status, err := RawRequest(port.addr, "POST /hello/big HTTP/1.1\r\nHost: proof\r\nContent-Length: 8388608\r\n\r\n", 8<<20)
		if err != nil {
			status = err.Error()
		}
		row("8 MiB body (Content-Length declared)", port.name, "413", status, from, strings.Contains(status, " 413 "))
	}

	from := time.Now()
	fl := Flood(p.Public, 2000, 100, 10*readHeaderTimeout)
	got := fmt.Sprintf("%d opened in %s, %d failed%s; %d closed by the server, the last after %s",
		fl.Opened, ms(fl.OpenTook), fl.Failed, errorsOf(fl.Errors), fl.Closed, ms(fl.ClosedBy))
	row("flood: 2000 connections held open, silent", "public", "all cut by read-header-timeout; probe unharmed",
		got, from, fl.Failed == 0 && fl.Closed == fl.Opened)

	from = time.Now()
	ch := Churn(p.PublicURL()+"/hello/churn", 2000, 50)
	got = fmt.Sprintf("%d ok, %d failed%s, %.0f connections/s", ch.OK, ch.Failed, errorsOf(ch.Errors), float64(ch.OK+ch.Failed)/ch.Took.Seconds())
	row("churn: 2000 requests, each on a new connection, 50 at a time", "public", "all 200", got, from, ch.Failed == 0)

	// The flood's connections are gone: goroutines and descriptors come
	// back to where they were.
	var goroutines, fds float64
	deadline := time.Now().Add(10 * time.Second)
	for {
		goroutines, fds = Metric(c, p, "go_goroutines"), float64(OpenFiles(p))
		if (goroutines <= goroutines0+5 && fds <= float64(fds0)+5) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	row("afterwards: goroutines, open files", "-", fmt.Sprintf("back to %.0f, %d", goroutines0, fds0),
		fmt.Sprintf("%.0f, %.0f", goroutines, fds), from, goroutines <= goroutines0+5 && fds <= float64(fds0)+5)

	malformedValues(t, bin, env, p, cli, func(attack, want, got string, from time.Time, ok bool) {
		row(attack, "registry", want, got, from, ok)
	})
	badConfig(t, bin, p, configDir, func(attack, want, got string, from time.Time, ok bool) {
		row(attack, "config", want, got, from, ok)
	})

	if !Alive(p) {
		t.Errorf("the instance died:\n%s", p.Log())
	}
	r.Table(section, []string{"attack", "port", "want", "got", "probe failed / sent", "verdict"}, rows)
}

// malformed are values another writer plants under the service's prefix;
// none is an instance (the harness checks with registry.ParseInstance, so
// that nothing here can send traffic off loopback).
var malformed = map[string]string{
	"not-json":      "hello",
	"json-array":    "[1,2]",
	"op-delete":     `{"Op":1,"Addr":"127.0.0.1:1"}`,
	"no-op":         `{"Addr":"127.0.0.1:1"}`,
	"no-port":       `{"Op":0,"Addr":"127.0.0.1"}`,
	"port-0":        `{"Op":0,"Addr":"127.0.0.1:0"}`,
	"port-too-big":  `{"Op":0,"Addr":"127.0.0.1:99999"}`,
	"port-name":     `{"Op":0,"Addr":"[::1]:http"}`,
	"no-host":       `{"Op":0,"Addr":":8080"}`,
	"binary":        "\x00\xff\xfe\x01",
	"truncated":     `{"Op":0,"Addr":"127.0.0.1:1","Metadata":{"name":`,
	"huge-not-json": strings.Repeat("x", 512<<10),
}

// malformedValues plants the malformed values next to p's key while p's
// discovery of its own service is running, then starts a second instance
// that lists the prefix with them present; both must keep relaying to
// each other, log each skipped value, and live on.
func malformedValues(t *testing.T, bin string, env []string, p *Process, cli *clientv3.Client,
	row func(attack, want, got string, from time.Time, ok bool)) {
	t.Helper()
	for name, v := range malformed {
		if _, err := registry.ParseInstance(name, []byte(v)); err == nil {
			t.Fatalf("proof: planted value %q parses as an instance", name)
		}
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	const skipped = "registry: skipping malformed registry value"
	from := time.Now()
	if seen, failed := relayed(c, p, 5); failed > 0 || len(seen) != 1 {
		t.Fatalf("proof: relay through discovery before planting: %v, %d failed", seen, failed)
	}
	prefix := registry.Prefix("dev", Service)
	ctx := t.Context()
	for name, v := range malformed {
		if _, err := cli.Put(ctx, prefix+"zz-planted-"+name, v); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		if _, err := cli.Delete(context.Background(), prefix+"zz-planted-", clientv3.WithPrefix()); err != nil {
			t.Error(err)
		}
	}()
	// The watch delivers the planted values: each is logged as skipped.
	deadline := time.Now().Add(5 * time.Second)
	for p.LogCount(skipped) < len(malformed) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	seen, failed := relayed(c, p, 20)
	n := p.LogCount(skipped)
	row(fmt.Sprintf("%d malformed values planted under the prefix, seen by a running watch", len(malformed)),
		"each skipped and logged; relay unharmed",
		fmt.Sprintf("%d logged as skipped; relay: %d failed of 20, reached %d instance(s)", n, failed, len(seen)),
		from, n >= len(malformed) && failed == 0 && len(seen) == 1 && Alive(p))

	from = time.Now()
	q := Start(t, bin, env)
	d := NewDiscovery(t, cli, "dev")
	WaitInstances(t, d, 10*time.Second, "second instance registered", func(insts []registry.Instance) bool {
		return len(insts) == 2
	})
	seen, failed = relayed(c, q, 20)
	n = q.LogCount(skipped)
	row("a new instance lists the prefix with them present",
		"each skipped and logged; relay reaches both instances",
		fmt.Sprintf("%d logged as skipped; relay: %d failed of 20, reached %d instance(s)", n, failed, len(seen)),
		from, n >= len(malformed) && failed == 0 && len(seen) == 2 && Alive(q))
	q.Kill()
}

// relayed calls GET /call/example/hello/x on p n times and returns the
// instances that answered 200, and how many calls failed.
func relayed(c *http.Client, p *Process, n int) (map[string]int, int) {
	seen, failed := map[string]int{}, 0
	for range n {
		resp, err := c.Get(p.PublicURL() + "/call/" + Service + "/hello/x")
		if err != nil {
			failed++
			continue
		}
		var body struct{ Instance string }
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			failed++
			continue
		}
		seen[body.Instance]++
	}
	return seen, failed
}

// badConfig rewrites the running instance's config file with good, then
// malformed, then ill-typed contents and reloads after each; then starts
// a second process on the malformed file.
func badConfig(t *testing.T, bin string, p *Process, dir string, row func(attack, want, got string, from time.Time, ok bool)) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
	defer c.CloseIdleConnections()
	file := filepath.Join(dir, Service+".json")
	reload := func(contents string) (result, level string) {
		if err := os.WriteFile(file, []byte(contents), 0o644); err != nil {
			t.Fatal(err)
		}
		resp, err := c.Post(p.AdminURL()+"/admin/config/reload", "", nil)
		if err != nil {
			return err.Error(), ""
		}
		var rep struct{ Result string }
		err = json.NewDecoder(resp.Body).Decode(&rep)
		resp.Body.Close()
		if err != nil {
			return fmt.Sprintf("status %d: %v", resp.StatusCode, err), ""
		}
		resp, err = c.Get(p.AdminURL() + "/admin/loglevel")
		if err != nil {
			return rep.Result, err.Error()
		}
		var lv struct{ Level string }
		_ = json.NewDecoder(resp.Body).Decode(&lv)
		resp.Body.Close()
		return rep.Result, lv.Level
	}
	from := time.Now()
	result, level := reload(`{"log": {"level": "debug"}}`)
	row("reload: a good file (log.level debug)", "applied", result+", level "+level, from,
		result == "applied" && level == "debug")
	from = time.Now()
	result, level = reload("{\n  \"log\": {\"level\": \"warn\",}\n}\n")
	row("reload: the file made malformed JSON", "rejected, previous values kept, still serving", result+", level "+level, from,
		result == "rejected" && level == "debug" && Alive(p))
	from = time.Now()
	result, level = reload(`{"log": {"level": "loud"}}`)
	row("reload: log.level = loud", "rejected, previous values kept, still serving", result+", level "+level, from,
		result == "rejected" && level == "debug" && Alive(p))

	from = time.Now()
	if err := os.WriteFile(file, []byte("{\n  \"public\": {\"port\": 9000,}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	q, err := start(bin, Env(dir, "", 0))
	if err != nil {
		t.Fatal(err)
	}
	code, err := q.Wait(20 * time.Second)
	if err != nil {
		q.Kill()
		t.Fatal(err)
	}
	line := strings.TrimSpace(q.Log())
	row("start: malformed JSON file", "exit 1, one line naming file and line:column",
		fmt.Sprintf("exit %d: `%s`", code, line), from,
		code == 1 && !strings.Contains(line, "\n") && strings.Contains(line, Service+".json:2:27"))
}

// errorsOf formats failure counts by class, or "" for none.
func errorsOf(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	return " (" + Stats{Errors: m}.ErrorsString() + ")"
}
