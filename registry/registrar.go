package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/svc-dev/svc/internal/etcdwatch"
)

// Defaults of [RegistrarOptions].
const (
	DefaultTTL      = 10 * time.Second
	DefaultAttempts = 10
	DefaultInterval = time.Second
)

// errKeepAliveClosed reports that the lease's keep-alive channel closed
// while the registrar was running: the lease expired, was revoked, or no
// keep-alive answer came within the TTL.
var errKeepAliveClosed = errors.New("keep-alive channel closed")

// errClientClosed reports that the etcd client was closed under a running
// registrar, which then stops.
var errClientClosed = errors.New("etcd client closed")

// RegistrarOptions tunes a [Registrar]. The zero value is usable.
type RegistrarOptions struct {
	// TTL is the lease's time to live, rounded up to whole seconds. The key
	// disappears at most about TTL after the process dies. If zero,
	// DefaultTTL (10s) is used. etcd raises TTLs below its minimum
	// (about 1.5 election timeouts, 2s with etcd's defaults).
	TTL time.Duration
	// Attempts is how often Register calls the health function before it
	// gives up. If zero, DefaultAttempts (10) is used.
	Attempts int
	// Interval is the pause between two health attempts. If zero,
	// DefaultInterval (1s) is used.
	Interval time.Duration
	// Logger receives one line per change of registration state. If nil,
	// nothing is logged.
	Logger *slog.Logger
	// Metrics, if not nil, gets the gauge svc_registry_registered: 1 while
	// the instance's key is held under a live lease, 0 otherwise. If the
	// registerer already holds that gauge (a Registrar made again for the
	// same process), the existing gauge is used.
	Metrics prometheus.Registerer
}

// Status is a snapshot of a [Registrar]'s state, for readiness details and
// the admin port.
type Status struct {
	// Registered is true while the key is held under a lease that etcd last
	// confirmed alive.
	Registered bool `json:"registered"`
	// Key is the instance's registry key.
	Key string `json:"key"`
	// LeaseID is the current lease, 0 before the first grant and after
	// Deregister.
	LeaseID int64 `json:"lease_id"`
	// LastError is why the instance is not registered; empty while it is.
	LastError string `json:"last_error,omitempty"`
	// Since is when Registered last changed (or Register or Deregister
	// was called).
	Since time.Time `json:"since"`
}

// Registrar advertises one instance in etcd under a key attached to a lease
// and keeps it there until Deregister.
//
// Register starts one goroutine, which grants the lease, puts the key,
// keeps the lease alive and watches the key. When the lease is lost (etcd
// restarted or partitioned away, the process paused past the TTL, the lease
// revoked) it asks etcd whether the lease still lives: if so it resumes
// keeping it alive, otherwise it grants a fresh lease (never reusing the old
// id) and puts the key again. If another client deletes the key while the
// lease lives, the key is put back. When etcd is replaced under it (wiped,
// restored from a backup, another cluster at the same address), a wiped
// etcd no longer knows the lease, which counts as a lost lease; in a
// restored one the lease may live on, so the registrar also checks the
// cluster id and revision of every keep-alive answer and, on another
// cluster id or a revision below one seen, puts the key again and watches
// it from the new revision. Failed steps are retried forever with
// capped, jittered exponential backoff; the log gets one line per change of
// state, not one per retry. The goroutine ends with Deregister, or when the
// etcd client is closed.
//
// A Registrar is safe for concurrent use.
type Registrar struct {
	cli        *clientv3.Client
	rec        Record
	key        string
	val        string
	ttl        int64 // seconds
	attempts   int
	interval   time.Duration
	opTimeout  time.Duration // bound of one etcd request
	maxBackoff time.Duration
	log        *slog.Logger
	gauge      prometheus.Gauge // nil without Metrics

	runMu sync.Mutex         // serializes Register and Deregister; guards stop and done
	stop  context.CancelFunc // stops the loop
	done  chan struct{}      // closed when the loop has returned; nil if none started

	mu       sync.Mutex       // guards status, lease and reported
	status   Status           //
	lease    clientv3.LeaseID // newest lease granted, revoked by Deregister
	reported bool             // the current failure to register was logged
}

// NewRegistrar returns a Registrar of rec on cli. It validates rec (see
// [Record.Validate]) and the options and registers the gauge on
// opts.Metrics; it does not contact etcd.
func NewRegistrar(cli *clientv3.Client, rec Record, opts RegistrarOptions) (*Registrar, error) {
	if cli == nil {
		return nil, errors.New("registry: new registrar: nil etcd client")
	}
	if err := rec.Validate(); err != nil {
		return nil, err
	}
	val, err := rec.MarshalValue()
	if err != nil {
		return nil, err
	}
	ttl := opts.TTL
	switch {
	case ttl == 0:
		ttl = DefaultTTL
	case ttl < 0:
		return nil, fmt.Errorf("registry: new registrar: negative TTL %s", ttl)
	}
	attempts := opts.Attempts
	switch {
	case attempts == 0:
		attempts = DefaultAttempts
	case attempts < 0:
		return nil, fmt.Errorf("registry: new registrar: negative attempts %d", attempts)
	}
	interval := opts.Interval
	switch {
	case interval == 0:
		interval = DefaultInterval
	case interval < 0:
		return nil, fmt.Errorf("registry: new registrar: negative interval %s", interval)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Registrar{
		cli:        cli,
		rec:        rec,
		key:        rec.Key(),
		val:        string(val),
		ttl:        int64(math.Ceil(ttl.Seconds())),
		attempts:   attempts,
		interval:   interval,
		opTimeout:  min(max(ttl/2, time.Second), 5*time.Second),
		maxBackoff: min(max(ttl/2, 500*time.Millisecond), 5*time.Second),
		log:        log.With("key", rec.Key()),
	}
	r.status = Status{Key: r.key, Since: time.Now()}
	if opts.Metrics != nil {
		g := prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "svc_registry_registered",
			Help: "1 while this instance's registry key is held under a live etcd lease, 0 otherwise.",
		})
		if err := opts.Metrics.Register(g); err != nil {
			are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err)
			if !ok {
				return nil, fmt.Errorf("registry: register gauge: %w", err)
			}
			if g, ok = are.ExistingCollector.(prometheus.Gauge); !ok {
				return nil, fmt.Errorf("registry: register gauge: %w", err)
			}
		}
		g.Set(0)
		r.gauge = g
	}
	return r, nil
}

// Key returns the instance's registry key.
func (r *Registrar) Key() string { return r.key }

// Register waits until health passes, then starts registering in the
// background and returns nil.
//
// health is called up to Attempts times, Interval apart; a nil health
// passes at once. If it never passes, Register returns an error naming the
// attempts and wrapping the last health error; if ctx ends first, an error
// wrapping ctx's. Once health passed, Register returns nil even if etcd is
// unreachable: the background loop keeps trying, and [Registrar.Status]
// tells how it goes. ctx bounds the health gate only, not the registration.
//
// Register on a running Registrar returns nil and does nothing. After
// Deregister it may be called again (drain, then undrain).
func (r *Registrar) Register(ctx context.Context, health func(context.Context) error) error {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.done != nil {
		select {
		case <-r.done: // the loop stopped by itself (client closed): start anew
		default:
			return nil
		}
	}
	if err := r.waitHealthy(ctx, health); err != nil {
		r.mu.Lock()
		r.status.LastError = err.Error()
		r.mu.Unlock()
		return err
	}
	loopCtx, stop := context.WithCancel(context.Background())
	r.stop = stop
	r.done = make(chan struct{})
	r.mu.Lock()
	r.status = Status{Key: r.key, LastError: "not registered yet", Since: time.Now()}
	r.reported = false
	r.mu.Unlock()
	go r.run(loopCtx, r.done)
	return nil
}

func (r *Registrar) waitHealthy(ctx context.Context, health func(context.Context) error) error {
	if health == nil {
		return nil
	}
	var err error
	for attempt := 1; ; attempt++ {
		if err = health(ctx); err == nil {
			if attempt > 1 {
				r.log.Info("registry: healthy", "attempts", attempt)
			}
			return nil
		}
		if attempt >= r.attempts {
			break
		}
		r.log.Debug("registry: not healthy yet", "attempt", attempt, "err", err)
		t := time.NewTimer(r.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("registry: %s: waiting for health (attempt %d of %d, last error: %v): %w",
				r.rec.Name, attempt, r.attempts, err, ctx.Err())
		case <-t.C:
		}
	}
	return fmt.Errorf("registry: %s not healthy after %d attempts %s apart, not registering: %w",
		r.rec.Name, r.attempts, r.interval, err)
}

// Deregister stops the background loop, deletes the key (if it still
// belongs to the registrar's lease) and revokes the lease, all bounded by
// ctx. Errors of the delete and the revoke are joined; if the etcd client
// is closed it returns an error at once (the key then goes when the lease
// expires). Deregister is idempotent: without a running registration it
// returns nil. It waits for a Register in progress (its health gate).
func (r *Registrar) Deregister(ctx context.Context) error {
	r.runMu.Lock()
	defer r.runMu.Unlock()
	if r.done == nil {
		return nil
	}
	r.stop()
	select {
	case <-r.done:
	case <-ctx.Done():
		return fmt.Errorf("registry: deregister %s: waiting for the registration loop: %w", r.key, ctx.Err())
	}
	r.stop, r.done = nil, nil

	r.mu.Lock()
	lease := r.lease
	r.lease = 0
	wasRegistered := r.status.Registered
	r.status = Status{Key: r.key, LastError: "deregistered", Since: time.Now()}
	r.mu.Unlock()
	r.setGauge(false)
	if lease == 0 {
		return nil
	}
	if r.cli.Ctx().Err() != nil {
		return fmt.Errorf("registry: deregister %s: %w; the key goes when lease %x expires", r.key, errClientClosed, lease)
	}

	var errs []error
	// Delete only our own key: same lease. Revoking deletes it too, but an
	// explicit delete first makes the key go even if the revoke fails.
	_, err := r.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(r.key), "=", lease)).
		Then(clientv3.OpDelete(r.key)).
		Commit()
	if err != nil {
		errs = append(errs, fmt.Errorf("registry: deregister: delete %s: %w", r.key, err))
	}
	if _, err := r.cli.Revoke(ctx, lease); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		errs = append(errs, fmt.Errorf("registry: deregister: revoke lease %x: %w", lease, err))
	}
	if err := errors.Join(errs...); err != nil {
		r.log.Warn("registry: deregister failed", "err", err)
		return err
	}
	if wasRegistered {
		r.log.Info("registry: deregistered", "lease", fmt.Sprintf("%x", lease))
	}
	return nil
}

// Status returns the current registration state.
func (r *Registrar) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.status
}

// run is the registration loop. It returns when ctx is done or the client
// is closed, and closes done.
func (r *Registrar) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	bo := etcdwatch.Backoff{Min: 100 * time.Millisecond, Max: r.maxBackoff}
	var lease clientv3.LeaseID // lease in use; 0: grant a fresh one
	for {
		if r.cli.Ctx().Err() != nil {
			r.failed(errClientClosed)
			return
		}
		if lease == 0 {
			id, err := r.grant(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.failed(err)
				if !r.sleep(ctx, bo.Delay()) {
					return
				}
				continue
			}
			lease = id
		}

		began := time.Now()
		err := r.maintain(ctx, lease)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > 2*r.maxBackoff {
			bo.Reset() // it held for a while: this is a new incident
		}
		r.failed(err)

		// Lost: does etcd still know the lease? Ask until it answers.
		for {
			alive, err := r.leaseAlive(ctx, lease)
			if err == nil {
				if !alive {
					r.log.Debug("registry: lease expired; granting a fresh one", "lease", fmt.Sprintf("%x", lease))
					lease = 0
				}
				break
			}
			if ctx.Err() != nil {
				return
			}
			r.failed(err)
			if !r.sleep(ctx, bo.Delay()) {
				return
			}
		}
		if !r.sleep(ctx, bo.Delay()) {
			return
		}
	}
}

// grant grants a fresh lease and records it for Deregister.
func (r *Registrar) grant(ctx context.Context) (clientv3.LeaseID, error) {
	gctx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	resp, err := r.cli.Grant(gctx, r.ttl)
	if err != nil {
		return 0, fmt.Errorf("registry: grant lease: %w", err)
	}
	r.mu.Lock()
	r.lease = resp.ID
	r.mu.Unlock()
	return resp.ID, nil
}

// put writes the key under lease and returns the header of the write.
func (r *Registrar) put(ctx context.Context, lease clientv3.LeaseID) (*pb.ResponseHeader, error) {
	pctx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	resp, err := r.cli.Put(pctx, r.key, r.val, clientv3.WithLease(lease))
	if err != nil {
		return nil, fmt.Errorf("registry: put %s with lease %x: %w", r.key, lease, err)
	}
	return resp.Header, nil
}

// checkReplaced observes h, the header of a response about lease, with tr
// and returns an error wrapping an [*etcdwatch.ReplacedError] if etcd was
// replaced (another cluster, or a revision below one seen). A revision
// below one seen is confirmed first by a linearizable read of the key:
// a member of a cluster that lags behind may have answered.
func (r *Registrar) checkReplaced(ctx context.Context, tr *etcdwatch.Tracker, h *pb.ResponseHeader, lease clientv3.LeaseID) error {
	before := *tr
	err := tr.Observe(h)
	replaced, ok := errors.AsType[*etcdwatch.ReplacedError](err)
	if !ok {
		return nil
	}
	if replaced.OldClusterID == replaced.NewClusterID {
		*tr = before
		gctx, cancel := context.WithTimeout(ctx, r.opTimeout)
		resp, gerr := r.cli.Get(gctx, r.key)
		cancel()
		if gerr != nil {
			return nil // an outage: the keep-alive sees it
		}
		if err = tr.Observe(resp.Header); err == nil {
			return nil
		}
	}
	return fmt.Errorf("registry: lease %x: %w; registering again", lease, err)
}

// leaseAlive asks etcd whether lease is still alive.
func (r *Registrar) leaseAlive(ctx context.Context, lease clientv3.LeaseID) (bool, error) {
	tctx, cancel := context.WithTimeout(ctx, r.opTimeout)
	defer cancel()
	resp, err := r.cli.TimeToLive(tctx, lease)
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("registry: time-to-live of lease %x: %w", lease, err)
	}
	return resp.TTL > 0, nil
}

// maintain puts the key under lease, then keeps the lease alive and the key
// in place until ctx is done or the lease is lost, which it returns as an
// error.
func (r *Registrar) maintain(ctx context.Context, lease clientv3.LeaseID) error {
	mctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the keep-alive and the watch

	// tr notices etcd replaced under the registrar (wiped, restored from a
	// backup, another cluster at the same address): the lease may live on
	// in a restored etcd while the key, or the revision the watch below
	// waits for, does not.
	var tr etcdwatch.Tracker
	hdr, err := r.put(mctx, lease)
	if err != nil {
		return err
	}
	tr.Observe(hdr)
	ka, err := r.cli.KeepAlive(mctx, lease)
	if err != nil {
		return fmt.Errorf("registry: keep lease %x alive: %w", lease, err)
	}
	r.registered(lease)
	// clientv3's Watch blocks until its stream is open, so until etcd
	// answers: it is called in a goroutine, and the loop keeps checking
	// the keep-alive meanwhile (etcd can go down right after the put).
	var wch clientv3.WatchChan          // nil until the watch is open
	var opening chan clientv3.WatchChan // receives the watch being opened
	watch := func(rev int64) {
		ch := make(chan clientv3.WatchChan, 1)
		go func() { ch <- r.cli.Watch(mctx, r.key, clientv3.WithRev(rev)) }()
		wch, opening = nil, ch
	}
	watch(hdr.Revision + 1)
	// The client closes ka once its own deadline passes, but under load
	// that can come late; a TTL without any answer means the lease is as
	// good as lost, whatever the client still believes.
	ttl := time.Duration(r.ttl) * time.Second
	lastAnswer := time.Now()
	tick := time.NewTicker(ttl / 4)
	defer tick.Stop()
	for {
		select {
		case <-mctx.Done():
			return mctx.Err()
		case w := <-opening:
			wch, opening = w, nil
		case <-tick.C:
			if time.Since(lastAnswer) > ttl {
				return fmt.Errorf("registry: lease %x: no keep-alive answer for %s: %w", lease, ttl, errKeepAliveClosed)
			}
		case resp, ok := <-ka:
			if !ok {
				return fmt.Errorf("registry: lease %x: %w", lease, errKeepAliveClosed)
			}
			lastAnswer = time.Now()
			if err := r.checkReplaced(mctx, &tr, resp.ResponseHeader, lease); err != nil {
				return err
			}
		case wr, ok := <-wch:
			if !ok || wr.Err() != nil {
				// The watch ended (compacted past our revision, closed):
				// make sure the key is there and watch again from now.
				if mctx.Err() != nil {
					return mctx.Err()
				}
				if hdr, err = r.put(mctx, lease); err != nil {
					return err
				}
				if err := r.checkReplaced(mctx, &tr, hdr, lease); err != nil {
					return err
				}
				watch(hdr.Revision + 1)
				continue
			}
			if err := r.checkReplaced(mctx, &tr, wr.Header, lease); err != nil {
				return err
			}
			for _, ev := range wr.Events {
				if ev.Type != mvccpb.DELETE {
					continue
				}
				r.log.Warn("registry: key deleted by another client; putting it back", "lease", fmt.Sprintf("%x", lease))
				if hdr, err = r.put(mctx, lease); err != nil {
					return err
				}
				if err := r.checkReplaced(mctx, &tr, hdr, lease); err != nil {
					return err
				}
			}
		}
	}
}

// sleep waits d and reports whether the loop should go on.
func (r *Registrar) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.cli.Ctx().Done():
		r.failed(errClientClosed)
		return false
	case <-t.C:
		return true
	}
}

// registered records that the key is held under lease.
func (r *Registrar) registered(lease clientv3.LeaseID) {
	r.mu.Lock()
	prev := r.status
	r.status = Status{Registered: true, Key: r.key, LeaseID: int64(lease), Since: prev.Since}
	if !prev.Registered {
		r.status.Since = time.Now()
	}
	r.reported = false
	r.mu.Unlock()
	r.setGauge(true)
	switch {
	case prev.Registered && prev.LeaseID == int64(lease):
	case prev.LeaseID == 0:
		r.log.Info("registry: registered", "lease", fmt.Sprintf("%x", lease), "ttl", r.ttl)
	case prev.LeaseID != int64(lease):
		r.log.Info("registry: registered again with a new lease", "lease", fmt.Sprintf("%x", lease), "old_lease", fmt.Sprintf("%x", prev.LeaseID))
	default:
		r.log.Info("registry: registered again, lease still alive", "lease", fmt.Sprintf("%x", lease))
	}
}

// failed records that the instance is not registered because of err. It
// logs on a change of state only: the first failure after Register or
// after being registered.
func (r *Registrar) failed(err error) {
	r.mu.Lock()
	prev, reported := r.status, r.reported
	r.status.Registered = false
	r.status.LastError = err.Error()
	if prev.Registered {
		r.status.Since = time.Now()
	}
	r.reported = true
	r.mu.Unlock()
	r.setGauge(false)
	switch {
	case prev.Registered:
		r.log.Warn("registry: registration lost; registering again in the background", "err", err)
	case !reported:
		r.log.Warn("registry: not registered; retrying in the background", "err", err)
	default:
		r.log.Debug("registry: still not registered", "err", err)
	}
}

func (r *Registrar) setGauge(registered bool) {
	if r.gauge == nil {
		return
	}
	if registered {
		r.gauge.Set(1)
	} else {
		r.gauge.Set(0)
	}
}
