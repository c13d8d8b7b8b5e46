package svc

import (
	"errors"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/svc-dev/svc/config"
)

// DefaultGCPercent is runtime.gc-percent's default: the heap may grow to
// three times the live heap (at least 8 MiB) between collections instead
// of Go's two times (at least 4 MiB). A small service's live heap is a few
// MiB, so with Go's default it collects every few MiB allocated; at 200 it
// spends about half that CPU on collections for a few MiB more of peak
// heap (docs/benchmarks.md, "GC settings", has the measurements).
const DefaultGCPercent = 200

// checkGCPercent accepts "off" or a whole number of percent, 1 or more.
func checkGCPercent(v string) error {
	_, err := parseGCPercent(v)
	return err
}

func parseGCPercent(v string) (int, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "off") {
		return -1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, errors.New(`must be a whole number of percent, 1 or more, or "off"`)
	}
	return n, nil
}

// gcPercent applies runtime.gc-percent to the process, and each later
// change of it, unless the GOGC environment variable is set: the runtime
// read that at start, and the operator's choice stands. Only Run calls it:
// the garbage collector is the process's, and an app made with New lives
// in a process it does not own.
func gcPercent(live *config.Live, log *slog.Logger, getenv func(string) (string, bool)) {
	if v, ok := getenv("GOGC"); ok {
		if cur, _ := live.Current().Lookup(KeyGCPercent); cur.Layer != layerConvention {
			log.Warn("GOGC is set in the environment; "+KeyGCPercent+" is ignored", "GOGC", v, KeyGCPercent, cur.Value)
		}
		return
	}
	set := func(v string) {
		if n, err := parseGCPercent(v); err == nil {
			debug.SetGCPercent(n)
		}
	}
	if cur, ok := live.Current().Lookup(KeyGCPercent); ok {
		set(cur.Value)
	}
	live.OnChange(KeyGCPercent, func(c config.Change) {
		if c.New != nil { // the convention layer always holds the key
			set(c.New.Value)
		}
	})
}
