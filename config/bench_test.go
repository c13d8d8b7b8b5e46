package config_test

import (
	"testing"
	"time"

	"github.com/svc-dev/svc/config"
)

func benchLive(b *testing.B) *config.Live {
	b.Helper()
	live, err := config.NewLive(config.LiveOptions{},
		config.NewMap("file config/orders.json", map[string]string{"timeout": "2s", "name": "orders", "feature.x": "true"}))
	if err != nil {
		b.Fatal(err)
	}
	return live
}

// BenchmarkVarGet measures the read path of a live value: an atomic load
// and a copy. Target: a few ns and no allocation.
func BenchmarkVarGet(b *testing.B) {
	live := benchLive(b)
	timeout, err := config.NewVar(live, "timeout", time.Second, config.ParseDuration, nil)
	if err != nil {
		b.Fatal(err)
	}
	name, err := config.NewVar(live, "name", "", config.ParseString, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("duration", func(b *testing.B) {
		b.ReportAllocs()
		var d time.Duration
		for b.Loop() {
			d += timeout.Get()
		}
		_ = d
	})
	b.Run("string", func(b *testing.B) {
		b.ReportAllocs()
		var n int
		for b.Loop() {
			n += len(name.Get())
		}
		_ = n
	})
	b.Run("duration/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var d time.Duration
			for pb.Next() {
				d += timeout.Get()
			}
			_ = d
		})
	})
}

// BenchmarkCurrentLookup measures reading a key through the live store,
// for comparison: a map lookup per layer.
func BenchmarkCurrentLookup(b *testing.B) {
	live := benchLive(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := live.Current().Lookup("feature.x"); !ok {
			b.Fatal("not set")
		}
	}
}
