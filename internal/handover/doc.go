// Package handover restarts a server in place: it starts a successor
// process, hands it the listening sockets, and waits until the successor
// says it is ready, so that no connection is ever refused. It is the
// mechanism behind svc's SIGUSR2 and POST /admin/restart, and it works
// without fx.
//
// The protocol is systemd's, reused both ways, so that a successor needs
// one code path for sockets passed by systemd and sockets passed by its
// predecessor:
//
//   - the sockets travel as systemd socket activation passes them:
//     descriptors 3, 4, ... with LISTEN_FDS and LISTEN_FDNAMES. LISTEN_PID
//     cannot name the successor (its pid is unknown before it exists), so
//     the parent leaves it unset and sets EnvNotify; [Inherit] accepts
//     sockets without LISTEN_PID only then.
//   - readiness travels as sd_notify does: the parent listens on a
//     unixgram socket of its own (in a 0700 directory) named by EnvNotify,
//     and the successor sends "READY=1" to it ([Inherited.Ready]).
//   - the successor's stderr is a pipe read by the parent until the
//     successor is ready: the parent relays every line to its own stderr
//     and keeps the last ones, to report why a successor failed. Once
//     ready, the successor puts the parent's own stderr (passed as the
//     descriptor EnvStderr names) back on its descriptor 2, so that it
//     does not lose its stderr when the parent exits.
//
// The parent:
//
//	succ, err := handover.Start(ctx, handover.Options{
//		Path:      exe, // os.Executable(), resolved now: a replaced binary is picked up
//		Args:      os.Args,
//		Env:       os.Environ(),
//		Listeners: []handover.Listener{{Name: "public", Conn: tcpListener}},
//		Timeout:   30 * time.Second,
//	})
//	if err != nil {
//		// the successor was stopped; err is a *handover.Error: why, its
//		// exit status and its last stderr lines. Keep serving.
//	}
//	// succ.Pid serves; stop accepting, drain, exit 0.
//
// The successor:
//
//	in, err := handover.Inherit() // the sockets, from systemd or a parent
//	... serve on in.Listeners, wait until ready ...
//	in.Ready() // tells the parent, if there is one
//
// Descriptors are duplicated with F_DUPFD_CLOEXEC and the successor is
// started with syscall.ForkExec, never through os/exec's ExtraFiles: an
// *os.File's Fd switches the shared socket to blocking mode, for the
// parent too, whose Accept would then block in the kernel and whose
// Close would no longer wake it.
package handover
