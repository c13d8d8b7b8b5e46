package svc

import (
	"fmt"
	"regexp"
	"strings"

	"go.uber.org/dig"
)

// assemblyError makes an error of fx.New one line naming the constructor
// and what it lacks, instead of dig's chain of internals:
//
//	svc: orders: NewStore (store.go:21) needs *sql.DB, which nothing provides: add a constructor with svc.Provide
//
// Errors of the framework's own checks (a bad config value, a route
// registered twice) pass through as they are.
func assemblyError(name string, err error) error {
	root := dig.RootCause(err)
	if root == nil {
		root = err
	}
	msg := err.Error()
	ctor := lastConstructor(msg)
	switch {
	case strings.Contains(msg, "missing type"):
		missing := between(msg, "missing type: ", "")
		if missing == "" {
			missing = between(msg, "missing types: ", "")
		}
		if ctor == "" {
			return fmt.Errorf("svc: %s: something needs %s, which nothing provides: add a constructor with svc.Provide", name, missing)
		}
		return fmt.Errorf("svc: %s: %s needs %s, which nothing provides: add a constructor with svc.Provide", name, ctor, missing)
	case strings.Contains(msg, "cycle detected"):
		return fmt.Errorf("svc: %s: constructors depend on each other in a cycle: %s", name, oneLine(between(msg, "cycle detected in dependency graph: ", "")))
	}
	if isOurs(root) {
		return root
	}
	if ctor != "" {
		return fmt.Errorf("svc: %s: %s failed: %s", name, ctor, oneLine(root.Error()))
	}
	return fmt.Errorf("svc: %s: %s", name, oneLine(root.Error()))
}

// isOurs reports whether err is one of svc's or config's own messages,
// already one clear line.
func isOurs(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "svc: ") || strings.HasPrefix(s, "svc.") || strings.HasPrefix(s, "config")
}

// lastConstructor returns the innermost user constructor named in msg,
// "Func (file.go:line)", skipping fx's and svc's own.
func lastConstructor(msg string) string {
	// dig names constructors `function "pkg".Func (file:line)`; compiled
	// here, on the error path only, not at init.
	ctorRE := regexp.MustCompile(`function "?([^" ]+)"?\.?([^ ]*) \(([^)]+)\)`)
	found := ""
	for _, m := range ctorRE.FindAllStringSubmatch(msg, -1) {
		fn := m[1]
		if m[2] != "" {
			fn += "." + m[2]
		}
		if frameworkFunc(fn) {
			continue
		}
		short := fn[strings.LastIndexByte(fn, '/')+1:]
		found = fmt.Sprintf("%s (%s)", short, shortPath(m[3]))
	}
	return found
}

// frameworkFunc reports whether fn is fx's, dig's or one of svc's own
// constructors and wrappers, which an error should not name.
func frameworkFunc(fn string) bool {
	if strings.Contains(fn, "go.uber.org/") || strings.HasPrefix(fn, "reflect.") {
		return true
	}
	rest, ok := strings.CutPrefix(fn, "github.com/svc-dev/svc/svc.")
	if !ok {
		return false
	}
	for _, p := range []string{"provide", "new", "attachChecks", "appendStopStep", "Config", "group", "(*framework)", "init."} {
		if strings.HasPrefix(rest, p) {
			return true
		}
	}
	return false
}

// between returns the text of s after start, up to end (or the line's end).
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i+len(start):]
	if end != "" {
		if j := strings.Index(s, end); j >= 0 {
			s = s[:j]
		}
	}
	return oneLine(s)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.TrimSuffix(s, ":")
}
