package svc

import (
	"context"
	"errors"
	"sync"

	"go.uber.org/fx"
)

// frameworkHooks keeps the stop steps of the framework's own components, so
// that a start that fails or is interrupted stops what it began: fx rolls
// back with the start context, and runs no stop hook once a signal or the
// start timeout cancelled it.
type frameworkHooks struct {
	mu    sync.Mutex // guards steps and each step's fields
	steps []*step    // in append order
}

type step struct {
	stop  func(context.Context) error
	armed bool // holds resources: constructed with them, or started
	done  bool // its stop ran
}

// append appends h to lc. Its OnStop also runs from stopAll unless fx ran
// it; owned says the component holds resources from its construction on
// (a client, a goroutine), so that its stop is due even if it never
// started.
func (f *frameworkHooks) append(lc fx.Lifecycle, h fx.Hook, owned bool) {
	s := &step{stop: h.OnStop, armed: owned}
	f.mu.Lock()
	f.steps = append(f.steps, s)
	f.mu.Unlock()
	start := h.OnStart
	lc.Append(fx.Hook{
		OnStart: func(ctx context.Context) error {
			if start != nil {
				if err := start(ctx); err != nil {
					return err
				}
			}
			f.mu.Lock()
			s.armed = true
			f.mu.Unlock()
			return nil
		},
		OnStop: func(ctx context.Context) error {
			f.mu.Lock()
			if s.done {
				f.mu.Unlock()
				return nil
			}
			s.done = true
			f.mu.Unlock()
			if s.stop == nil {
				return nil
			}
			return s.stop(ctx)
		},
	})
}

// stopAll runs, in reverse order, the stop of every armed step whose stop
// has not run.
func (f *frameworkHooks) stopAll(ctx context.Context) error {
	f.mu.Lock()
	var due []*step
	for i := len(f.steps) - 1; i >= 0; i-- {
		if s := f.steps[i]; s.armed && !s.done && s.stop != nil {
			s.done = true
			due = append(due, s)
		}
	}
	f.mu.Unlock()
	var errs []error
	for _, s := range due {
		errs = append(errs, s.stop(ctx))
	}
	return errors.Join(errs...)
}
