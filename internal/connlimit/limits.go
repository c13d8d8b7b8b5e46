package connlimit

import "math"

// Caps are the connection caps of svc's three listeners.
type Caps struct {
	Public  int // the public HTTP port
	Private int // the private port: /healthz, /readyz, /metrics
	Admin   int // the admin port
}

// The terms of the formula of Limits.
const (
	// MinReserve is the least number of descriptors Limits keeps out of
	// every listener's cap: etcd, log and config files, outbound calls,
	// the listeners themselves and shed connections in progress.
	MinReserve = 128
	// SmallCap is the cap of the private and admin listeners when the
	// limit allows it: probes, Prometheus and operators need few
	// connections, and must always get them.
	SmallCap = 64
	// MinPublic, MinSmall are the floors of the caps however low the
	// limit: a process with 64 descriptors still serves a few requests.
	MinPublic = 8
	MinSmall  = 4
)

// Limits returns the default caps for a process allowed nofile open files
// (the soft RLIMIT_NOFILE):
//
//	reserve = max(nofile/10, MinReserve)
//	usable  = nofile - reserve (0 when negative)
//	private = admin = clamp(usable/8, MinSmall, SmallCap)
//	public  = max(usable*7/10 - private - admin, MinPublic)
//
// The three caps together take at most 70% of usable: however full the
// public port is, the private and admin ports keep their own caps, and the
// other 30% plus the reserve stay free for etcd, files, outbound calls and
// the connections being shed (3 × DefaultMaxShedding). For nofile = 1024:
// public 499, private 64, admin 64, 397 descriptors left for the rest; for
// 1,048,576: public 660,475. Up to nofile = 150 the floors apply (public 8,
// private and admin 4): such a process cannot be protected, only kept
// answering a few requests.
//
// nofile is clamped to math.MaxInt32 (RLIM_INFINITY included).
func Limits(nofile uint64) Caps {
	n := int64(min(nofile, math.MaxInt32))
	reserve := max(n/10, MinReserve)
	usable := max(n-reserve, 0)
	small := min(max(usable/8, MinSmall), SmallCap)
	public := max(usable*7/10-2*small, MinPublic)
	return Caps{Public: int(public), Private: int(small), Admin: int(small)}
}

// ProcessLimits returns Limits of the process's current soft
// RLIMIT_NOFILE (which Go already raised to about the hard limit at
// startup: see the package documentation), and that limit.
func ProcessLimits() (Caps, uint64, error) {
	n, err := nofile()
	if err != nil {
		return Caps{}, 0, err
	}
	return Limits(n), n, nil
}
