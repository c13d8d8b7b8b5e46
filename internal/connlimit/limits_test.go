package connlimit_test

import (
	"fmt"
	"math"
	"runtime"
	"syscall"
	"testing"

	"github.com/svc-dev/svc/internal/connlimit"
)

func TestLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		nofile uint64
		want   connlimit.Caps
	}{
		{0, connlimit.Caps{Public: 8, Private: 4, Admin: 4}},
		{64, connlimit.Caps{Public: 8, Private: 4, Admin: 4}},
		{150, connlimit.Caps{Public: 8, Private: 4, Admin: 4}},
		{256, connlimit.Caps{Public: 57, Private: 16, Admin: 16}},
		{1024, connlimit.Caps{Public: 499, Private: 64, Admin: 64}},
		{20000, connlimit.Caps{Public: 12472, Private: 64, Admin: 64}},
		{1 << 20, connlimit.Caps{Public: 660475, Private: 64, Admin: 64}},
		{math.MaxUint64, connlimit.Limits(math.MaxInt32)},
	} {
		if got := connlimit.Limits(tc.nofile); got != tc.want {
			t.Errorf("Limits(%d) = %+v; want %+v", tc.nofile, got, tc.want)
		}
	}

	// Properties over a range: floors hold, the public cap grows with
	// the limit, and from 128 descriptors on the caps and the shedding of
	// three listeners leave some free.
	prev := 0
	for n := uint64(0); n <= 1<<16; n += 7 {
		c := connlimit.Limits(n)
		if c.Public < connlimit.MinPublic || c.Private < connlimit.MinSmall || c.Private > connlimit.SmallCap || c.Admin != c.Private {
			t.Fatalf("Limits(%d) = %+v: outside the floors and SmallCap", n, c)
		}
		if c.Public < prev {
			t.Fatalf("Limits(%d).Public = %d < %d for a lower limit", n, c.Public, prev)
		}
		prev = c.Public
		if used := uint64(c.Public + c.Private + c.Admin + 3*connlimit.DefaultMaxShedding); n >= 128 && used >= n {
			t.Fatalf("Limits(%d) = %+v: with shedding %d descriptors, none left", n, c, used)
		}
	}
}

// TestProcessLimits also checks what the package documentation says of
// Go: the soft limit was raised to about the hard one at startup, so svc
// need not raise it.
func TestProcessLimits(t *testing.T) {
	t.Parallel()
	caps, n, err := connlimit.ProcessLimits()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		if err == nil {
			t.Errorf("ProcessLimits on %s: want an error", runtime.GOOS)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if n != uint64(lim.Cur) || caps != connlimit.Limits(n) {
		t.Errorf("ProcessLimits() = %+v, %d; want Limits(%d)", caps, n, lim.Cur)
	}
	if runtime.GOOS == "linux" && uint64(lim.Cur)+1 < uint64(lim.Max) {
		t.Errorf("soft RLIMIT_NOFILE %d, hard %d: Go no longer raises the soft limit at startup; svc must", lim.Cur, lim.Max)
	}
}

func ExampleLimits() {
	for _, nofile := range []uint64{64, 1024, 1 << 20} {
		c := connlimit.Limits(nofile)
		fmt.Printf("nofile %d: public %d, private %d, admin %d\n", nofile, c.Public, c.Private, c.Admin)
	}
	// Output:
	// nofile 64: public 8, private 4, admin 4
	// nofile 1024: public 499, private 64, admin 64
	// nofile 1048576: public 660475, private 64, admin 64
}
