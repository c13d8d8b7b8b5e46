package main

import (
	"bufio"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/svc-dev/svc/internal/connlimit"
	"github.com/svc-dev/svc/svctest"
)

// A flood of idle keep-alive connections on the public port cannot make
// the health checks or the admin port fail: with an open-file limit of
// 256, the public listener takes its share and sheds the rest with a 503
// and Connection: close, while /healthz, /readyz and the admin port keep
// answering. (Before the caps, the flood took every descriptor and the
// private and admin listeners failed to accept.)
func TestConnectionFloodKeepsHealthAnswering(t *testing.T) {
	const nofile = 256
	caps := connlimit.Limits(nofile)
	env := []string{
		"PUBLIC_HOST=127.0.0.1", "PUBLIC_PORT=0",
		"PRIVATE_HOST=127.0.0.1", "PRIVATE_PORT=0",
		"ADMIN_PORT=0", "LOG_FORMAT=json", "LOG_ACCESS=false",
		"CONFIG_DIR=" + t.TempDir(),
	}
	p := startUnderLimit(t, nofile, env)
	s := parseStarted(t, p)

	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	// Past the cap, connections are shed: answered 503 while few are being
	// shed at once, reset beyond that. Either way, not queued.
	for range nofile + 50 { // more than the process could hold
		c, err := net.DialTimeout("tcp", s.public, 5*time.Second)
		if err != nil {
			continue
		}
		flood = append(flood, c)
	}
	if len(flood) < caps.Public {
		t.Fatalf("only %d of the public cap %d connections were accepted", len(flood), caps.Public)
	}
	// Once the shedding of the flood's excess is over, a connection past
	// the cap is answered 503 with Connection: close.
	svctest.WaitFor(t, 15*time.Second, "a 503 past the public cap", func() bool {
		c, err := net.DialTimeout("tcp", s.public, 5*time.Second)
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return false
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || !resp.Close {
			t.Fatalf("past the cap: %d, close=%v; want 503 with Connection: close", resp.StatusCode, resp.Close)
		}
		return true
	})

	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for _, url := range []string{
		"http://" + s.private + "/healthz",
		"http://" + s.private + "/readyz",
		"http://" + s.admin + "/",
	} {
		code, body, err := fetch(hc, url)
		if err != nil || code != http.StatusOK {
			t.Errorf("GET %s during the flood = %d %v %s; want 200", url, code, err, body)
		}
	}
	code, body, _ := fetch(hc, "http://"+s.private+"/metrics")
	if !strings.Contains(body, `svc_connections_shed_total{listener="public"}`) || code != 200 {
		t.Errorf("/metrics does not count shed public connections:\n%s", grepLines(body, "svc_connections_shed"))
	}
	if n := openFiles(t, p.cmd.Process.Pid); n >= nofile {
		t.Errorf("the process holds %d descriptors; want fewer than its limit %d", n, nofile)
	}
}

// startUnderLimit starts the binary through sh with its open-file limit
// set to nofile.
func startUnderLimit(t *testing.T, nofile int, env []string) *proc {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh is needed to lower the open-file limit: %v", err)
	}
	return startCommand(t, t.TempDir(), env, sh, "-c", "ulimit -n "+strconv.Itoa(nofile)+" && exec \"$0\"", binary)
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}
