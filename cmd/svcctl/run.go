package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line is wrong
)

const usage = `svcctl sees and steers svc services.

Usage:
  svcctl ps [--json]                         services on this host (admin ports 4000-4999 on 127.0.0.1)
  svcctl ls [--env E] [--json]               instances registered in etcd (ETCD_ENDPOINTS), with health
  svcctl ports [FILE] [--json]               check a port catalog for collisions (default $CONFIG_DIR/services.json)
  svcctl prom-sd [--env E] [--listen ADDR]   serve Prometheus http_sd_config targets of the registry
  svcctl up [FILE] [--watch]                 build and run every service of a port catalog on this machine
  svcctl <service|admin-port> COMMAND ...    act on one service through its admin listener

Service commands:
  info                                   name, version, ports, pid, uptime, Go version
  loglevel [LEVEL] [--for 5m]            show or set the log level (debug|info|warn|error)
  config                                 effective configuration: key, value, layer
  config set KEY VALUE [--for 5m]        set a key on the running service (--for: then revert)
  config unset KEY                       drop the value config set gave it
  reload                                 read the configuration files and etcd again now
  restart [--wait 30s]                   restart in place; --wait until the new process answers
  drain | undrain                        readiness 503 and deregister (still serving) | the reverse
  tasks                                  the service's admin tasks
  task NAME [k=v ...]                    run a task; its output is streamed
  stack [--grouped]                      goroutine dump
  memstats                               memory and GC statistics
  gc [--free]                            force a garbage collection
  build                                  Go version, main module, dependencies
  registry | instance                    registry status | this instance's registry record
  pprof PROFILE [--seconds N] [-o FILE]  save cpu, heap, allocs, goroutine, block, mutex,
                                         threadcreate or trace; open it with go tool pprof
  flight start | flight [-o FILE]        flight recorder: keep the last seconds of execution
                                         trace | dump them; open with go tool trace;
                                         flight stop | flight status
  get PATH | post PATH [--raw]           any other admin endpoint (GET /admin lists them)

A service is its name (found on this host as svcctl ps finds it), its admin
port (4010) or host:port. Every service command takes --token (default
$SVC_ADMIN_TOKEN), sent as "Authorization: Bearer <token>", and most take --json.

Control characters in what services and the registry send (ESC sequences,
carriage returns, bidi overrides) are printed escaped, \x1b, \r, \u202e;
JSON output escapes them as JSON does. get and post --raw copy bytes as
they are.

Exit status: 0 success, 1 error, 2 usage.
`

// env is what a command reads and writes besides its arguments.
type env struct {
	getenv func(string) string
	// stdout and stderr escape what must not reach a terminal raw (see
	// sanitize.go); rawStdout and rawStderr are those given to run, for
	// the commands that copy bytes on request (get --raw) or escape
	// themselves (up's prefixed lines).
	stdout, stderr       io.Writer
	rawStdout, rawStderr io.Writer
	// environ is the environment the services svcctl up starts inherit.
	environ func() []string
}

// usageError is a wrong command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// run is the whole command: main only calls os.Exit(run(...)).
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	out, errw := &termWriter{w: stdout}, &termWriter{w: stderr}
	defer errw.Flush()
	defer out.Flush()
	return runCmd(ctx, args, &env{getenv: getenv, stdout: out, stderr: errw, rawStdout: stdout, rawStderr: stderr, environ: os.Environ})
}

// runCmd runs the command args names.
func runCmd(ctx context.Context, args []string, e *env) int {
	stdout, stderr := e.stdout, e.stderr
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	var err error
	switch cmd, rest := args[0], args[1:]; cmd {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case "ps":
		err = cmdPs(ctx, e, rest)
	case "ls":
		err = cmdLs(ctx, e, rest)
	case "ports":
		err = cmdPorts(ctx, e, rest)
	case "prom-sd":
		err = cmdPromSD(ctx, e, rest)
	case "up":
		err = cmdUp(ctx, e, rest)
	default:
		if strings.HasPrefix(cmd, "-") {
			err = usagef("unknown flag %s before a command", cmd)
			break
		}
		err = cmdService(ctx, e, cmd, rest)
	}
	return report(err, stdout, stderr)
}

// report prints err and returns the exit status for it.
func report(err error, stdout, stderr io.Writer) int {
	var ue *usageError
	var he *helpError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &he):
		fmt.Fprint(stdout, he.text)
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "svcctl: %s\nRun 'svcctl help' for usage.\n", ue.msg)
		return exitUsage
	default:
		fmt.Fprintf(stderr, "svcctl: %v\n", err)
		return exitError
	}
}

// helpError asks report to print a command's help and exit 0.
type helpError struct{ text string }

func (e *helpError) Error() string { return "help requested" }

// parseFlags parses flags anywhere among args ("loglevel debug --for 5m")
// and returns the positional arguments. help is printed for -h.
func parseFlags(fs *flag.FlagSet, args []string, help string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, &helpError{help}
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// table writes rows under header, aligned in columns. Every cell is
// escaped by cleanCell first: a control character in a value cannot
// reach the terminal or break the columns.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	line := func(cells []string) {
		clean := make([]string, len(cells))
		for i, c := range cells {
			clean[i] = cleanCell(c)
		}
		fmt.Fprintln(tw, strings.Join(clean, "\t"))
	}
	line(header)
	for _, r := range rows {
		line(r)
	}
	return tw.Flush()
}

// writeJSON writes v as indented JSON, with the runes that must not reach
// a terminal raw escaped as \u sequences (escapeJSON).
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	_, err := w.Write(escapeJSON(buf.Bytes()))
	return err
}

// bytesHuman formats n bytes with a binary unit: 12.3 MiB.
func bytesHuman(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
