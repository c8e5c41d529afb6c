package sessionstore

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/privatefile"
)

// singleFile is the store of earlier versions, kept here only as the
// baseline of BenchmarkSessionStorePut: every change rewrites all the
// sessions into one file (privatefile.WriteJSON).
type singleFile struct {
	path     string
	mu       sync.Mutex
	sessions map[string]Session
}

func (f *singleFile) Put(_ context.Context, ss ...Session) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range ss {
		f.sessions[s.ID] = s
	}
	c := legacyContent{Version: legacyVersion, Sessions: make([]Session, 0, len(f.sessions))}
	for _, s := range f.sessions {
		c.Sessions = append(c.Sessions, s)
	}
	sort.Slice(c.Sessions, func(i, j int) bool { return c.Sessions[i].ID < c.Sessions[j].ID })
	return privatefile.WriteJSON(f.path, c)
}

// BenchmarkSessionStorePut times one Put (a session's renewal, as the
// gateway makes at most once a minute per session, or a session's start)
// with 10 and with 1,000 sessions stored, for the store (dir) and for the
// single file it replaced (single), and prints each ratio of the two
// sizes: the store's should be about 1, the single file's grows with the
// sessions. The four stores take turns, one Put each, so that the load of
// the machine and the disk's sync times weigh on all alike; each time is
// the median of 101 Puts, every one synced to disk. It also prints the
// bytes one Put writes (the file it replaces), which no load sways.
func BenchmarkSessionStorePut(b *testing.B) {
	const puts = 101
	type store struct {
		name string
		n    int
		put  func(ctx context.Context, ss ...Session) error
		// file is what one Put of session 0 replaces.
		file string
		took []time.Duration
	}
	for range b.N {
		var stores []*store
		for _, kind := range []string{"dir", "single"} {
			for _, n := range []int{10, 1000} {
				root := b.TempDir()
				st := &store{name: kind, n: n}
				if kind == "dir" {
					d := NewDir(filepath.Join(root, "sessions"), Options{})
					st.put, st.file = d.Put, d.file(sample(0).ID)
				} else {
					f := &singleFile{path: filepath.Join(root, "sessions.json"), sessions: map[string]Session{}}
					st.put, st.file = f.Put, f.path
				}
				var all []Session
				for i := range n {
					all = append(all, sample(i))
				}
				if err := st.put(context.Background(), all...); err != nil {
					b.Fatal(err)
				}
				stores = append(stores, st)
			}
		}
		for i := range puts {
			for _, st := range stores {
				s := sample(i % st.n)
				s.Requests = int64(i + 1)
				start := time.Now()
				if err := st.put(context.Background(), s); err != nil {
					b.Fatal(err)
				}
				st.took = append(st.took, time.Since(start))
			}
		}
		median := func(st *store) time.Duration {
			slices.Sort(st.took)
			return st.took[len(st.took)/2]
		}
		for i := 0; i < len(stores); i += 2 {
			small, large := stores[i], stores[i+1]
			ms, ml := median(small), median(large)
			b.ReportMetric(float64(ms.Microseconds()), small.name+"-10-µs")
			b.ReportMetric(float64(ml.Microseconds()), large.name+"-1000-µs")
			b.ReportMetric(float64(ml)/float64(ms), large.name+"-ratio")
			fi, err := os.Stat(large.file)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(fi.Size()), large.name+"-1000-bytes/put")
		}
		b.ReportMetric(0, "ns/op")
	}
}
