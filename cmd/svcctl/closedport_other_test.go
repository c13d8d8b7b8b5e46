//go:build !unix

package main

import (
	"net"
	"testing"
)

// closedPort returns a loopback port where nothing listens (it was free a
// moment ago; without Unix sockets it cannot be held).
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
