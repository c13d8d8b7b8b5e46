package accesslog

import (
	"testing"
	"time"
)

func TestJSONSafeTable(t *testing.T) {
	for c := 0; c < 256; c++ {
		want := c >= 0x20 && c < 0x80 && c != '"' && c != '\\'
		if jsonSafe[c] != want {
			t.Errorf("jsonSafe[%#x] = %v, want %v", c, jsonSafe[c], want)
		}
	}
}

// TestStampCache formats many times of one second, alternating zones and
// seconds, so the cached second is reused and replaced.
func TestStampCache(t *testing.T) {
	zones := []*time.Location{time.UTC, time.Local, time.FixedZone("CET", 3600)}
	base := time.Date(2026, 11, 28, 10, 0, 59, 0, time.UTC)
	for i := range 3000 {
		tm := base.Add(time.Duration(i) * 997 * time.Microsecond).In(zones[i/7%len(zones)])
		if got, want := string(appendRFC3339Nano(nil, tm)), tm.Format(time.RFC3339Nano); got != want {
			t.Fatalf("appendRFC3339Nano(%v) = %q; want %q", tm, got, want)
		}
	}
}

func TestSafe8(t *testing.T) {
	for c := 0; c < 256; c++ {
		for pos := range 8 {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			if got, want := safe8(string(b)), jsonSafe[c]; got != want {
				t.Errorf("safe8 with %#x at %d = %v, want %v", c, pos, got, want)
			}
		}
	}
}

func TestAppendMillis(t *testing.T) {
	for _, us := range []int64{0, 1, 9, 10, 100, 999, 1000, 1001, 1010, 1100, 12345, 999999999, 1e15 - 1, 1e15, 1 << 62, -1, -1500} {
		ms := float64(us) / 1000
		if got, want := string(appendMillis(nil, us, ms)), string(appendJSONFloat(nil, ms)); got != want {
			t.Errorf("appendMillis(%d) = %s, want %s", us, got, want)
		}
	}
	for us := int64(0); us < 200000; us += 7 {
		ms := float64(us) / 1000
		if got, want := string(appendMillis(nil, us, ms)), string(appendJSONFloat(nil, ms)); got != want {
			t.Fatalf("appendMillis(%d) = %s, want %s", us, got, want)
		}
	}
}
