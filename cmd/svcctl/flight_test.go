package main

import (
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/svc-dev/svc/admin"
)

// TestFlight drives svcctl flight against an admin handler with a flight
// recorder, and opens the dump with go tool trace. Not parallel: one
// flight recorder may record per process.
func TestFlight(t *testing.T) {
	fr := &admin.FlightRecorder{}
	t.Cleanup(func() { fr.Stop() })
	h, err := admin.New(admin.Params{Flight: fr, Info: func() any { return map[string]string{"name": "beta"} }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	target := strings.TrimPrefix(srv.URL, "http://")
	file := filepath.Join(t.TempDir(), "beta.trace")

	want(t, svcctl(t, nil, target, "flight", "-o", file), exitError, "no flight recorder is recording: start one with svcctl "+target+" flight start")
	want(t, svcctl(t, nil, target, "flight", "status"), 0, "flight recorder stopped")
	want(t, svcctl(t, nil, target, "flight", "start", "--period", "2h"), exitError, "at most 1m0s")
	want(t, svcctl(t, nil, target, "flight", "stop", "--size", "1MiB"), exitUsage, "-size does not apply")
	want(t, svcctl(t, nil, target, "flight", "rewind"), exitUsage, `unknown subcommand "rewind"`)
	want(t, svcctl(t, nil, target, "flight", "start", "--period", "5s", "--size", "4MiB"), 0, "recording since", "keeping the last 5s (4.0 MiB buffer)", "svcctl "+target+" flight -o FILE")
	want(t, svcctl(t, nil, target, "flight", "start"), exitError, "already recording")
	want(t, svcctl(t, nil, target, "flight", "status", "--json"), 0, `"recording": true`, `"period": "5s"`)

	want(t, svcctl(t, nil, target, "flight", "-o", file), 0, "wrote "+file, "go tool trace "+file)
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^go 1\.\d+ trace\x00+`).Match(b) {
		t.Errorf("%s starts with %.16q; want a Go execution trace header", file, b)
	}
	// go tool trace reads it: -d=parsed prints every event it parsed.
	gotool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("go tool trace: %v", err)
	}
	out, err := exec.Command(gotool, "tool", "trace", "-d=parsed", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "StateTransition") {
		t.Errorf("go tool trace -d=parsed %s: %v\n%.500s", file, err, out)
	}

	want(t, svcctl(t, nil, target, "flight", "stop"), 0, "flight recorder stopped")
	want(t, svcctl(t, nil, target, "flight", "stop"), 0, "flight recorder was not recording")
}
