package admin

import (
	"log/slog"
	"sync"
	"time"
)

// Level is a service's live log level: a base level, which configuration
// sets (log.level), and at most one temporary level, which
// PUT /admin/loglevel?for=D sets for D. It implements [slog.Leveler], so a
// handler can read it directly:
//
//	level := admin.NewLevel(slog.LevelInfo)
//	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
//	level.SetLogger(admin.AuditLogger(log)) // announce reverts whatever the level
//
// The rules:
//   - [Level.SetBase] changes the base. With no temporary level active it
//     takes effect at once; otherwise it is what the level returns to when
//     the temporary period ends.
//   - [Level.Set] with d > 0 sets a temporary level for d. The last change
//     wins: a second Set replaces the first, and its period alone counts.
//     When the period ends the level returns to the base in force then, never
//     to an earlier temporary level.
//   - [Level.Set] with d == 0 ends any temporary period and sets the base
//     itself: the level stays until the next Set or SetBase (svc calls
//     SetBase only when configuration changes log.level).
//
// The zero value is ready to use: base info, no log line on revert. Level
// is safe for concurrent use; [Level.Level] takes no lock. A temporary
// level runs one timer; [Level.Close] stops it.
type Level struct {
	v slog.LevelVar // the level in force

	mu     sync.Mutex // guards the fields below
	base   slog.Level
	until  time.Time // end of the temporary period; zero: none
	timer  stopper   // ends the temporary period; nil: none
	gen    uint64    // incremented by every change: a stale timer sees a newer gen and does nothing
	closed bool

	log       *slog.Logger                            // a line when a temporary level ends; nil: none
	now       func() time.Time                        // time.Now unless a test sets it
	afterFunc func(d time.Duration, f func()) stopper // time.AfterFunc unless a test sets it
}

// stopper is what Level needs of a *time.Timer.
type stopper interface{ Stop() bool }

var _ slog.Leveler = (*Level)(nil)

// NewLevel returns a Level whose base and current level are base.
func NewLevel(base slog.Level) *Level {
	l := &Level{base: base}
	l.v.Set(base)
	return l
}

// SetLogger sets where one line "log level reverted" goes when a temporary
// level ends: give it a logger that writes whatever the level
// ([AuditLogger]), since the line may announce a level that drops it. nil
// (the default) writes nothing.
func (l *Level) SetLogger(log *slog.Logger) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = log
}

// Level returns the level in force. It implements [slog.Leveler].
func (l *Level) Level() slog.Level { return l.v.Level() }

// Base returns the base level: the level in force once any temporary
// period ends.
func (l *Level) Base() slog.Level {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.base
}

// Until returns when the temporary level ends, or the zero time when
// none is active.
func (l *Level) Until() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.until
}

// SetBase sets the base level. It takes effect at once unless a temporary
// level is active; then it is the level the temporary one returns to.
func (l *Level) SetBase(base slog.Level) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.base = base
	if l.timer == nil {
		l.v.Set(base)
	}
}

// Set sets the level in force and returns the previous one. With d > 0 the
// level is temporary: after d it returns to the base in force then. With
// d == 0 the base itself becomes lvl and any temporary period ends. After
// Close, Set with d > 0 sets the level but starts no timer.
func (l *Level) Set(lvl slog.Level, d time.Duration) (prev slog.Level) {
	l.mu.Lock()
	defer l.mu.Unlock()
	prev = l.v.Level()
	l.stopLocked()
	l.v.Set(lvl)
	if d <= 0 {
		l.base = lvl
		return prev
	}
	if l.closed {
		return prev
	}
	gen := l.gen
	l.until = l.clock()().Add(d)
	after := l.afterFunc
	if after == nil {
		after = func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }
	}
	l.timer = after(d, func() { l.revert(gen) })
	return prev
}

// revert ends the temporary period started at generation gen, unless a
// later change superseded it.
func (l *Level) revert(gen uint64) {
	l.mu.Lock()
	if gen != l.gen || l.timer == nil {
		l.mu.Unlock()
		return
	}
	from := l.v.Level()
	l.timer, l.until = nil, time.Time{}
	l.gen++
	l.v.Set(l.base)
	to, log := l.base, l.log
	l.mu.Unlock()
	if log != nil {
		log.Info("log level reverted", slog.String("from", levelName(from)), slog.String("level", levelName(to)))
	}
}

// stopLocked ends any temporary period without changing the level.
func (l *Level) stopLocked() {
	l.gen++
	if l.timer != nil {
		l.timer.Stop()
		l.timer, l.until = nil, time.Time{}
	}
}

func (l *Level) clock() func() time.Time {
	if l.now != nil {
		return l.now
	}
	return time.Now
}

// Close stops the timer of a temporary level; the level in force stays.
// Later temporary changes start no timer. Close is idempotent.
func (l *Level) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	l.stopLocked()
}

// String returns the level in force, as "info".
func (l *Level) String() string { return levelName(l.Level()) }
