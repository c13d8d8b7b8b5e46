package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/svc-dev/svc/internal/convention"
)

const pprofHelp = `pprof PROFILE [--seconds N] [-o FILE]: save a profile to FILE; open it with go tool pprof FILE
  PROFILE is cpu (--seconds, default 30), heap, allocs, goroutine, block, mutex,
  threadcreate (--seconds N: the difference over N seconds) or trace (--seconds,
  default 1). FILE defaults to <service>-<profile>-<time>.pprof (.trace for a trace)`

// profiles maps svcctl's profile names to the admin listener's paths.
var profiles = map[string]string{
	"cpu":          "/debug/pprof/profile",
	"trace":        "/debug/pprof/trace",
	"heap":         "/debug/pprof/heap",
	"allocs":       "/debug/pprof/allocs",
	"goroutine":    "/debug/pprof/goroutine",
	"block":        "/debug/pprof/block",
	"mutex":        "/debug/pprof/mutex",
	"threadcreate": "/debug/pprof/threadcreate",
}

func pprofFlags(fs *flag.FlagSet) {
	fs.Int("seconds", 0, "profile duration in seconds")
	fs.String("o", "", "output file")
}

func svcPprof(ctx context.Context, e *env, c *adminClient, fs *flag.FlagSet, args []string, _ bool) error {
	profile := args[0]
	path, ok := profiles[profile]
	if !ok {
		return usagef("pprof: unknown profile %q: want cpu, heap, allocs, goroutine, block, mutex, threadcreate or trace", profile)
	}
	seconds, _ := strconv.Atoi(fs.Lookup("seconds").Value.String())
	if seconds < 0 {
		return usagef("pprof --seconds %d: want a positive number", seconds)
	}
	switch {
	case seconds == 0 && profile == "cpu":
		seconds = 30
	case seconds == 0 && profile == "trace":
		seconds = 1
	}
	if seconds > 0 {
		path += "?seconds=" + strconv.Itoa(seconds)
	}
	file := fs.Lookup("o").Value.String()
	if file == "" {
		ext := ".pprof"
		if profile == "trace" {
			ext = ".trace"
		}
		file = defaultFile(ctx, c, profile, ext)
	}
	if seconds > 0 {
		fmt.Fprintf(e.stderr, "profiling %s (%s) for %ds ...\n", c.label, profile, seconds)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+callTimeout)
	defer cancel()
	resp, err := c.do(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	n, err := io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(file)
		return fmt.Errorf("pprof: %s: %s", c.label, connError(err))
	}
	tool := "go tool pprof"
	if profile == "trace" {
		tool = "go tool trace"
	}
	fmt.Fprintf(e.stdout, "wrote %s (%s)\nopen it with: %s %s\n", file, bytesHuman(uint64(n)), tool, file)
	return nil
}

// defaultFile is the name of a file saved from c without -o:
// <service>-<what>-<time><ext> in the current directory.
func defaultFile(ctx context.Context, c *adminClient, what, ext string) string {
	who := c.name
	if who == "" {
		var in info
		if c.getJSON(ctx, "/", &in) == nil && convention.IsName(in.Name) { // not a path or an escape sequence
			who = in.Name
		} else {
			who = strings.NewReplacer(":", "-", "/", "-").Replace(strings.TrimPrefix(c.base, "http://"))
		}
	}
	return fmt.Sprintf("%s-%s-%s%s", who, what, time.Now().Format("20060102-150405"), ext)
}
