package main

// The files of deploy/: the systemd units pass systemd-analyze verify; the
// Kubernetes Deployment's grace period covers its preStop, the drain and
// the shutdown timeout, and its probes use the private port; the
// Dockerfile's build makes a static binary run as a non-root user.

import (
	"bytes"
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

const deployDir = "../../deploy"

// systemd-analyze verify accepts the units with no warning. It checks
// that ExecStart's binary exists, so the units are verified with it
// pointing at the binary under test. Skips only when the tool is missing
// (Debian package systemd).
func TestSystemdUnitsVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd): the units in deploy/systemd are not verified")
	}
	units, err := filepath.Glob(filepath.Join(deployDir, "systemd", "*"))
	if err != nil || len(units) != 4 {
		t.Fatalf("deploy/systemd holds %v (%v); want the service and its three sockets", units, err)
	}
	dir := t.TempDir()
	var paths []string
	for _, u := range units {
		b, err := os.ReadFile(u)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/example-service"), []byte(binary))
		p := filepath.Join(dir, filepath.Base(u))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	out, err := exec.Command(tool, append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	service, _ := os.ReadFile(filepath.Join(deployDir, "systemd", "example-service.service"))
	for _, want := range []string{"Type=notify", "NotifyAccess=all", "ExecReload=/bin/kill -USR2 $MAINPID", "WatchdogSec=", "Sockets="} {
		if !strings.Contains(string(service), want) {
			t.Errorf("example-service.service has no %s", want)
		}
	}
	for _, name := range listenerNamesOf(t) {
		sock, err := os.ReadFile(filepath.Join(deployDir, "systemd", "example-service-"+name+".socket"))
		if err != nil || !strings.Contains(string(sock), "FileDescriptorName="+name+"\n") {
			t.Errorf("example-service-%s.socket: %v; want FileDescriptorName=%s", name, err, name)
		}
	}
}

func listenerNamesOf(*testing.T) []string { return []string{"admin", "public", "private"} }

// The Deployment: probes on the private port, preStop at least
// shutdown.drain, and a grace period covering preStop + drain + timeout.
func TestKubernetesDeployment(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "kubernetes", "example-service.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	doc, _, _ := bytes.Cut(b, []byte("\n---\n"))
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("the Deployment is not YAML: %v", err)
	}
	type probe struct {
		HTTPGet struct{ Path, Port string }
	}
	var d struct {
		Kind string
		Spec struct {
			Template struct {
				Spec struct {
					TerminationGracePeriodSeconds int
					SecurityContext               struct{ RunAsUser int }
					Containers                    []struct {
						Env                                         []struct{ Name, Value string }
						StartupProbe, ReadinessProbe, LivenessProbe probe
						Lifecycle                                   struct {
							PreStop struct{ Sleep struct{ Seconds int } }
						}
					}
				}
			}
		}
	}
	if err := json.Unmarshal(js, &d); err != nil || d.Kind != "Deployment" || len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("the first document is not a Deployment of one container: %v", err)
	}
	pod := d.Spec.Template.Spec
	c := pod.Containers[0]
	env := map[string]time.Duration{"SHUTDOWN_DRAIN": time.Second, "SHUTDOWN_TIMEOUT": 10 * time.Second}
	for _, e := range c.Env {
		if _, ok := env[e.Name]; ok {
			if env[e.Name], err = time.ParseDuration(e.Value); err != nil {
				t.Fatalf("%s=%q: %v", e.Name, e.Value, err)
			}
		}
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := time.Duration(pod.TerminationGracePeriodSeconds) * time.Second
	if preStop < env["SHUTDOWN_DRAIN"] {
		t.Errorf("preStop sleeps %v; want at least shutdown.drain %v", preStop, env["SHUTDOWN_DRAIN"])
	}
	if need := preStop + env["SHUTDOWN_DRAIN"] + env["SHUTDOWN_TIMEOUT"]; grace < need {
		t.Errorf("terminationGracePeriodSeconds %v; want at least preStop + drain + timeout = %v", grace, need)
	}
	for name, p := range map[string]probe{"startup": c.StartupProbe, "readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p.HTTPGet.Port != "private" {
			t.Errorf("%s probe on port %q; want private", name, p.HTTPGet.Port)
		}
	}
	if c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Errorf("readiness probe %q, liveness %q; want /readyz and /healthz", c.ReadinessProbe.HTTPGet.Path, c.LivenessProbe.HTTPGet.Path)
	}
	if pod.SecurityContext.RunAsUser != 65532 {
		t.Errorf("runAsUser %d; want 65532 (the image's nonroot user)", pod.SecurityContext.RunAsUser)
	}
}

// The Dockerfile's build command makes a static binary (no ELF
// interpreter: it runs on distroless/static or scratch), and its final
// stage runs as 65532. Docker itself cannot run here.
func TestDockerfileBuildsStatic(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, re := range []string{`(?m)^FROM gcr\.io/distroless/static\S*`, `(?m)^USER 65532(:65532)?$`, `CGO_ENABLED=0 go build`} {
		if !regexp.MustCompile(re).MatchString(df) {
			t.Errorf("the Dockerfile has no line matching %s", re)
		}
	}
	out := filepath.Join(t.TempDir(), "service")
	build := exec.Command(goTool(), "build", "-o", out, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, msg)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has an ELF interpreter: it is not static")
		}
	}
}
