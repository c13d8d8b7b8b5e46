package config

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// maxDebounces caps how long a burst of file events may delay a reload, in
// debounce periods.
const maxDebounces = 5

// Start watches the layers for changes, in the background: the directory
// of every [*File] layer, through fsnotify (the directory, not the file:
// editors and Kubernetes replace a file by renaming another over it), and
// every [Notifier] layer. A file change reloads once events have paused for
// the debounce period (see [LiveOptions]); a Notifier's change reloads at
// once. A directory that does not exist or cannot be watched is logged and
// left unwatched; Reload still reads it.
//
// Start starts one goroutine for the files and one per Notifier; Close
// stops them. It returns an error if called twice or after Close.
func (l *Live) Start() error {
	l.run.Lock()
	defer l.run.Unlock()
	if l.started {
		return errors.New("config: Live.Start called twice or after Close")
	}
	l.started = true
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel

	dirs := map[string]map[string]bool{} // directory -> base names of files
	for _, ly := range l.layers {
		if f, ok := ly.(*File); ok {
			dir, base := filepath.Split(filepath.Clean(f.path))
			dir = filepath.Clean(dir)
			if dirs[dir] == nil {
				dirs[dir] = map[string]bool{}
			}
			dirs[dir][base] = true
		}
		if n, ok := ly.(Notifier); ok {
			ch := n.Changed()
			l.wg.Go(func() {
				for {
					select {
					case <-ctx.Done():
						return
					case <-ch:
						l.reloadFor(ctx, n.Name())
					}
				}
			})
		}
	}
	// A missing directory is the zero-configuration default, not a fault:
	// say so at debug level only, and make no watcher (an inotify
	// instance and a thread) when nothing is left to watch.
	for dir := range dirs {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			l.log.Debug("config: not watching a config directory; its files are read again only on a forced reload", "dir", dir, "err", err)
			delete(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		return nil
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		l.log.Warn("config: cannot watch config files; they are read again only on a forced reload", "err", err)
		return nil
	}
	watching := 0
	for dir := range dirs {
		if err := w.Add(dir); err != nil {
			l.log.Warn("config: not watching a config directory; its files are read again only on a forced reload", "dir", dir, "err", err)
			delete(dirs, dir)
			continue
		}
		watching++
	}
	if watching == 0 {
		w.Close()
		return nil
	}
	l.wg.Go(func() { l.watchFiles(ctx, w, dirs) })
	return nil
}

// Close stops the goroutines of Start and waits for them; a reload under
// way finishes first. It closes no layer. Close is idempotent and returns
// nil; Reload still works afterwards.
func (l *Live) Close() error {
	l.run.Lock()
	l.started = true // no Start after Close
	cancel := l.cancel
	l.cancel = nil
	l.run.Unlock()
	if cancel != nil {
		cancel()
	}
	l.wg.Wait()
	return nil
}

// watchFiles reloads after file events in dirs, debounced, until ctx is
// done.
func (l *Live) watchFiles(ctx context.Context, w *fsnotify.Watcher, dirs map[string]map[string]bool) {
	defer w.Close()
	var (
		timer *time.Timer
		fire  <-chan time.Time // nil while no reload is pending
		first time.Time        // first event of the pending burst
	)
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if !relevant(ev, dirs) {
				continue
			}
			now := time.Now()
			if fire == nil {
				first = now
			}
			wait := min(l.debounce, first.Add(maxDebounces*l.debounce).Sub(now))
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			fire = timer.C
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			l.log.Warn("config: watching config files", "err", err)
		case <-fire:
			fire = nil
			l.reloadFor(ctx, "files")
		}
	}
}

// relevant reports whether ev may change one of the watched files: an
// event other than a mode change on the file itself, or on a name starting
// with ".." (Kubernetes swaps a ConfigMap volume's files through a
// "..data" symbolic link).
func relevant(ev fsnotify.Event, dirs map[string]map[string]bool) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	names := dirs[filepath.Dir(ev.Name)]
	base := filepath.Base(ev.Name)
	return names[base] || strings.HasPrefix(base, "..")
}

// reloadFor runs a reload started by a watch; the report is logged by
// Reload itself.
func (l *Live) reloadFor(ctx context.Context, cause string) {
	ctx, cancel := context.WithTimeout(ctx, reloadTimeout)
	defer cancel()
	rep, err := l.Reload(ctx)
	if err != nil && ctx.Err() == nil {
		l.log.Warn("config: reload", "cause", cause, "err", err)
		return
	}
	l.log.Debug("config: reloaded", "cause", cause, "result", rep.Result)
}
