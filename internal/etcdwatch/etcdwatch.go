// Package etcdwatch keeps a local copy of etcd keys in line for the
// registry's discovery cache and the etcd config layer: list, then follow a
// watch from the next revision; on any failure (compaction, a lost leader,
// a closed channel) list again and follow from the new revision, with
// capped, jittered backoff, forever. etcd's own watchers (the naming
// endpoints manager among them) stop at the first error and never re-list.
//
// While it follows, a loop also asks etcd every few seconds for its
// cluster id and revision (see [Loop.CheckEvery]): when etcd was replaced
// under it (wiped and started again, restored from a backup, another
// cluster at the same address), the client resumes its watches at a
// revision the new etcd may never reach and no watch fails, so the loop
// notices a different cluster id or a revision below one already seen
// ([ReplacedError]) and lists again. [Tracker] does the same for other
// streams of responses, such as lease keep-alives.
package etcdwatch

import (
	"context"

	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/connectivity"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrClientClosed reports that the etcd client was closed under a loop,
// which then ends.
var ErrClientClosed = errors.New("etcd client closed")

// Backoff computes capped, jittered exponential delays: each delay is drawn
// from [d/2, d], where d doubles from Min up to Max. Not safe for
// concurrent use.
type Backoff struct {
	Min, Max time.Duration
	next     time.Duration // upper bound of the next delay; zero: Min
}

// Delay returns the next delay and doubles the bound, up to Max.
func (b *Backoff) Delay() time.Duration {
	d := b.next
	if d == 0 {
		d = b.Min
	}
	b.next = min(2*d, max(b.Max, b.Min))
	half := d / 2
	return half + rand.N(d-half+1)
}

// Reset starts again from Min.
func (b *Backoff) Reset() { b.next = 0 }

// Loop is one list-and-follow loop. Every function must be set.
type Loop struct {
	// List reads the current state, replaces the local copy and returns
	// the revision read.
	List func(ctx context.Context) (rev int64, err error)
	// Follow applies the changes from revision from on, until it fails or
	// ctx ends.
	Follow func(ctx context.Context, from int64) error
	// Broken reports a failure (the last good copy stays in use);
	// Recovered, a successful list after one.
	Broken    func(err error)
	Recovered func()
	Backoff   Backoff
	// CheckEvery is how often, while Follow runs, the loop asks etcd for
	// its cluster id and current revision (an empty read-only
	// transaction: no key, so no permission needed). When etcd answers
	// from another cluster, or with a revision below the highest seen
	// since the last List, the loop stops Follow, reports an error
	// wrapping a [*ReplacedError] to Broken ("etcd: cluster changed (id
	// 1a -> 2b, revision 42 -> 3); listing again") and lists again; so
	// does a break of the client's connection once it is ready again
	// ([WaitReconnect]). Failed checks are ignored: Follow sees outages
	// itself. The checks are a [Monitor]'s: one of the loop's own, every
	// CheckEvery (if zero, DefaultCheckEvery, 2s; if negative, no checks),
	// or the shared one below.
	CheckEvery time.Duration
	// Monitor, if not nil, checks the follows of every loop that shares
	// it, at its own interval (CheckEvery is then unused): one goroutine
	// and one request per client instead of per loop.
	Monitor *Monitor
}

// DefaultCheckEvery is the default of [Loop.CheckEvery].
const DefaultCheckEvery = 2 * time.Second

// confirmAfter is how long a loop waits before it asks again when etcd
// answers with a revision below one seen: the check is a serializable
// read, which a member of a cluster that lags behind may answer.
const confirmAfter = 300 * time.Millisecond

// ReplacedError reports that etcd answers from another cluster, or with
// a revision below one already seen: it was wiped and started again,
// restored from a backup, or another cluster took its address. Watches
// that the client resumed there wait for revisions that may never come.
type ReplacedError struct {
	// OldClusterID and NewClusterID are the cluster ids before and now;
	// equal when only the revision went backwards.
	OldClusterID, NewClusterID uint64
	// SeenRevision is the highest revision seen before; Revision the one
	// etcd answers with now.
	SeenRevision, Revision int64
	// Reconnected is set when the client's connection to etcd came back
	// after a break: a restarted etcd and a wiped one answer alike (same
	// cluster id, and a wiped etcd may overtake the old revision within
	// seconds), so a follow that was cut off lists again.
	Reconnected bool
}

// Error says what changed: "etcd: cluster changed (id 1a -> 2b, revision
// 42 -> 3)" or "etcd: revision went backwards (42 -> 3) in cluster 1a:
// wiped or restored from a backup". A [Loop] adds "; listing again".
func (e *ReplacedError) Error() string {
	if e.Reconnected {
		return "etcd: connection back after a break (etcd restarted, possibly wiped or restored, or the network came back)"
	}
	if e.OldClusterID != e.NewClusterID {
		return fmt.Sprintf("etcd: cluster changed (id %x -> %x, revision %d -> %d)",
			e.OldClusterID, e.NewClusterID, e.SeenRevision, e.Revision)
	}
	return fmt.Sprintf("etcd: revision went backwards (%d -> %d) in cluster %x: wiped or restored from a backup",
		e.SeenRevision, e.Revision, e.NewClusterID)
}

// Tracker remembers the cluster id and the highest revision of the etcd
// responses it observes and reports a response from another cluster or
// from the past. The zero value has seen nothing. A Tracker is not safe for
// concurrent use.
type Tracker struct {
	clusterID uint64 // 0: not known yet
	revision  int64  // highest revision seen; 0: none
}

// Seen records that revision rev was read (from a response whose header
// the caller does not keep), so that a later response below it is
// reported.
func (t *Tracker) Seen(rev int64) { t.revision = max(t.revision, rev) }

// Observe checks the header h of an etcd response: it returns a
// [*ReplacedError] if h comes from another cluster than the responses
// observed before, or has a revision below the highest seen, and then
// starts again from h, as a zero Tracker would. Otherwise it records h and
// returns nil. A nil h, a zero cluster id or a zero revision are not
// checked.
func (t *Tracker) Observe(h *pb.ResponseHeader) error {
	if h == nil {
		return nil
	}
	var err error
	switch {
	case h.ClusterId != 0 && t.clusterID != 0 && h.ClusterId != t.clusterID,
		h.Revision != 0 && h.Revision < t.revision:
		err = &ReplacedError{
			OldClusterID: t.clusterID, NewClusterID: h.ClusterId,
			SeenRevision: t.revision, Revision: h.Revision,
		}
		if t.clusterID == 0 {
			err.(*ReplacedError).OldClusterID = h.ClusterId
		}
		*t = Tracker{}
	}
	if h.ClusterId != 0 {
		t.clusterID = h.ClusterId
	}
	t.Seen(h.Revision)
	return err
}

// heldFor is how long a follow must last for its failure to count as a
// new incident, with backoff starting again from Min.
const heldFor = 10 * time.Second

// Run keeps the copy in line until ctx ends or cli is closed. rev and err
// are the result of the first List, which the caller makes (and usually
// waits for) itself.
func (l *Loop) Run(ctx context.Context, cli *clientv3.Client, rev int64, err error) {
	for {
		if err == nil {
			l.Recovered()
			began := time.Now()
			err = l.follow(ctx, cli, rev)
			if time.Since(began) > heldFor {
				l.Backoff.Reset()
			}
		}
		if ctx.Err() != nil {
			return
		}
		l.Broken(err)
		t := time.NewTimer(l.Backoff.Delay())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-cli.Ctx().Done():
			t.Stop()
			l.Broken(ErrClientClosed)
			return
		case <-t.C:
		}
		rev, err = l.List(ctx)
	}
}

// follow runs Follow from the revision after rev while a [Monitor]
// checks that etcd was not replaced under it: the shared one of the loop,
// or one of its own asking every CheckEvery. It returns Follow's error,
// or an error wrapping the [*ReplacedError] that stopped it.
func (l *Loop) follow(ctx context.Context, cli *clientv3.Client, rev int64) error {
	m := l.Monitor
	if m == nil {
		if l.CheckEvery < 0 {
			return l.Follow(ctx, rev+1)
		}
		m = NewMonitor(cli, l.CheckEvery)
		defer m.Close()
	}
	fctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	unwatch := m.watch(rev, stop)
	err := l.Follow(fctx, rev+1)
	unwatch()
	if replaced, ok := errors.AsType[*ReplacedError](context.Cause(fctx)); ok && ctx.Err() == nil {
		return fmt.Errorf("%w; listing again", replaced)
	}
	return err
}

// WaitReconnect waits until the client's connection to etcd, having been
// ready, breaks and is ready again, and returns a [*ReplacedError] with
// Reconnected set; or until ctx ends (it returns nil). clientv3 resumes
// its watches after a break at the revision it had reached, which an
// etcd wiped meanwhile may reach with other writes: only listing again is
// safe, and it costs one list per break.
func WaitReconnect(ctx context.Context, cli *clientv3.Client) error {
	conn := cli.ActiveConnection()
	if conn == nil {
		<-ctx.Done()
		return nil
	}
	wasReady, broken := false, false
	for st := conn.GetState(); ; st = conn.GetState() {
		switch {
		case st == connectivity.Ready && broken:
			return &ReplacedError{Reconnected: true}
		case st == connectivity.Ready:
			wasReady = true
		case wasReady:
			broken = true // any other state after ready: a break
		}
		if !conn.WaitForStateChange(ctx, st) {
			return nil
		}
	}
}
