package etcdtest

import (
	"fmt"
	"os"
	"testing"
)

// The methods below replace the etcd behind a [Server]'s client URL, as an
// operator does who wipes a member and starts it again, restores it from a
// backup, or puts a new cluster at the same address. Clients built before
// reconnect to the replacement without noticing anything: their open
// watches resume at revisions the replacement may never reach.

// Wipe stops the member, deletes its data and starts an empty member on
// the same ports with the same name, peer URL and cluster token, so the
// new cluster has the same cluster id as the old one but starts again at
// revision 1. It fails the test if the member is not ready within 30
// seconds.
func (s *Server) Wipe(t testing.TB) {
	t.Helper()
	s.replace(t, "", false)
}

// ReplaceCluster stops the member, deletes its data and starts an empty
// member of a new cluster (another cluster token, so another cluster id)
// on the same ports. It fails the test if the member is not ready within
// 30 seconds.
func (s *Server) ReplaceCluster(t testing.TB) {
	t.Helper()
	s.replace(t, "", true)
}

// Backup stops the member, copies its data directory into a directory of
// t.TempDir(), starts the member again and returns the copy, which
// [Server.RestoreBackup] restores. The copy is consistent (the member is
// stopped while it is taken), like a volume snapshot; clients built before
// reconnect after the restart.
func (s *Server) Backup(t testing.TB) string {
	t.Helper()
	s.Stop()
	dst := t.TempDir() + "/etcd"
	if err := os.CopyFS(dst, os.DirFS(s.dir)); err != nil {
		t.Fatalf("etcdtest: back up %s: %v", s.dir, err)
	}
	s.Restart(t)
	return dst
}

// RestoreBackup stops the member, replaces its data directory with a copy
// of backup (made by [Server.Backup]) and starts it again on the same
// ports: the same cluster id, the keys and leases of the backup, and the
// backup's revision, below the revisions the member reached since. It fails
// the test if the member is not ready within 30 seconds.
func (s *Server) RestoreBackup(t testing.TB, backup string) {
	t.Helper()
	s.replace(t, backup, false)
}

// replace stops the member, replaces its data directory with a copy of
// from (or an empty one if from is ""), takes a new cluster token if
// newCluster, and starts it again.
func (s *Server) replace(t testing.TB, from string, newCluster bool) {
	t.Helper()
	s.Stop()
	s.mu.Lock()
	if err := os.RemoveAll(s.dir); err != nil {
		s.mu.Unlock()
		t.Fatalf("etcdtest: wipe %s: %v", s.dir, err)
	}
	var err error
	if from != "" {
		err = os.CopyFS(s.dir, os.DirFS(from))
	} else {
		err = os.MkdirAll(s.dir, 0o700)
	}
	if err == nil {
		err = os.Chmod(s.dir, 0o700)
	}
	if newCluster {
		s.generation++
		s.token = fmt.Sprintf("%s-%d", s.baseToken, s.generation)
	}
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("etcdtest: replace data of member %s: %v", s.name, err)
	}
	s.Restart(t)
}
