package admin_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/svc-dev/svc/admin"
)

// fakeClock drives a Level's timers by hand: Advance fires, in order, the
// timers whose time has come. No test sleeps.
type fakeClock struct {
	mu     sync.Mutex // guards now and timers
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	return was
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) admin.Stopper {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

// Advance moves the clock by d and runs the due timers' functions.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*fakeTimer
	for _, t := range c.timers {
		if !t.stopped && !t.at.After(c.now) {
			t.stopped = true
			due = append(due, t)
		}
	}
	c.mu.Unlock()
	for _, t := range due {
		t.f()
	}
}

// FireStale runs the functions of stopped timers: what a timer that
// fired while Stop was racing it would do.
func (c *fakeClock) FireStale() {
	c.mu.Lock()
	var stale []*fakeTimer
	for _, t := range c.timers {
		if t.stopped {
			stale = append(stale, t)
		}
	}
	c.mu.Unlock()
	for _, t := range stale {
		t.f()
	}
}

func TestLevel(t *testing.T) {
	const (
		debug = slog.LevelDebug
		info  = slog.LevelInfo
		warn  = slog.LevelWarn
		errl  = slog.LevelError
	)
	// A step acts on the level, then checks it. Exactly one of set,
	// base, advance or stale is meaningful per step.
	type step struct {
		do       string // "set", "base", "advance", "stale", "close"
		lvl      slog.Level
		d        time.Duration
		want     slog.Level
		wantBase slog.Level
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"temporary reverts to base", []step{
			{"set", debug, time.Minute, debug, info},
			{"advance", 0, 59 * time.Second, debug, info},
			{"advance", 0, time.Second, info, info},
		}},
		{"overlapping periods: last wins, back to base not to the first", []step{
			{"set", debug, 10 * time.Minute, debug, info},
			{"set", warn, time.Minute, warn, info},
			{"advance", 0, time.Minute, info, info},
			{"advance", 0, 20 * time.Minute, info, info},
		}},
		{"overlapping periods: a shorter earlier one does not cut the last", []step{
			{"set", warn, time.Minute, warn, info},
			{"set", debug, 10 * time.Minute, debug, info},
			{"advance", 0, time.Minute, debug, info},
			{"advance", 0, 9 * time.Minute, info, info},
		}},
		{"SetBase during a temporary period is where it returns", []step{
			{"set", debug, time.Minute, debug, info},
			{"base", errl, 0, debug, errl},
			{"advance", 0, time.Minute, errl, errl},
		}},
		{"SetBase without a temporary period takes effect at once", []step{
			{"base", warn, 0, warn, warn},
		}},
		{"Set without a period ends the temporary one and is the base", []step{
			{"set", debug, time.Minute, debug, info},
			{"set", warn, 0, warn, warn},
			{"advance", 0, time.Hour, warn, warn},
			{"base", errl, 0, errl, errl}, // config changing log.level again wins
		}},
		{"a stale timer does nothing", []step{
			{"set", debug, time.Minute, debug, info},
			{"set", warn, time.Hour, warn, info},
			{"stale", 0, 0, warn, info},
		}},
		{"Close stops the revert", []step{
			{"set", debug, time.Minute, debug, info},
			{"close", 0, 0, debug, info},
			{"advance", 0, time.Hour, debug, info},
			{"set", warn, time.Minute, warn, info},
			{"advance", 0, time.Hour, warn, info},
			{"base", errl, 0, errl, errl},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
			l := admin.NewLevelWithClock(info, c.Now, c.AfterFunc)
			defer l.Close()
			for i, s := range tt.steps {
				switch s.do {
				case "set":
					l.Set(s.lvl, s.d)
				case "base":
					l.SetBase(s.lvl)
				case "advance":
					c.Advance(s.d)
				case "stale":
					c.FireStale()
				case "close":
					l.Close()
				}
				if got := l.Level(); got != s.want {
					t.Errorf("step %d (%s %v %v): Level() = %v; want %v", i, s.do, s.lvl, s.d, got, s.want)
				}
				if got := l.Base(); got != s.wantBase {
					t.Errorf("step %d (%s %v %v): Base() = %v; want %v", i, s.do, s.lvl, s.d, got, s.wantBase)
				}
			}
		})
	}
}

func TestLevelUntilAndLog(t *testing.T) {
	c := &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	l := admin.NewLevelWithClock(slog.LevelInfo, c.Now, c.AfterFunc)
	var logs bytes.Buffer
	// The line announcing the revert must appear although the level it
	// returns to (error) would drop an info line.
	l.SetLogger(admin.AuditLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: l}))))
	l.SetBase(slog.LevelError)
	if got := l.Until(); !got.IsZero() {
		t.Errorf("Until() without a temporary level = %v; want zero", got)
	}
	prev := l.Set(slog.LevelDebug, 5*time.Minute)
	if prev != slog.LevelError {
		t.Errorf("Set returned previous %v; want ERROR", prev)
	}
	if got, want := l.Until(), c.Now().Add(5*time.Minute); !got.Equal(want) {
		t.Errorf("Until() = %v; want %v", got, want)
	}
	c.Advance(5 * time.Minute)
	if got := l.Until(); !got.IsZero() {
		t.Errorf("Until() after the revert = %v; want zero", got)
	}
	for _, want := range []string{`"msg":"log level reverted"`, `"audit":true`, `"from":"debug"`, `"level":"error"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q; want it to contain %s", logs.String(), want)
		}
	}
}

// The zero Level works: info, and implements slog.Leveler.
func TestLevelZero(t *testing.T) {
	var l admin.Level
	var _ slog.Leveler = &l
	if got := l.Level(); got != slog.LevelInfo {
		t.Errorf("zero Level = %v; want INFO", got)
	}
	l.Set(slog.LevelWarn, 0)
	if got := l.String(); got != "warn" {
		t.Errorf("String() = %q; want warn", got)
	}
}
