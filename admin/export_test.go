package admin

import (
	"log/slog"
	"time"
)

// Stopper is stopper, for the fake timers of tests.
type Stopper = stopper

// NewLevelWithClock is NewLevel with now and afterFunc in place of
// time.Now and time.AfterFunc, so tests drive time themselves.
func NewLevelWithClock(base slog.Level, now func() time.Time, afterFunc func(time.Duration, func()) Stopper) *Level {
	l := NewLevel(base)
	l.now, l.afterFunc = now, afterFunc
	return l
}
