//go:build proof

package proof_test

import (
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/proof"
)

var out = flag.String("proof.out", "", "also write the Markdown report to this file")

// TestProof runs every scenario of the proof and writes the report. Run
// one scenario with -run 'TestProof/<name>': roll, in-place, up-watch,
// crash, calls, etcd-faults, hostile, performance, scale.
func TestProof(t *testing.T) {
	h := proof.New(t)
	defer func() {
		report := h.Report.String()
		t.Log("\n" + report)
		if *out != "" {
			if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
				t.Error(err)
			}
		}
	}()

	t.Run("roll", func(t *testing.T) {
		var results []proof.RollResult
		for _, cfg := range []proof.RollConfig{
			{Name: "drain on, same ports", Drain: time.Second},
			{Name: "drain off, same ports", Drain: 0},
			{Name: "drain on, new ports", Drain: time.Second, NewPorts: true},
			{Name: "drain off, new ports", Drain: 0, NewPorts: true},
			{Name: "drain shorter than the clients' delay", Drain: time.Second, RemovalDelay: 1500 * time.Millisecond, NewPorts: true},
		} {
			cfg.Instances, cfg.Rate, cfg.Workers, cfg.Settle = 3, 800, 32, time.Second
			if cfg.RemovalDelay == 0 {
				cfg.RemovalDelay = proof.DefaultRemovalDelay
			}
			t.Run(cfg.Name, func(t *testing.T) {
				res := proof.Roll(t, h.Example, cfg)
				results = append(results, res)
				if cfg.Drain >= cfg.RemovalDelay && res.Roll.Failed > 0 {
					t.Errorf("roll with drain %v >= removal delay %v: %d of %d requests failed; want 0",
						cfg.Drain, cfg.RemovalDelay, res.Roll.Failed, res.Roll.Sent)
				}
				if slices.ContainsFunc(res.Exits, func(c int) bool { return c != 0 }) {
					t.Errorf("exit codes after SIGTERM %v; want all 0", res.Exits)
				}
			})
		}
		proof.ReportRolls(h.Report, "Rolling restart under load", results)
	})

	t.Run("in-place", func(t *testing.T) {
		cfg := proof.InPlaceConfig{Restarts: 10, Rate: 400, Workers: 8, Settle: time.Second, Drain: time.Second}
		res := proof.InPlace(t, h.Example, cfg)
		proof.ReportInPlace(h.Report, "In-place restart under load (no registry)", res)
		for name, st := range res.Loads {
			if st.Failed > 0 {
				t.Errorf("in-place restarts: %s: %d of %d requests failed (%s); want 0", name, st.Failed, st.Sent, st.ErrorsString())
			}
		}
	})

	t.Run("up-watch", func(t *testing.T) {
		cfg := proof.UpWatchConfig{Edits: 5, BrokenAfter: 3, Rate: 400, Workers: 8, Settle: time.Second, Drain: time.Second}
		res := proof.UpWatch(t, proof.Build(t, "github.com/svc-dev/svc/cmd/svcctl"), cfg)
		proof.ReportUpWatch(h.Report, "svcctl up --watch: edits swapped in under load", res)
		for name, st := range res.Loads {
			if st.Failed > 0 {
				t.Errorf("up --watch: %s: %d of %d requests failed (%s); want 0", name, st.Failed, st.Sent, st.ErrorsString())
			}
		}
		if len(res.Swaps) != cfg.Edits {
			t.Errorf("up --watch: %d of %d edits swapped in", len(res.Swaps), cfg.Edits)
		}
		b := res.Broken
		if !b.Kept {
			t.Errorf("up --watch, syntax error: the running process was not kept: %s", b.Seen)
		}
		if b.Failed > 0 {
			t.Errorf("up --watch, syntax error: %d of %d requests failed; want 0", b.Failed, b.Sent)
		}
		if !strings.Contains(strings.Join(b.Compiler, "\n"), "syntax error") {
			t.Errorf("up --watch, syntax error: svcctl did not print the compiler's error; it printed %q", b.Compiler)
		}
	})

	t.Run("crash", func(t *testing.T) {
		var results []proof.CrashResult
		for _, ttl := range []time.Duration{2 * time.Second, 10 * time.Second} {
			results = append(results, proof.Crash(t, h.Example, ttl, 800, 32))
		}
		proof.ReportCrashes(h.Report, "Crash under load (kill -9)", results)
	})

	t.Run("calls", func(t *testing.T) {
		var results []proof.CallsResult
		for _, fault := range []string{"kill -9", "SIGSTOP"} {
			cfg := proof.CallsConfig{Fault: fault, TTL: 15 * time.Second, Rate: 200, Workers: 16, For: 8 * time.Second}
			res := proof.Calls(t, h.Example, cfg)
			results = append(results, res)
			for _, sh := range res.Shapes {
				if sh.Load.Failed > 0 {
					t.Errorf("calls, %s, %s: %d of %d GETs failed; want 0", fault, sh.Name, sh.Load.Failed, sh.Load.Sent)
				}
			}
		}
		proof.ReportCalls(h.Report, "Calls between services when a callee fails", results)
	})

	t.Run("etcd-faults", func(t *testing.T) {
		cfg := proof.FaultsConfig{Instances: 3, TTL: 2 * time.Second, Rate: 400, Workers: 16, Hold: 5 * time.Second}
		results := proof.Faults(t, h.Example, cfg)
		proof.ReportFaults(h.Report, "etcd faults", cfg, results)
		for _, r := range results {
			if r.Lost {
				t.Errorf("%s: an instance was not registered again within 30s of the restore", r.Name)
			}
			if r.Load.Failed > 0 {
				t.Errorf("%s: %d of %d requests failed; want 0", r.Name, r.Load.Failed, r.Load.Sent)
			}
		}
	})

	t.Run("hostile", func(t *testing.T) {
		proof.Hostile(t, h.Example, h.Report)
		proof.Attacks(t, h.Example, h.Report)
	})

	t.Run("performance", func(t *testing.T) {
		const loadFor = 5 * time.Second
		proof.ReportMemory(h.Report, "Memory", loadFor, proof.Memory(t, h, loadFor))
		proof.ReportResolve(h.Report, "Discovery resolve vs an etcd read per call", proof.Resolve(t))
		proof.ReportPropagation(h.Report, "Registration propagation across processes", proof.Propagation(t, h.Example, 200))
		relay := proof.Relay(t, h.Example, 3*time.Second)
		proof.ReportRelay(h.Report, "Relay through discovery", relay)
		if relay.Relay.Failed > 0 {
			t.Errorf("relay: %d of %d requests failed; want 0", relay.Relay.Failed, relay.Relay.Sent)
		}
		if relay.TimeWait > 100 {
			t.Errorf("relay: %d sockets left in TIME_WAIT after %d requests; want connections reused", relay.TimeWait, relay.Relay.Sent)
		}
	})

	t.Run("scale", func(t *testing.T) {
		cfg := proof.ScaleConfig{Services: 1000, PerService: 10, Watched: 100, Churn: 1000, Samples: 200}
		proof.ReportScale(h.Report, "Scale: 1,000 services x 10 instances", proof.Scale(t, h.Example, cfg))
	})
}
