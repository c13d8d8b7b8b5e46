package poll

import (
	"net/netip"
	"syscall"
	"time"
)

// accepts reports whether a TCP connect to ap, a loopback address,
// succeeds, with a blocking socket: on loopback a refused connect returns
// at once (elsewhere a dropped SYN could block it for minutes).
func accepts(ap netip.AddrPort) bool {
	family, sa := syscall.AF_INET, syscall.Sockaddr(nil)
	if a := ap.Addr(); a.Is4() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	} else {
		family, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return true // let the HTTP requests find out
	}
	err = syscall.Connect(fd, sa)
	syscall.Close(fd)
	return err == nil
}

// sleep blocks the calling thread for d.
func sleep(d time.Duration) {
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
	}
}
