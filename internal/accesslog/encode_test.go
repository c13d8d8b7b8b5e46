package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"testing"
	"time"
)

// slogLine is the line svc's slog logger writes today for e (the handler
// svc builds, With("service", service), the attributes httpmw.Observe
// logs), for format f.
func slogLine(t testing.TB, f Format, service string, e *Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var h slog.Handler
	if f == Text {
		h = slog.NewTextHandler(&buf, nil)
	} else {
		h = slog.NewJSONHandler(&buf, nil)
	}
	h = h.WithAttrs([]slog.Attr{slog.String("service", service)})
	r := slog.NewRecord(e.Time, slog.LevelInfo, "request", 0)
	r.AddAttrs(
		slog.String("server", e.Server),
		slog.String("method", e.Method),
		slog.String("route", e.Route),
		slog.String("path", e.Path),
		slog.Int("status", e.Status),
		slog.Int("bytes", e.Bytes),
		slog.Float64("duration_ms", float64(e.Duration.Microseconds())/1000),
		slog.String("request_id", e.RequestID))
	if e.TraceID != "" {
		r.AddAttrs(slog.String("trace_id", e.TraceID))
	}
	r.AddAttrs(slog.String("remote", e.Remote))
	if err := h.Handle(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var when = time.Date(2026, 11, 28, 10, 0, 0, 123456789, time.FixedZone("CET", 3600))

func TestLineMatchesSlog(t *testing.T) {
	tests := []struct {
		name string
		e    Entry
	}{
		{"plain", Entry{Server: "public", Method: "GET", Route: "/hello/{name}", Path: "/hello/ann",
			Status: 200, Bytes: 6, Duration: 42 * time.Microsecond, RequestID: "host-1", Remote: "127.0.0.1:41234"}},
		{"trace id", Entry{Server: "public", Method: "GET", Route: "/", Path: "/", Status: 200,
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Remote: "[::1]:1"}},
		{"empty strings", Entry{}},
		{"quotes and controls", Entry{Path: "/a\"b\\c\n\r\t\x00\x1f\x7f d=e", Method: "G ET", Route: "x=y"}},
		{"invalid utf-8", Entry{Path: "/\xff\xfe/\xc3", RequestID: "\xed\xa0\x80"}},
		{"separators", Entry{Path: "/\u2028\u2029<>&", Remote: "\u00a0\u200b"}},
		{"unicode", Entry{Path: "/grüße/日本", Route: "/{x}"}},
		{"long duration", Entry{Duration: 1234*time.Second + 5*time.Microsecond, Status: 599, Bytes: 1 << 40}},
		{"whole ms", Entry{Duration: 3 * time.Millisecond}},
		{"negative", Entry{Duration: -time.Millisecond, Status: -1, Bytes: -2}},
		{"huge duration", Entry{Duration: 1<<63 - 1}},
	}
	for _, tt := range tests {
		for _, f := range []Format{JSON, Text} {
			e := tt.e
			e.Time = when
			got := appendLine(nil, f, "svc-\"x\"", &e)
			want := slogLine(t, f, "svc-\"x\"", &e)
			if !bytes.Equal(got, want) {
				t.Errorf("%s, format %d:\n got %s\nwant %s", tt.name, f, got, want)
			}
		}
	}
}

func TestZeroTimeIsNow(t *testing.T) {
	before := time.Now()
	var got struct{ Time time.Time }
	if err := json.Unmarshal(appendLine(nil, JSON, "s", &Entry{}), &got); err != nil {
		t.Fatal(err)
	}
	if got.Time.Before(before) || got.Time.After(time.Now()) {
		t.Errorf("time = %v; want between %v and now", got.Time, before)
	}
}

// decoded is a JSON line read back.
type decoded struct {
	Time       time.Time `json:"time"`
	Level      string    `json:"level"`
	Msg        string    `json:"msg"`
	Service    string    `json:"service"`
	Server     string    `json:"server"`
	Method     string    `json:"method"`
	Route      string    `json:"route"`
	Path       string    `json:"path"`
	Status     int       `json:"status"`
	Bytes      int       `json:"bytes"`
	DurationMS float64   `json:"duration_ms"`
	RequestID  string    `json:"request_id"`
	TraceID    string    `json:"trace_id"`
	Remote     string    `json:"remote"`
}

// valid is s as it reads back from JSON: each byte of invalid UTF-8
// replaced by U+FFFD.
func valid(s string) string { return string([]rune(s)) }

func FuzzEncode(f *testing.F) {
	f.Add("public", "GET", "/hello/{name}", "/hello/ann", 200, 6, int64(42000), "id-1", "", "127.0.0.1:1", "svc")
	f.Add("p\"", "G\x00T", "\u2028", "/\xff\xfe\xc3", -1, 1<<40, int64(-5), "\n\r\t", "tr\\", "\x7f", "")
	f.Fuzz(func(t *testing.T, server, method, route, path string, status, nbytes int, durNS int64,
		requestID, traceID, remote, service string) {
		e := Entry{Time: when, Server: server, Method: method, Route: route, Path: path, Status: status,
			Bytes: nbytes, Duration: time.Duration(durNS), RequestID: requestID, TraceID: traceID, Remote: remote}
		line := appendLine(nil, JSON, service, &e)
		if len(line) == 0 || line[len(line)-1] != '\n' || bytes.Count(line, []byte{'\n'}) != 1 {
			t.Fatalf("not one line: %q", line)
		}
		if !json.Valid(line) {
			t.Fatalf("invalid JSON: %q", line)
		}
		var got decoded
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		want := decoded{Time: when, Level: "INFO", Msg: "request", Service: valid(service),
			Server: valid(server), Method: valid(method), Route: valid(route), Path: valid(path),
			Status: status, Bytes: nbytes, DurationMS: float64(e.Duration.Microseconds()) / 1000,
			RequestID: valid(requestID), TraceID: valid(traceID), Remote: valid(remote)}
		if !got.Time.Equal(want.Time) {
			t.Errorf("time = %v; want %v", got.Time, want.Time)
		}
		got.Time = want.Time
		if got != want {
			t.Errorf("round trip of %q:\n got %+v\nwant %+v", line, got, want)
		}
		for _, f := range []Format{JSON, Text} {
			if got, want := appendLine(nil, f, service, &e), slogLine(t, f, service, &e); !bytes.Equal(got, want) {
				t.Errorf("format %d:\n got %q\nwant %q (slog)", f, got, want)
			}
		}
	})
}

func TestAppendRFC3339Nano(t *testing.T) {
	zones := []*time.Location{time.UTC, time.FixedZone("CET", 3600), time.FixedZone("NST", -(3*3600 + 30*60)),
		time.FixedZone("LMT", 561), time.FixedZone("X", -59)}
	times := []time.Time{
		time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
		time.Date(2026, 12, 31, 23, 59, 59, 100000000, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Now(),
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(400<<30)-(200<<30), r.Int64N(1e9)))
	}
	for _, tm := range times {
		for _, z := range zones {
			in := tm.In(z)
			if got, want := string(appendRFC3339Nano([]byte("x"), in)), "x"+in.Format(time.RFC3339Nano); got != want {
				t.Errorf("appendRFC3339Nano(%v) = %q; want %q", in, got, want)
			}
		}
	}
}
