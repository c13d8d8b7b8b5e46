package registry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"google.golang.org/grpc/connectivity"

	"github.com/svc-dev/svc/internal/convention"
	"github.com/svc-dev/svc/internal/etcdwatch"
	"github.com/svc-dev/svc/internal/redact"
)

// Defaults of [DiscoveryOptions].
const (
	DefaultEnvironment = convention.DefaultEnvironment
	DefaultListTimeout = 2 * time.Second
	DefaultIdleTimeout = 5 * time.Minute
	DefaultMaxServices = 1024
)

// ErrClosed is returned when a name is resolved for the first time after
// [Discovery.Close].
var ErrClosed = errors.New("registry: discovery closed")

// NoInstanceError reports that a service has no instance to call: none is
// registered, the registry could not be listed yet, or no address is
// configured. Test for it with errors.As:
//
//	var noInstance *registry.NoInstanceError
//	if errors.As(err, &noInstance) { ... noInstance.Service ... }
type NoInstanceError struct {
	Service string // the service asked for
	Err     error  // why, when there is more to say than "none registered"; may be nil
}

// Error returns "registry: no instance of service <name>", followed by the
// cause if there is one.
func (e *NoInstanceError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("registry: no instance of service %q", e.Service)
	}
	return fmt.Sprintf("registry: no instance of service %q: %v", e.Service, e.Err)
}

// Unwrap returns e.Err.
func (e *NoInstanceError) Unwrap() error { return e.Err }

// TooManyServicesError reports that a name was not resolved because the
// registry is already watched for Max names, the cap
// DiscoveryOptions.MaxServices sets. A slot frees when a watched name goes
// unresolved for DiscoveryOptions.IdleTimeout. Test for it with errors.As.
type TooManyServicesError struct {
	Service string // the name that was not resolved
	Max     int    // the cap
}

// Error names the service and the cap.
func (e *TooManyServicesError) Error() string {
	return fmt.Sprintf("registry: cannot discover service %q: already watching %d service names, the most DiscoveryOptions.MaxServices allows "+
		"(names not resolved for a while are released)", e.Service, e.Max)
}

// DiscoveryOptions configures a [Discovery]. The zero value resolves every
// name by the port convention alone, which needs Lookup or Self to know
// offsets.
type DiscoveryOptions struct {
	// Client is the etcd client of the registry. If nil there is no
	// registry: names resolve through overrides and the port convention.
	Client *clientv3.Client
	// Environment selects the registry's key space
	// ("svc/<environment>/services/"). If empty, DefaultEnvironment ("dev").
	Environment string
	// Lookup reads configuration keys: "discovery.override.<name>",
	// "services.<name>.host", "services.<name>.offset" and
	// "services.<name>.uri-spec". If nil, no key is set.
	Lookup func(key string) (string, bool)
	// Self is the name of the service itself, whose offset is SelfOffset
	// without any configuration.
	Self string
	// SelfOffset is the port offset of Self.
	SelfOffset int
	// Logger receives a line when a watch breaks or recovers and for each
	// malformed registry value. If nil, nothing is logged.
	Logger *slog.Logger
	// ListTimeout bounds the first listing of a service, which the first
	// resolve of that service waits for, and every later re-listing. If
	// zero, DefaultListTimeout (2s).
	ListTimeout time.Duration
	// IdleTimeout is how long a name found through the registry stays
	// watched without being resolved: its watch is released between
	// IdleTimeout and twice IdleTimeout after its last resolve, and the
	// next resolve lists it again (and waits for that). It bounds what
	// names nobody registered cost. If zero or negative,
	// DefaultIdleTimeout (5m).
	IdleTimeout time.Duration
	// MaxServices caps how many names are watched in the registry at
	// once; resolving one more fails with a [*TooManyServicesError] until
	// an idle name is released. Overrides and the port convention watch
	// nothing and do not count. If zero or negative, DefaultMaxServices
	// (1024).
	MaxServices int
	// Metrics, if set, receives the client metrics of the clients made
	// over this Discovery (svc_client_requests_total,
	// svc_client_attempts_total, svc_client_retries_total,
	// svc_client_ejections_total; see docs/calls.md). If nil, they are
	// not registered anywhere. Never the global registry.
	Metrics prometheus.Registerer
	// Ejection configures outlier ejection; see [EjectionOptions].
	Ejection EjectionOptions
	// RetryBudget bounds the retries of the clients made over this
	// Discovery, per service; see [RetryBudget].
	RetryBudget RetryBudget
	// Calls holds the defaults of every client made over this Discovery
	// ([NewClient], [NewTransport]): a field the client's own
	// ClientOptions leaves zero is taken from here. This is where a
	// framework puts live timeouts and a tracing wrapper once for all
	// clients.
	Calls ClientOptions
}

// Discovery resolves service names to base URLs and URLs.
//
// The first resolve of a name decides where its instances come from, in
// this order, and keeps to that decision for the life of the Discovery:
//
//  1. the configuration key discovery.override.<name>: a base URL
//     ("http://localhost:9000") or a URL template
//     ("http://localhost:9000/1.x/{territory}/users/{userid}");
//  2. the registry, when Client is set;
//  3. the port convention: "http://<services.<name>.host, or localhost>:<8000+offset>",
//     the offset being services.<name>.offset, or SelfOffset for Self.
//
// For the registry it starts one goroutine per service name, which lists
// the service's prefix (the first resolve waits for that, up to
// ListTimeout), then follows an etcd watch from the next revision. When the
// watch fails (compaction, lost leader, closed channel) it lists again and
// watches from the new revision, with capped, jittered backoff, serving the
// last good set meanwhile. Values in the prefix that are not in the
// registry format are skipped and logged. Only names that follow the
// naming rule (^[a-z][a-z0-9-]{0,62}$) are resolved. At most MaxServices
// names are watched at once, and a name not resolved for IdleTimeout is
// released (its watch stopped, its goroutine gone; a later resolve starts
// again): a caller asking for thousands of names nobody registered costs
// bounded memory, goroutines and etcd watchers.
//
// Resolving reads an in-memory snapshot: no lock, no etcd round trip, and
// no allocation for BaseURL. Instances are taken round-robin in key order.
//
// A Discovery is safe for concurrent use. Close stops its goroutines. Idle
// names are released by a timer (time.AfterFunc) that runs while names are
// watched.
type Discovery struct {
	cli         *clientv3.Client
	monitor     *etcdwatch.Monitor // checks every watch for a replaced etcd; made with the first, guarded by mu
	env         string
	lookup      func(string) (string, bool)
	self        string
	selfOffset  int
	log         *slog.Logger
	listTimeout time.Duration
	idleTimeout time.Duration
	maxServices int
	ejection    EjectionOptions // defaults applied
	budget      RetryBudget     // defaults applied
	calls       ClientOptions   // defaults of the clients over d
	metrics     *clientMetrics  // never nil
	baseOnce    sync.Once       // makes base
	base        *http.Transport // shared by the clients of d without a Base
	wg          sync.WaitGroup  // counts watch goroutines

	services atomic.Pointer[map[string]*service] // immutable map, replaced under mu

	mu      sync.Mutex  // guards the fields below and replacing services
	closed  bool        // Close was called
	watched int         // services from the registry in the map
	sweeper *time.Timer // runs sweep while watched > 0; nil otherwise
	capped  bool        // the cap was hit since the last sweep (logged once)
}

// NewDiscovery returns a Discovery configured by opts. It starts nothing:
// each service's watch starts on its first resolve.
func NewDiscovery(opts DiscoveryOptions) *Discovery {
	d := &Discovery{
		cli:         opts.Client,
		env:         cmp.Or(opts.Environment, DefaultEnvironment),
		lookup:      opts.Lookup,
		self:        opts.Self,
		selfOffset:  opts.SelfOffset,
		log:         opts.Logger,
		listTimeout: cmp.Or(opts.ListTimeout, DefaultListTimeout),
		idleTimeout: opts.IdleTimeout,
		maxServices: opts.MaxServices,
		ejection:    opts.Ejection.withDefaults(),
		budget:      opts.RetryBudget.withDefaults(),
		calls:       opts.Calls,
	}
	if d.idleTimeout <= 0 {
		d.idleTimeout = DefaultIdleTimeout
	}
	if d.maxServices <= 0 {
		d.maxServices = DefaultMaxServices
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.lookup == nil {
		d.lookup = func(string) (string, bool) { return "", false }
	}
	d.metrics = newClientMetrics(opts.Metrics, d.log)
	d.services.Store(&map[string]*service{})
	return d
}

// source is where a service's instances come from.
type source int

const (
	fromOverride source = iota
	fromRegistry
	fromConvention
)

// service is the resolution state of one service name.
type service struct {
	name   string
	base   string // "http://" + name, what BaseURL returns
	source source
	prefix string // registry prefix (fromRegistry)

	snap atomic.Pointer[snapshot] // nil until first listed
	rr   atomic.Uint64            // round-robin counter
	used atomic.Bool              // resolved since the last sweep (fromRegistry)

	budget *budget // retries of calls to this service

	ready  chan struct{}      // closed after the first listing attempt (fromRegistry)
	cancel context.CancelFunc // stops the watch goroutine (fromRegistry)

	mu       sync.Mutex // guards err and errSince
	err      error      // why the snapshot may be stale; nil while the watch is healthy
	errSince time.Time  // when err became non-nil
}

// snapshot is an immutable set of instances.
type snapshot struct {
	instances []Instance   // sorted by Key
	bases     []string     // instances[i].BaseURL, for Pick without allocation
	states    []*instState // instances[i]'s outlier state, shared with the next snapshot while its key is unchanged
	rev       int64        // etcd revision it reflects (fromRegistry)
}

// newSnapshot returns a snapshot of instances; mods[i] (nil: all 0) is
// the etcd ModRevision of instances[i]'s key. An instance of old whose key
// has the same ModRevision keeps its outlier state; a new or re-registered
// key (a new PUT) starts in rotation.
func newSnapshot(instances []Instance, mods []int64, rev int64, old *snapshot) *snapshot {
	idx := make([]int, len(instances))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(instances[a].Key, instances[b].Key) })
	snap := &snapshot{
		instances: make([]Instance, len(instances)),
		bases:     make([]string, len(instances)),
		states:    make([]*instState, len(instances)),
		rev:       rev,
	}
	for j, i := range idx {
		inst := instances[i]
		var mod int64
		if mods != nil {
			mod = mods[i]
		}
		snap.instances[j] = inst
		snap.bases[j] = inst.BaseURL
		snap.states[j] = old.stateOf(inst.Key, inst.BaseURL, mod)
	}
	return snap
}

// stateOf returns the outlier state of the instance at key (and base) with
// ModRevision mod in s, or a fresh one if s has no such instance, or has
// it at another revision.
func (s *snapshot) stateOf(key, base string, mod int64) *instState {
	if s != nil {
		i, ok := slices.BinarySearchFunc(s.instances, key, func(in Instance, k string) int { return strings.Compare(in.Key, k) })
		if ok && s.bases[i] == base && s.states[i].mod == mod {
			return s.states[i]
		}
	}
	return &instState{mod: mod}
}

// BaseURL returns "http://<name>", the base URL of every call to the
// service name through [NewClient] or [NewTransport], which resolve an
// instance for each attempt: a caller never holds an instance's address.
// It returns a [*NoInstanceError] if the service has no instance now (so
// a caller can fail early), an error for a name that breaks the naming
// rule, and a [*TooManyServicesError] past DiscoveryOptions.MaxServices.
// It does not allocate once the name is known.
//
//	base, err := d.BaseURL("orders") // "http://orders"
//	resp, err := client.Get(base + "/1.x/fr/orders/42")
func (d *Discovery) BaseURL(name string) (string, error) {
	s, snap, err := d.resolve(name)
	if err != nil {
		return "", err
	}
	if len(snap.bases) == 0 {
		return "", &NoInstanceError{Service: name}
	}
	return s.base, nil
}

// Pick returns the base URL ("http://host:port", or an override's base
// URL) of an instance of the service name for one attempt of a call:
// round-robin in key order over the instances that are neither ejected
// ([EjectionOptions]) nor in tried (base URLs already tried by this call;
// a retry takes the next one after the last tried, without moving the
// round-robin, so that retries do not skew the balance).
// If every instance not tried is ejected, it picks one of those anyway; if
// every instance was tried, it returns a [*NoInstanceError] whose Err is
// [ErrAllTried]. It returns a [*NoInstanceError] if there is no instance.
// It does not allocate.
//
// Pick is the low-level resolver of [NewTransport]; code calling a
// service over HTTP uses [NewClient] and never needs it.
func (d *Discovery) Pick(name string, tried []string) (string, error) {
	s, snap, err := d.resolve(name)
	if err != nil {
		return "", err
	}
	i, err := pick(s, snap, tried, time.Now().UnixNano())
	if err != nil {
		return "", err
	}
	return snap.bases[i], nil
}

// ErrAllTried is the Err of the [*NoInstanceError] of [Discovery.Pick]
// when every instance was tried already.
var ErrAllTried = errors.New("every instance was tried")

// pick returns the index in snap of the instance of s for the next
// attempt; see [Discovery.Pick].
func pick(s *service, snap *snapshot, tried []string, now int64) (int, error) {
	n := len(snap.bases)
	switch {
	case n == 0:
		return 0, &NoInstanceError{Service: s.name}
	case n == 1 && len(tried) == 0:
		return 0, nil
	}
	var start int
	if len(tried) == 0 {
		start = int((s.rr.Add(1) - 1) % uint64(n))
	} else if last := slices.Index(snap.bases, tried[len(tried)-1]); last >= 0 {
		start = (last + 1) % n // a retry does not move the round-robin
	}
	fallback := -1
	for j := range n {
		i := (start + j) % n
		if slices.Contains(tried, snap.bases[i]) {
			continue
		}
		if !snap.states[i].ejected(now) {
			return i, nil
		}
		if fallback < 0 {
			fallback = i
		}
	}
	if fallback >= 0 {
		return fallback, nil
	}
	return 0, &NoInstanceError{Service: s.name, Err: ErrAllTried}
}

// URL returns "http://<name>" followed by the service's URI template
// expanded with values (see [Expand]): the URL of a call through
// [NewClient] or [NewTransport], which resolve an instance for each
// attempt. For "/1.x/{territory}/users/{userid}", territory=fr and
// userid=42, URL("users", ...) is "http://users/1.x/fr/users/42".
//
// The template is, in this order: the path of a discovery.override.<name>
// that is a URL template; the uri_spec of an instance from the registry
// (instances of one service are expected to share it; during a rollout
// that changes it, the first instance in key order that has one); for an override
// base URL or the port convention, the configuration key
// services.<name>.uri-spec. It returns a [*NoInstanceError] if there is no
// instance, and an error if there is no template or a value is missing.
func (d *Discovery) URL(name string, values map[string]string) (string, error) {
	s, snap, err := d.resolve(name)
	if err != nil {
		return "", err
	}
	if len(snap.instances) == 0 {
		return "", &NoInstanceError{Service: name}
	}
	i := slices.IndexFunc(snap.instances, func(in Instance) bool { return in.Record.URISpec != "" })
	if i < 0 {
		return "", fmt.Errorf("registry: url of %s: instance %s has no uri-spec", name, snap.instances[0].Addr)
	}
	path, err := Expand(snap.instances[i].Record.URISpec, values)
	if err != nil {
		return "", err
	}
	return s.base + path, nil
}

// Instances returns the known instances of the service name, sorted by key;
// an empty list if none is registered. It returns an error if the source of
// the name cannot be used (the registry could not be listed, no offset is
// configured, a malformed override).
func (d *Discovery) Instances(name string) ([]Instance, error) {
	_, snap, err := d.resolve(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(snap.instances), nil
}

// Check reports, from memory, whether discovery is healthy: it returns an
// error naming each service whose watch is broken (its last good set is
// still served) and, with a registry, whether the etcd connection is in
// transient failure. It does not contact etcd. After Close it returns
// ErrClosed.
func (d *Discovery) Check(ctx context.Context) error {
	d.mu.Lock()
	closed := d.closed
	d.mu.Unlock()
	if closed {
		return ErrClosed
	}
	var errs []error
	if d.cli != nil {
		if conn := d.cli.ActiveConnection(); conn != nil {
			if st := conn.GetState(); st == connectivity.TransientFailure {
				errs = append(errs, fmt.Errorf("registry: etcd connection in %s", st))
			}
		}
	}
	services := *d.services.Load()
	for _, name := range slices.Sorted(maps.Keys(services)) {
		s := services[name]
		if s.source != fromRegistry {
			continue
		}
		s.mu.Lock()
		err, since := s.err, s.errSince
		s.mu.Unlock()
		if err != nil {
			n := 0
			if snap := s.snap.Load(); snap != nil {
				n = len(snap.instances)
			}
			errs = append(errs, fmt.Errorf("registry: discovery of %s stale since %s (serving %d known instances): %w",
				name, since.Format(time.RFC3339), n, err))
		}
	}
	return errors.Join(errs...)
}

// Close stops all watches and waits for their goroutines. Names resolved
// before keep their last known instances; a name resolved for the first
// time afterwards fails with ErrClosed. Close is idempotent and returns
// nil.
func (d *Discovery) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	if d.sweeper != nil {
		d.sweeper.Stop()
		d.sweeper = nil
	}
	services := *d.services.Load()
	monitor := d.monitor
	d.mu.Unlock()
	for _, s := range services {
		if s.cancel != nil {
			s.cancel()
		}
	}
	d.wg.Wait()
	if monitor != nil {
		monitor.Close()
	}
	if d.base != nil {
		d.base.CloseIdleConnections()
	}
	return nil
}

// sharedMonitor returns the one monitor of every watch, made on first use
// (nil after Close).
func (d *Discovery) sharedMonitor() *etcdwatch.Monitor {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.monitor == nil && !d.closed {
		d.monitor = etcdwatch.NewMonitor(d.cli, 0)
	}
	return d.monitor
}

// resolve returns the service of name and a snapshot of its instances,
// deciding the service's source on first use.
func (d *Discovery) resolve(name string) (*service, *snapshot, error) {
	s := (*d.services.Load())[name]
	if s == nil {
		var err error
		if s, err = d.add(name); err != nil {
			return nil, nil, err
		}
	}
	if !s.used.Load() { // a load first: no cache-line write per resolve
		s.used.Store(true)
	}
	if snap := s.snap.Load(); snap != nil {
		return s, snap, nil
	}
	// Not listed yet: wait for the first listing (bounded by its own
	// timeout; the timer is a safety net).
	t := time.NewTimer(2 * d.listTimeout)
	select {
	case <-s.ready:
	case <-t.C:
	}
	t.Stop()
	if snap := s.snap.Load(); snap != nil {
		return s, snap, nil
	}
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	if err == nil {
		err = errors.New("registry not listed yet")
	}
	return nil, nil, &NoInstanceError{Service: name, Err: err}
}

// add creates the service of name, starting its watch if it comes from the
// registry.
func (d *Discovery) add(name string) (*service, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := *d.services.Load()
	if s := old[name]; s != nil {
		return s, nil
	}
	if d.closed {
		return nil, ErrClosed
	}
	if err := convention.CheckName("service name", name); err != nil {
		return nil, fmt.Errorf("registry: %w", err)
	}
	s, err := d.newService(name)
	if err != nil {
		return nil, err
	}
	s.base = "http://" + name
	s.budget = newBudget(d.budget)
	if s.source == fromRegistry {
		if d.watched >= d.maxServices {
			if !d.capped {
				d.capped = true
				d.log.Warn("registry: too many service names watched; refusing new ones until idle names are released",
					"max", d.maxServices, "idle_timeout", d.idleTimeout, "refused", name)
			}
			return nil, &TooManyServicesError{Service: name, Max: d.maxServices}
		}
		d.watched++
		s.used.Store(true)
		if d.sweeper == nil {
			d.sweeper = time.AfterFunc(d.idleTimeout, d.sweep)
		}
	}
	m := maps.Clone(old)
	m[name] = s
	d.services.Store(&m)
	if s.source == fromRegistry {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		d.wg.Add(1)
		go d.watch(ctx, s)
	}
	return s, nil
}

// sweep releases the registry names not resolved since the previous
// sweep and clears the mark of the others; it runs every IdleTimeout while
// names are watched.
func (d *Discovery) sweep() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.sweeper == nil {
		return
	}
	old := *d.services.Load()
	var idle []*service
	for _, s := range old {
		if s.source == fromRegistry && !s.used.Swap(false) {
			idle = append(idle, s)
		}
	}
	if len(idle) > 0 {
		m := maps.Clone(old)
		for _, s := range idle {
			delete(m, s.name)
			s.cancel()
		}
		d.services.Store(&m)
		d.watched -= len(idle)
		d.log.Debug("registry: released idle service names", "released", len(idle), "watched", d.watched)
	}
	d.capped = false
	if d.watched == 0 {
		d.sweeper = nil
		return
	}
	d.sweeper.Reset(d.idleTimeout)
}

func (d *Discovery) newService(name string) (*service, error) {
	if v, ok := d.lookup(convention.OverrideKey(name)); ok && v != "" {
		return d.overrideService(name, v)
	}
	if d.cli != nil {
		return &service{
			name:   name,
			source: fromRegistry,
			prefix: Prefix(d.env, name),
			ready:  make(chan struct{}),
		}, nil
	}
	host := "localhost"
	if v, ok := d.lookup(convention.ServiceKey(name, "host")); ok && v != "" {
		host = v
	}
	offset := d.selfOffset
	if name != d.self {
		key := convention.ServiceKey(name, "offset")
		v, ok := d.lookup(key)
		if !ok || v == "" {
			return nil, &NoInstanceError{Service: name, Err: fmt.Errorf(
				"no registry configured, and neither discovery.override.%s nor %s is set", name, key)}
		}
		var err error
		if offset, err = strconv.Atoi(v); err != nil || convention.CheckOffset(offset) != nil {
			return nil, fmt.Errorf("registry: %s = %q: not an offset in 0..%d", key, v, convention.MaxOffset)
		}
	}
	spec, _ := d.lookup(convention.ServiceKey(name, "uri-spec"))
	ports := convention.PortsOf(offset)
	addr := net.JoinHostPort(host, strconv.Itoa(ports.Public))
	s := &service{name: name, source: fromConvention}
	s.snap.Store(newSnapshot([]Instance{{
		Addr:    addr,
		BaseURL: "http://" + addr,
		Record: Record{
			Name:        name,
			Environment: d.env,
			Host:        host,
			PublicPort:  ports.Public,
			PrivatePort: ports.Private,
			AdminPort:   ports.Admin,
			URISpec:     spec,
		},
	}}, nil, 0, nil))
	return s, nil
}

// overrideService makes the service of an override: a base URL, or a URL
// template when its path holds a '{'.
func (d *Discovery) overrideService(name, v string) (*service, error) {
	bad := func(why string) error {
		return fmt.Errorf("registry: discovery.override.%s = %q: %s", name, redact.Value(v), why)
	}
	scheme, rest, ok := strings.Cut(v, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return nil, bad("not an http:// or https:// URL")
	}
	hostport, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		hostport, path = rest[:i], rest[i:]
	}
	if hostport == "" || strings.ContainsAny(hostport, "{}?#@ ") {
		return nil, bad("no valid host")
	}
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		host, portStr = hostport, "80"
		if scheme == "https" {
			portStr = "443"
		}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, bad("port is not a number")
	}
	inst := Instance{
		Addr:   hostport,
		Record: Record{Name: name, Environment: d.env, Host: host, PublicPort: port},
	}
	s := &service{name: name, source: fromOverride}
	if strings.ContainsAny(path, "{}") {
		if err := checkTemplate(path); err != nil {
			return nil, bad(err.Error())
		}
		inst.BaseURL = scheme + "://" + hostport
		inst.Record.URISpec = path
	} else {
		inst.BaseURL = strings.TrimSuffix(v, "/")
		inst.Record.URISpec, _ = d.lookup("services." + name + ".uri-spec")
	}
	s.snap.Store(newSnapshot([]Instance{inst}, nil, 0, nil))
	return s, nil
}

// checkTemplate reports a malformed URI template: unbalanced or empty
// braces.
func checkTemplate(spec string) error {
	depth := 0
	for i := 0; i < len(spec); i++ {
		switch spec[i] {
		case '{':
			if depth > 0 {
				return errors.New("'{' inside a variable")
			}
			if i+1 < len(spec) && spec[i+1] == '}' {
				return errors.New("empty variable {}")
			}
			depth++
		case '}':
			if depth == 0 {
				return errors.New("'}' without '{'")
			}
			depth--
		}
	}
	if depth > 0 {
		return errors.New("'{' without '}'")
	}
	return nil
}

// watch keeps s.snap in line with the registry until ctx is done.
func (d *Discovery) watch(ctx context.Context, s *service) {
	defer d.wg.Done()
	rev, err := d.list(ctx, s)
	close(s.ready)
	loop := etcdwatch.Loop{
		List:      func(ctx context.Context) (int64, error) { return d.list(ctx, s) },
		Follow:    func(ctx context.Context, from int64) error { return d.follow(ctx, s, from) },
		Broken:    func(err error) { d.broken(s, err) },
		Recovered: func() { d.recovered(s) },
		Backoff:   etcdwatch.Backoff{Min: 100 * time.Millisecond, Max: 5 * time.Second},
		Monitor:   d.sharedMonitor(),
	}
	loop.Run(ctx, d.cli, rev, err)
}

// list reads all instances of s and stores them; it returns the revision
// read.
func (d *Discovery) list(ctx context.Context, s *service) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, d.listTimeout)
	defer cancel()
	resp, err := d.cli.Get(lctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("registry: list %s: %w", s.prefix, err)
	}
	instances := make([]Instance, 0, len(resp.Kvs))
	mods := make([]int64, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		inst, err := ParseInstance(string(kv.Key), kv.Value)
		if err != nil {
			d.log.Warn("registry: skipping malformed registry value", "key", string(kv.Key), "err", err)
			continue
		}
		instances = append(instances, inst)
		mods = append(mods, kv.ModRevision)
	}
	s.snap.Store(newSnapshot(instances, mods, resp.Header.Revision, s.snap.Load()))
	return resp.Header.Revision, nil
}

// follow applies the watch events of s's prefix from revision from, until
// the watch fails or ctx is done; it returns why it stopped.
func (d *Discovery) follow(ctx context.Context, s *service, from int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := d.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	for wr := range wch {
		if err := wr.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("registry: watch %s from revision %d: compacted at revision %d: %w",
					s.prefix, from, wr.CompactRevision, err)
			}
			return fmt.Errorf("registry: watch %s: %w", s.prefix, err)
		}
		if len(wr.Events) == 0 {
			continue // progress notification
		}
		d.apply(s, wr.Events, wr.Header.Revision)
		from = wr.Header.Revision + 1
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("registry: watch %s: channel closed", s.prefix)
}

// apply makes a new snapshot of s with events applied.
func (d *Discovery) apply(s *service, events []*clientv3.Event, rev int64) {
	old := s.snap.Load()
	type entry struct {
		inst Instance
		mod  int64
	}
	byKey := make(map[string]entry, len(old.instances)+len(events))
	for i, inst := range old.instances {
		byKey[inst.Key] = entry{inst, old.states[i].mod}
	}
	for _, ev := range events {
		key := string(ev.Kv.Key)
		switch ev.Type {
		case mvccpb.PUT:
			inst, err := ParseInstance(key, ev.Kv.Value)
			if err != nil {
				d.log.Warn("registry: skipping malformed registry value", "key", key, "err", err)
				delete(byKey, key)
				continue
			}
			byKey[key] = entry{inst, ev.Kv.ModRevision}
		case mvccpb.DELETE:
			delete(byKey, key)
		}
	}
	instances := make([]Instance, 0, len(byKey))
	mods := make([]int64, 0, len(byKey))
	for _, e := range byKey {
		instances = append(instances, e.inst)
		mods = append(mods, e.mod)
	}
	s.snap.Store(newSnapshot(instances, mods, rev, old))
}

// broken records that s's watch failed with err; it logs the first
// failure of an incident.
func (d *Discovery) broken(s *service, err error) {
	s.mu.Lock()
	first := s.err == nil
	s.err = err
	if first {
		s.errSince = time.Now()
	}
	s.mu.Unlock()
	n := 0
	if snap := s.snap.Load(); snap != nil {
		n = len(snap.instances)
	}
	if first {
		d.log.Warn("registry: discovery interrupted; serving the last known instances and retrying",
			"service", s.name, "instances", n, "err", err)
	} else {
		d.log.Debug("registry: discovery still interrupted", "service", s.name, "err", err)
	}
}

// recovered records that s was listed again.
func (d *Discovery) recovered(s *service) {
	s.mu.Lock()
	was := s.err
	s.err = nil
	s.mu.Unlock()
	if was != nil {
		d.log.Info("registry: discovery resumed", "service", s.name,
			"instances", len(s.snap.Load().instances))
	}
}
