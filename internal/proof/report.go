package proof

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Report collects the proof's results as Markdown. Safe for concurrent
// use.
type Report struct {
	mu       sync.Mutex // guards sections
	sections map[string]*strings.Builder
	order    []string
}

// NewReport returns an empty report.
func NewReport() *Report { return &Report{sections: map[string]*strings.Builder{}} }

// Printf appends to section, which is created on first use; sections keep
// the order of their first use.
func (r *Report) Printf(section, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.sections[section]
	if b == nil {
		b = &strings.Builder{}
		r.sections[section] = b
		r.order = append(r.order, section)
	}
	fmt.Fprintf(b, format, args...)
}

// Table appends a Markdown table to section.
func (r *Report) Table(section string, header []string, rows [][]string) {
	var b strings.Builder
	b.WriteString("| " + strings.Join(header, " | ") + " |\n|")
	for range header {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, row := range rows {
		b.WriteString("| " + strings.Join(row, " | ") + " |\n")
	}
	b.WriteString("\n")
	r.Printf(section, "%s", b.String())
}

// String returns the whole report.
func (r *Report) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "# Proof run %s\n\n%s, %s/%s, %d CPUs (GOMAXPROCS %d)\n\n",
		time.Now().UTC().Format(time.RFC3339), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.GOMAXPROCS(0))
	if cpu := cpuModel(); cpu != "" {
		fmt.Fprintf(&b, "CPU: %s\n\n", cpu)
	}
	for _, s := range r.order {
		fmt.Fprintf(&b, "## %s\n\n%s\n", s, r.sections[s].String())
	}
	return b.String()
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// ms formats d in milliseconds with a precision that suits its size.
func ms(d time.Duration) string {
	f := float64(d) / float64(time.Millisecond)
	switch {
	case f >= 100:
		return fmt.Sprintf("%.0f ms", f)
	case f >= 10:
		return fmt.Sprintf("%.1f ms", f)
	default:
		return fmt.Sprintf("%.2f ms", f)
	}
}

// mib formats bytes in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// ratio formats a/b as "x1.23".
func ratio(a, b float64) string {
	switch {
	case b == 0:
		return "n/a"
	case a/b < 0.01:
		return fmt.Sprintf("1/%.0f", b/a)
	}
	return fmt.Sprintf("x%.2f", a/b)
}
