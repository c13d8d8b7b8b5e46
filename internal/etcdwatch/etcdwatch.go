// Package etcdwatch keeps a local copy of etcd keys in line for the
// registry's discovery cache and the etcd config layer: list, then follow a
// watch from the next revision; on any failure (compaction, a lost leader,
// a closed channel) list again and follow from the new revision, with
// capped, jittered backoff, forever. etcd's own watchers (the naming
// endpoints manager among them) stop at the first error and never re-list.
package etcdwatch

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

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
			err = l.Follow(ctx, rev+1)
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
