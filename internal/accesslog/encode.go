package accesslog

import (
	"math"
	"strconv"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"
)

// Entry is one request's access line. Log reads it before returning and
// keeps no reference to it, so a caller's Entry can live on its stack.
type Entry struct {
	Time      time.Time     // when the request finished; zero means time.Now()
	Server    string        // the listener: "public" or "private"
	Method    string        // request method
	Route     string        // the router's pattern (/hello/{name}), never the raw path
	Path      string        // the raw URL path
	Status    int           // response status code
	Bytes     int           // response body bytes written
	Duration  time.Duration // written as duration_ms, with microsecond resolution
	RequestID string        // the request's id (X-Request-Id)
	TraceID   string        // W3C trace id; the field is left out when empty
	Remote    string        // the client's address (http.Request.RemoteAddr)
}

// Format is the shape of a line.
type Format uint8

const (
	// JSON lines, byte for byte what slog.NewJSONHandler writes for the
	// same record (the zero Format).
	JSON Format = iota
	// Text lines, byte for byte what slog.NewTextHandler writes: key=value
	// pairs, values quoted only when they need it.
	Text
)

// appendLine appends e as one line in format f, with service as the
// service attribute, ending in '\n'.
func appendLine(b []byte, f Format, service string, e *Entry) []byte {
	return appendLineHead(b, f, service, jsonHead(service, e.Server), e)
}

// appendLineHead is appendLine with jsonHead(service, e.Server) given:
// a Writer keeps the heads of its servers encoded.
func appendLineHead(b []byte, f Format, service, head string, e *Entry) []byte {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	ms := float64(e.Duration.Microseconds()) / 1000
	if f == Text {
		return appendText(b, t, service, e, ms)
	}
	return appendJSON(b, t, head, e, ms)
}

// jsonHead is the part of a JSON line between the time and the method's
// value, the same on every line of one service's server.
func jsonHead(service, server string) string {
	b := []byte(`","level":"INFO","msg":"request","service":`)
	b = appendJSONString(b, service)
	b = append(b, `,"server":`...)
	b = appendJSONString(b, server)
	return string(append(b, `,"method":`...))
}

func appendJSON(b []byte, t time.Time, head string, e *Entry, ms float64) []byte {
	b = append(b, `{"time":"`...)
	b = appendRFC3339Nano(b, t)
	b = append(b, head...)
	b = appendMethod(b, e.Method)
	b = append(b, `,"route":`...)
	b = appendJSONString(b, e.Route)
	b = append(b, `,"path":`...)
	b = appendJSONString(b, e.Path)
	b = append(b, `,"status":`...)
	if s := e.Status; s >= 100 && s <= 999 {
		b = append(b, byte('0'+s/100), byte('0'+s/10%10), byte('0'+s%10))
	} else {
		b = strconv.AppendInt(b, int64(s), 10)
	}
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, int64(e.Bytes), 10)
	b = append(b, `,"duration_ms":`...)
	b = appendMillis(b, e.Duration.Microseconds(), ms)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, e.RequestID)
	if e.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = appendJSONString(b, e.TraceID)
	}
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, e.Remote)
	return append(b, "}\n"...)
}

// appendMethod appends m as a JSON string: the methods of RFC 9110 and
// RFC 5789 as they are, any other through appendJSONString.
func appendMethod(b []byte, m string) []byte {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE":
		b = append(b, '"')
		b = append(b, m...)
		return append(b, '"')
	}
	return appendJSONString(b, m)
}

func appendText(b []byte, t time.Time, service string, e *Entry, ms float64) []byte {
	b = append(b, "time="...)
	b = appendRFC3339Millis(b, t)
	b = append(b, " level=INFO msg=request service="...)
	b = appendTextString(b, service)
	b = append(b, " server="...)
	b = appendTextString(b, e.Server)
	b = append(b, " method="...)
	b = appendTextString(b, e.Method)
	b = append(b, " route="...)
	b = appendTextString(b, e.Route)
	b = append(b, " path="...)
	b = appendTextString(b, e.Path)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, int64(e.Bytes), 10)
	b = append(b, " duration_ms="...)
	b = strconv.AppendFloat(b, ms, 'g', -1, 64)
	b = append(b, " request_id="...)
	b = appendTextString(b, e.RequestID)
	if e.TraceID != "" {
		b = append(b, " trace_id="...)
		b = appendTextString(b, e.TraceID)
	}
	b = append(b, " remote="...)
	b = appendTextString(b, e.Remote)
	return append(b, '\n')
}

const hex = "0123456789abcdef"

// jsonSafe[c] says whether byte c is written as it is inside a JSON
// string: ASCII from 0x20 but '"' and '\\'. Bytes from 0x80 (UTF-8) are
// not: they take the rune-by-rune path.
var jsonSafe = [256]bool{
	' ': true, '!': true, '#': true, '$': true, '%': true, '&': true, '\'': true,
	'(': true, ')': true, '*': true, '+': true, ',': true, '-': true, '.': true, '/': true,
	'0': true, '1': true, '2': true, '3': true, '4': true, '5': true, '6': true, '7': true,
	'8': true, '9': true, ':': true, ';': true, '<': true, '=': true, '>': true, '?': true,
	'@': true, 'A': true, 'B': true, 'C': true, 'D': true, 'E': true, 'F': true, 'G': true,
	'H': true, 'I': true, 'J': true, 'K': true, 'L': true, 'M': true, 'N': true, 'O': true,
	'P': true, 'Q': true, 'R': true, 'S': true, 'T': true, 'U': true, 'V': true, 'W': true,
	'X': true, 'Y': true, 'Z': true, '[': true, ']': true, '^': true, '_': true,
	'`': true, 'a': true, 'b': true, 'c': true, 'd': true, 'e': true, 'f': true, 'g': true,
	'h': true, 'i': true, 'j': true, 'k': true, 'l': true, 'm': true, 'n': true, 'o': true,
	'p': true, 'q': true, 'r': true, 's': true, 't': true, 'u': true, 'v': true, 'w': true,
	'x': true, 'y': true, 'z': true, '{': true, '|': true, '}': true, '~': true, 0x7f: true,
}

// appendJSONString appends s as a quoted JSON string, escaped as
// encoding/json and slog escape it: '"', '\\' and control characters
// escaped, each byte of invalid UTF-8 replaced by \ufffd, U+2028 and
// U+2029 escaped; '<', '>' and '&' are left as they are.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	// Fast path: the run of bytes that need no escaping, appended at once
	// (all of a typical route, path, id or address).
	i := 0
	for ; i+8 <= len(s); i += 8 {
		if !safe8(s[i:]) {
			break
		}
	}
	for i < len(s) && jsonSafe[s[i]] {
		i++
	}
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// safe8 says whether the first 8 bytes of s are all jsonSafe: no control
// character, no byte from 0x80, no '"' and no '\\' (0x7f is safe),
// tested on the 8 bytes at once.
func safe8(s string) bool {
	x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	// A byte below 0x20 (or from 0x80: its high bit is set in x already).
	low := x - 0x20*ones
	// A byte equal to '"' or '\\': zero after the XOR.
	q, bs := x^('"'*ones), x^('\\'*ones)
	bad := (low | (q - ones) | (bs - ones)) & ^x & highs
	return bad == 0 && x&highs == 0
}

// appendMillis appends ms, which is us/1000, as appendJSONFloat would:
// below 10^15 µs the shortest decimal of float64(us)/1000 is us/1000
// itself (a decimal of at most 15 significant digits is the only one of
// them to round to its float64), written without trailing zeros. Other
// values take appendJSONFloat.
func appendMillis(b []byte, us int64, ms float64) []byte {
	if us < 0 || us >= 1e15 {
		return appendJSONFloat(b, ms)
	}
	b = strconv.AppendInt(b, us/1000, 10)
	frac := us % 1000
	if frac == 0 {
		return b
	}
	d := [4]byte{'.', byte('0' + frac/100), byte('0' + frac/10%10), byte('0' + frac%10)}
	n := 4
	for d[n-1] == '0' {
		n--
	}
	return append(b, d[:n]...)
}

// appendJSONFloat formats f as encoding/json does (and so slog): the
// shortest decimal, in exponent form only below 1e-6 or from 1e21.
func appendJSONFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, '0') // unreachable from a Duration
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// 1e-07 -> 1e-7, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendTextString appends s as slog's TextHandler does: as it is when it
// needs no quoting, else strconv-quoted.
func appendTextString(b []byte, s string) []byte {
	if needsQuoting(s) {
		return strconv.AppendQuote(b, s)
	}
	return append(b, s...)
}

// needsQuoting is slog's rule: an empty string, a space, '=', '"', an ASCII
// control character below 0x20, invalid UTF-8, a Unicode space or a non-printable
// rune needs quotes; a backslash does not.
func needsQuoting(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c <= ' ' || c == '=' || c == '"' {
				return true
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return true
		}
		i += size
	}
	return false
}

// appendRFC3339Millis is slog's text time: RFC 3339 with exactly three
// digits of milliseconds.
func appendRFC3339Millis(b []byte, t time.Time) []byte {
	const prefixLen = len("2006-01-02T15:04:05.000")
	n := len(b)
	t = t.Truncate(time.Millisecond).Add(time.Millisecond / 10)
	b = appendRFC3339Nano(b, t)
	return append(b[:n+prefixLen], b[n+prefixLen+1:]...) // drop the 4th digit
}

// appendRFC3339Nano appends t as t.AppendFormat(b, time.RFC3339Nano) does,
// at a fraction of its cost: the general formatter parses its layout on
// every call, and the lines of one second share their date, time of day
// and zone, formatted once ([stamp]). Years outside 0-9999 and zone
// offsets that are not whole minutes take the general path.
func appendRFC3339Nano(b []byte, t time.Time) []byte {
	sec, loc := t.Unix(), t.Location()
	st := lastStamp.Load()
	if st == nil || st.sec != sec || st.loc != loc {
		st = newStamp(t, sec, loc)
		if st == nil {
			return t.AppendFormat(b, time.RFC3339Nano)
		}
		lastStamp.Store(st)
	}
	b = append(b, st.head...)
	if ns := t.Nanosecond(); ns != 0 {
		var d [10]byte
		d[0] = '.'
		for i := 9; i > 0; i-- {
			d[i] = byte('0' + ns%10)
			ns /= 10
		}
		n := 10
		for d[n-1] == '0' { // trailing zeros go, as in RFC3339Nano
			n--
		}
		b = append(b, d[:n]...)
	}
	return append(b, st.zone...)
}

// stamp is one second of one location, formatted: the parts of an RFC 3339
// time around its fraction.
type stamp struct {
	sec  int64          // Unix seconds
	loc  *time.Location // the zone at sec is a function of (loc, sec)
	head string         // "2006-01-02T15:04:05"
	zone string         // "Z" or "+01:00"
}

// lastStamp is the second the last line was in, shared by every Writer:
// lines come in time order, nearly, so it almost always matches.
var lastStamp atomic.Pointer[stamp]

// newStamp formats the second of t, or returns nil when the general
// formatter must do it.
func newStamp(t time.Time, sec int64, loc *time.Location) *stamp {
	_, off := t.Zone()
	year, month, day := t.Date()
	if year < 0 || year > 9999 || off%60 != 0 {
		return nil
	}
	hour, minute, s := t.Clock()
	b := make([]byte, 0, 32)
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, s, 2)
	st := &stamp{sec: sec, loc: loc, head: string(b), zone: "Z"}
	if off != 0 {
		sign := byte('+')
		if off < 0 {
			sign, off = '-', -off
		}
		z := []byte{sign}
		z = appendDigits(z, off/3600, 2)
		z = append(z, ':')
		st.zone = string(appendDigits(z, off/60%60, 2))
	}
	return st
}

// appendDigits appends v (0 <= v < 10^width) in exactly width digits.
func appendDigits(b []byte, v, width int) []byte {
	n := len(b)
	for range width {
		b = append(b, '0')
	}
	for i := len(b) - 1; i >= n; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
