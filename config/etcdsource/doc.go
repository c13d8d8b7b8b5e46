// Package etcdsource is the etcd layer of svc's configuration: a
// [config.Source] and [config.Notifier] over two key prefixes of etcd,
//
//	svc/<environment>/config/_all/<key>    values every service shares
//	svc/<environment>/config/<name>/<key>  values of one service, which win
//
// so that etcdctl put svc/prod/config/orders/log.level debug sets log.level
// for the orders service in prod. The key is the rest of the etcd key after
// the prefix; values are strings, parsed like environment values (an empty
// value counts as unset). Keys that locate the configuration itself
// ("environment", "etcd.*") and keys that are not lower-case or contain a
// '/' are ignored, with one log line each.
//
// [New] lists both prefixes once, waiting at most Options.InitialTimeout.
// When etcd does not answer, the layer starts empty (the service runs on
// files and environment), says so once in the log and in [Source.Check],
// and keeps trying in the background; when etcd answers, its values arrive
// as one change. It then follows both prefixes with etcd watches; when a
// watch fails (compaction, lost leader, closed channel) it lists again and
// watches from the new revision, with capped, jittered backoff, serving the
// last known values meanwhile. Every 2 seconds it also asks etcd for its
// cluster id and revision: when etcd was replaced under the service
// (wiped, restored from a backup, another cluster at the same address),
// which no watch reports, it logs a warning, fails [Source.Check] and
// lists again at once. Each change of the merged values is
// announced on [Source.Changed], which a [config.Live] turns into a reload.
//
// The client is the caller's, shared with the registry; Close stops the
// layer's goroutine, not the client.
//
//	cli, _ := clientv3.New(clientv3.Config{Endpoints: endpoints})
//	layer, err := etcdsource.New(cli, "prod", "orders", etcdsource.Options{Logger: log})
//	...
//	live, err := config.NewLive(config.LiveOptions{}, conventions, files, layer, env)
package etcdsource
