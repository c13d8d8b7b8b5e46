package proof

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/etcdtest"
	"github.com/svc-dev/svc/registry"
)

// RollConfig is one rolling restart under load.
type RollConfig struct {
	Name         string        // row label
	Instances    int           // instances registered (2 or 3)
	Drain        time.Duration // shutdown.drain of the instances
	RemovalDelay time.Duration // how late the load generator applies removals
	Rate         int           // requests per second
	Workers      int           // load generator goroutines
	Settle       time.Duration // steady load between two restarts
	// NewPorts restarts an instance on new free ports (a new address, as a
	// rescheduled container gets) instead of its old ones (a process
	// restarted in place by a supervisor, svc's port convention).
	NewPorts bool
}

// RollResult is what a roll measured.
type RollResult struct {
	Config   RollConfig
	Steady   Stats         // the load before the first SIGTERM
	Roll     Stats         // from the first SIGTERM until the last instance is back, plus Settle
	Duration time.Duration // of the roll window
	Exits    []int         // exit codes after SIGTERM
	Stops    []time.Duration
	Failures []Failure // the roll's failed requests, with their timing
}

// Failure is one failed request of a roll, placed against the restart it
// fell into.
type Failure struct {
	Sample
	Step         int           // which instance was being restarted
	SinceSIGTERM time.Duration // from that instance's SIGTERM
	ToStopping   bool          // sent to the instance being restarted
}

// Roll starts cfg.Instances example-service instances registered in a
// fresh etcd, drives load through a DelayedResolver, then restarts the
// instances one at a time: SIGTERM, wait for exit, start again on the same
// ports (or new ones), wait until registered, then cfg.Settle of steady
// load.
func Roll(t *testing.T, bin string, cfg RollConfig) RollResult {
	t.Helper()
	srv := etcdtest.Start(t)
	d := NewDiscovery(t, srv.Client(t), "dev")
	env := Env(t.TempDir(), srv.Endpoints()[0], 10*time.Second, "SHUTDOWN_DRAIN="+cfg.Drain.String())
	procs := make([]*Process, cfg.Instances)
	for i := range procs {
		procs[i] = Start(t, bin, env)
	}
	WaitInstances(t, d, 15*time.Second, "all instances registered", func(insts []registry.Instance) bool {
		return len(insts) == cfg.Instances
	})

	client := NewLoadClient(t, NewDelayedResolver(d, cfg.RemovalDelay))
	load := StartLoad(client, "http://"+Service+"/hello/proof", cfg.Rate, cfg.Workers)
	steadyFrom := time.Now()
	time.Sleep(2 * time.Second)

	res := RollResult{Config: cfg}
	type step struct {
		sigterm time.Time
		addr    string
	}
	var steps []step
	rollFrom := time.Now()
	for i, p := range procs {
		steps = append(steps, step{sigterm: time.Now(), addr: p.Public})
		if err := p.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		code, err := p.Wait(30 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		res.Exits = append(res.Exits, code)
		res.Stops = append(res.Stops, time.Since(steps[i].sigterm))
		if took := res.Stops[i]; took > cfg.Drain+time.Second {
			t.Logf("instance %s took %v from SIGTERM to exit (drain %v); its log:\n%s", p.ID, took, cfg.Drain, p.Log())
		}
		var q *Process
		if cfg.NewPorts {
			q = Start(t, bin, p.Env)
		} else {
			q = p.Restart(t)
		}
		WaitInstances(t, d, 15*time.Second, "restarted instance registered", func(insts []registry.Instance) bool {
			return hasKey(insts, "dev", q.ID)
		})
		procs[i] = q
		time.Sleep(cfg.Settle)
	}
	rollTo := time.Now()
	load.Stop()

	res.Steady = load.Window(steadyFrom, rollFrom)
	res.Roll = load.Window(rollFrom, rollTo)
	res.Duration = rollTo.Sub(rollFrom)
	for _, s := range load.Samples(rollFrom, rollTo) {
		if s.Err == "" {
			continue
		}
		f := Failure{Sample: s}
		for i, st := range steps {
			if !s.At.Before(st.sigterm) {
				f.Step, f.SinceSIGTERM = i, s.At.Sub(st.sigterm)
				f.ToStopping = s.Addr == st.addr
			}
		}
		res.Failures = append(res.Failures, f)
	}
	return res
}

// ReportRolls writes the roll table and, for rolls that failed requests,
// where the failures fell.
func ReportRolls(r *Report, section string, results []RollResult) {
	var rows [][]string
	for _, res := range results {
		c := res.Config
		rows = append(rows, []string{
			c.Name,
			c.Drain.String(),
			map[bool]string{false: "same ports", true: "new ports"}[c.NewPorts],
			c.RemovalDelay.String(),
			fmt.Sprint(c.Instances),
			fmt.Sprintf("%d req/s", c.Rate),
			fmt.Sprint(res.Roll.Sent),
			fmt.Sprint(res.Roll.Failed),
			fmt.Sprint(res.Roll.Retried),
			ms(res.Roll.P50), ms(res.Roll.P99), ms(res.Roll.Max),
			ms(res.Steady.P50) + " / " + ms(res.Steady.P99),
			fmt.Sprint(res.Exits),
			ms(slices.Max(res.Stops)),
			res.Roll.ErrorsString(),
		})
	}
	r.Table(section, []string{"roll", "shutdown.drain", "restart on", "removal delay", "instances", "load",
		"sent", "failed", "retried by net/http", "p50", "p99", "max", "steady p50 / p99", "exit codes", "SIGTERM to exit (max)", "failures by kind"}, rows)
	for _, res := range results {
		if len(res.Failures) == 0 {
			continue
		}
		r.Printf(section, "Failures of %q, by restart step, time since that step's SIGTERM, kind and connection:\n\n", res.Config.Name)
		type key struct {
			step           int
			kind           string
			reused, target bool
		}
		groups := map[key][]time.Duration{}
		for _, f := range res.Failures {
			k := key{f.Step, f.Err, f.Reused, f.ToStopping}
			groups[k] = append(groups[k], f.SinceSIGTERM)
		}
		keys := slices.SortedFunc(func(yield func(key) bool) {
			for k := range groups {
				if !yield(k) {
					return
				}
			}
		}, func(a, b key) int {
			if a.step != b.step {
				return a.step - b.step
			}
			return strings.Compare(a.kind, b.kind)
		})
		var rows [][]string
		for _, k := range keys {
			ds := groups[k]
			rows = append(rows, []string{
				fmt.Sprint(k.step + 1), k.kind, fmt.Sprint(len(ds)),
				ms(slices.Min(ds)) + " .. " + ms(slices.Max(ds)),
				fmt.Sprint(k.reused), fmt.Sprint(k.target),
			})
		}
		r.Table(section, []string{"step", "kind", "n", "since SIGTERM", "reused conn", "to the stopping instance"}, rows)
		r.Printf(section, "First failure: `%s`\n\n", res.Failures[0].Detail)
	}
}

// CrashResult is what a crash under load measured.
type CrashResult struct {
	TTL     time.Duration
	KeyGone time.Duration // from SIGKILL until the key left the discovery cache
	Load    Stats         // from SIGKILL until the removal delay after that, plus 500ms
	Rate    int
	Removal time.Duration
}

// Crash kills one of three instances (registry.ttl ttl) with SIGKILL
// under load through a DelayedResolver: nothing deregisters it, so clients
// keep resolving it until its lease expires and they drop it.
func Crash(t *testing.T, bin string, ttl time.Duration, rate, workers int) CrashResult {
	t.Helper()
	srv := etcdtest.Start(t)
	d := NewDiscovery(t, srv.Client(t), "dev")
	env := Env(t.TempDir(), srv.Endpoints()[0], ttl)
	procs := []*Process{Start(t, bin, env), Start(t, bin, env), Start(t, bin, env)}
	WaitInstances(t, d, 15*time.Second, "all instances registered", func(insts []registry.Instance) bool { return len(insts) == 3 })
	client := NewLoadClient(t, NewDelayedResolver(d, DefaultRemovalDelay))
	load := StartLoad(client, "http://"+Service+"/hello/proof", rate, workers)
	defer load.Stop()
	time.Sleep(time.Second)
	killed := time.Now()
	procs[0].Kill()
	WaitInstances(t, d, ttl+5*time.Second, "crashed instance expired", func(insts []registry.Instance) bool {
		return !hasKey(insts, "dev", procs[0].ID)
	})
	gone := time.Since(killed)
	time.Sleep(DefaultRemovalDelay + 500*time.Millisecond)
	return CrashResult{TTL: ttl, KeyGone: gone, Load: load.Window(killed, time.Now()), Rate: rate, Removal: DefaultRemovalDelay}
}

// ReportCrashes writes the crash table.
func ReportCrashes(r *Report, section string, results []CrashResult) {
	r.Printf(section, "One of three instances killed with SIGKILL under load (removals applied %v late): until its lease expires it "+
		"stays registered, and every request resolved to it fails.\n\n", DefaultRemovalDelay)
	var rows [][]string
	for _, c := range results {
		rows = append(rows, []string{c.TTL.String(), fmt.Sprintf("%d req/s", c.Rate), ms(c.KeyGone),
			fmt.Sprint(c.Load.Sent), fmt.Sprint(c.Load.Failed), c.Load.ErrorsString()})
	}
	r.Table(section, []string{"registry.ttl", "load", "key gone after", "requests", "failed", "failures by kind"}, rows)
}
