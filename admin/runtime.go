package admin

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"time"
)

// runtimeRoutes mounts the gops-style view of the Go runtime (process,
// goroutine dump, memory and GC statistics, a forced GC, build info) and
// the registry endpoints when Params provides them. start is the moment
// the admin handler was built: the uptime /admin/process reports.
func (s *Server) runtimeRoutes() {
	start := time.Now()
	s.handle(http.MethodGet, "/admin/process", "pid, uptime, Go version, goroutines, GOMAXPROCS", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, processInfo(start))
	})
	s.handle(http.MethodGet, "/admin/stack", "goroutine dump (text); ?debug=1 groups identical stacks", stack)
	s.handle(http.MethodGet, "/admin/memstats", "memory and GC statistics (runtime.MemStats, GOGC, GOMEMLIMIT)", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, memStats())
	})
	s.handle(http.MethodPost, "/admin/gc", "force a garbage collection; ?free=true also returns memory to the OS", forceGC)
	s.handle(http.MethodGet, "/admin/build", "build info: Go version, main module, dependencies, VCS settings", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, buildInfo())
	})
	if s.p.Registry != nil {
		s.handle(http.MethodGet, "/admin/registry", "registry status: etcd connection, registration, lease", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, s.p.Registry())
		})
	}
	if s.p.Instance != nil {
		s.handle(http.MethodGet, "/admin/instance", "this instance's record as advertised in the registry", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, s.p.Instance())
		})
	}
}

// Process is the JSON of GET /admin/process.
type Process struct {
	PID           int       `json:"pid"`
	Executable    string    `json:"executable"`
	Host          string    `json:"host"`
	StartedAt     time.Time `json:"started_at"`
	Uptime        string    `json:"uptime"`
	UptimeSeconds float64   `json:"uptime_seconds"`
	GoVersion     string    `json:"go_version"`
	OS            string    `json:"os"`
	Arch          string    `json:"arch"`
	NumCPU        int       `json:"num_cpu"`
	GOMAXPROCS    int       `json:"gomaxprocs"`
	Goroutines    int       `json:"goroutines"`
}

func processInfo(start time.Time) Process {
	exe, _ := os.Executable()
	host, _ := os.Hostname()
	up := time.Since(start)
	return Process{
		PID:           os.Getpid(),
		Executable:    exe,
		Host:          host,
		StartedAt:     start.UTC(),
		Uptime:        up.Round(time.Second).String(),
		UptimeSeconds: up.Seconds(),
		GoVersion:     runtime.Version(),
		OS:            runtime.GOOS,
		Arch:          runtime.GOARCH,
		NumCPU:        runtime.NumCPU(),
		GOMAXPROCS:    runtime.GOMAXPROCS(0),
		Goroutines:    runtime.NumGoroutine(),
	}
}

// stack writes every goroutine's stack, as a panic would print them
// (debug=2), or grouped by identical stack with counts (debug=1).
func stack(w http.ResponseWriter, r *http.Request) {
	debugLevel := 2
	if d := r.URL.Query().Get("debug"); d != "" {
		n, err := strconv.Atoi(d)
		if err != nil || (n != 1 && n != 2) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: debug=%q: want 1 (grouped) or 2 (every goroutine)", d))
			return
		}
		debugLevel = n
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_ = pprof.Lookup("goroutine").WriteTo(w, debugLevel)
}

// MemStats is the JSON of GET /admin/memstats: the fields of
// runtime.MemStats an operator reads, with units in the names, and the
// garbage collector's settings.
type MemStats struct {
	HeapAllocBytes    uint64    `json:"heap_alloc_bytes"`
	HeapInuseBytes    uint64    `json:"heap_inuse_bytes"`
	HeapIdleBytes     uint64    `json:"heap_idle_bytes"`
	HeapReleasedBytes uint64    `json:"heap_released_bytes"`
	HeapSysBytes      uint64    `json:"heap_sys_bytes"`
	HeapObjects       uint64    `json:"heap_objects"`
	StackInuseBytes   uint64    `json:"stack_inuse_bytes"`
	SysBytes          uint64    `json:"sys_bytes"`
	TotalAllocBytes   uint64    `json:"total_alloc_bytes"`
	Mallocs           uint64    `json:"mallocs"`
	Frees             uint64    `json:"frees"`
	NextGCBytes       uint64    `json:"next_gc_bytes"`
	NumGC             uint32    `json:"num_gc"`
	NumForcedGC       uint32    `json:"num_forced_gc"`
	LastGC            time.Time `json:"last_gc,omitzero"`
	LastPause         string    `json:"last_pause"`
	PauseTotal        string    `json:"pause_total"`
	GCCPUFraction     float64   `json:"gc_cpu_fraction"`
	GOGC              int64     `json:"gogc"`             // percent; -1: off
	GOMEMLIMITBytes   int64     `json:"gomemlimit_bytes"` // math.MaxInt64: no limit
	Goroutines        int       `json:"goroutines"`
}

func memStats() MemStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	out := MemStats{
		HeapAllocBytes:    m.HeapAlloc,
		HeapInuseBytes:    m.HeapInuse,
		HeapIdleBytes:     m.HeapIdle,
		HeapReleasedBytes: m.HeapReleased,
		HeapSysBytes:      m.HeapSys,
		HeapObjects:       m.HeapObjects,
		StackInuseBytes:   m.StackInuse,
		SysBytes:          m.Sys,
		TotalAllocBytes:   m.TotalAlloc,
		Mallocs:           m.Mallocs,
		Frees:             m.Frees,
		NextGCBytes:       m.NextGC,
		NumGC:             m.NumGC,
		NumForcedGC:       m.NumForcedGC,
		PauseTotal:        time.Duration(m.PauseTotalNs).String(),
		LastPause:         "0s",
		GCCPUFraction:     m.GCCPUFraction,
		Goroutines:        runtime.NumGoroutine(),
	}
	if m.NumGC > 0 {
		out.LastGC = time.Unix(0, int64(m.LastGC)).UTC()
		out.LastPause = time.Duration(m.PauseNs[(m.NumGC+255)%256]).String()
	}
	samples := []metrics.Sample{{Name: "/gc/gogc:percent"}, {Name: "/gc/gomemlimit:bytes"}}
	metrics.Read(samples)
	if samples[0].Value.Kind() == metrics.KindUint64 {
		out.GOGC = int64(samples[0].Value.Uint64())
	}
	if samples[1].Value.Kind() == metrics.KindUint64 {
		out.GOMEMLIMITBytes = int64(samples[1].Value.Uint64())
	}
	return out
}

// GC is the JSON of POST /admin/gc.
type GC struct {
	HeapAllocBeforeBytes uint64 `json:"heap_alloc_before_bytes"`
	HeapAllocAfterBytes  uint64 `json:"heap_alloc_after_bytes"`
	HeapReleasedBytes    uint64 `json:"heap_released_bytes"` // after the GC
	FreedOSMemory        bool   `json:"freed_os_memory"`
	Duration             string `json:"duration"`
}

// forceGC runs runtime.GC, or debug.FreeOSMemory with ?free=true, and
// reports the heap before and after.
func forceGC(w http.ResponseWriter, r *http.Request) {
	free := false
	if f := r.URL.Query().Get("free"); f != "" {
		var err error
		if free, err = strconv.ParseBool(f); err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("admin: free=%q: want true or false", f))
			return
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	if free {
		debug.FreeOSMemory()
	} else {
		runtime.GC()
	}
	d := time.Since(t0)
	runtime.ReadMemStats(&after)
	writeJSON(w, http.StatusOK, GC{
		HeapAllocBeforeBytes: before.HeapAlloc,
		HeapAllocAfterBytes:  after.HeapAlloc,
		HeapReleasedBytes:    after.HeapReleased,
		FreedOSMemory:        free,
		Duration:             d.String(),
	})
}

// Build is the JSON of GET /admin/build: runtime/debug.ReadBuildInfo.
type Build struct {
	GoVersion string            `json:"go_version"`
	Path      string            `json:"path"` // the main package's import path
	Main      Module            `json:"main"`
	Deps      []Module          `json:"deps"`
	Settings  map[string]string `json:"settings"` // -tags, GOOS, vcs.revision, ...
}

// Module is one module of a [Build].
type Module struct {
	Path    string  `json:"path"`
	Version string  `json:"version"`
	Sum     string  `json:"sum,omitempty"`
	Replace *Module `json:"replace,omitempty"`
}

func buildInfo() Build {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return Build{GoVersion: runtime.Version(), Deps: []Module{}, Settings: map[string]string{}}
	}
	b := Build{
		GoVersion: bi.GoVersion,
		Path:      bi.Path,
		Main:      module(&bi.Main),
		Deps:      make([]Module, 0, len(bi.Deps)),
		Settings:  make(map[string]string, len(bi.Settings)),
	}
	for _, d := range bi.Deps {
		b.Deps = append(b.Deps, module(d))
	}
	for _, s := range bi.Settings {
		b.Settings[s.Key] = s.Value
	}
	return b
}

func module(m *debug.Module) Module {
	out := Module{Path: m.Path, Version: m.Version, Sum: m.Sum}
	if m.Replace != nil {
		r := module(m.Replace)
		out.Replace = &r
	}
	return out
}
