package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/svc"
	"github.com/svc-dev/svc/svctest"
)

// result is one run of svcctl.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// svcctl runs the command in-process with env as its whole environment.
func svcctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, func(k string) string { return env[k] }, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// want fails the test unless r exited with code and its output contains
// every string of contains (stdout on success, stderr otherwise).
func want(t *testing.T, r result, code int, contains ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got %s", code, r)
	}
	out := r.stdout
	if code != 0 {
		out = r.stderr
	}
	for _, c := range contains {
		if !strings.Contains(out, c) {
			t.Errorf("output does not contain %q:\n%s", c, r)
		}
	}
}

// testTasks are the admin tasks of the services the tests start.
var testTasks = []svc.Option{
	svc.AdminTask(admin.Task{Name: "echo", Help: "print the arguments", Run: func(_ context.Context, args url.Values, w io.Writer) error {
		_, err := fmt.Fprintf(w, "args: %s\n", args.Encode())
		return err
	}}),
	svc.AdminTask(admin.Task{Name: "fail-late", Help: "print, then fail", Run: func(_ context.Context, _ url.Values, w io.Writer) error {
		fmt.Fprintln(w, "step 1 done")
		return fmt.Errorf("step 2 broke")
	}}),
}

// startService starts a service with the test tasks on ephemeral loopback
// ports, its logs discarded. values are config values (admin.token, ...).
func startService(t *testing.T, name string, offset int, values map[string]string) *svctest.App {
	t.Helper()
	opts := append([]svc.Option{svc.WithOutput(io.Discard, io.Discard), svc.WithVersion("v1.2.3")}, testTasks...)
	return svctest.StartWith(t, name, offset, svctest.Options{Values: values}, opts...)
}

// adminPort returns the app's bound admin port.
func adminPort(a *svctest.App) int { return a.Info().Ports.Admin }

// scanEnv is an environment whose SVCCTL_PORTS lists exactly ports, so that
// discovery sees this test's services and nothing else on the machine.
func scanEnv(ports ...int) map[string]string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return map[string]string{envPorts: strings.Join(s, ",")}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args     []string
		code     int
		contains string
	}{
		{nil, exitUsage, ""},
		{[]string{"help"}, exitOK, "svcctl ps [--json]"},
		{[]string{"--help"}, exitOK, "Service commands:"},
		{[]string{"ps", "-h"}, exitOK, "Usage: svcctl ps"},
		{[]string{"ls", "--help"}, exitOK, "Usage: svcctl ls"},
		{[]string{"ports", "-h"}, exitOK, "Usage: svcctl ports"},
		{[]string{"prom-sd", "-h"}, exitOK, "http_sd_config"},
		{[]string{"4010", "pprof", "-h"}, exitOK, "go tool pprof"},
		{[]string{"--json"}, exitUsage, "unknown flag --json before a command"},
		{[]string{"ps", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"ps", "extra"}, exitUsage, "ps takes no arguments"},
		{[]string{"Not_A_Service", "info"}, exitUsage, `unknown command or service "Not_A_Service"`},
		{[]string{"orders"}, exitUsage, "orders: a command is needed"},
		{[]string{"orders", "explode"}, exitUsage, `unknown command "explode"`},
		{[]string{"4010", "task"}, exitUsage, "usage: svcctl 4010 task NAME"},
		{[]string{"4010", "loglevel", "debug", "info"}, exitUsage, "usage: svcctl 4010 loglevel"},
		{[]string{"99999", "info"}, exitUsage, "admin port 99999 is not in 1..65535"},
		{[]string{"ls"}, exitUsage, "no etcd endpoints: set ETCD_ENDPOINTS"},
	} {
		r := svcctl(t, nil, tc.args...)
		out := r.stdout + r.stderr
		if r.code != tc.code || !strings.Contains(out, tc.contains) {
			t.Errorf("svcctl %q: want exit %d containing %q, got %s", tc.args, tc.code, tc.contains, r)
		}
		if tc.code == exitUsage && tc.args != nil && !strings.Contains(r.stderr, "svcctl help") {
			t.Errorf("svcctl %q: a usage error should point at 'svcctl help': %s", tc.args, r)
		}
	}
}
