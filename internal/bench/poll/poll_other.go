//go:build !linux

package poll

import (
	"net/netip"
	"time"
)

// accepts does not probe: the HTTP requests find out.
func accepts(netip.AddrPort) bool { return true }

// sleep is time.Sleep, at the runtime's resolution (about 1 ms when the
// program is otherwise idle).
func sleep(d time.Duration) { time.Sleep(d) }
