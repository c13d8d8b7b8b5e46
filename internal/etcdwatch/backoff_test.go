package etcdwatch

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	for i, bound := range []time.Duration{100, 200, 400, 800, 800} {
		bound *= time.Millisecond
		if d := b.Delay(); d < bound/2 || d > bound {
			t.Errorf("delay %d = %v; want in [%v, %v]", i, d, bound/2, bound)
		}
	}
	b.Reset()
	if d := b.Delay(); d < 50*time.Millisecond || d > 100*time.Millisecond {
		t.Errorf("after Reset: delay = %v; want in [50ms, 100ms]", d)
	}
}
