package bench_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/bench/poll"
)

// binDir holds the binaries the benchmarks build, once per test process.
var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// build builds the example service and the baselines into binDir.
func build(b *testing.B) string {
	b.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "svc-bench-")
		if buildErr != nil {
			return
		}
		for _, pkg := range []string{"../../cmd/example-service", "./barehttp", "./barelinked", "./fairbase"} {
			args := []string{"build", "-o", binDir + "/"}
			if tags := os.Getenv("STARTUP_LINKED_TAGS"); tags != "" && pkg == "./barelinked" {
				args = append(args, "-tags", tags)
			}
			out, err := exec.Command(goTool(), append(args, pkg)...).CombinedOutput()
			if err != nil {
				buildErr = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return binDir
}

func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// target is one program timed from exec to its first 200.
type target struct {
	name  string
	bin   string
	url   string   // polled until 200
	ports []string // must be free before the benchmark starts
}

// startupTime starts bin with an empty environment in a fresh directory,
// polls url every ~0.18 ms until it answers 200 (internal/bench/poll), and
// returns the time from just before exec to that answer. The process is killed afterwards.
func startupTime(b *testing.B, t target, dir string) time.Duration {
	cmd := exec.Command(t.bin)
	cmd.Dir = dir
	cmd.Env = []string{}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	ready, err := poll.OK(t.url, start.Add(10*time.Second))
	if err != nil {
		b.Fatalf("%s: %v", t.name, err)
	}
	return ready.Sub(start)
}

func requireFree(b *testing.B, addrs ...string) {
	b.Helper()
	for _, a := range addrs {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			b.Fatalf("port %s is taken (%v): BenchmarkStartup runs the binaries on their conventional ports and needs it free", a, err)
		}
		ln.Close()
	}
}

// BenchmarkStartup times process start to the first 200 for the built
// example service (polling /readyz on its private port 8011) and for a bare
// net/http server (polling / on :8090), all started with no flags, an
// empty environment and an empty working directory, in rotation, b.N runs
// each. A third program, barelinked (barehttp linking all of svc unused,
// on :8094), splits svc's overhead into the dependency tree's and svc's
// own. A fourth, fairbase (bare chi with svc's server limits, linking fx,
// client_golang and the etcd client unused, on :8096, polled at
// /hello/ready), is the fair baseline of make bench-gate. It reports the
// median and p90 of each, the svc/bare ratios and the svc/fair median
// ratio:
//
//	go test -run '^$' -bench Startup -benchtime 30x ./internal/bench
//
// STARTUP_LINKED_TAGS=link_etcd (or link_prometheus, link_fx) builds
// barelinked with one dependency instead of all of svc.
func BenchmarkStartup(b *testing.B) {
	dir := build(b)
	targets := []target{
		{"bare", filepath.Join(dir, "barehttp"), "http://127.0.0.1:8090/", []string{":8090"}},
		{"linked", filepath.Join(dir, "barelinked"), "http://127.0.0.1:8094/", []string{":8094"}},
		{"fair", filepath.Join(dir, "fairbase"), "http://127.0.0.1:8096/hello/ready", []string{":8096"}},
		{"svc", filepath.Join(dir, "example-service"), "http://127.0.0.1:8011/readyz", []string{"127.0.0.1:4010", ":8010", ":8011"}},
	}
	for _, t := range targets {
		requireFree(b, t.ports...)
	}
	cwd := b.TempDir()
	// One untimed start each: page cache, dynamic loader.
	for _, t := range targets {
		startupTime(b, t, cwd)
	}
	times := make(map[string][]time.Duration)
	b.ResetTimer()
	for i := range b.N {
		// Rotate which goes first, so that none always follows the same
		// other's exit.
		for j := range targets {
			t := targets[(i+j)%len(targets)]
			times[t.name] = append(times[t.name], startupTime(b, t, cwd))
		}
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	bareMed, bareP90 := quantiles(times["bare"])
	linkedMed, linkedP90 := quantiles(times["linked"])
	fairMed, fairP90 := quantiles(times["fair"])
	svcMed, svcP90 := quantiles(times["svc"])
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(ms(bareMed), "bare-median-ms")
	b.ReportMetric(ms(bareP90), "bare-p90-ms")
	b.ReportMetric(ms(linkedMed), "linked-median-ms")
	b.ReportMetric(ms(linkedP90), "linked-p90-ms")
	b.ReportMetric(ms(fairMed), "fair-median-ms")
	b.ReportMetric(ms(fairP90), "fair-p90-ms")
	b.ReportMetric(ms(svcMed), "svc-median-ms")
	b.ReportMetric(ms(svcP90), "svc-p90-ms")
	b.ReportMetric(float64(svcMed)/float64(bareMed), "ratio-median")
	b.ReportMetric(float64(svcP90)/float64(bareP90), "ratio-p90")
	b.ReportMetric(float64(svcMed)/float64(fairMed), "ratio-fair-median")
}

// quantiles returns the median and the 90th percentile (nearest rank).
func quantiles(ds []time.Duration) (median, p90 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.5) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.5), rank(0.9)
}

func nanotime() int64 { return time.Now().UnixNano() }
