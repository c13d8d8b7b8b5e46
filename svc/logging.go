package svc

import (
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// newLogger returns the service's logger writing to w: JSON when format is
// "json", or "auto" and w is not a terminal; readable text otherwise. Its
// level is the live level.
func newLogger(w io.Writer, format string, level *slog.LevelVar, name string) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "text" || (format == "auto" && isTerminal(w)) {
		h = slog.NewTextHandler(w, opts)
	} else {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(h).With("service", name)
}

// isTerminal reports whether w is a terminal (an ioctl, not a file-mode
// guess: /dev/null is a character device but no terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}
