package proof

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/svc-dev/svc/registry"
)

// View is one side's opinion of whether an instance is registered.
type View int

const (
	// Self is the instance's own view: its /readyz registry check is ok
	// (the registrar holds the key under a lease it last saw alive).
	Self View = iota
	// Others is everyone else's view: the key is in a discovery's cache.
	Others
)

// String returns "self" or "others".
func (v View) String() string {
	if v == Self {
		return "self"
	}
	return "others"
}

// event is a change of one view of one instance.
type event struct {
	at   time.Time
	id   string
	view View
	up   bool
}

// Monitor follows the registration of a fixed set of instances from both
// views until Stop: each instance's /readyz every 50ms, and a discovery's
// cache every 5ms. An instance that does not answer (paused, stopped)
// keeps its last known Self view.
type Monitor struct {
	procs   []*Process
	src     Instances
	env     string
	service string
	client  *http.Client

	stop chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // guards events and state
	events []event
	state  map[string]*viewState // by instance id
}

// viewState is the last observation of both views of an instance.
type viewState struct {
	up, seen [2]bool // indexed by View
}

// NewMonitor starts following procs, instances of service in env, as seen
// by the processes themselves and by src.
func NewMonitor(procs []*Process, src Instances, env, service string) *Monitor {
	m := &Monitor{
		procs: procs, src: src, env: env, service: service,
		client: &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{MaxIdleConnsPerHost: 2}},
		stop:   make(chan struct{}),
		state:  map[string]*viewState{},
	}
	for _, p := range procs {
		m.wg.Go(func() { m.pollSelf(p) })
	}
	m.wg.Go(m.pollOthers)
	return m
}

// Stop ends the polling.
func (m *Monitor) Stop() {
	close(m.stop)
	m.wg.Wait()
	m.client.CloseIdleConnections()
}

func (m *Monitor) record(id string, v View, up bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.state[id]
	if st == nil {
		st = &viewState{}
		m.state[id] = st
	}
	if st.seen[v] && st.up[v] == up {
		return
	}
	st.seen[v], st.up[v] = true, up
	m.events = append(m.events, event{at: time.Now(), id: id, view: v, up: up})
}

func (m *Monitor) tick(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-m.stop:
		return false
	case <-t.C:
		return true
	}
}

func (m *Monitor) pollSelf(p *Process) {
	for m.tick(50 * time.Millisecond) {
		up, err := selfRegistered(m.client, p)
		if err != nil {
			continue // no answer: no news
		}
		m.record(p.ID, Self, up)
	}
}

// selfRegistered asks p's /readyz whether its registry check is ok.
func selfRegistered(c *http.Client, p *Process) (bool, error) {
	resp, err := c.Get(p.PrivateURL() + "/readyz")
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var body struct {
		Checks map[string]struct{ Status string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, err
	}
	reg, ok := body.Checks["registry"]
	if !ok {
		return false, errors.New("proof: /readyz has no registry check")
	}
	return reg.Status == "ok", nil
}

func (m *Monitor) pollOthers() {
	for m.tick(5 * time.Millisecond) {
		insts, err := m.src.Instances(m.service)
		if err != nil {
			continue
		}
		present := map[string]bool{}
		for _, in := range insts {
			present[in.Key] = true
		}
		for _, p := range m.procs {
			m.record(p.ID, Others, present[registry.Prefix(m.env, m.service)+p.ID])
		}
	}
}

// AllUp reports whether every instance is registered in both views.
func (m *Monitor) AllUp() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.procs {
		st := m.state[p.ID]
		if st == nil || !st.seen[Self] || !st.seen[Others] || !st.up[Self] || !st.up[Others] {
			return false
		}
	}
	return true
}

// WaitAllUp polls until every instance is registered in both views and
// returns when that was first seen; it gives up after d.
func (m *Monitor) WaitAllUp(d time.Duration) (time.Time, bool) {
	deadline := time.Now().Add(d)
	for !m.AllUp() {
		if time.Now().After(deadline) {
			return time.Time{}, false
		}
		time.Sleep(5 * time.Millisecond)
	}
	return m.lastChange(), true
}

// lastChange is the time of the newest event.
func (m *Monitor) lastChange() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) == 0 {
		return time.Now()
	}
	return m.events[len(m.events)-1].at
}

// Down is how long a view of an instance was down in a window, and how
// often it went down.
type Down struct {
	Total  time.Duration
	Times  int
	LastUp time.Time // when it last came up inside the window; zero if never down
}

// Downtime returns, for each instance and view, how long it was down in
// [from, to).
func (m *Monitor) Downtime(from, to time.Time) map[string][2]Down {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][2]Down{}
	for _, p := range m.procs {
		var res [2]Down
		for v := range 2 {
			up := true // before the first observation: assume registered
			var downSince time.Time
			for _, e := range m.events {
				if e.id != p.ID || e.view != View(v) {
					continue
				}
				if e.at.Before(from) {
					up = e.up
					continue
				}
				if !e.at.Before(to) {
					break
				}
				switch {
				case up && !e.up:
					downSince = e.at
					res[v].Times++
				case !up && e.up:
					if downSince.IsZero() {
						downSince = from
					}
					res[v].Total += e.at.Sub(downSince)
					res[v].LastUp = e.at
				}
				up = e.up
			}
			if !up {
				if downSince.IsZero() {
					downSince = from
				}
				res[v].Total += to.Sub(downSince)
				res[v].LastUp = time.Time{}
			}
		}
		out[p.ID] = res
	}
	return out
}
