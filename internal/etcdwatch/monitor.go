package etcdwatch

import (
	"context"
	"errors"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Monitor asks etcd for its cluster id and revision every interval on
// behalf of every [Loop] that shares one client (discovery follows one
// loop per service name): each loop notices a replaced etcd without a
// goroutine and a request of its own. A Monitor runs one goroutine while
// it has follows to check, and none otherwise; Close stops it. It is safe
// for concurrent use.
type Monitor struct {
	cli   *clientv3.Client
	every time.Duration
	ctx   context.Context // ends at Close

	mu      sync.Mutex // guards subs, running
	subs    map[*subscription]struct{}
	running bool          // the goroutine runs
	idle    chan struct{} // receives when the last follow ends; capacity 1

	cancel context.CancelFunc
	wg     sync.WaitGroup // counts the goroutine
}

// subscription is one follow the monitor checks for.
type subscription struct {
	tr   Tracker                 // guarded by the monitor's mu
	stop context.CancelCauseFunc // ends the follow with a *ReplacedError
}

// NewMonitor returns a monitor asking through cli every interval (if not
// positive, DefaultCheckEvery). It starts nothing.
func NewMonitor(cli *clientv3.Client, every time.Duration) *Monitor {
	if every <= 0 {
		every = DefaultCheckEvery
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Monitor{cli: cli, every: every, ctx: ctx, subs: map[*subscription]struct{}{}, idle: make(chan struct{}, 1), cancel: cancel}
}

// Close stops the monitor and waits for its goroutine. Follows it was
// checking go on unchecked.
func (m *Monitor) Close() {
	m.cancel()
	m.wg.Wait()
}

// watch checks, until the returned func is called, that etcd keeps
// answering from the cluster of a follow that read revision rev; if not,
// it ends the follow through stop with a [*ReplacedError].
func (m *Monitor) watch(rev int64, stop context.CancelCauseFunc) (unwatch func()) {
	s := &subscription{stop: stop}
	s.tr.Seen(rev)
	m.mu.Lock()
	m.subs[s] = struct{}{}
	if !m.running && m.ctx.Err() == nil {
		m.running = true
		m.wg.Go(m.run)
	}
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		delete(m.subs, s)
		if len(m.subs) == 0 {
			select {
			case m.idle <- struct{}{}:
			default:
			}
		}
		m.mu.Unlock()
	}
}

// run checks every interval until Close, or until no follow is left.
func (m *Monitor) run() {
	ctx := m.ctx
	t := time.NewTicker(m.every)
	defer t.Stop()
	// Beside the checks, a break of the connection ends every follow
	// (see WaitReconnect), while the monitor runs.
	var wg sync.WaitGroup
	defer wg.Wait()
	rctx, stopReconnect := context.WithCancel(ctx)
	defer stopReconnect()
	wg.Go(func() {
		for {
			err := WaitReconnect(rctx, m.cli)
			if err == nil {
				return
			}
			m.stopAll(err)
		}
	})
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-m.idle:
		}
		m.mu.Lock()
		if len(m.subs) == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
		select {
		case <-m.idle: // a stale wake-up: follows came back
		default:
		}
		suspects := m.observe(m.ask(ctx), nil)
		if len(suspects) == 0 {
			continue
		}
		// A member that lags behind may have answered: ask again.
		select {
		case <-ctx.Done():
			return
		case <-time.After(confirmAfter):
		}
		m.observe(m.ask(ctx), suspects)
	}
}

// ask returns the header of an empty transaction, which reads no key and
// needs no permission, or nil during an outage (the follows see it).
func (m *Monitor) ask(ctx context.Context) *pb.ResponseHeader {
	actx, cancel := context.WithTimeout(ctx, min(m.every, 5*time.Second))
	defer cancel()
	resp, err := m.cli.Txn(actx).Commit()
	if err != nil {
		return nil
	}
	return resp.Header
}

// observe checks h against every subscription (only those of confirm, when
// not nil). Another cluster ends a follow at once; a revision below one
// seen ends it only on confirmation, and is returned as a suspect
// otherwise.
func (m *Monitor) observe(h *pb.ResponseHeader, confirm []*subscription) (suspects []*subscription) {
	if h == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	check := func(s *subscription) {
		before := s.tr
		err := s.tr.Observe(h)
		var replaced *ReplacedError
		if !errors.As(err, &replaced) {
			return
		}
		if confirm == nil && replaced.OldClusterID == replaced.NewClusterID {
			s.tr = before
			suspects = append(suspects, s)
			return
		}
		s.stop(replaced)
		delete(m.subs, s)
	}
	if confirm != nil {
		for _, s := range confirm {
			if _, ok := m.subs[s]; ok {
				check(s)
			}
		}
		return nil
	}
	for s := range m.subs {
		check(s)
	}
	return suspects
}

// stopAll ends every follow with err.
func (m *Monitor) stopAll(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for s := range m.subs {
		s.stop(err)
		delete(m.subs, s)
	}
}
