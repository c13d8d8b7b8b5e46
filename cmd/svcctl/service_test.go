package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestServiceCommands drives every per-service command against a running
// service named by its name and by its admin port.
func TestServiceCommands(t *testing.T) {
	t.Parallel()
	alpha := startService(t, "alpha", 10, map[string]string{"etcd.password": "hunter2"})
	port := strconv.Itoa(adminPort(alpha))
	env := scanEnv(adminPort(alpha))
	dir := t.TempDir()

	t.Run("info", func(t *testing.T) {
		want(t, svcctl(t, env, "alpha", "info"), 0, "name", "alpha", "v1.2.3", "pid", strconv.Itoa(os.Getpid()),
			"admin "+port)
		r := svcctl(t, env, port, "info", "--json")
		want(t, r, 0)
		var got struct {
			Info    info `json:"info"`
			Process struct {
				PID int `json:"pid"`
			} `json:"process"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &got); err != nil || got.Info.Name != "alpha" || got.Process.PID != os.Getpid() {
			t.Errorf("info --json = %+v, %v; want alpha with pid %d\n%s", got, err, os.Getpid(), r.stdout)
		}
		want(t, svcctl(t, env, "127.0.0.1:"+port, "info"), 0, "alpha")
		want(t, svcctl(t, env, "http://127.0.0.1:"+port+"/", "info"), 0, "alpha")
	})

	t.Run("loglevel", func(t *testing.T) {
		want(t, svcctl(t, env, "alpha", "loglevel"), 0, "info")
		want(t, svcctl(t, env, "alpha", "loglevel", "debug", "--for", "1h"), 0, "debug (was info; back to info at ")
		want(t, svcctl(t, env, port, "loglevel"), 0, "debug")
		r := svcctl(t, env, port, "loglevel", "--json")
		want(t, r, 0, `"level": "debug"`)
		want(t, svcctl(t, env, "alpha", "loglevel", "warn"), 0, "warn (was debug)")
		want(t, svcctl(t, env, "alpha", "loglevel", "loud"), exitError, `alpha (127.0.0.1:`+port+`): admin: log level "loud": want debug, info, warn or error`)
		want(t, svcctl(t, env, "alpha", "loglevel", "--for", "5m"), exitUsage, "loglevel --for needs a LEVEL")
		want(t, svcctl(t, env, "alpha", "loglevel", "info", "--for", "soon"), exitUsage, "invalid value")
		want(t, svcctl(t, env, "alpha", "loglevel", "info"), 0, "info (was warn)")
	})

	t.Run("reload", func(t *testing.T) {
		want(t, svcctl(t, env, "alpha", "reload"), 0, `"result": "unchanged"`)
	})

	t.Run("config", func(t *testing.T) {
		r := svcctl(t, env, "alpha", "config")
		want(t, r, 0, "KEY", "LAYER", "admin.port", "etcd.password", "option")
		if strings.Contains(r.stdout, "hunter2") {
			t.Errorf("config shows a secret:\n%s", r.stdout)
		}
		r = svcctl(t, env, "alpha", "config", "--json")
		want(t, r, 0, `"key": "etcd.password"`)
		if strings.Contains(r.stdout, "hunter2") {
			t.Errorf("config --json shows a secret:\n%s", r.stdout)
		}
	})

	t.Run("drain", func(t *testing.T) {
		t.Cleanup(func() { svcctl(t, env, "alpha", "undrain") })
		want(t, svcctl(t, env, "alpha", "drain"), 0, "alpha (127.0.0.1:"+port+"): draining")
		if code := readyz(t, alpha.PrivateURL); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz after drain = %d; want 503", code)
		}
		want(t, svcctl(t, env, port, "undrain", "--json"), 0, `"state": "serving"`)
		if code := readyz(t, alpha.PrivateURL); code != http.StatusOK {
			t.Errorf("/readyz after undrain = %d; want 200", code)
		}
	})

	t.Run("tasks", func(t *testing.T) {
		want(t, svcctl(t, env, "alpha", "tasks"), 0, "TASK", "echo", "print the arguments", "fail-late")
		want(t, svcctl(t, env, "alpha", "task", "echo", "who=ann", "n=2"), 0, "args: n=2&who=ann")
		want(t, svcctl(t, env, "alpha", "task", "echo"), 0, "args: \n")
		r := svcctl(t, env, "alpha", "task", "fail-late")
		want(t, r, exitError, "task fail-late: step 2 broke")
		if !strings.Contains(r.stdout, "step 1 done") {
			t.Errorf("task fail-late: the output before the error is missing:\n%s", r)
		}
		want(t, svcctl(t, env, "alpha", "task", "nope"), exitError, `admin: no task "nope"; GET /admin/tasks lists them`)
		want(t, svcctl(t, env, "alpha", "task", "echo", "novalue"), exitUsage, `argument "novalue": want KEY=VALUE`)
	})

	t.Run("runtime", func(t *testing.T) {
		want(t, svcctl(t, env, "alpha", "stack"), 0, "goroutine ", "net/http.(*Server).Serve")
		want(t, svcctl(t, env, "alpha", "stack", "--grouped"), 0, "goroutine profile: total")
		want(t, svcctl(t, env, "alpha", "memstats"), 0, "heap alloc", "GOGC", "gc cycles")
		r := svcctl(t, env, "alpha", "memstats", "--json")
		var m memstats
		if err := json.Unmarshal([]byte(r.stdout), &m); err != nil || m.SysBytes == 0 {
			t.Errorf("memstats --json = %+v, %v\n%s", m, err, r)
		}
		want(t, svcctl(t, env, "alpha", "gc"), 0, "gc: heap ", " -> ")
		want(t, svcctl(t, env, "alpha", "gc", "--free"), 0, "released to the OS")
		want(t, svcctl(t, env, "alpha", "build"), 0, "built with go", "MODULE")
		want(t, svcctl(t, env, "alpha", "build", "--json"), 0, `"go_version": "go`)
		want(t, svcctl(t, env, "alpha", "get", "/admin"), 0, `"/admin/process"`, `"/admin/gc"`)
		want(t, svcctl(t, env, "alpha", "get", "admin/tasks"), 0, `"echo"`)
		want(t, svcctl(t, env, "alpha", "post", "/admin/gc"), 0, "heap_alloc_after_bytes")
		want(t, svcctl(t, env, "alpha", "get", "/admin/nothing"), exitError, "GET /admin/nothing: no such admin endpoint")
		// Without etcd the registry status says so, and the instance
		// record is what the service would advertise.
		want(t, svcctl(t, env, "alpha", "registry"), 0, `"configured": false`, "etcd.endpoints is not set")
		want(t, svcctl(t, env, "alpha", "instance"), 0, `"public_port"`)
	})

	t.Run("pprof", func(t *testing.T) {
		heap := filepath.Join(dir, "heap.pprof")
		want(t, svcctl(t, env, "alpha", "pprof", "heap", "-o", heap), 0, "wrote "+heap, "open it with: go tool pprof "+heap)
		assertGzip(t, heap)
		cpu := filepath.Join(dir, "cpu.pprof")
		r := svcctl(t, env, port, "pprof", "cpu", "--seconds", "1", "-o", cpu)
		want(t, r, 0, "go tool pprof "+cpu)
		if !strings.Contains(r.stderr, "profiling 127.0.0.1:"+port+" (cpu) for 1s") {
			t.Errorf("pprof cpu: want a progress note on stderr: %s", r)
		}
		assertGzip(t, cpu)
		want(t, svcctl(t, env, "alpha", "pprof", "flame"), exitUsage, `unknown profile "flame"`)
		want(t, svcctl(t, env, "alpha", "pprof", "heap", "-o", filepath.Join(dir, "no", "such", "dir", "x")), exitError, "pprof: open ")
	})
}

// TestPprofDefaultFile writes the profile to <service>-<profile>-<time>.pprof
// in the working directory. Not parallel: it changes directory.
func TestPprofDefaultFile(t *testing.T) {
	alpha := startService(t, "alpha", 10, nil)
	dir := t.TempDir()
	t.Chdir(dir)
	r := svcctl(t, nil, strconv.Itoa(adminPort(alpha)), "pprof", "goroutine")
	want(t, r, 0, "wrote alpha-goroutine-", ".pprof", "go tool pprof alpha-goroutine-")
	files, _ := filepath.Glob(filepath.Join(dir, "alpha-goroutine-*.pprof"))
	if len(files) != 1 {
		t.Fatalf("want one alpha-goroutine-*.pprof in %s, got %v", dir, files)
	}
	assertGzip(t, files[0])
}

func assertGzip(t *testing.T, file string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("%s: want a gzipped profile, got %.40q", file, b)
	}
}

func readyz(t *testing.T, base string) int {
	t.Helper()
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestResolve(t *testing.T) {
	t.Parallel()
	b1 := startService(t, "beta", 20, nil)
	b2 := startService(t, "beta", 20, nil)
	delta := startService(t, "delta", 40, nil)
	p1, p2 := strconv.Itoa(adminPort(b1)), strconv.Itoa(adminPort(b2))
	lo, hi := min(adminPort(b1), adminPort(b2)), max(adminPort(b1), adminPort(b2))
	env := scanEnv(adminPort(b1), adminPort(b2), adminPort(delta))

	want(t, svcctl(t, env, "delta", "loglevel"), 0, "info")
	want(t, svcctl(t, env, "beta", "loglevel"), exitError,
		`2 services named "beta" run on this host, admin ports `+strconv.Itoa(lo)+", "+strconv.Itoa(hi)+": name one by its admin port")
	want(t, svcctl(t, env, p1, "loglevel"), 0, "info")
	want(t, svcctl(t, env, p2, "loglevel"), 0, "info")
	want(t, svcctl(t, env, "orders", "loglevel"), exitError, `no service named "orders" found on 127.0.0.1 ports `, "svcctl ps lists")
	want(t, svcctl(t, env, strconv.Itoa(closedPort(t)), "loglevel"), exitError, "nothing listens there (connection refused)")
}

func TestToken(t *testing.T) {
	t.Parallel()
	gamma := startService(t, "gamma", 30, map[string]string{"admin.token": "s3cret"})
	port := strconv.Itoa(adminPort(gamma))
	env := scanEnv(adminPort(gamma))

	want(t, svcctl(t, env, port, "loglevel"), exitError, "unauthorized: admin: a valid bearer token is required (pass --token or set SVC_ADMIN_TOKEN)")
	want(t, svcctl(t, env, port, "loglevel", "--token", "wrong"), exitError, "unauthorized", "the token given was refused")
	want(t, svcctl(t, env, port, "drain", "--token", "wrong"), exitError, "unauthorized")
	if code := readyz(t, gamma.PrivateURL); code != http.StatusOK {
		t.Errorf("/readyz = %d after a drain with a wrong token; want 200", code)
	}
	want(t, svcctl(t, env, port, "loglevel", "--token", "s3cret"), 0, "info")
	want(t, svcctl(t, env, "gamma", "loglevel"), exitError, `no service named "gamma"`, "admin port "+port+" refused to answer without a valid token")

	env["SVC_ADMIN_TOKEN"] = "s3cret"
	want(t, svcctl(t, env, "gamma", "loglevel", "debug"), 0, "debug (was info)")
	want(t, svcctl(t, env, "gamma", "stack"), 0, "goroutine ")
	// The flag wins over the variable, for discovery too.
	want(t, svcctl(t, env, "gamma", "config", "--token", "wrong"), exitError, "refused to answer without a valid token")
}
