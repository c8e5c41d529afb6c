package perprofile

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkView is View of a profile whose items are kept, from one
// goroutine and from 32 at once (each tool call of every session views
// its profile's MCP servers and hooks). It prints the wall time per View
// at 32 readers as a ratio to one reader's in the same run: about one
// over the number of cores when the readers do not wait on each other's
// stat, 1 or more when they queue.
func BenchmarkView(b *testing.B) {
	s := New[item](b.TempDir(), "things", "things")
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	if err := s.Update("work", func([]item) ([]item, error) { return []item{{Name: "a"}}, nil }); err != nil {
		b.Fatal(err)
	}
	view := func(b *testing.B) {
		if err := s.View("work", func([]item) {}); err != nil {
			b.Fatal(err)
		}
	}
	var one time.Duration
	b.Run("readers=1", func(b *testing.B) {
		start := time.Now()
		for range b.N {
			view(b)
		}
		one = time.Since(start) / time.Duration(b.N)
	})
	b.Run("readers=32", func(b *testing.B) {
		b.SetParallelism(max(1, 32/runtime.GOMAXPROCS(0)))
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				view(b)
			}
		})
		per := time.Since(start) / time.Duration(b.N)
		if one > 0 {
			b.ReportMetric(float64(per)/float64(one), "per-view-ratio-to-1-reader")
		}
	})
}
