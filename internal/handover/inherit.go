package handover

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
)

// Inherited is what this process was given at start: listening sockets
// (by systemd socket activation or by a predecessor's [Start]) and, after
// a Start, the way back to the parent.
type Inherited struct {
	// Listeners are the inherited sockets in descriptor order, each named
	// by LISTEN_FDNAMES (File.Name), or "LISTEN_FD_<n>" when unnamed. The
	// caller owns them.
	Listeners []*os.File
	notify    string // the parent's notify socket; empty without a parent
	stderr    int    // the parent's stderr in this process; -1 without
}

// Inherit returns the sockets passed to this process and unsets
// LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES and the protocol's variables, so
// that a process this one starts does not take them for its own.
//
// Sockets are taken when LISTEN_PID is this process's pid (systemd), or
// when LISTEN_PID is unset and EnvNotify is set (a predecessor's Start,
// which cannot know the pid in advance). Otherwise there are none. It is
// go-systemd's activation.Files underneath, and reads the process
// environment: call it once, early in main.
func Inherit() (*Inherited, error) {
	in := &Inherited{notify: os.Getenv(EnvNotify), stderr: -1}
	if s := os.Getenv(EnvStderr); s != "" && in.notify != "" {
		fd, err := strconv.Atoi(s)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("handover: %s=%q: want a descriptor number above 2", EnvStderr, s)
		}
		syscall.CloseOnExec(fd)
		in.stderr = fd
	}
	os.Unsetenv(EnvNotify)
	os.Unsetenv(EnvStderr)
	if _, set := os.LookupEnv("LISTEN_PID"); !set && in.notify != "" && os.Getenv("LISTEN_FDS") != "" {
		os.Setenv("LISTEN_PID", strconv.Itoa(os.Getpid()))
	}
	in.Listeners = activation.Files(true)
	return in, nil
}

// FromParent reports whether a predecessor started this process and waits
// for [Inherited.Ready].
func (in *Inherited) FromParent() bool { return in != nil && in.notify != "" }

// Ready tells the parent, if any, that this process is ready (READY=1 on
// its notify socket), then moves the parent's stderr onto descriptor 2,
// so that this process keeps a stderr when the parent exits. Without a
// parent it does nothing. Call it once.
func (in *Inherited) Ready() error {
	if !in.FromParent() {
		return nil
	}
	err := Notify(in.notify, "READY=1")
	if in.stderr >= 0 {
		if derr := syscall.Dup3(in.stderr, 2, 0); derr != nil && err == nil {
			err = fmt.Errorf("handover: restore stderr: %w", derr)
		}
		syscall.Close(in.stderr)
		in.stderr = -1
	}
	in.notify = ""
	return err
}

// Close closes the inherited sockets not taken (nil entries are skipped)
// and, without a Ready, the parent's stderr.
func (in *Inherited) Close() {
	if in == nil {
		return
	}
	for _, f := range in.Listeners {
		if f != nil {
			f.Close()
		}
	}
	if in.stderr >= 0 {
		syscall.Close(in.stderr)
		in.stderr = -1
	}
}

// Notify sends state (newline-separated sd_notify assignments such as
// "READY=1") as one datagram to the unixgram socket addr; an addr starting
// with '@' is in the abstract namespace. This is the sd_notify protocol
// sent to any address; go-systemd's daemon.SdNotify sends it to
// $NOTIFY_SOCKET only.
func Notify(addr, state string) error {
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("handover: notify %s: %w", addr, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("handover: notify %s: %w", addr, err)
	}
	return nil
}
