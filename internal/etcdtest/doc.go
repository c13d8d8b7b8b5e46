// Package etcdtest runs real etcd servers inside a test process.
//
// [Start] starts one embedded etcd member (go.etcd.io/etcd/server/v3/embed)
// on loopback, on free ports, with its data in t.TempDir() and its logging
// silenced; t.Cleanup stops it. [Server.Stop] and [Server.Restart] take the
// member down and bring it back on the same data directory and the same
// ports, so a client built before the stop reconnects to it. [StartCluster]
// starts a cluster of several members, any of which can be stopped.
//
// [Server.Wipe], [Server.ReplaceCluster] and [Server.RestoreBackup] (of a
// copy taken by [Server.Backup]) replace the etcd behind a member's client
// URL: wiped (same cluster id, revision 1 again), another cluster (another
// cluster id), or restored (same cluster id, an older revision). Clients
// built before reconnect without noticing.
//
// [NewProxy] puts a TCP proxy in front of an endpoint. A test points a
// client at [Proxy.Endpoint] and then [Proxy.Pause]s traffic (connections
// stay open, bytes are held back: a paused process or a silent partition),
// [Proxy.Cut]s it (connections are closed and new ones refused: a network
// partition) or [Proxy.Restore]s it.
//
//	func TestSomething(t *testing.T) {
//		srv := etcdtest.Start(t)
//		cli := srv.Client(t)
//		if _, err := cli.Put(t.Context(), "k", "v"); err != nil {
//			t.Fatal(err)
//		}
//	}
//
// The package is for tests only: production code never imports it.
package etcdtest
