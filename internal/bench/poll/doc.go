// Package poll waits for a starting server to answer, for the startup
// measurements of internal/bench (BenchmarkStartup and the gate), at the
// resolution they claim.
//
// time.Sleep cannot wait 100 µs in a program that has nothing else to do:
// the Go runtime then sleeps in its network poller, whose timeout is whole
// milliseconds, so time.Sleep(100*time.Microsecond) returns after about
// 1.1 ms and a startup polled that way is quantised to that step. Until
// 2026-11-28 both measurements were. OK sleeps with nanosleep(2), which
// blocks the thread for the interval asked plus the kernel's timer slack
// (an attempt every ~0.18 ms, measured, rather than every 1.1 ms), and,
// for a loopback address, before the server listens it tries a bare TCP
// connect (socket, connect, close: a few microseconds of CPU, and refused
// at once on loopback) rather than an HTTP request (tens of microseconds,
// and a goroutine), so that polling often does not take the CPU the
// starting server needs.
package poll
