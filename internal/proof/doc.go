// Package proof is the harness behind `make proof`: it runs the real
// example-service binary against real embedded etcd members, under load
// and under faults, and measures what the contract promises.
//
// The scenarios, each a subtest of TestProof (build tag proof):
//
//   - roll: three instances restarted one at a time with SIGTERM while a
//     load generator resolves an instance per request through
//     registry.Discovery, with and without shutdown.drain;
//   - in-place: a convention-addressed service (no etcd) restarted in
//     place ten times (SIGUSR2, POST /admin/restart) under load from new,
//     kept and never-retrying keep-alive connections;
//   - up-watch: `svcctl up --watch` swapping edits of a copy of the
//     example in place under the same loads, and surviving a syntax error;
//   - crash: an instance killed with SIGKILL under load;
//   - calls: two callees and a caller under load on both call shapes
//     (relay and uri-spec), one callee killed with SIGKILL or stopped
//     with SIGSTOP;
//   - etcd-faults: a 3-member cluster loses a follower, its leader, its
//     quorum; an instance is paused (SIGSTOP) past its lease TTL; an
//     instance's network to etcd is cut, then stalled;
//   - hostile: slowloris, oversized headers and bodies, a connection
//     flood and churn, malformed values planted in the registry, bad
//     configuration at start and on reload, and the attacks of issue 9
//     (open relay, relay loops, invented methods, unknown names, browser
//     requests to the admin port, etcd wiped or replaced, secrets, ...);
//   - performance: memory of the binary against a bare net/http server
//     (./barehttp), discovery resolve against an etcd read, registration
//     propagation across processes against a raw etcd watch, the relay
//     against a direct call;
//   - scale: 1,000 services x 10 instances in one etcd.
//
// Every number is reported next to a baseline measured in the same run.
// The report is Markdown, printed to the test log and written to the file
// named by -proof.out:
//
//	go test -tags proof -run '^TestProof$' -count=1 -v -timeout 15m ./internal/proof/ -args -proof.out=$PWD/bin/proof.md
//
// (`make proof`, about 5 minutes on 2 cores). docs/reliability.md maps
// each guarantee to the scenario that proves it.
//
// Without the tag only the harness's own unit tests run (in `make test`).
//
// The load generator does not learn of a removed instance at once: on
// loopback a watch delivers in well under a millisecond, which would hide
// why real fleets need a drain (clients behind caches and load balancers
// learn of a removal late). [DelayedResolver] applies removals after a
// delay, 300ms by default.
//
// All traffic stays on 127.0.0.1; every loop and every wait is bounded.
package proof
