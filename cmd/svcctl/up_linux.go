package main

import "syscall"

// adoptOrphans makes svcctl the child subreaper of its descendants
// (prctl PR_SET_CHILD_SUBREAPER): the successor of an in-place restart,
// a child of the process it replaces, becomes svcctl's child when that
// process exits, so svcctl up can wait for it, wherever init does not
// reap (a container whose PID 1 is not an init). It reports whether it
// succeeded.
func adoptOrphans() bool {
	const prSetChildSubreaper = 36
	_, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0)
	return errno == 0
}
