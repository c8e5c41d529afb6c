package audit

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

func benchRecord(i int) Record {
	return Record{Kind: KindToolCall, Profile: "work", Session: "s1", Actor: ActorAdmin, Target: "fs__read_file", Decision: Allow, Status: 200, Duration: time.Duration(i), Detail: []byte(`{"bytes":123}`)}
}

// BenchmarkAppend reports sustained throughput with 32 writers that each
// wait for their own commit, and the p50 wait per record at concurrency 1,
// beside a baseline of the same inserts (one transaction each, same
// pragmas) straight into SQLite without the audit layer.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	for _, workers := range []int{1, 32} {
		b.Run("audit/writers="+itoa(workers), func(b *testing.B) {
			l, err := Open(Options{Path: filepath.Join(b.TempDir(), "audit.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			lat := make([][]time.Duration, workers)
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/workers + 1
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						t0 := time.Now()
						if _, err := l.Append(ctx, benchRecord(i)); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			report(b, per*workers, lat)
		})
	}
	b.Run("baseline-sqlite/writers=1", func(b *testing.B) {
		db, err := sqlite3.Open(filepath.Join(b.TempDir(), "base.db"))
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		if err := db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + schema); err != nil {
			b.Fatal(err)
		}
		ins, _, err := db.Prepare(insertSQL)
		if err != nil {
			b.Fatal(err)
		}
		defer ins.Close()
		lat := make([][]time.Duration, 1)
		b.ResetTimer()
		for i := range b.N {
			t0 := time.Now()
			r := benchRecord(i)
			r.Seq = int64(i + 1)
			db.Exec("BEGIN IMMEDIATE")
			h := make([]byte, 32)
			for j, v := range []any{r.Seq, r.Time.UnixNano(), r.Kind, r.Profile, r.Session, r.Actor, r.Target, r.Decision, r.Status, int64(r.Duration), r.BytesIn, r.BytesOut, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite, string(r.Detail), h, h} {
				switch v := v.(type) {
				case int64:
					ins.BindInt64(j+1, v)
				case string:
					ins.BindText(j+1, v)
				case []byte:
					ins.BindBlob(j+1, v)
				}
			}
			if err := ins.Exec(); err != nil {
				b.Fatal(err)
			}
			ins.Reset()
			if err := db.Exec("COMMIT"); err != nil {
				b.Fatal(err)
			}
			lat[0] = append(lat[0], time.Since(t0))
		}
		b.StopTimer()
		report(b, b.N, lat)
	})
}

func report(b *testing.B, n int, lat [][]time.Duration) {
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(all[len(all)-1].Microseconds()), "max-µs")
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}

func itoa(i int) string {
	if i == 1 {
		return "1"
	}
	return "32"
}
