package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/svctest"
)

// record is an instance record in the contract's registry format, written
// by the tests themselves (section 6 of the contract), independent of the
// registry package.
type record struct {
	env, name, id, host       string
	public, private, admin    int
	version, uriSpec, started string
}

func (r record) key() string { return "svc/" + r.env + "/services/" + r.name + "/" + r.id }

func (r record) value() string {
	v := map[string]any{
		"Op":   0,
		"Addr": net.JoinHostPort(r.host, strconv.Itoa(r.public)),
		"Metadata": map[string]any{
			"name": r.name, "id": r.id, "environment": r.env, "host": r.host,
			"public_port": r.public, "private_port": r.private, "admin_port": r.admin,
			"uri_spec": r.uriSpec, "version": r.version, "started_at": r.started,
		},
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// recordOf is the record a registered app would write.
func recordOf(env, id string, a *svctest.App) record {
	in := a.Info()
	return record{
		env: env, name: in.Name, id: id, host: "127.0.0.1",
		public: in.Ports.Public, private: in.Ports.Private, admin: in.Ports.Admin,
		version: in.Version, started: in.StartedAt.Format(time.RFC3339Nano),
	}
}

func put(t *testing.T, cli *clientv3.Client, kvs ...string) {
	t.Helper()
	for i := 0; i+1 < len(kvs); i += 2 {
		if _, err := cli.Put(t.Context(), kvs[i], kvs[i+1]); err != nil {
			t.Fatal(err)
		}
	}
}

// registryFixture is an embedded etcd holding, in environment "qa": two
// running instances of alpha, one of beta whose private port is closed,
// one of gamma that is draining, an unreadable value; and one instance in
// "prod".
type registryFixture struct {
	etcd                *etcdtest.Server
	env                 map[string]string
	cli                 *clientv3.Client
	alpha1, alpha2, gam *svctest.App
	deadPrivate         int
}

func newRegistryFixture(t *testing.T) *registryFixture {
	t.Helper()
	srv := etcdtest.Start(t)
	f := &registryFixture{
		etcd:        srv,
		env:         map[string]string{"ETCD_ENDPOINTS": strings.Join(srv.Endpoints(), ",")},
		cli:         srv.Client(t),
		alpha1:      startService(t, "alpha", 10, nil),
		alpha2:      startService(t, "alpha", 10, nil),
		gam:         startService(t, "gamma", 30, nil),
		deadPrivate: closedPort(t),
	}
	if err := f.gam.Drain(t.Context()); err != nil {
		t.Fatal(err)
	}
	beta := record{env: "qa", name: "beta", id: "b1", host: "127.0.0.1", public: 1, private: f.deadPrivate, admin: 2,
		version: "v0.9.0", uriSpec: "/1.x/{territory}/users/{userid}", started: "2026-01-02T03:04:05Z"}
	a1, a2, g := recordOf("qa", "a1", f.alpha1), recordOf("qa", "a2", f.alpha2), recordOf("qa", "g1", f.gam)
	prod := recordOf("prod", "p1", f.alpha1)
	put(t, f.cli,
		a2.key(), a2.value(), a1.key(), a1.value(), beta.key(), beta.value(), g.key(), g.value(),
		"svc/qa/services/broken/x1", "not json",
		prod.key(), prod.value(),
	)
	return f
}

func TestLsAndPromSD(t *testing.T) {
	t.Parallel()
	f := newRegistryFixture(t)

	t.Run("ls", func(t *testing.T) {
		r := svcctl(t, f.env, "ls", "--env", "qa")
		want(t, r, 0, "SERVICE", "HEALTH", "a1", "a2", "b1", "g1", "v1.2.3", "v0.9.0",
			"4 instances of 3 services in qa")
		lines := strings.Split(r.stdout, "\n")
		if len(lines) < 5 || !strings.HasPrefix(lines[1], "alpha ") || !strings.HasPrefix(lines[2], "  ") ||
			!strings.HasPrefix(lines[3], "beta ") || !strings.HasPrefix(lines[4], "gamma ") {
			t.Errorf("ls: want alpha's two instances grouped under one name, then beta, gamma:\n%s", r.stdout)
		}
		for id, health := range map[string]string{"a1": "ready", "a2": "ready", "b1": "unreachable", "g1": "draining"} {
			for _, l := range lines {
				if f := strings.Fields(l); slices.Contains(f, id) && (f[len(f)-2] != health || f[len(f)-1] != "-") {
					t.Errorf("ls line %q: want health %s, not ejected (-)", l, health)
				}
			}
		}
		if strings.Contains(r.stdout, "p1") {
			t.Errorf("ls --env qa lists an instance of prod:\n%s", r.stdout)
		}
		if !strings.Contains(r.stderr, "warning: skipping svc/qa/services/broken/x1: value is not registry JSON") {
			t.Errorf("ls: want a warning about the unreadable value: %s", r)
		}
	})

	t.Run("ls-json", func(t *testing.T) {
		r := svcctl(t, f.env, "ls", "--json", "--env=qa")
		want(t, r, 0)
		var got struct {
			Environment string                `json:"environment"`
			Services    map[string][]instance `json:"services"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
			t.Fatalf("ls --json: %v\n%s", err, r)
		}
		if got.Environment != "qa" || len(got.Services) != 3 || len(got.Services["alpha"]) != 2 {
			t.Fatalf("ls --json = %+v; want qa with alpha (2), beta, gamma", got)
		}
		a1 := got.Services["alpha"][0]
		if a1.ID != "a1" || a1.PrivatePort != f.alpha1.Info().Ports.Private || a1.Health != "ready" || a1.Addr != "127.0.0.1:"+strconv.Itoa(f.alpha1.Info().Ports.Public) {
			t.Errorf("alpha[0] = %+v", a1)
		}
		if b := got.Services["beta"][0]; b.Health != "unreachable" || b.URISpec != "/1.x/{territory}/users/{userid}" {
			t.Errorf("beta = %+v; want unreachable with its uri_spec", b)
		}
	})

	t.Run("ls-env", func(t *testing.T) {
		env := map[string]string{"ETCD_ENDPOINTS": f.env["ETCD_ENDPOINTS"], "ENVIRONMENT": "prod"}
		want(t, svcctl(t, env, "ls"), 0, "p1", "1 instance of 1 service in prod")
		want(t, svcctl(t, env, "ls", "--env", "staging"), 0, "no instances registered in staging")
	})

	t.Run("prom-sd", func(t *testing.T) {
		base, stop := startPromSD(t, f.env, "--env", "qa")
		groups := scrapeSD(t, base)
		byID := map[string]promGroup{}
		for _, g := range groups {
			byID[string(g.Labels["__meta_svc_id"])] = g
		}
		if len(groups) != 4 || len(byID) != 4 {
			t.Fatalf("want 4 target groups (a1, a2, b1, g1), got %d: %+v", len(groups), groups)
		}
		a1 := byID["a1"]
		wantTarget := "127.0.0.1:" + strconv.Itoa(f.alpha1.Info().Ports.Private)
		if len(a1.Targets) != 1 || string(a1.Targets[0][model.AddressLabel]) != wantTarget {
			t.Errorf("a1 targets = %v; want [%s] (the private port, where /metrics is)", a1.Targets, wantTarget)
		}
		for name, want := range map[string]string{
			"__meta_svc_name": "alpha", "__meta_svc_environment": "qa", "__meta_svc_version": "v1.2.3",
			"__meta_svc_host": "127.0.0.1", "__meta_svc_public_port": strconv.Itoa(f.alpha1.Info().Ports.Public),
			"__meta_svc_private_port": strconv.Itoa(f.alpha1.Info().Ports.Private),
			"__meta_svc_admin_port":   strconv.Itoa(f.alpha1.Info().Ports.Admin),
		} {
			if got := string(a1.Labels[model.LabelName(name)]); got != want {
				t.Errorf("a1 label %s = %q; want %q", name, got, want)
			}
		}
		if got := byID["b1"].Labels["__meta_svc_uri_spec"]; got != "/1.x/{territory}/users/{userid}" {
			t.Errorf("b1 uri_spec = %q", got)
		}

		// Every request reads the registry: a deregistered instance is gone.
		if _, err := f.cli.Delete(t.Context(), "svc/qa/services/alpha/a2"); err != nil {
			t.Fatal(err)
		}
		if groups := scrapeSD(t, base); len(groups) != 3 {
			t.Errorf("after deleting a2: %d groups; want 3", len(groups))
		}
		resp, err := http.Get(base + "/other")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /other = %d; want 404", resp.StatusCode)
		}
		if r := stop(); r.code != 0 {
			t.Errorf("prom-sd after SIGTERM: %s", r)
		}
	})

	t.Run("prom-sd-empty", func(t *testing.T) {
		base, stop := startPromSD(t, f.env, "--env", "staging")
		if groups := scrapeSD(t, base); len(groups) != 0 {
			t.Errorf("staging: %d groups; want an empty list", len(groups))
		}
		stop()
	})

	// Last: it stops etcd. prom-sd keeps serving and answers 503, so that
	// Prometheus keeps its last targets.
	t.Run("prom-sd-etcd-down", func(t *testing.T) {
		base, stop := startPromSD(t, f.env, "--env", "qa", "--timeout", "500ms")
		scrapeSD(t, base)
		f.etcd.Stop()
		resp, err := http.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "unreachable") {
			t.Errorf("GET / with etcd down = %d %s; want 503 saying etcd is unreachable", resp.StatusCode, body)
		}
		r := stop()
		if r.code != 0 || !strings.Contains(r.stderr, "svcctl: prom-sd: etcd ") {
			t.Errorf("prom-sd: want exit 0 after the signal and the failure logged: %s", r)
		}
	})
}

// startPromSD runs "svcctl prom-sd --listen 127.0.0.1:0 args..." until
// stop is called, and returns its base URL.
func startPromSD(t *testing.T, env map[string]string, args ...string) (base string, stop func() result) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr svctest.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"prom-sd", "--listen", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	}()
	addr := regexp.MustCompile(`at (http://127\.0\.0\.1:\d+)/`)
	svctest.WaitFor(t, 10*time.Second, "prom-sd to listen", func() bool {
		select {
		case code := <-done:
			t.Fatalf("prom-sd exited %d: %s%s", code, stdout.String(), stderr.String())
		default:
		}
		return addr.MatchString(stdout.String())
	})
	var once bool
	var res result
	stop = func() result {
		if !once {
			once = true
			cancel()
			res = result{<-done, stdout.String(), stderr.String()}
		}
		return res
	}
	t.Cleanup(func() { stop() })
	return addr.FindStringSubmatch(stdout.String())[1], stop
}

// promGroup decodes one target group exactly as Prometheus's http_sd
// does (prometheus/prometheus discovery/targetgroup.Group.UnmarshalJSON):
// unknown fields are an error, targets are strings and labels a
// model.LabelSet, whose decoding validates every label name.
type promGroup struct {
	Targets []model.LabelSet
	Labels  model.LabelSet
}

func (g *promGroup) UnmarshalJSON(b []byte) error {
	var raw struct {
		Targets []string       `json:"targets"`
		Labels  model.LabelSet `json:"labels"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return err
	}
	for _, tgt := range raw.Targets {
		g.Targets = append(g.Targets, model.LabelSet{model.AddressLabel: model.LabelValue(tgt)})
	}
	g.Labels = raw.Labels
	return nil
}

// prometheusContentType is the Content-Type Prometheus's http_sd accepts.
var prometheusContentType = regexp.MustCompile(`^(?i:application\/json(;\s*charset=("utf-8"|utf-8))?)$`)

// scrapeSD fetches the target groups as Prometheus's HTTP SD does and
// validates them with Prometheus's rules: status 200, the Content-Type,
// a JSON array of non-null groups, legacy-valid label names (the
// strictest scheme), valid UTF-8 label values and host:port targets.
func scrapeSD(t *testing.T, base string) []promGroup {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/", nil)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("X-Prometheus-Refresh-Interval-Seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !prometheusContentType.MatchString(strings.TrimSpace(ct)) {
		t.Fatalf("Content-Type %q: Prometheus rejects it", ct)
	}
	var groups []*promGroup
	if err := json.Unmarshal(body, &groups); err != nil {
		t.Fatalf("Prometheus cannot decode %s: %v", body, err)
	}
	if groups == nil {
		t.Fatalf("body %s: want a JSON array, even when empty", body)
	}
	out := make([]promGroup, 0, len(groups))
	for i, g := range groups {
		if g == nil {
			t.Fatalf("group %d is null: Prometheus rejects the whole list", i)
		}
		for name, value := range g.Labels {
			if !model.LegacyValidation.IsValidLabelName(string(name)) || !strings.HasPrefix(string(name), model.MetaLabelPrefix) || !value.IsValid() {
				t.Errorf("group %d: label %s=%q: want a valid __meta_ label", i, name, value)
			}
		}
		for _, tgt := range g.Targets {
			if _, _, err := net.SplitHostPort(string(tgt[model.AddressLabel])); err != nil {
				t.Errorf("group %d: target %q: %v", i, tgt[model.AddressLabel], err)
			}
		}
		out = append(out, *g)
	}
	return out
}

// TestEtcdUnreachable: ls and prom-sd exit 1 with a clear message. That
// they give up after --timeout is shown by the message, which only the
// read's deadline produces, not by a wall-clock bound (flaky on a loaded
// machine); a command that hung would hang the test.
func TestEtcdUnreachable(t *testing.T) {
	t.Parallel()
	env := map[string]string{"ETCD_ENDPOINTS": "127.0.0.1:" + strconv.Itoa(closedPort(t))}
	for _, args := range [][]string{
		{"ls", "--timeout", "300ms"},
		{"prom-sd", "--timeout", "400ms", "--listen", "127.0.0.1:0"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			r := svcctl(t, env, args...)
			want(t, r, exitError, fmt.Sprintf("etcd %s unreachable: no answer within %s (check ETCD_ENDPOINTS)", env["ETCD_ENDPOINTS"], args[2]))
		})
	}
	want(t, svcctl(t, map[string]string{"ETCD_ENDPOINTS": "x:1", "ETCD_DIAL_TIMEOUT": "soon"}, "ls"), exitUsage, `ETCD_DIAL_TIMEOUT="soon"`)
	want(t, svcctl(t, nil, "prom-sd"), exitUsage, "no etcd endpoints")
}

func TestParseInstance(t *testing.T) {
	t.Parallel()
	in, err := parseInstance("svc/dev/services/orders/i1", []byte(`{"Op":0,"Addr":"10.0.0.5:8020"}`))
	if err != nil || in.Name != "orders" || in.ID != "i1" || in.Environment != "dev" || in.Host != "10.0.0.5" || in.PublicPort != 8020 {
		t.Errorf("a value without Metadata = %+v, %v; want name, id, environment from the key and host, port from Addr", in, err)
	}
	for _, bad := range []string{`{"Addr":"h:1"}`, `{"Op":1,"Addr":"h:1"}`, `{"Op":0,"Addr":"nohost"}`, `{"Op":0,"Addr":":80"}`, `[]`} {
		if _, err := parseInstance("svc/dev/services/x/y", []byte(bad)); err == nil {
			t.Errorf("parseInstance(%s): want an error", bad)
		}
	}
}
