package svc

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/svc-dev/svc/config"
)

// printHelp prints the conventions in force: ports, the files looked for,
// and every declared key (the framework's and the service's) with its
// variable, type, value and layer. It reads the files and the environment,
// not etcd.
func printHelp(w io.Writer, name string, offset int, o *options) error {
	if err := validate(name, offset); err != nil {
		return err
	}
	schema, err := schemaOf(offset, o)
	if err != nil {
		return err
	}
	l, err := bootstrap(name, schema, o)
	if err != nil {
		return err
	}
	s := l.store
	if err := schema.CheckAll(s); err != nil { // a start would refuse them
		return err
	}
	fmt.Fprintf(w, "%s: an svc service at offset %d. It takes no flags: configuration comes from\n", name, offset)
	fmt.Fprintf(w, "layers, lowest precedence first: convention < %s.json < %s.<environment>.json < etcd (when\n", name, name)
	fmt.Fprintf(w, "etcd.endpoints is set) < environment < admin overrides (PUT /admin/config/KEY). Set here: %v.\n\n", s.Layers())

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LISTENER\tADDRESS\tSERVES\tOVERRIDE")
	for _, ln := range []struct{ name, serves string }{
		{"admin", "/, /admin (lists every endpoint), /debug/pprof, /admin/loglevel, /admin/config, /admin/drain, /admin/restart, /admin/tasks, /admin/flight"},
		{"public", "the service's API"},
		{"private", "/healthz, /readyz, /metrics, /info"},
	} {
		host, port := s.String(ln.name+".host", ""), s.String(ln.name+".port", "")
		fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s / %s\n", ln.name, host, port, ln.serves,
			ln.name+".port", config.EnvName(ln.name+".port"))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nConfig files looked for (%s=%s):\n", EnvConfigDir, l.boot.ConfigDir)
	for _, f := range l.files {
		state := "not found"
		if f.found {
			state = "found"
		}
		fmt.Fprintf(w, "  %s (%s)\n", f.path, state)
	}

	fmt.Fprintln(w, "\nKeys (a key no one declared, in a file or etcd, fails the start):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tENV\tTYPE\tVALUE\tLAYER\tRELOAD\tMEANING")
	for _, d := range schema.Decls() {
		val, layer := "-", "-"
		if v, ok := s.Lookup(d.Key); ok && !d.Pattern() {
			val, layer = v.Display(), v.Layer
		}
		reload := "restart"
		if d.Live {
			reload = "live"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Key, d.Env(), d.Type, val, layer, reload, d.Doc)
	}
	return tw.Flush()
}
