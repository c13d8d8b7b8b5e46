package svc

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/svc-dev/svc/admin"
	"github.com/svc-dev/svc/internal/handover"
)

// inherited are the listening sockets this process was given at start
// (systemd socket activation, or a predecessor's in-place restart), by
// listener name: admin, public, private. A listener without one binds
// its port as usual.
type inherited map[string]*os.File

// listenerNames are the names inherited sockets must carry
// (LISTEN_FDNAMES, systemd's FileDescriptorName=), in listener order.
var listenerNames = []string{"admin", "public", "private"}

// inheritedOf names files by listener. A socket named otherwise, or two
// named alike, is an error: a socket silently left unused would be a port
// that accepts and never answers.
func inheritedOf(files []*os.File) (inherited, error) {
	in := inherited{}
	for _, f := range files {
		name := f.Name()
		if !slices.Contains(listenerNames, name) {
			return nil, fmt.Errorf("svc: inherited socket %q: want sockets named admin, public or private (LISTEN_FDNAMES; FileDescriptorName= in a systemd .socket unit, --fdname= with systemd-socket-activate)", name)
		}
		if in[name] != nil {
			return nil, fmt.Errorf("svc: two inherited sockets are named %q", name)
		}
		in[name] = f
	}
	return in, nil
}

// names lists the listeners that have an inherited socket, in listener
// order, comma-separated.
func (in inherited) names() string {
	var ns []string
	for _, n := range listenerNames {
		if in[n] != nil {
			ns = append(ns, n)
		}
	}
	return strings.Join(ns, ",")
}

// close closes the sockets not served (closing a served one again is
// harmless: its File was closed once its listener was made).
func (in inherited) close() {
	for _, f := range in {
		_ = f.Close()
	}
}

// restarter restarts the process in place (SIGUSR2, POST /admin/restart):
// it starts a successor from the executable as it is on disk now, with
// the same arguments and environment, hands it the three listening
// sockets and waits up to restart.timeout for it to be ready. Then done
// is closed and Run stops this process (stop accepting, drain, exit 0);
// if the successor fails, it is stopped and this process serves on.
//
// Only a process started by [Run] restarts: an app made by [New] answers
// that it cannot.
type restarter struct {
	timeout   time.Duration // restart.timeout
	grace     time.Duration // for a failed successor to stop gracefully
	log       *slog.Logger
	stderr    io.Writer  // where the successor's stderr is relayed until it is ready
	listeners *listeners // set by provideListeners

	enabled chan struct{} // closed by enable

	mu        sync.Mutex      // guards the fields below
	expecting bool            // Run enables restarts once the start is over
	ctx       context.Context // nil until enabled; cancelled when this process begins to stop
	notify    func(string)    // sd_notify to the service manager
	running   bool            // a restart is in progress
	successor int             // the successor's pid, once it took over
	done      chan struct{}   // closed once a successor took over
	wg        sync.WaitGroup  // restarts in progress
}

func newRestarter(st Settings, lg *logs) *restarter {
	return &restarter{
		timeout: st.RestartTimeout,
		grace:   st.ShutdownDrain + st.ShutdownTimeout + 5*time.Second,
		log:     lg.log,
		stderr:  lg.w,
		done:    make(chan struct{}),
		enabled: make(chan struct{}),
	}
}

// expect says that Run will enable restarts once the start is over: a
// restart asked for meanwhile (readiness may pass before Start returns)
// waits for that instead of being refused.
func (r *restarter) expect() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expecting = true
}

// enable allows restarts from now on, until ctx ends; notify sends an
// sd_notify state to the service manager (MAINPID= on a handover).
func (r *restarter) enable(ctx context.Context, notify func(string)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		close(r.enabled)
	}
	r.ctx, r.notify = ctx, notify
}

// wait waits for the restarts in progress: after the enabling context
// ended, each stops its successor and returns.
func (r *restarter) wait() { r.wg.Wait() }

// restartAnswer is the JSON answer of a successful POST /admin/restart.
type restartAnswer struct {
	State       string `json:"state"` // "restarted"
	Message     string `json:"message"`
	PID         int    `json:"pid"`          // the successor, now serving
	PreviousPID int    `json:"previous_pid"` // this process, now draining
	TookMS      int64  `json:"took_ms"`      // from the start of the successor to its READY=1
	Executable  string `json:"executable"`
}

// restart restarts the process in place and returns once the successor
// serves (a restartAnswer) or failed (an error naming its exit status and
// last stderr lines; this process serves on). A restart while another is
// in progress, after a handover, or before Run enabled restarts is
// refused with an error wrapping admin.ErrRefused.
func (r *restarter) restart(req context.Context) (any, error) {
	r.mu.Lock()
	if r.ctx == nil && r.expecting {
		r.mu.Unlock()
		t := time.NewTimer(r.timeout)
		select {
		case <-r.enabled:
		case <-req.Done():
		case <-t.C:
		}
		t.Stop()
		r.mu.Lock()
	}
	ctx := r.ctx
	switch {
	case ctx == nil:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: only a process started by svc.Run restarts in place, once it has started", admin.ErrRefused)
	case ctx.Err() != nil:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: this process is stopping", admin.ErrRefused)
	case r.successor != 0:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: already restarted: pid %d serves, this process (pid %d) is draining", admin.ErrRefused, r.successor, os.Getpid())
	case r.running:
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: a restart is already in progress", admin.ErrRefused)
	}
	r.running = true
	r.wg.Add(1)
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.running = false
		r.mu.Unlock()
		r.wg.Done()
	}()

	exe, err := os.Executable() // now: a binary replaced on disk is picked up
	if err != nil {
		return nil, fmt.Errorf("svc: restart: %w", err)
	}
	r.log.Info("restarting in place", "executable", exe, "timeout", r.timeout.String())
	succ, err := handover.Start(ctx, handover.Options{
		Path:      exe,
		Args:      os.Args,
		Env:       os.Environ(),
		Listeners: r.listeners.sockets(),
		Stderr:    r.stderr,
		Timeout:   r.timeout,
		Grace:     r.grace,
	})
	if err != nil {
		err = fmt.Errorf("svc: restart failed; this process (pid %d) serves on: %w", os.Getpid(), err)
		r.log.Error("restart failed", "error", err)
		return nil, err
	}
	r.mu.Lock()
	if ctx.Err() != nil { // this process began to stop meanwhile: so does the service
		r.mu.Unlock()
		_ = syscall.Kill(succ.Pid, syscall.SIGTERM)
		return nil, fmt.Errorf("%w: this process began to stop while the successor (pid %d) started; stopped it too", admin.ErrRefused, succ.Pid)
	}
	r.notify("MAINPID=" + strconv.Itoa(succ.Pid))
	r.successor = succ.Pid
	close(r.done)
	r.mu.Unlock()
	r.log.Info("restarted in place", "successor", succ.Pid, "took", succ.Took.Round(time.Millisecond).String())
	return restartAnswer{
		State: "restarted",
		Message: fmt.Sprintf("restarted in place: pid %d serves; pid %d stops accepting, drains and exits",
			succ.Pid, os.Getpid()),
		PID:         succ.Pid,
		PreviousPID: os.Getpid(),
		TookMS:      succ.Took.Milliseconds(),
		Executable:  exe,
	}, nil
}

// handedOver is closed once a successor took over.
func (r *restarter) handedOver() <-chan struct{} { return r.done }
