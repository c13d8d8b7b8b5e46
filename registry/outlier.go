package registry

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [EjectionOptions].
const (
	DefaultConsecutiveFailures = 5
	DefaultBaseEjectionTime    = 30 * time.Second
	DefaultMaxEjectionTime     = 5 * time.Minute
	DefaultMaxEjectedPercent   = 50
)

// EjectionOptions configures outlier ejection: an instance that fails is
// taken out of rotation for a while, by every client of one [Discovery]
// (ejection is local to the process: other callers decide for
// themselves). The zero value is the defaults.
//
// An instance is ejected when a connection to it cannot be made (refused,
// reset before anything was sent, no answer to the dial within the attempt
// timeout), at once; or after ConsecutiveFailures attempts in a row failed
// with a 5xx status, a per-attempt timeout or a connection lost after the
// request was sent. Any other answer (2xx, 3xx, 4xx) ends a run.
//
// An ejection lasts BaseTime times the number of ejections in a row (an
// instance ejected again within MaxTime of its return counts one more),
// at most MaxTime. A new registration of the instance's key (a PUT: it
// registered again, after a restart with the same id or a lost lease)
// brings it back at once; a deleted key forgets it.
//
// At most MaxPercent of a service's instances are ejected at once, but
// always one when there are two or more, and never the last one: a
// service whose every instance fails keeps being called.
type EjectionOptions struct {
	// Disabled turns ejection off: failing instances stay in rotation
	// (retries still go to another instance).
	Disabled bool
	// ConsecutiveFailures is the run of failed attempts that ejects an
	// instance. If zero, DefaultConsecutiveFailures (5); if negative,
	// only connection failures eject.
	ConsecutiveFailures int
	// BaseTime is the length of a first ejection. If zero or negative,
	// DefaultBaseEjectionTime (30s).
	BaseTime time.Duration
	// MaxTime caps an ejection. If zero or negative,
	// DefaultMaxEjectionTime (5m); never less than BaseTime.
	MaxTime time.Duration
	// MaxPercent caps the share of a service's instances ejected at once.
	// If zero or negative, DefaultMaxEjectedPercent (50).
	MaxPercent int
}

func (o EjectionOptions) withDefaults() EjectionOptions {
	if o.ConsecutiveFailures == 0 {
		o.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if o.BaseTime <= 0 {
		o.BaseTime = DefaultBaseEjectionTime
	}
	if o.MaxTime <= 0 {
		o.MaxTime = DefaultMaxEjectionTime
	}
	o.MaxTime = max(o.MaxTime, o.BaseTime)
	if o.MaxPercent <= 0 {
		o.MaxPercent = DefaultMaxEjectedPercent
	}
	return o
}

// EjectedInstance is an instance a [Discovery] keeps out of rotation.
type EjectedInstance struct {
	Service   string    `json:"service"`
	Key       string    `json:"key,omitempty"` // registry key; empty for an override or the convention
	ID        string    `json:"id,omitempty"`  // instance id, when the registry says
	Addr      string    `json:"addr"`          // host:port
	Reason    string    `json:"reason"`        // "connect" or "5 consecutive failures"
	Since     time.Time `json:"since"`
	Until     time.Time `json:"until"`     // back in rotation then, or at its next registration
	Ejections int       `json:"ejections"` // ejections in a row: the multiplier of BaseTime
}

// instState is the outlier state of one instance (one registry key at
// one ModRevision). Snapshots share it while the key is unchanged.
type instState struct {
	mod      int64        // ModRevision of the key; 0 outside the registry
	until    atomic.Int64 // end of the ejection, Unix nanoseconds; in rotation once past
	failures atomic.Int32 // failed attempts in a row

	mu        sync.Mutex // guards the fields below
	ejections int        // ejections in a row
	since     time.Time  // start of the last ejection
	reason    string     // why the last ejection
}

// ejected reports whether the instance is out of rotation at now (Unix
// nanoseconds).
func (st *instState) ejected(now int64) bool { return st.until.Load() > now }

// outcome is what one attempt tells of its instance.
type outcome int

const (
	outcomeOK          outcome = iota // an answer below 500
	outcomeFailure                    // 5xx, attempt timeout, connection lost after sending
	outcomeConnectFail                // no connection could be made
	outcomeNone                       // tells nothing (the caller gave up)
)

// observe records the outcome of an attempt on instance i of snap, and
// ejects it when the rules say so.
func (d *Discovery) observe(s *service, snap *snapshot, i int, o outcome) {
	if d.ejection.Disabled {
		return
	}
	st := snap.states[i]
	switch o {
	case outcomeOK:
		if st.failures.Load() != 0 {
			st.failures.Store(0)
		}
	case outcomeFailure:
		n := st.failures.Add(1)
		if k := d.ejection.ConsecutiveFailures; k > 0 && int(n) >= k {
			st.failures.Store(0)
			d.eject(s, snap, i, strconv.Itoa(k)+" consecutive failures")
		}
	case outcomeConnectFail:
		st.failures.Store(0)
		d.eject(s, snap, i, "connect")
	}
}

// eject takes instance i of snap out of rotation, unless it is already
// or the service is at its cap of ejected instances.
func (d *Discovery) eject(s *service, snap *snapshot, i int, reason string) {
	now := time.Now()
	st := snap.states[i]
	if st.ejected(now.UnixNano()) {
		return
	}
	n := len(snap.states)
	allowed := min(n-1, max(1, n*d.ejection.MaxPercent/100))
	out := 0
	for _, o := range snap.states {
		if o.ejected(now.UnixNano()) {
			out++
		}
	}
	if out >= allowed {
		d.log.Debug("registry: not ejecting: the service is at its cap of ejected instances",
			"service", s.name, "addr", snap.instances[i].Addr, "ejected", out, "instances", n)
		return
	}
	st.mu.Lock()
	if st.ejected(now.UnixNano()) { // another attempt won the race
		st.mu.Unlock()
		return
	}
	if last := st.until.Load(); last != 0 && now.Sub(time.Unix(0, last)) < d.ejection.MaxTime {
		st.ejections++
	} else {
		st.ejections = 1
	}
	dur := min(d.ejection.BaseTime*time.Duration(st.ejections), d.ejection.MaxTime)
	st.since, st.reason = now, reason
	st.until.Store(now.Add(dur).UnixNano())
	ejections := st.ejections
	st.mu.Unlock()
	d.metrics.ejections.WithLabelValues(s.name).Inc()
	d.log.Warn("registry: instance ejected", "service", s.name, "addr", snap.instances[i].Addr,
		"key", snap.instances[i].Key, "reason", reason, "for", dur, "ejections", ejections)
}

// Ejected returns the instances this Discovery keeps out of rotation
// now, sorted by service and key; an empty list if none. It is what
// /admin/registry shows under "ejected".
func (d *Discovery) Ejected() []EjectedInstance {
	now := time.Now()
	services := *d.services.Load()
	out := []EjectedInstance{}
	for _, name := range slices.Sorted(maps.Keys(services)) {
		snap := services[name].snap.Load()
		if snap == nil {
			continue
		}
		for i, st := range snap.states {
			if !st.ejected(now.UnixNano()) {
				continue
			}
			inst := snap.instances[i]
			st.mu.Lock()
			e := EjectedInstance{
				Service: name, Key: inst.Key, ID: inst.Record.ID, Addr: inst.Addr,
				Reason: st.reason, Since: st.since, Until: time.Unix(0, st.until.Load()), Ejections: st.ejections,
			}
			st.mu.Unlock()
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b EjectedInstance) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Key, b.Key))
	})
	return out
}
