//go:build unix

package main

import (
	"syscall"
	"testing"
)

// closedPort returns a loopback port that refuses connections until the
// test ends: a socket is bound to it and never listens. Holding the port
// keeps a parallel test from binding it, which a port merely "free a
// moment ago" does not (a svc listener there would make ps find it).
func closedPort(t *testing.T) int {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return sa.(*syscall.SockaddrInet4).Port
}
