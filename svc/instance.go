package svc

import (
	"crypto/rand"
	"encoding/hex"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Ports are the bound ports of the three listeners.
type Ports struct {
	Public  int `json:"public"`
	Private int `json:"private"`
	Admin   int `json:"admin"`
}

// Info describes a running instance: the JSON of GET /info and admin GET /.
type Info struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	Version     string    `json:"version"`
	Instance    string    `json:"instance"`
	StartedAt   time.Time `json:"started_at"`
	Ports       Ports     `json:"ports"`
}

// Instance is this process's identity. Its ports are known once the
// listeners are bound (before any handler runs); it is safe for concurrent
// use.
type Instance struct {
	info atomic.Pointer[Info]
}

func newInstance(name, environment, version string) *Instance {
	var b [8]byte
	_, _ = rand.Read(b[:])
	in := &Instance{}
	in.info.Store(&Info{
		Name:        name,
		Environment: environment,
		Version:     version,
		Instance:    hex.EncodeToString(b[:]),
		StartedAt:   time.Now().UTC(),
	})
	return in
}

// Info returns a copy of the instance's description.
func (in *Instance) Info() Info { return *in.info.Load() }

func (in *Instance) setPorts(p Ports) {
	i := *in.info.Load()
	i.Ports = p
	in.info.Store(&i)
}

// buildVersion returns the main module's version, or "dev".
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
