package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/svc-dev/svc/internal/convention"
)

// The convention: admin ports are 4000+offset on loopback.
const (
	scanHost   = "127.0.0.1"
	scanPorts  = "4000-4999"
	envPorts   = "SVCCTL_PORTS" // hidden: the ports ps scans, "lo-hi" or "p1,p2,lo-hi"
	envToken   = "SVC_ADMIN_TOKEN"
	maxDialers = 256 // concurrent connects while scanning
)

const psHelp = `Usage: svcctl ps [--json] [--token T]

Lists the svc services on this host: every admin listener on 127.0.0.1
ports 4000-4999 (probed concurrently), with its name, offset (admin port -
4000), pid, version, environment, uptime, ports and readiness (the private
port's /readyz). Exits 1 when no service is found.
`

// ports are the ports of an instance, as in the service's info JSON.
type ports struct {
	Public  int `json:"public"`
	Private int `json:"private"`
	Admin   int `json:"admin"`
}

// info is the service's GET / (the same JSON as /info).
type info struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	Version     string    `json:"version"`
	Instance    string    `json:"instance"`
	StartedAt   time.Time `json:"started_at"`
	Ports       ports     `json:"ports"`
}

// process is the part of GET /admin/process that ps shows.
type process struct {
	PID       int    `json:"pid"`
	GoVersion string `json:"go_version"`
}

// local is one service found on this host.
type local struct {
	AdminPort   int       `json:"admin_port"`
	Offset      *int      `json:"offset,omitempty"` // admin port - 4000, when in the convention's range
	Name        string    `json:"name,omitempty"`
	Environment string    `json:"environment,omitempty"`
	Version     string    `json:"version,omitempty"`
	Instance    string    `json:"instance,omitempty"`
	PID         int       `json:"pid,omitempty"`
	GoVersion   string    `json:"go_version,omitempty"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	Uptime      string    `json:"uptime,omitempty"`
	Ports       ports     `json:"ports"`
	Ready       bool      `json:"ready"`
	Readiness   string    `json:"readiness"` // ready, not ready, draining, unreachable, unknown
	Error       string    `json:"error,omitempty"`
}

// scanner finds services by probing admin ports on one host.
type scanner struct {
	host  string
	ports []int
	spec  string // the ports as given, for messages
	token string
	http  *http.Client
	// dial opens the connection that tells whether a port is open; nil is
	// a net.Dialer with dialTimeout. Tests count and hold dials with it.
	dial func(ctx context.Context, network, address string) (net.Conn, error)
}

func newScanner(e *env, token string) (*scanner, error) {
	spec := e.getenv(envPorts)
	if spec == "" {
		spec = scanPorts
	}
	ps, err := parsePortList(spec)
	if err != nil {
		return nil, usagef("%s=%q: %v", envPorts, spec, err)
	}
	return &scanner{host: scanHost, ports: ps, spec: spec, token: token, http: newHTTPClient(probeTimeout)}, nil
}

// parsePortList parses "4000-4999" or "4010,4020,5000-5010".
func parsePortList(spec string) ([]int, error) {
	var out []int
	for part := range strings.SplitSeq(spec, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
			return nil, fmt.Errorf("%q is not a port or a range lo-hi of ports in 1..65535", part)
		}
		for p := a; p <= b; p++ {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// where describes what the scanner looked at, for messages.
func (s *scanner) where() string { return fmt.Sprintf("%s ports %s", s.host, s.spec) }

// scan returns the services that answer on the scanned ports, ordered by
// admin port. It connects to every port concurrently; only ports that
// accept are asked for their info.
func (s *scanner) scan(ctx context.Context) []local {
	open := make(chan int)
	sem := make(chan struct{}, maxDialers)
	var dialers sync.WaitGroup
	go func() {
		dial := s.dial
		if dial == nil {
			dial = (&net.Dialer{Timeout: dialTimeout}).DialContext
		}
		for _, p := range s.ports {
			sem <- struct{}{}
			dialers.Go(func() {
				defer func() { <-sem }()
				c, err := dial(ctx, "tcp", net.JoinHostPort(s.host, strconv.Itoa(p)))
				if err == nil {
					c.Close()
					open <- p
				}
			})
		}
		dialers.Wait()
		close(open)
	}()

	var (
		mu    sync.Mutex // guards found
		found []local
		probe sync.WaitGroup
	)
	for p := range open {
		probe.Go(func() {
			if l, ok := s.probe(ctx, p); ok {
				mu.Lock()
				found = append(found, l)
				mu.Unlock()
			}
		})
	}
	probe.Wait()
	slices.SortFunc(found, func(a, b local) int { return a.AdminPort - b.AdminPort })
	return found
}

// probe asks the listener on port whether it is a svc admin listener. A
// listener that wants a token (it answers 401 with the svc realm) is
// reported with an error instead of its info. The token is sent only to
// listeners that ask for it, never to whatever else listens in the range.
func (s *scanner) probe(ctx context.Context, port int) (local, bool) {
	c := s.client(port)
	l := local{AdminPort: port, Offset: offsetOf(port), Readiness: "unknown"}
	ctx, cancel := context.WithTimeout(ctx, 2*probeTimeout)
	defer cancel()
	get := func(token string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/", nil)
		if err != nil {
			return nil, err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		return s.http.Do(req)
	}
	locked := func(resp *http.Response) bool {
		return resp.StatusCode == http.StatusUnauthorized && strings.Contains(resp.Header.Get("WWW-Authenticate"), `realm="svc admin"`)
	}
	resp, err := get("")
	if err != nil {
		return l, false
	}
	if locked(resp) && s.token != "" {
		resp.Body.Close()
		if resp, err = get(s.token); err != nil {
			return l, false
		}
	}
	defer resp.Body.Close()
	if locked(resp) {
		l.Error = "unauthorized: pass --token or set SVC_ADMIN_TOKEN"
		if s.token != "" {
			l.Error = "unauthorized: the token given was refused"
		}
		return l, true
	}
	var in info
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&in) != nil || in.Name == "" || in.Ports.Admin == 0 {
		return l, false // not a svc admin listener
	}
	l.Name, l.Environment, l.Version, l.Instance = in.Name, in.Environment, in.Version, in.Instance
	l.StartedAt, l.Ports = in.StartedAt, in.Ports
	if !in.StartedAt.IsZero() {
		l.Uptime = time.Since(in.StartedAt).Round(time.Second).String()
	}

	var wg sync.WaitGroup
	wg.Go(func() {
		var p process
		if c.getJSON(ctx, "/admin/process", &p) == nil { // absent on older services
			l.PID, l.GoVersion = p.PID, p.GoVersion
		}
	})
	if in.Ports.Private != 0 {
		wg.Go(func() {
			l.Readiness = readiness(ctx, s.http, net.JoinHostPort(s.host, strconv.Itoa(in.Ports.Private)))
			l.Ready = l.Readiness == "ready"
		})
	}
	wg.Wait()
	return l, true
}

// client returns an admin client for port on the scanned host.
func (s *scanner) client(port int) *adminClient {
	addr := net.JoinHostPort(s.host, strconv.Itoa(port))
	return &adminClient{base: "http://" + addr, label: addr, token: s.token, http: s.http}
}

func cmdPs(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	token := fs.String("token", "", "admin bearer token (default $SVC_ADMIN_TOKEN)")
	pos, err := parseFlags(fs, args, psHelp)
	if err != nil {
		return err
	}
	if *token == "" {
		*token = e.getenv(envToken)
	}
	if len(pos) > 0 {
		return usagef("ps takes no arguments, got %q", pos)
	}
	s, err := newScanner(e, *token)
	if err != nil {
		return err
	}
	found := s.scan(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("ps: interrupted")
	}
	if len(found) == 0 {
		return fmt.Errorf("no svc service found on %s", s.where())
	}
	if *asJSON {
		return writeJSON(e.stdout, found)
	}
	rows := make([][]string, 0, len(found))
	for _, l := range found {
		if l.Error != "" {
			rows = append(rows, []string{"?", optInt(l.Offset), "-", "-", "-", "-", strconv.Itoa(l.AdminPort), "-", "-", l.Error})
			continue
		}
		rows = append(rows, []string{
			l.Name, optInt(l.Offset), dash(l.PID), l.Version, l.Environment, l.Uptime,
			strconv.Itoa(l.AdminPort), dash(l.Ports.Public), dash(l.Ports.Private), l.Readiness,
		})
	}
	return table(e.stdout, []string{"NAME", "OFFSET", "PID", "VERSION", "ENV", "UPTIME", "ADMIN", "PUBLIC", "PRIVATE", "READY"}, rows)
}

// offsetOf returns admin port - 4000, or nil outside the convention's range.
func offsetOf(adminPort int) *int {
	if o := adminPort - convention.AdminBase; convention.CheckOffset(o) == nil {
		return &o
	}
	return nil
}

func optInt(p *int) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(*p)
}

func dash(n int) string {
	if n == 0 {
		return "-"
	}
	return strconv.Itoa(n)
}
