package etcdsource

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/connectivity"

	"github.com/svc-dev/svc/config"
	"github.com/svc-dev/svc/internal/convention"
	"github.com/svc-dev/svc/internal/etcdwatch"
)

// AllServices is the name under which values shared by every service are
// kept: svc/<environment>/config/_all/<key>. No service name can take it.
const AllServices = convention.AllServices

// Defaults of [Options].
const (
	DefaultInitialTimeout = 2 * time.Second
	DefaultListTimeout    = 5 * time.Second
	DefaultMaxBackoff     = 5 * time.Second
)

// minBackoff is the first delay before trying etcd again.
const minBackoff = 100 * time.Millisecond

// Prefix returns the etcd prefix of name's configuration in environment,
// "svc/<environment>/config/<name>/"; name AllServices gives the prefix of
// the values every service shares.
func Prefix(environment, name string) string {
	return convention.ConfigPrefix(environment, name)
}

// Options configures a [Source]. The zero value uses the defaults.
type Options struct {
	// Logger receives a line when etcd is unreachable (once per outage),
	// when it is back, and for each ignored key. If nil, nothing is logged.
	Logger *slog.Logger
	// InitialTimeout bounds the first listing, which New waits for. If
	// zero, DefaultInitialTimeout (2s).
	InitialTimeout time.Duration
	// ListTimeout bounds each later listing. If zero, DefaultListTimeout
	// (5s).
	ListTimeout time.Duration
	// MaxBackoff caps the delay between attempts to reach etcd again. If
	// zero, DefaultMaxBackoff (5s).
	MaxBackoff time.Duration
}

// Source is the etcd configuration layer of one service. It is a
// [config.Source] named "etcd" whose contents are the last values read
// from etcd, and a [config.Notifier].
//
// A Source is safe for concurrent use. New starts one goroutine; Close
// stops it.
type Source struct {
	cli         *clientv3.Client
	all, own    string // the prefixes
	log         *slog.Logger
	listTimeout time.Duration
	maxBackoff  time.Duration

	snap    atomic.Pointer[config.Map] // merged values: _all, then own
	changed chan struct{}              // capacity 1: coalesced announcements

	// Owned by the goroutine (and by New before it starts it).
	allKV, ownKV map[string]string // etcd key -> value, per prefix
	ignored      map[string]bool   // etcd keys already logged as ignored

	cancel context.CancelFunc
	wg     sync.WaitGroup // counts the goroutine

	mu     sync.Mutex // guards the fields below
	err    error      // why the layer does not follow etcd now; nil when it does
	since  time.Time  // start of the current outage
	closed bool
}

var (
	_ config.Source   = (*Source)(nil)
	_ config.Notifier = (*Source)(nil)
)

// New returns the etcd layer of service name in environment, read through
// cli. It lists the layer's two prefixes, waiting at most
// o.InitialTimeout; if etcd does not answer in time, the layer starts
// empty, the failure is logged once and reported by Check, and the
// listing is retried in the background. New then starts the goroutine that
// follows etcd. It returns an error only for a nil client or an empty or
// malformed name or environment.
func New(cli *clientv3.Client, environment, name string, o Options) (*Source, error) {
	if cli == nil {
		return nil, errors.New("etcdsource: nil etcd client")
	}
	for _, s := range []string{environment, name} {
		if s == "" || strings.ContainsAny(s, "/ ") {
			return nil, fmt.Errorf("etcdsource: environment %q and service name %q must be non-empty, without '/' or spaces", environment, name)
		}
	}
	s := &Source{
		cli:         cli,
		all:         Prefix(environment, AllServices),
		own:         Prefix(environment, name),
		log:         o.Logger,
		listTimeout: cmp.Or(o.ListTimeout, DefaultListTimeout),
		maxBackoff:  cmp.Or(o.MaxBackoff, DefaultMaxBackoff),
		changed:     make(chan struct{}, 1),
		ignored:     map[string]bool{},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.snap.Store(config.NewMap("etcd", nil))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	rev, err := s.list(ctx, cmp.Or(o.InitialTimeout, DefaultInitialTimeout), false)
	if err != nil {
		s.broken(err, true)
	}
	s.wg.Go(func() { s.run(ctx, rev, err) })
	return s, nil
}

// Name returns "etcd".
func (s *Source) Name() string { return "etcd" }

// Lookup returns key's value among the last values read.
func (s *Source) Lookup(key string) (string, bool) { return s.snap.Load().Lookup(key) }

// Keys returns the keys among the last values read, sorted.
func (s *Source) Keys() []string { return s.snap.Load().Keys() }

// Load returns the last values read, as an immutable layer named "etcd".
// It does not contact etcd and never fails.
func (s *Source) Load(context.Context) (config.Source, error) { return s.snap.Load(), nil }

// Changed returns the channel that receives after the values changed. It
// is meant for one reader: the [config.Live] the layer belongs to.
func (s *Source) Changed() <-chan struct{} { return s.changed }

// Check returns nil while the layer follows etcd, and otherwise an error
// for /readyz details: starting "etcd config layer: unreachable, retrying",
// or, from the moment the layer noticed that etcd was replaced under it
// until it has listed the new etcd, "etcd config layer: etcd replaced,
// listing again" wrapping an [*etcdwatch.ReplacedError]. It does not
// contact etcd. After Close it returns an error.
func (s *Source) Check(context.Context) error {
	s.mu.Lock()
	err, since, closed := s.err, s.since, s.closed
	s.mu.Unlock()
	n := len(s.snap.Load().Keys())
	switch {
	case closed:
		return errors.New("etcd config layer: closed")
	case isReplaced(err):
		return fmt.Errorf("etcd config layer: etcd replaced, listing again (since %s; serving %d last known keys): %w",
			since.UTC().Format(time.RFC3339), n, err)
	case err != nil:
		return fmt.Errorf("etcd config layer: unreachable, retrying (since %s; serving %d last known keys): %w",
			since.UTC().Format(time.RFC3339), n, err)
	}
	if conn := s.cli.ActiveConnection(); conn != nil {
		if st := conn.GetState(); st == connectivity.TransientFailure {
			return fmt.Errorf("etcd config layer: unreachable, retrying (connection in %s; serving %d last known keys)", st, n)
		}
	}
	return nil
}

// Close stops following etcd and waits for the goroutine to end. The last
// values read stay readable. Close is idempotent and returns nil; it does
// not close the client.
func (s *Source) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// run follows etcd until ctx is done or the client is closed: watch from
// the revision after rev; when the watch or a listing fails, wait, list
// again and watch again.
func (s *Source) run(ctx context.Context, rev int64, err error) {
	loop := etcdwatch.Loop{
		List:      func(ctx context.Context) (int64, error) { return s.list(ctx, s.listTimeout, true) },
		Follow:    s.follow,
		Broken:    func(err error) { s.broken(err, false) },
		Recovered: s.recovered,
		Backoff:   etcdwatch.Backoff{Min: minBackoff, Max: s.maxBackoff},
	}
	loop.Run(ctx, s.cli, rev, err)
}

// list reads both prefixes at one revision, replaces the values and
// returns the revision read.
func (s *Source) list(ctx context.Context, timeout time.Duration, announce bool) (int64, error) {
	lctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := s.cli.Txn(lctx).Then(
		clientv3.OpGet(s.all, clientv3.WithPrefix()),
		clientv3.OpGet(s.own, clientv3.WithPrefix()),
	).Commit()
	if err != nil {
		return 0, fmt.Errorf("list %s and %s: %w", s.all, s.own, err)
	}
	kvs := func(i int) map[string]string {
		m := map[string]string{}
		for _, kv := range resp.Responses[i].GetResponseRange().GetKvs() {
			m[string(kv.Key)] = string(kv.Value)
		}
		return m
	}
	s.allKV, s.ownKV = kvs(0), kvs(1)
	s.publish(announce)
	return resp.Header.Revision, nil
}

// follow applies the events of both prefixes from revision from, until a
// watch fails or ctx is done; it returns why it stopped.
func (s *Source) follow(ctx context.Context, from int64) error {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wAll := s.cli.Watch(wctx, s.all, clientv3.WithPrefix(), clientv3.WithRev(from))
	wOwn := s.cli.Watch(wctx, s.own, clientv3.WithPrefix(), clientv3.WithRev(from))
	for {
		var (
			wr     clientv3.WatchResponse
			ok     bool
			prefix string
			kv     map[string]string
		)
		select {
		case wr, ok = <-wAll:
			prefix, kv = s.all, s.allKV
		case wr, ok = <-wOwn:
			prefix, kv = s.own, s.ownKV
		}
		if !ok {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fmt.Errorf("watch %s: channel closed", prefix)
		}
		if err := wr.Err(); err != nil {
			if errors.Is(err, rpctypes.ErrCompacted) {
				return fmt.Errorf("watch %s from revision %d: compacted at revision %d: %w", prefix, from, wr.CompactRevision, err)
			}
			return fmt.Errorf("watch %s: %w", prefix, err)
		}
		if len(wr.Events) == 0 {
			continue // progress notification or creation
		}
		for _, ev := range wr.Events {
			switch ev.Type {
			case mvccpb.PUT:
				kv[string(ev.Kv.Key)] = string(ev.Kv.Value)
			case mvccpb.DELETE:
				delete(kv, string(ev.Kv.Key))
			}
		}
		s.publish(true)
	}
}

// publish merges the values of both prefixes (the service's own winning)
// and, when they differ from the last published, stores them and, if
// announce, announces the change.
func (s *Source) publish(announce bool) {
	m := map[string]string{}
	origin := map[string]config.Origin{}
	for _, p := range []struct {
		prefix string
		kv     map[string]string
		shared bool
	}{{s.all, s.allKV, true}, {s.own, s.ownKV, false}} {
		for ek, v := range p.kv {
			if key, ok := s.key(p.prefix, ek); ok && v != "" {
				m[key] = v
				origin[key] = config.Origin{Where: "etcd key " + ek, Shared: p.shared}
			}
		}
	}
	old := s.snap.Load()
	if maps.Equal(m, asMap(old)) && sameOrigins(origin, old) {
		return
	}
	s.snap.Store(config.NewMapOrigins("etcd", m, origin))
	if announce {
		select {
		case s.changed <- struct{}{}:
		default: // one is pending already
		}
	}
}

// key returns the configuration key of etcd key ek under prefix, or false
// for a key the layer ignores (logged once).
func (s *Source) key(prefix, ek string) (string, bool) {
	key := strings.TrimPrefix(ek, prefix)
	why := ""
	switch {
	case key == "" || strings.Contains(key, "/") || key != strings.ToLower(key):
		why = "not a configuration key: want lower-case, dotted, without '/'"
	case key == "environment" || strings.HasPrefix(key, "etcd."):
		why = "only files and the environment can set it: it locates the configuration"
	default:
		return key, true
	}
	if !s.ignored[ek] {
		s.ignored[ek] = true
		s.log.Warn("etcd config layer: ignoring a key", "etcd_key", ek, "reason", why)
	}
	return "", false
}

// sameOrigins reports whether every key of origin comes from the same
// place in m: a key moving between _all and the service's prefix with
// the same value changes whether an undeclared one is refused.
func sameOrigins(origin map[string]config.Origin, m *config.Map) bool {
	for k, o := range origin {
		if mo, _ := m.Origin(k); mo != o {
			return false
		}
	}
	return true
}

func asMap(m *config.Map) map[string]string {
	out := map[string]string{}
	for _, k := range m.Keys() {
		out[k], _ = m.Lookup(k)
	}
	return out
}

// broken records that the layer does not follow etcd because of err; it
// logs the first failure of an outage.
func (s *Source) broken(err error, startup bool) {
	s.mu.Lock()
	first := s.err == nil
	s.err = err
	if first {
		s.since = time.Now()
	}
	s.mu.Unlock()
	switch {
	case isReplaced(err):
		s.log.Warn("etcd config layer: etcd replaced under the service; serving the last known values until listed again",
			"keys", len(s.snap.Load().Keys()), "err", err)
	case first && startup:
		s.log.Warn("etcd config layer unreachable: starting from files and environment; retrying in the background",
			"prefixes", []string{s.all, s.own}, "err", err)
	case first:
		s.log.Warn("etcd config layer interrupted: serving the last known values; retrying",
			"keys", len(s.snap.Load().Keys()), "err", err)
	default:
		s.log.Debug("etcd config layer still unreachable", "err", err)
	}
}

// isReplaced reports whether err says that etcd was replaced.
func isReplaced(err error) bool {
	_, ok := errors.AsType[*etcdwatch.ReplacedError](err)
	return ok
}

// recovered records that the layer follows etcd again.
func (s *Source) recovered() {
	s.mu.Lock()
	was := s.err
	s.err = nil
	s.mu.Unlock()
	if was != nil {
		s.log.Info("etcd config layer connected", "keys", len(s.snap.Load().Keys()))
	}
}
