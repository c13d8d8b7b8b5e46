package proof

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// FaultsConfig is the etcd-faults scenario.
type FaultsConfig struct {
	Instances int           // example-service instances
	TTL       time.Duration // their registry.ttl
	Rate      int           // load, requests per second
	Workers   int
	Hold      time.Duration // how long a member or two stay stopped
}

// FaultResult is what one fault measured.
type FaultResult struct {
	Name string
	// Inject is how long injecting took (stopping members: etcd's own
	// shutdown); Held, how long the fault then lasted until the restore.
	Inject, Held time.Duration
	// Load is the traffic from injection until every instance was
	// registered again, plus one second.
	Load Stats
	// Down is, per instance and view, how long it was not registered.
	Down map[string][2]Down
	// Restore is how long restoring took (a member's restart until it
	// rejoined the cluster; nothing for the others).
	Restore time.Duration
	// Back is from the end of the restore until every instance was
	// registered again in both views (0: none was still lost by then).
	Back time.Duration
	// Lost reports that an instance was not registered again within 30s
	// of the restore: lost for good.
	Lost bool
	// LostLines and AgainLines count the instances' log lines
	// "registration lost" and "registered again" during the fault.
	LostLines, AgainLines int
}

// fault is one fault to inject; inject returns the function that
// restores.
type fault struct {
	name   string
	hold   time.Duration
	inject func(t *testing.T) (restore func())
}

// Faults runs cfg.Instances instances registered in a 3-member etcd
// cluster, each reaching every member through its own TCP proxies, under
// load through a DelayedResolver, and injects one fault after another:
// a follower stopped, the leader stopped, quorum lost, an instance paused
// (SIGSTOP) past its lease TTL, an instance's network to etcd cut, then
// stalled. Between faults everything is restored and registered again.
func Faults(t *testing.T, bin string, cfg FaultsConfig) []FaultResult {
	t.Helper()
	cl := etcdtest.StartCluster(t, 3)
	hcli := cl.Client(t)
	d := NewDiscovery(t, hcli, "dev")

	procs := make([]*Process, cfg.Instances)
	proxies := make([][]*etcdtest.Proxy, cfg.Instances)
	for i := range procs {
		var eps []string
		for _, m := range cl.Members {
			p := etcdtest.NewProxy(t, m.Endpoints()[0])
			proxies[i] = append(proxies[i], p)
			eps = append(eps, p.Endpoint())
		}
		env := Env(t.TempDir(), strings.Join(eps, ","), cfg.TTL)
		procs[i] = Start(t, bin, env)
	}
	mon := NewMonitor(procs, d, "dev", Service)
	defer mon.Stop()
	if _, ok := mon.WaitAllUp(20 * time.Second); !ok {
		t.Fatal("proof: instances not registered within 20s")
	}

	client := NewLoadClient(t, NewDelayedResolver(d, DefaultRemovalDelay))
	load := StartLoad(client, "http://"+Service+"/hello/proof", cfg.Rate, cfg.Workers)
	defer load.Stop()
	time.Sleep(time.Second)

	leader := func() int {
		for i, m := range cl.Members {
			if !m.Running() {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			st, err := hcli.Status(ctx, m.Endpoints()[0])
			cancel()
			if err == nil && st.Leader == st.Header.MemberId {
				return i
			}
		}
		t.Fatal("proof: no leader among the running members")
		return -1
	}
	setProxies := func(i int, f func(*etcdtest.Proxy)) {
		for _, p := range proxies[i] {
			f(p)
		}
	}
	pastTTL := cfg.TTL + 1500*time.Millisecond
	faults := []fault{
		{"a follower stopped", cfg.Hold, func(t *testing.T) func() {
			m := cl.Members[(leader()+1)%3]
			m.Stop()
			return func() { m.Restart(t) }
		}},
		{"the leader stopped", cfg.Hold, func(t *testing.T) func() {
			m := cl.Members[leader()]
			m.Stop()
			return func() { m.Restart(t) }
		}},
		{"quorum lost (2 of 3 members stopped)", cfg.Hold, func(t *testing.T) func() {
			l := leader()
			a, b := cl.Members[l], cl.Members[(l+1)%3]
			a.Stop()
			b.Stop()
			return func() { a.Restart(t); b.Restart(t) }
		}},
		{fmt.Sprintf("instance paused (SIGSTOP) %v, past its TTL", pastTTL), pastTTL, func(t *testing.T) func() {
			p := procs[0]
			if err := p.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			return func() {
				if err := p.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
			}
		}},
		{fmt.Sprintf("network to etcd cut %v (connections refused)", pastTTL), pastTTL, func(t *testing.T) func() {
			i := 1 % cfg.Instances
			setProxies(i, (*etcdtest.Proxy).Cut)
			return func() { setProxies(i, (*etcdtest.Proxy).Restore) }
		}},
		{fmt.Sprintf("network to etcd stalled %v (bytes held back)", pastTTL), pastTTL, func(t *testing.T) func() {
			i := 2 % cfg.Instances
			setProxies(i, (*etcdtest.Proxy).Pause)
			return func() { setProxies(i, (*etcdtest.Proxy).Restore) }
		}},
	}

	logCounts := func() (lost, again int) {
		for _, p := range procs {
			lost += p.LogCount("registry: registration lost; registering again in the background")
			again += p.LogCount("registry: registered again with a new lease") +
				p.LogCount("registry: registered again, lease still alive")
		}
		return lost, again
	}
	var results []FaultResult
	for _, f := range faults {
		lost0, again0 := logCounts()
		from := time.Now()
		restore := f.inject(t)
		injected := time.Now()
		time.Sleep(f.hold)
		restoring := time.Now()
		restore()
		restored := time.Now()
		res := FaultResult{Name: f.name, Inject: injected.Sub(from), Held: restoring.Sub(injected), Restore: restored.Sub(restoring)}
		back, ok := mon.WaitAllUp(30 * time.Second)
		res.Lost = !ok
		if !ok {
			back = time.Now()
		}
		if back.After(restored) {
			res.Back = back.Sub(restored)
		}
		time.Sleep(time.Second)
		to := time.Now()
		res.Load = load.Window(from, to)
		res.Down = mon.Downtime(from, to)
		lost1, again1 := logCounts()
		res.LostLines, res.AgainLines = lost1-lost0, again1-again0
		results = append(results, res)
		// Every instance's key must be in etcd before the next fault.
		WaitInstances(t, d, 30*time.Second, "all registered before the next fault", func(insts []registry.Instance) bool {
			return len(insts) == cfg.Instances
		})
	}
	return results
}

// ReportFaults writes the faults table.
func ReportFaults(r *Report, section string, cfg FaultsConfig, results []FaultResult) {
	r.Printf(section, "%d instances, registry.ttl %v, each reaching the 3 members through its own TCP proxies; load %d req/s through discovery "+
		"(removals applied %v late). \"Unregistered\" is the longest time one instance was missing, as seen by others "+
		"(its key absent from a discovery cache) and by itself (its /readyz registry check not ok).\n\n",
		cfg.Instances, cfg.TTL, cfg.Rate, DefaultRemovalDelay)
	var rows [][]string
	for _, res := range results {
		var others, self time.Duration
		var lostInst int
		for _, d := range res.Down {
			others, self = max(others, d[Others].Total), max(self, d[Self].Total)
			if d[Others].Times > 0 || d[Self].Times > 0 {
				lostInst++
			}
		}
		back := "never lost"
		if lostInst > 0 || res.Back > 0 {
			back = ms(res.Back)
		}
		rows = append(rows, []string{
			res.Name, ms(res.Inject), ms(res.Held), ms(res.Restore),
			fmt.Sprint(lostInst), ms(others), ms(self),
			back,
			fmt.Sprintf("%d / %d", res.LostLines, res.AgainLines),
			fmt.Sprint(res.Load.Sent), fmt.Sprint(res.Load.Failed), ms(res.Load.P99), ms(res.Load.Max),
			map[bool]string{false: "no", true: "**yes**"}[res.Lost],
		})
	}
	r.Table(section, []string{"fault", "inject", "held", "restore", "instances unregistered", "longest, others' view", "longest, own view",
		"all registered again, after the restore", "log: lost / again", "requests", "failed", "p99", "max", "lost for good"}, rows)
}
