// Package connlimit caps the connections a listener holds open, so that a
// flood on one port cannot take the descriptors the others need.
//
// The defect it answers: 20,000 idle keep-alive connections on the public
// port reach the process's open-file limit (RLIMIT_NOFILE); accept then
// fails with EMFILE on every listener, /healthz, /readyz and the admin port
// stop answering, and an orchestrator kills a process that was healthy.
//
// [Wrap] (or [Listen]) returns a [Listener] that hands at most max
// connections at a time to its caller. A connection accepted past the cap
// is shed: it gets a minimal HTTP/1.1 503 answer with "Connection: close"
// and "Retry-After: 1", then is closed, by a small bounded set of
// goroutines under a short deadline; past that bound it is closed with no
// answer. Accept never blocks because of the cap, so the kernel's backlog
// does not fill with connections that would time out there.
//
// [Limits] derives the default cap of each of svc's listeners from the
// open-file limit, keeping a reserve so that the private and admin ports
// always answer and the process keeps descriptors for etcd, files and
// outbound calls:
//
//	caps, err := connlimit.ProcessLimits() // from RLIMIT_NOFILE
//	if err != nil {
//		return err
//	}
//	ln, err := net.Listen("tcp", ":8010")
//	if err != nil {
//		return err
//	}
//	pub := connlimit.Wrap(ln, caps.Public, connlimit.WithShedCounter(shed))
//	go srv.Serve(pub)
//
// # The open-file limit
//
// Since Go 1.19 the syscall package raises the soft RLIMIT_NOFILE towards
// the hard limit when any program starts, on every Unix (go1.26: to the hard
// limit minus one; on macOS no higher than kern.maxfilesperproc; see
// go.dev/issue/46279 and $GOROOT/src/syscall/rlimit.go), and restores the
// original soft limit in processes started with os/exec. svc therefore does
// not raise it again: [ProcessLimits] reads the limit as it stands, which is
// already about the hard limit unless the program lowered it. To get more
// descriptors, raise the hard limit (systemd LimitNOFILE=, docker --ulimit
// nofile=, ulimit -Hn).
//
// The package starts no goroutine of its own except while shedding, keeps
// no global state and does not register metrics: shed connections are
// counted through a [Counter] passed in (a prometheus.Counter is one).
package connlimit
