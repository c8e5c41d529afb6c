package auditlog

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	dto "github.com/prometheus/client_model/go"

	"github.com/neullabs/ringlet/audit"
)

func benchRecord(i int) audit.Record {
	return audit.Record{Kind: audit.KindToolCall, Profile: "work", Session: "s1", Actor: audit.ActorAdmin, Target: "fs__read_file", Decision: audit.Allow, Status: 200, Duration: time.Duration(i), Detail: []byte(`{"bytes":123}`)}
}

// benchProviderRecord is a provider request's record as the proxy writes
// it: the kind the usage summary sums.
func benchProviderRecord(i int) audit.Record {
	return audit.Record{Kind: audit.KindProviderRequest, Profile: "work", Session: "s1", Actor: "tok1", Target: "/v1/chat/completions", Decision: audit.Allow,
		Status: 200, Duration: time.Duration(i), BytesIn: 1024, BytesOut: 512, TokensIn: 12, TokensOut: 24,
		Detail: []byte(`{"provider":"openai","model":"gpt-4o","stream":false,"complete":true}`)}
}

// baseline inserts the same rows straight into SQLite (same schema and
// pragmas), one transaction per row, with writers serialised on a mutex:
// what a caller would get without the audit layer.
type baseline struct {
	mu  sync.Mutex
	db  *sqlite3.Conn
	ins *sqlite3.Stmt
	seq int64
}

func newBaseline(b *testing.B) *baseline {
	db, err := sqlite3.Open(filepath.Join(b.TempDir(), "base.db"))
	if err != nil {
		b.Fatal(err)
	}
	if err := db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + schema); err != nil {
		b.Fatal(err)
	}
	ins, _, err := db.Prepare(insertSQL)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ins.Close(); db.Close() })
	return &baseline{db: db, ins: ins}
}

func (x *baseline) insert(r audit.Record) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.seq++
	r.Seq = x.seq
	h := make([]byte, 32)
	if err := x.db.Exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	for j, v := range []any{r.Seq, r.Time.UnixNano(), r.Kind, r.Profile, r.Session, r.Actor, r.Target, r.Decision, r.Status, int64(r.Duration), r.BytesIn, r.BytesOut, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite, string(r.Detail), h, h, r.TraceID, r.SpanID, r.ParentSpanID, r.Link} {
		switch v := v.(type) {
		case int64:
			x.ins.BindInt64(j+1, v)
		case string:
			x.ins.BindText(j+1, v)
		case []byte:
			x.ins.BindBlob(j+1, v)
		}
	}
	err := x.ins.Exec()
	x.ins.Reset()
	if err != nil {
		return err
	}
	return x.db.Exec("COMMIT")
}

// drive runs n appends spread over workers and returns the per-record
// waits and the wall time.
func drive(b *testing.B, workers, n int, rec func(int) audit.Record, appendOne func(audit.Record) error) ([]time.Duration, time.Duration) {
	lat := make([][]time.Duration, workers)
	per := n/workers + 1
	start := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				t0 := time.Now()
				if err := appendOne(rec(i)); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	return all, wall
}

// appendRounds is how many times benchAppend measures the log and its
// baseline, each time on fresh databases: one run on a shared machine
// swings by half, so the figures are the median and range of the rounds.
const appendRounds = 5

func benchAppend(b *testing.B, workers int, rec func(int) audit.Record) {
	ctx := context.Background()
	var added, auditRate, baseRate, ratio, batch []float64
	b.ResetTimer()
	for range appendRounds {
		l, err := Open(Options{Path: filepath.Join(b.TempDir(), "audit.db")})
		if err != nil {
			b.Fatal(err)
		}
		base := newBaseline(b)
		aLat, aWall := drive(b, workers, b.N, rec, func(r audit.Record) error { _, err := l.Append(ctx, r); return err })
		bLat, bWall := drive(b, workers, b.N, rec, base.insert)
		n := float64(len(aLat))
		p50 := func(v []time.Duration) float64 { return float64(v[len(v)/2].Nanoseconds()) / 1000 }
		added = append(added, p50(aLat)-p50(bLat))
		auditRate = append(auditRate, n/aWall.Seconds())
		baseRate = append(baseRate, n/bWall.Seconds())
		ratio = append(ratio, bWall.Seconds()/aWall.Seconds())
		var m dto.Metric
		if err := l.metrics.batchSize.Write(&m); err != nil {
			b.Fatal(err)
		}
		batch = append(batch, m.Histogram.GetSampleSum()/float64(m.Histogram.GetSampleCount()))
		l.Close()
	}
	b.StopTimer()
	spread(b, "added-p50-µs", added)
	spread(b, "audit-rec/s", auditRate)
	spread(b, "base-rec/s", baseRate)
	spread(b, "throughput-ratio", ratio)
	b.ReportMetric(median(batch), "avg-batch")
	b.ReportMetric(0, "ns/op")
}

func median(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// spread reports the median of the rounds and their range.
func spread(b *testing.B, unit string, v []float64) {
	b.ReportMetric(median(v), unit+"-median")
	b.ReportMetric(slices.Min(v), unit+"-min")
	b.ReportMetric(slices.Max(v), unit+"-max")
}

// BenchmarkAppend1 is one writer waiting for each commit: the added wait
// per acknowledged record (target: under 100 µs at p50), median and range
// over appendRounds rounds.
func BenchmarkAppend1(b *testing.B) { benchAppend(b, 1, benchRecord) }

// BenchmarkAppend1Provider is BenchmarkAppend1 with provider requests'
// records, which the usage summary also sums.
func BenchmarkAppend1Provider(b *testing.B) { benchAppend(b, 1, benchProviderRecord) }

// BenchmarkAppend32 is 32 writers each waiting for their own commit:
// sustained throughput (target: at least 100,000 records/s), median and
// range over appendRounds rounds.
func BenchmarkAppend32(b *testing.B) { benchAppend(b, 32, benchRecord) }
