package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Terminal safety. Most of what svcctl prints comes from elsewhere: etcd
// values written by anyone who can write the registry, and answers of
// services' admin listeners. A value such as "\x1b]0;pwned\x07" (set the
// window title) or "\x1b[2J" (clear the screen), a carriage return that
// overwrites a line, or a right-to-left override that reverses what
// follows must not reach the terminal raw. So:
//
//   - Every table cell goes through cleanCell: any rune that is not
//     graphic (Unicode letters, marks, numbers, punctuation, symbols and
//     spaces) is written as a Go escape, \x1b, \r, \n, \t, \u009b, \u202e;
//     a byte that is not UTF-8 as \xff. ESC sequences are therefore inert
//     text ("\x1b]0;pwned\x07"), and columns stay aligned.
//   - Everything written to stdout and stderr goes through a termWriter,
//     which escapes the same way but keeps newlines and tabs: streamed
//     task output, stacks, error messages, warnings.
//   - JSON output (--json) is escaped inside strings as JSON allows
//     (\u001b, \u007f, \u009b): it still decodes to the original values.
//
// The escapes are for display: a value that contains the text "\x1b"
// looks like one that contains ESC. "get PATH --raw" and "post PATH --raw"
// copy an answer byte for byte, for a file or a pipe.

// printable reports whether r may be written to a terminal as it is: a
// graphic rune, or in text (not a cell) a newline or a tab.
func printable(r rune, text bool) bool {
	if text && (r == '\n' || r == '\t') {
		return true
	}
	return r != utf8.RuneError && unicode.IsGraphic(r)
}

// appendEscaped appends b's runes to dst, escaping those printable
// rejects. A byte that is not part of valid UTF-8 is escaped as \xNN.
func appendEscaped(dst, b []byte, text bool) []byte {
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			dst = fmt.Appendf(dst, `\x%02x`, b[0])
		case printable(r, text):
			dst = append(dst, b[:size]...)
		case r < 0x80:
			switch r {
			case '\n':
				dst = append(dst, `\n`...)
			case '\r':
				dst = append(dst, `\r`...)
			case '\t':
				dst = append(dst, `\t`...)
			default:
				dst = fmt.Appendf(dst, `\x%02x`, r)
			}
		case r <= 0xFFFF:
			dst = fmt.Appendf(dst, `\u%04x`, r)
		default:
			dst = fmt.Appendf(dst, `\U%08x`, r)
		}
		b = b[size:]
	}
	return dst
}

// cleanCell returns s safe for one table cell or one line: every rune that
// is not graphic, newlines and tabs included, escaped.
func cleanCell(s string) string {
	for _, r := range s {
		if !printable(r, false) {
			return string(appendEscaped(nil, []byte(s), false))
		}
	}
	return s
}

// termWriter escapes, on their way to w, the runes that must not reach a
// terminal raw; newlines and tabs pass. A rune split across two writes is
// held back until the next write or Flush. It is safe for concurrent use.
type termWriter struct {
	mu      sync.Mutex // guards partial, buf and writes to w
	w       io.Writer
	partial []byte // the start of a rune cut off at the end of the last write
	buf     []byte // scratch
}

// Write escapes p and writes it to w. It returns len(p) unless w fails.
func (t *termWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	in := p
	if len(t.partial) > 0 {
		in = append(t.partial, p...)
		t.partial = nil
	}
	// Hold back an incomplete rune at the end: its next bytes may follow.
	if cut := incompleteTail(in); cut < len(in) {
		t.partial = append([]byte(nil), in[cut:]...)
		in = in[:cut]
	}
	t.buf = appendEscaped(t.buf[:0], in, true)
	if _, err := t.w.Write(t.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes what Write held back, escaped as the bytes it is.
func (t *termWriter) Flush() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.partial) == 0 {
		return nil
	}
	out := appendEscaped(nil, t.partial, true)
	t.partial = nil
	_, err := t.w.Write(out)
	return err
}

// incompleteTail returns where a trailing incomplete UTF-8 sequence of b
// starts, or len(b).
func incompleteTail(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax+1; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return i
			}
			break
		}
	}
	return len(b)
}

// escapeJSON returns JSON text b with every rune inside its strings that
// must not reach a terminal raw written as a \u escape (encoding/json
// already escapes C0 controls, U+2028 and U+2029, but not DEL, C1
// controls or bidirectional overrides). The result decodes to the same
// value. Bytes that are not UTF-8 become \ufffd, as encoding/json would
// decode them.
func escapeJSON(b []byte) []byte {
	var sb strings.Builder
	sb.Grow(len(b))
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		switch {
		case r == utf8.RuneError && size == 1:
			sb.WriteString(`\ufffd`)
		case printable(r, true) || r == ' ' || r == '\r':
			sb.Write(b[:size])
		case r > 0xFFFF:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&sb, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
		b = b[size:]
	}
	return []byte(sb.String())
}
