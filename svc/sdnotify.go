package svc

import (
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier speaks sd_notify to the service manager when NOTIFY_SOCKET is
// set (systemd's Type=notify), with go-systemd's daemon package: READY=1
// once readiness passes, STOPPING=1 when a stop begins, MAINPID=<pid>
// when a successor takes over, WATCHDOG=1 every half WATCHDOG_USEC.
// Without NOTIFY_SOCKET it does nothing. NOTIFY_SOCKET is left in the
// environment: a successor started by an in-place restart needs it.
type notifier struct {
	log *slog.Logger
}

// send sends state; a failure is logged, never fatal.
func (n notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "state", state, "error", err)
	}
}

// watchdog pings WATCHDOG=1 every half WATCHDOG_USEC, when it is set and
// WATCHDOG_PID is this process or unset, until the returned function is
// called.
func (n notifier) watchdog() (stop func()) {
	every, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("systemd watchdog: ignoring WATCHDOG_USEC", "error", err)
	}
	if every <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(every / 2)
		defer t.Stop()
		for {
			n.send(daemon.SdNotifyWatchdog)
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}
