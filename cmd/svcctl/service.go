package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/internal/convention"
)

// serviceCmd is one command acting on a service through its admin listener.
type serviceCmd struct {
	help string // usage line and one sentence
	// run performs the command with the positional arguments; fs holds
	// the flags setup declared.
	run func(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, args []string, asJSON bool) error
	// minArgs, maxArgs bound the positional arguments (maxArgs -1: any number).
	minArgs, maxArgs int
	setup            func(fs *flag.FlagSet) // declares the command's own flags; may be nil
}

var serviceCmds = map[string]serviceCmd{
	"info":     {help: "info [--json]: name, environment, version, ports, pid, uptime, Go version", run: svcInfo},
	"loglevel": {help: "loglevel [LEVEL] [--for DURATION] [--json]: show or set the log level (debug, info, warn, error); --for reverts after DURATION", run: svcLoglevel, maxArgs: 1, setup: func(fs *flag.FlagSet) { fs.Duration("for", 0, "revert after this long") }},
	"config":   {help: configHelp, run: svcConfig, maxArgs: 3, setup: func(fs *flag.FlagSet) { fs.Duration("for", 0, "with set: revert after this long") }},
	"restart":  {help: "restart [--wait DURATION] [--json]: restart the service in place (POST /admin/restart); --wait waits until the new process answers", run: svcRestart, setup: func(fs *flag.FlagSet) { fs.Duration("wait", 0, "wait this long for the restarted service to answer") }},
	"reload":   {help: "reload: re-read config files and etcd now; prints what changed, was rejected or needs a restart (JSON)", run: svcReload},
	"drain":    {help: "drain [--json]: readiness 503 and deregister; requests are still served", run: svcAction("/admin/drain")},
	"undrain":  {help: "undrain [--json]: ready again and registered", run: svcAction("/admin/undrain")},
	"tasks":    {help: "tasks [--json]: the tasks the service registered", run: svcTasks},
	"task":     {help: "task NAME [KEY=VALUE ...]: run a task; its output is streamed", run: svcTask, minArgs: 1, maxArgs: -1},
	"stack":    {help: "stack [--grouped]: every goroutine's stack; --grouped counts identical stacks", run: svcStack, setup: func(fs *flag.FlagSet) { fs.Bool("grouped", false, "group identical stacks") }},
	"memstats": {help: "memstats [--json]: memory and GC statistics", run: svcMemstats},
	"gc":       {help: "gc [--free] [--json]: force a garbage collection; --free also returns memory to the OS", run: svcGC, setup: func(fs *flag.FlagSet) { fs.Bool("free", false, "return memory to the OS") }},
	"build":    {help: "build [--json]: Go version, main module, dependencies and VCS settings", run: svcBuild},
	"registry": {help: "registry: the service's registry status (JSON)", run: svcRegistry("/admin/registry")},
	"instance": {help: "instance: this instance's record as advertised in the registry (JSON)", run: svcRegistry("/admin/instance")},
	"pprof":    {help: pprofHelp, run: svcPprof, minArgs: 1, maxArgs: 1, setup: pprofFlags},
	"flight":   {help: flightHelp, run: svcFlight, maxArgs: 1, setup: flightFlags},
	"get":      {help: "get PATH [--raw]: GET any admin endpoint and print its answer (GET /admin lists them); --raw copies it byte for byte", run: svcRaw(http.MethodGet), minArgs: 1, maxArgs: 1, setup: rawFlag},
	"post":     {help: "post PATH [BODY] [--raw]: POST to any admin endpoint and print its answer; --raw copies it byte for byte", run: svcRaw(http.MethodPost), minArgs: 1, maxArgs: 2, setup: rawFlag},
}

func serviceCmdNames() string {
	names := make([]string, 0, len(serviceCmds))
	for n := range serviceCmds {
		names = append(names, n)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// cmdService runs "svcctl TARGET COMMAND ARGS...".
func cmdService(ctx context.Context, e *env, target string, args []string) error {
	if len(args) == 0 {
		return usagef("%s: a command is needed: %s", target, serviceCmdNames())
	}
	name, args := args[0], args[1:]
	sc, ok := serviceCmds[name]
	if !ok {
		return usagef("%s: unknown command %q: want one of %s", target, name, serviceCmdNames())
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	token := fs.String("token", "", "admin bearer token, sent as \"Authorization: Bearer\" (default $SVC_ADMIN_TOKEN)")
	asJSON := fs.Bool("json", false, "print JSON")
	if sc.setup != nil {
		sc.setup(fs)
	}
	var flags strings.Builder
	fs.SetOutput(&flags)
	fs.PrintDefaults()
	help := fmt.Sprintf("Usage: svcctl <service|admin-port> %s\n\nFlags:\n%s", sc.help, flags.String())
	pos, err := parseFlags(fs, args, help)
	if err != nil {
		return err
	}
	if *token == "" {
		*token = e.getenv(envToken) // not the flag's default: help would print it
	}
	if len(pos) < sc.minArgs || (sc.maxArgs >= 0 && len(pos) > sc.maxArgs) {
		return usagef("usage: svcctl %s %s", target, sc.help)
	}
	c, err := resolve(ctx, e, target, *token)
	if err != nil {
		return err
	}
	return sc.run(ctx, e, c, fs, pos, *asJSON)
}

// resolve turns a target into an admin client: an admin port (4010),
// host:port, a URL, or a service name found on this host.
func resolve(ctx context.Context, e *env, target, token string) (*adminClient, error) {
	hc := newHTTPClient(0) // calls set their own deadlines
	client := func(hostport, name string) *adminClient {
		label := hostport
		if name != "" {
			label = name + " (" + hostport + ")"
		}
		return &adminClient{base: "http://" + hostport, label: label, name: name, token: token, http: hc}
	}
	if p, err := strconv.Atoi(target); err == nil {
		if p < 1 || p > 65535 {
			return nil, usagef("admin port %d is not in 1..65535", p)
		}
		return client(net.JoinHostPort(scanHost, target), ""), nil
	}
	if u, err := url.Parse(target); err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" {
		c := client(u.Host, "")
		c.base = strings.TrimSuffix(u.Scheme+"://"+u.Host+u.Path, "/")
		return c, nil
	}
	if host, port, err := net.SplitHostPort(target); err == nil && host != "" {
		if _, err := strconv.Atoi(port); err == nil {
			return client(target, ""), nil
		}
	}
	if !convention.IsName(target) {
		return nil, usagef("unknown command or service %q: want ps, ls, ports, prom-sd, a service name, an admin port or host:port", target)
	}
	s, err := newScanner(e, token)
	if err != nil {
		return nil, err
	}
	var match []local
	var locked []string
	for _, l := range s.scan(ctx) {
		switch {
		case l.Name == target:
			match = append(match, l)
		case l.Error != "":
			locked = append(locked, strconv.Itoa(l.AdminPort))
		}
	}
	switch len(match) {
	case 0:
		msg := fmt.Sprintf("no service named %q found on %s (svcctl ps lists what runs; a service can also be named by its admin port)", target, s.where())
		if len(locked) > 0 {
			noun := "admin port"
			if len(locked) > 1 {
				noun += "s"
			}
			msg += fmt.Sprintf("; %s %s refused to answer without a valid token (--token or SVC_ADMIN_TOKEN)", noun, strings.Join(locked, ", "))
		}
		return nil, fmt.Errorf("%s", msg)
	case 1:
		return client(net.JoinHostPort(s.host, strconv.Itoa(match[0].AdminPort)), target), nil
	}
	var list []string
	for _, l := range match {
		list = append(list, strconv.Itoa(l.AdminPort))
	}
	return nil, fmt.Errorf("%d services named %q run on this host, admin ports %s: name one by its admin port (svcctl %s %s ...)",
		len(match), target, strings.Join(list, ", "), list[0], "COMMAND")
}

func svcInfo(ctx context.Context, e *env, c *adminClient, _ *flag.FlagSet, _ []string, asJSON bool) error {
	var in info
	if err := c.getJSON(ctx, "/", &in); err != nil {
		return err
	}
	var p struct {
		process
		Uptime     string `json:"uptime"`
		OS         string `json:"os"`
		Arch       string `json:"arch"`
		GOMAXPROCS int    `json:"gomaxprocs"`
		Goroutines int    `json:"goroutines"`
		Executable string `json:"executable"`
	}
	perr := c.getJSON(ctx, "/admin/process", &p)
	if asJSON {
		out := map[string]any{"info": in}
		if perr == nil {
			out["process"] = p
		}
		return writeJSON(e.stdout, out)
	}
	rows := [][]string{
		{"name", in.Name}, {"environment", in.Environment}, {"version", in.Version},
		{"instance", in.Instance}, {"started_at", in.StartedAt.Format(time.RFC3339)},
		{"ports", fmt.Sprintf("admin %d, public %d, private %d", in.Ports.Admin, in.Ports.Public, in.Ports.Private)},
	}
	if perr == nil {
		rows = append(rows,
			[]string{"pid", strconv.Itoa(p.PID)}, []string{"uptime", p.Uptime},
			[]string{"go", fmt.Sprintf("%s %s/%s, GOMAXPROCS %d", p.GoVersion, p.OS, p.Arch, p.GOMAXPROCS)},
			[]string{"goroutines", strconv.Itoa(p.Goroutines)}, []string{"executable", p.Executable})
	}
	return table(e.stdout, []string{"KEY", "VALUE"}, rows)
}

func svcLoglevel(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, args []string, asJSON bool) error {
	d := fs.Lookup("for").Value.(flag.Getter).Get().(time.Duration)
	var resp struct {
		Level     string `json:"level"`
		Previous  string `json:"previous"`
		RevertsAt string `json:"reverts_at"`
		RevertsTo string `json:"reverts_to,omitempty"`
	}
	if len(args) == 0 {
		if d != 0 {
			return usagef("loglevel --for needs a LEVEL")
		}
		if err := c.getJSON(ctx, "/admin/loglevel", &resp); err != nil {
			return err
		}
	} else {
		if d < 0 {
			return usagef("loglevel --for %s: want a positive duration", d)
		}
		path := "/admin/loglevel"
		if d > 0 {
			path += "?for=" + url.QueryEscape(d.String())
		}
		if err := c.callJSON(ctx, http.MethodPut, path, strings.NewReader(args[0]), &resp); err != nil {
			return err
		}
	}
	if asJSON {
		return writeJSON(e.stdout, resp)
	}
	resp.Level, resp.Previous, resp.RevertsAt, resp.RevertsTo = cleanCell(resp.Level), cleanCell(resp.Previous), cleanCell(resp.RevertsAt), cleanCell(resp.RevertsTo)
	switch {
	case len(args) == 0:
		fmt.Fprintln(e.stdout, resp.Level)
	case resp.RevertsAt != "":
		fmt.Fprintf(e.stdout, "%s (was %s; back to %s at %s)\n", resp.Level, resp.Previous, cmp.Or(resp.RevertsTo, resp.Previous), resp.RevertsAt)
	default:
		fmt.Fprintf(e.stdout, "%s (was %s)\n", resp.Level, resp.Previous)
	}
	return nil
}

func svcConfig(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, args []string, asJSON bool) error {
	if len(args) > 0 {
		return svcConfigChange(ctx, e, c, fs, args, asJSON)
	}
	if fs.Lookup("for").Value.String() != "0s" {
		return usagef("config --for goes with config set KEY VALUE")
	}
	var resp struct {
		Keys []struct {
			Key     string `json:"key"`
			Value   string `json:"value"`
			Layer   string `json:"layer"`
			Expires string `json:"expires,omitempty"` // of an override set with --for
		} `json:"keys"`
	}
	if err := c.getJSON(ctx, "/admin/config", &resp); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, resp)
	}
	rows := make([][]string, 0, len(resp.Keys))
	for _, k := range resp.Keys {
		layer := k.Layer
		if k.Expires != "" {
			layer += " until " + k.Expires
		}
		rows = append(rows, []string{k.Key, k.Value, layer})
	}
	return table(e.stdout, []string{"KEY", "VALUE", "LAYER"}, rows)
}

func svcAction(path string) func(context.Context, *env, *adminClient, *flag.FlagSet, []string, bool) error {
	return func(ctx context.Context, e *env, c *adminClient, _ *flag.FlagSet, _ []string, asJSON bool) error {
		var resp struct {
			State string `json:"state"`
		}
		if err := c.callJSON(ctx, http.MethodPost, path, nil, &resp); err != nil {
			return err
		}
		if asJSON {
			return writeJSON(e.stdout, resp)
		}
		fmt.Fprintf(e.stdout, "%s: %s\n", c.label, cleanCell(resp.State))
		return nil
	}
}

func svcTasks(ctx context.Context, e *env, c *adminClient, _ *flag.FlagSet, _ []string, asJSON bool) error {
	var resp struct {
		Tasks []struct {
			Name string `json:"name"`
			Help string `json:"help"`
		} `json:"tasks"`
	}
	if err := c.getJSON(ctx, "/admin/tasks", &resp); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, resp)
	}
	rows := make([][]string, 0, len(resp.Tasks))
	for _, t := range resp.Tasks {
		rows = append(rows, []string{t.Name, t.Help})
	}
	return table(e.stdout, []string{"TASK", "HELP"}, rows)
}

// svcTask runs a task, streaming its output. The admin listener reports an
// error after output has begun as a last line "error: task NAME: ...";
// svcctl then exits 1.
func svcTask(ctx context.Context, e *env, c *adminClient, _ *flag.FlagSet, args []string, _ bool) error {
	name, kvs := args[0], args[1:]
	q := url.Values{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usagef("task %s: argument %q: want KEY=VALUE", name, kv)
		}
		q.Add(k, v)
	}
	path := "/admin/tasks/" + url.PathEscape(name)
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	resp, err := c.do(ctx, http.MethodPost, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	tail := &tailWriter{w: e.stdout}
	if _, err := io.Copy(tail, resp.Body); err != nil {
		return fmt.Errorf("%s: task %s: output cut short: %s", c.label, name, connError(err))
	}
	if last := tail.lastLine(); strings.HasPrefix(last, "error: task "+name+": ") {
		return fmt.Errorf("%s: %s", c.label, strings.TrimPrefix(last, "error: "))
	}
	return nil
}

// tailWriter passes writes through and remembers the end of the stream.
type tailWriter struct {
	w    io.Writer
	tail []byte // the last bytes written, at most 4 KiB
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.tail = append(t.tail, p...)
	if len(t.tail) > 4096 {
		t.tail = t.tail[len(t.tail)-4096:]
	}
	return t.w.Write(p)
}

func (t *tailWriter) lastLine() string {
	s := strings.TrimRight(string(t.tail), "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func svcStack(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, _ []string, _ bool) error {
	path := "/admin/stack"
	if fs.Lookup("grouped").Value.String() == "true" {
		path += "?debug=1"
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(e.stdout, resp.Body)
	return err
}

// memstats is the JSON of GET /admin/memstats.
type memstats = admin.MemStats

func svcMemstats(ctx context.Context, e *env, c *adminClient, _ *flag.FlagSet, _ []string, asJSON bool) error {
	var m memstats
	if err := c.getJSON(ctx, "/admin/memstats", &m); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, m)
	}
	gogc := strconv.FormatInt(m.GOGC, 10)
	if m.GOGC < 0 {
		gogc = "off"
	}
	limit := "none"
	if m.GOMEMLIMITBytes > 0 && m.GOMEMLIMITBytes < 1<<62 {
		limit = bytesHuman(uint64(m.GOMEMLIMITBytes))
	}
	lastGC := "never"
	if !m.LastGC.IsZero() {
		lastGC = time.Since(m.LastGC).Round(time.Millisecond).String() + " ago"
	}
	rows := [][]string{
		{"heap alloc", bytesHuman(m.HeapAllocBytes)},
		{"heap in use", bytesHuman(m.HeapInuseBytes)},
		{"heap idle", bytesHuman(m.HeapIdleBytes)},
		{"heap released", bytesHuman(m.HeapReleasedBytes)},
		{"heap objects", strconv.FormatUint(m.HeapObjects, 10)},
		{"stack in use", bytesHuman(m.StackInuseBytes)},
		{"sys", bytesHuman(m.SysBytes)},
		{"total alloc", bytesHuman(m.TotalAllocBytes)},
		{"mallocs / frees", fmt.Sprintf("%d / %d", m.Mallocs, m.Frees)},
		{"next gc", bytesHuman(m.NextGCBytes)},
		{"gc cycles", fmt.Sprintf("%d (%d forced)", m.NumGC, m.NumForcedGC)},
		{"last gc", lastGC},
		{"last pause", m.LastPause},
		{"pause total", m.PauseTotal},
		{"gc cpu fraction", fmt.Sprintf("%.4f%%", 100*m.GCCPUFraction)},
		{"GOGC", gogc},
		{"GOMEMLIMIT", limit},
		{"goroutines", strconv.Itoa(m.Goroutines)},
	}
	return table(e.stdout, []string{"STAT", "VALUE"}, rows)
}

func svcGC(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, _ []string, asJSON bool) error {
	path := "/admin/gc"
	if fs.Lookup("free").Value.String() == "true" {
		path += "?free=true"
	}
	var r struct {
		Before   uint64 `json:"heap_alloc_before_bytes"`
		After    uint64 `json:"heap_alloc_after_bytes"`
		Released uint64 `json:"heap_released_bytes"`
		Freed    bool   `json:"freed_os_memory"`
		Duration string `json:"duration"`
	}
	if err := c.callJSON(ctx, http.MethodPost, path, nil, &r); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, r)
	}
	fmt.Fprintf(e.stdout, "gc: heap %s -> %s in %s", bytesHuman(r.Before), bytesHuman(r.After), cleanCell(r.Duration))
	if r.Freed {
		fmt.Fprintf(e.stdout, "; %s released to the OS", bytesHuman(r.Released))
	}
	fmt.Fprintln(e.stdout)
	return nil
}

func svcBuild(ctx context.Context, e *env, c *adminClient, _ *flag.FlagSet, _ []string, asJSON bool) error {
	type module struct {
		Path    string  `json:"path"`
		Version string  `json:"version"`
		Sum     string  `json:"sum,omitempty"`
		Replace *module `json:"replace,omitempty"`
	}
	var b struct {
		GoVersion string            `json:"go_version"`
		Path      string            `json:"path"`
		Main      module            `json:"main"`
		Deps      []module          `json:"deps"`
		Settings  map[string]string `json:"settings"`
	}
	if err := c.getJSON(ctx, "/admin/build", &b); err != nil {
		return err
	}
	if asJSON {
		return writeJSON(e.stdout, b)
	}
	fmt.Fprintf(e.stdout, "%s built with %s (module %s %s)\n", cleanCell(b.Path), cleanCell(b.GoVersion), cleanCell(b.Main.Path), cleanCell(b.Main.Version))
	keys := make([]string, 0, len(b.Settings))
	for k := range b.Settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(e.stdout, "  %s=%s\n", cleanCell(k), cleanCell(b.Settings[k]))
	}
	fmt.Fprintln(e.stdout)
	rows := make([][]string, 0, len(b.Deps))
	for _, d := range b.Deps {
		v := d.Version
		if d.Replace != nil {
			v += " => " + d.Replace.Path + " " + d.Replace.Version
		}
		rows = append(rows, []string{d.Path, v})
	}
	return table(e.stdout, []string{"MODULE", "VERSION"}, rows)
}

// svcRegistry prints the JSON answer of a registry endpoint as it is. A
// service without a registry does not serve them.
func svcRegistry(path string) func(context.Context, *env, *adminClient, *flag.FlagSet, []string, bool) error {
	return func(ctx context.Context, e *env, c *adminClient, _ *flag.FlagSet, _ []string, _ bool) error {
		var v json.RawMessage
		if err := c.getJSON(ctx, path, &v); err != nil {
			var se *statusError
			if errors.As(err, &se) && se.code == http.StatusNotFound {
				return fmt.Errorf("%s (the service serves it only when it runs with a registry, etcd.endpoints, and its svc version has the endpoint)", err)
			}
			return err
		}
		return writeJSON(e.stdout, v)
	}
}

// svcRaw sends method to the path given and prints the answer: JSON with
// escapeJSON, other text through the terminal-safe stdout, and with --raw
// byte for byte.
func svcRaw(method string) func(context.Context, *env, *adminClient, *flag.FlagSet, []string, bool) error {
	return func(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, args []string, _ bool) error {
		path := args[0]
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		var body io.Reader
		if len(args) > 1 {
			body = strings.NewReader(args[1])
		}
		resp, err := c.do(ctx, method, path, body)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if f := fs.Lookup("raw"); f != nil && f.Value.String() == "true" {
			_, err = io.Copy(e.rawStdout, resp.Body)
			return err
		}
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
			b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONAnswer))
			if err != nil {
				return fmt.Errorf("%s: %s %s: %s", c.label, method, path, connError(err))
			}
			_, err = e.stdout.Write(escapeJSON(b))
			return err
		}
		_, err = io.Copy(e.stdout, resp.Body)
		return err
	}
}

// maxJSONAnswer bounds a JSON answer that get or post read whole to escape it.
const maxJSONAnswer = 64 << 20

// rawFlag declares --raw on get and post.
func rawFlag(fs *flag.FlagSet) {
	fs.Bool("raw", false, "copy the answer byte for byte, control characters included (for a file or a pipe)")
}

// svcReload is "reload": POST /admin/config/reload.
func svcReload(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, _ []string, asJSON bool) error {
	return svcRaw(http.MethodPost)(ctx, e, c, fs, []string{"/admin/config/reload"}, asJSON)
}
