package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/convention"
)

const portsHelp = `Usage: svcctl ports [FILE] [--json]

Checks a port catalog: a JSON file of services.<name>.offset keys, nested
or dotted as in any svc config file,

  {"services": {"orders": {"offset": 20}, "users": {"offset": 30}}}

Every service uses admin 4000+offset, public 8000+offset and private
8001+offset, so offsets 10 and 11 collide on 8011. Prints each service's
ports and the lowest free offset (a multiple of 10, by convention); exits 1
naming the port and the services on any collision. FILE defaults to
$CONFIG_DIR/services.json ($CONFIG_DIR defaults to ./config).
`

// catalogEntry is one service of a port catalog and its ports, and,
// for svcctl up, its Go package and extra environment.
type catalogEntry struct {
	Name    string `json:"name"`
	Offset  int    `json:"offset"`
	Admin   int    `json:"admin"`
	Public  int    `json:"public"`
	Private int    `json:"private"`

	Package string            `json:"-"` // services.<name>.package: what svcctl up builds
	Env     map[string]string `json:"-"` // services.<name>.env.<VAR>: what svcctl up adds to its environment
}

// portUse is one listener of one service on a port.
type portUse struct {
	Service  string `json:"service"`
	Listener string `json:"listener"` // admin, public or private
	Offset   int    `json:"offset"`
}

// collision is a port that more than one listener wants.
type collision struct {
	Port int       `json:"port"`
	Uses []portUse `json:"uses"`
}

func (c collision) String() string {
	parts := make([]string, len(c.Uses))
	for i, u := range c.Uses {
		parts[i] = fmt.Sprintf("%s (%s, offset %d)", u.Service, u.Listener, u.Offset)
	}
	last := len(parts) - 1
	return fmt.Sprintf("port %d is used by %s and %s", c.Port, strings.Join(parts[:last], ", "), parts[last])
}

func entryFor(name string, offset int) catalogEntry {
	p := convention.PortsOf(offset)
	return catalogEntry{Name: name, Offset: offset, Admin: p.Admin, Public: p.Public, Private: p.Private}
}

func (c catalogEntry) uses() []struct {
	port int
	use  portUse
} {
	return []struct {
		port int
		use  portUse
	}{
		{c.Admin, portUse{c.Name, "admin", c.Offset}},
		{c.Public, portUse{c.Name, "public", c.Offset}},
		{c.Private, portUse{c.Name, "private", c.Offset}},
	}
}

// readCatalog reads the services.<name>.offset keys of file, and each
// service's package and env when it has them. Malformed JSON is reported
// with the file and line:column; a bad name or offset with its key and
// value. Other keys (services.<name>.host, ...) are ignored.
func readCatalog(file string) ([]catalogEntry, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("port catalog %s does not exist", file)
		}
		return nil, fmt.Errorf("port catalog: %w", err)
	}
	flat, err := config.ParseJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%s:%v", file, err) // err starts with " line:col:"
	}
	var out []catalogEntry
	for key, val := range flat {
		rest, ok := strings.CutPrefix(key, "services.")
		if !ok {
			continue
		}
		name, ok := strings.CutSuffix(rest, ".offset")
		if !ok {
			continue
		}
		if err := convention.CheckName("service name", name); err != nil {
			return nil, fmt.Errorf("%s: key %s: %w", file, key, err)
		}
		o, err := strconv.Atoi(val)
		if err != nil || convention.CheckOffset(o) != nil {
			return nil, fmt.Errorf("%s: key %s: offset %q must be an integer in 0..%d", file, key, val, convention.MaxOffset)
		}
		en := entryFor(name, o)
		en.Package = flat["services."+name+".package"]
		en.Env = catalogEnv(flat, "services."+name+".env.")
		out = append(out, en)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no services.<name>.offset keys: not a port catalog", file)
	}
	slices.SortFunc(out, func(a, b catalogEntry) int {
		return cmp.Or(cmp.Compare(a.Offset, b.Offset), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}

// catalogEnv returns the variables under prefix of a flattened catalog.
// Flattening lower-cases keys, so a name is upper-cased back with '.'
// and '-' as '_', the way svc names a key's variable: LOG_LEVEL,
// log_level and log.level all give LOG_LEVEL.
func catalogEnv(flat map[string]string, prefix string) map[string]string {
	var env map[string]string
	for k, v := range flat {
		if name, ok := strings.CutPrefix(k, prefix); ok && name != "" {
			if env == nil {
				env = map[string]string{}
			}
			env[convention.EnvName(name)] = v
		}
	}
	return env
}

// checkCatalog returns the ports wanted by more than one listener, by
// port, and the lowest free multiple of offsetStep (-1 if none).
func checkCatalog(entries []catalogEntry) ([]collision, int) {
	byPort := map[int][]portUse{}
	for _, e := range entries {
		for _, u := range e.uses() {
			byPort[u.port] = append(byPort[u.port], u.use)
		}
	}
	var cs []collision
	for port, uses := range byPort {
		if len(uses) > 1 {
			cs = append(cs, collision{Port: port, Uses: uses})
		}
	}
	slices.SortFunc(cs, func(a, b collision) int { return a.Port - b.Port })
	next := -1
	for o := convention.OffsetStep; o <= convention.MaxOffset; o += convention.OffsetStep {
		free := true
		for _, u := range entryFor("", o).uses() {
			if _, taken := byPort[u.port]; taken {
				free = false
				break
			}
		}
		if free {
			next = o
			break
		}
	}
	return cs, next
}

// catalogFile returns the catalog named by cmd's arguments: the one FILE
// given, or $CONFIG_DIR/services.json ($CONFIG_DIR defaults to ./config).
func catalogFile(e *env, cmd string, pos []string) (string, error) {
	switch len(pos) {
	case 0:
		return filepath.Join(cmp.Or(e.getenv("CONFIG_DIR"), "config"), "services.json"), nil
	case 1:
		return pos[0], nil
	}
	return "", usagef("%s takes one FILE, got %q", cmd, pos)
}

func cmdPorts(_ context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("ports", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args, portsHelp)
	if err != nil {
		return err
	}
	file, err := catalogFile(e, "ports", pos)
	if err != nil {
		return err
	}
	entries, err := readCatalog(file)
	if err != nil {
		return err
	}
	cs, next := checkCatalog(entries)

	if *asJSON {
		out := map[string]any{"file": file, "services": entries, "collisions": cs, "next_free_offset": next}
		if cs == nil {
			out["collisions"] = []collision{}
		}
		if err := writeJSON(e.stdout, out); err != nil {
			return err
		}
	} else {
		bad := map[string][]string{} // service -> ports it shares
		for _, c := range cs {
			for _, u := range c.Uses {
				bad[u.Service] = append(bad[u.Service], strconv.Itoa(c.Port))
			}
		}
		rows := make([][]string, 0, len(entries))
		for _, en := range entries {
			status := "ok"
			if ps := bad[en.Name]; len(ps) > 0 {
				status = "COLLIDES on " + strings.Join(slices.Compact(ps), ", ")
			}
			rows = append(rows, []string{en.Name, strconv.Itoa(en.Offset), strconv.Itoa(en.Admin), strconv.Itoa(en.Public), strconv.Itoa(en.Private), status})
		}
		if err := table(e.stdout, []string{"SERVICE", "OFFSET", "ADMIN", "PUBLIC", "PRIVATE", "STATUS"}, rows); err != nil {
			return err
		}
		if next >= 0 {
			n := entryFor("", next)
			fmt.Fprintf(e.stdout, "next free offset: %d (admin %d, public %d, private %d)\n", next, n.Admin, n.Public, n.Private)
		} else {
			fmt.Fprintln(e.stdout, "next free offset: none left in 10..990")
		}
	}
	if len(cs) == 0 {
		return nil
	}
	lines := make([]string, len(cs))
	for i, c := range cs {
		lines[i] = "  " + c.String()
	}
	return fmt.Errorf("%s: %s:\n%s", file, plural(len(cs), "port collision"), strings.Join(lines, "\n"))
}
