package svc

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/svc-dev/svc/config"
)

// printHelp prints the conventions in force: ports, the files looked for,
// and every framework key with its variable, value and layer.
func printHelp(w io.Writer, name string, offset int, o *options) error {
	if err := validate(name, offset); err != nil {
		return err
	}
	l, err := loadConfig(name, offset, o)
	if err != nil {
		return err
	}
	s := l.store
	fmt.Fprintf(w, "%s: an svc service at offset %d. It takes no flags: configuration comes from\n", name, offset)
	fmt.Fprintf(w, "layers, lowest precedence first: %v.\n\n", s.Layers())

	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LISTENER\tADDRESS\tSERVES\tOVERRIDE")
	for _, ln := range []struct{ name, serves string }{
		{"admin", "/, /admin, /debug/pprof, /admin/loglevel, /admin/config, /admin/tasks"},
		{"public", "the service's API"},
		{"private", "/healthz, /readyz, /metrics, /info"},
	} {
		host, port := s.String(ln.name+".host", ""), s.String(ln.name+".port", "")
		fmt.Fprintf(tw, "%s\t%s:%s\t%s\t%s / %s\n", ln.name, host, port, ln.serves,
			ln.name+".port", config.EnvName(ln.name+".port"))
	}
	tw.Flush()

	fmt.Fprintf(w, "\nConfig files looked for (%s=%s):\n", EnvConfigDir, l.dir)
	for _, f := range l.files {
		state := "not found"
		if f.found {
			state = "found"
		}
		fmt.Fprintf(w, "  %s (%s)\n", f.path, state)
	}

	fmt.Fprintln(w, "\nKeys:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tENV\tVALUE\tLAYER\tMEANING")
	for _, d := range keyDocs(offset) {
		v, ok := s.Lookup(d.key)
		val, layer := "-", "-"
		if ok {
			val, layer = v.Display(), v.Layer
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.key, config.EnvName(d.key), val, layer, d.help)
	}
	fmt.Fprintf(tw, "discovery.override.<name>\tDISCOVERY_OVERRIDE_<NAME>\t\t\tbase URL or URL template used for <name> instead of discovery\n")
	fmt.Fprintf(tw, "services.<name>.offset\tSERVICES_<NAME>_OFFSET\t\t\t<name>'s offset, for discovery by convention without a registry\n")
	fmt.Fprintf(tw, "services.<name>.host\tSERVICES_<NAME>_HOST\t\t\t<name>'s host for discovery by convention (default localhost)\n")
	return tw.Flush()
}
