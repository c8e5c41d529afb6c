package auditlog

import (
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// usageRounds is how many times BenchmarkUsage times each report,
// whatever -benchtime says.
const usageRounds = 5

// usageBenchRecords is how many records BenchmarkUsage reports over
// (RINGLET_BENCH_USAGE_RECORDS overrides it).
const usageBenchRecords = 1_000_000

// fillLog writes n records straight into the database of a new log, chain
// and all, in one transaction: far faster than Append, which commits and
// anchors each batch. Nine records in ten are provider requests, spread
// over 60 days, 20 profiles, 400 sessions and 6 models.
func fillLog(b testing.TB, path string, n int, end time.Time) {
	l, err := Open(Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	if err := l.db.Exec("BEGIN IMMEDIATE"); err != nil {
		b.Fatal(err)
	}
	prev := audit.Genesis()
	span := int64(60 * 24 * time.Hour)
	models := []string{"claude-sonnet-4-5", "claude-opus-4-1", "gpt-5", "gpt-5-mini", "gemini-2.5-pro", "local"}
	for i := range n {
		r := benchRecord(i)
		if i%10 != 0 {
			sess := i / 500
			r = audit.Record{Kind: audit.KindProviderRequest, Profile: "p" + strconv.Itoa(sess%20), Session: "s" + strconv.Itoa(sess), Actor: "tok", Target: "/v1/messages",
				Decision: audit.Allow, Status: 200, TokensIn: int64(1000 + i%3000), TokensOut: int64(200 + i%700), TokensCacheRead: int64(i % 50),
				Detail: []byte(fmt.Sprintf(`{"complete":true,"method":"POST","model":%q,"provider":"anthropic"}`, models[sess%len(models)]))}
		}
		r.Time = end.Add(time.Duration(-span + span/int64(n)*int64(i)))
		r.Seq = int64(i + 1)
		h := audit.ChainHash(prev, &r)
		r.PrevHash, r.Hash = hex.EncodeToString(prev), hex.EncodeToString(h)
		if err := l.bindInsert(&r, prev, h); err != nil {
			b.Fatal(err)
		}
		prev = h
	}
	if err := l.db.Exec("COMMIT"); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkUsage times `ringlet usage --since 30d` (by day, by model) over
// a log of a million records: the report from the usage summary against
// the full scan of the records it replaces (audit.UsageFullScan), several
// rounds each, median and range. It also times the summary's one-off
// build when a log without it is opened.
func BenchmarkUsage(b *testing.B) {
	n := usageBenchRecords
	if v, err := strconv.Atoi(os.Getenv("RINGLET_BENCH_USAGE_RECORDS")); err == nil && v > 0 {
		n = v
	}
	path := filepath.Join(b.TempDir(), "audit.db")
	now := time.Now()
	fillLog(b, path, n, now)
	// The fill wrote no summary rows: drop it, as in a log from before the
	// summary, and time its build at open.
	rawExec(b, path, `DROP TABLE usage_hours; DROP TABLE usage_state`)
	start := time.Now()
	l, err := Open(Options{Path: path, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	l.Close()
	cost := func(string, string, int64, int64, int64, int64) (float64, bool) { return 0, true }
	f := audit.Filter{Since: now.AddDate(0, 0, -30)}
	b.ResetTimer()
	var sum, scan []time.Duration
	for range usageRounds {
		for _, by := range []string{"day", "model"} {
			t0 := time.Now()
			got, err := audit.UsageReport(b.Context(), path, f, by, cost)
			t1 := time.Now()
			want, err2 := audit.UsageFullScan(b.Context(), path, f, by, cost)
			t2 := time.Now()
			if err != nil || err2 != nil {
				b.Fatal(err, err2)
			}
			if !usageEqual(got, want) {
				b.Fatalf("by %s: the summary's report differs from the full scan", by)
			}
			sum, scan = append(sum, t1.Sub(t0)), append(scan, t2.Sub(t1))
		}
	}
	// The dashboard's Spend plot (audit.UsageSeries, by model per day and
	// by profile per hour over 7 days, as the page asks) against the full
	// scan of the same records.
	var series, seriesScan []time.Duration
	week := audit.Filter{Since: audit.BucketStart("day", now.AddDate(0, 0, -7))}
	for range usageRounds {
		for _, q := range [][2]string{{"day", "model"}, {"hour", "profile"}} {
			t0 := time.Now()
			rows, err := audit.UsageSeries(b.Context(), path, week, q[0], q[1], cost)
			t1 := time.Now()
			want, err2 := audit.UsageFullScan(b.Context(), path, week, q[1], cost)
			t2 := time.Now()
			if err != nil || err2 != nil || len(rows) == 0 || len(want) == 0 {
				b.Fatal(err, err2)
			}
			series, seriesScan = append(series, t1.Sub(t0)), append(seriesScan, t2.Sub(t1))
		}
	}
	b.StopTimer()
	reportSpread(b, "series-ms", series)
	reportSpread(b, "series-fullscan-ms", seriesScan)
	sr := make([]float64, len(series))
	for i := range series {
		sr[i] = float64(seriesScan[i]) / float64(series[i])
	}
	slices.Sort(sr)
	b.ReportMetric(sr[len(sr)/2], "series-speedup-p50")
	b.ReportMetric(sr[0], "series-speedup-min")
	b.ReportMetric(sr[len(sr)-1], "series-speedup-max")
	reportSpread(b, "summary-ms", sum)
	reportSpread(b, "fullscan-ms", scan)
	ratios := make([]float64, len(sum))
	for i := range sum {
		ratios[i] = float64(scan[i]) / float64(sum[i])
	}
	slices.Sort(ratios)
	b.ReportMetric(ratios[len(ratios)/2], "speedup-p50")
	b.ReportMetric(ratios[0], "speedup-min")
	b.ReportMetric(ratios[len(ratios)-1], "speedup-max")
	b.ReportMetric(float64(n), "records")
	b.ReportMetric(build.Seconds(), "build-at-open-s")
	b.ReportMetric(0, "ns/op")
	benchVerify(b, path)
}

// benchVerify times `ringlet audit verify` over the log at path, whole,
// and then with --since-last after 1,000 more records.
func benchVerify(b *testing.B, path string) {
	t0 := time.Now()
	res, err := audit.Verify(path)
	full := time.Since(t0)
	if err != nil || !res.OK {
		b.Fatalf("verify: %v %s", err, res.Problem)
	}
	if err := audit.SaveMark(res); err != nil {
		b.Fatal(err)
	}
	l, err := Open(Options{Path: path})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 1000 {
		if _, err := l.Append(b.Context(), benchRecord(i)); err != nil {
			b.Fatal(err)
		}
	}
	l.Close()
	t0 = time.Now()
	res, err = audit.VerifyWith(path, audit.VerifyOptions{SinceLast: true})
	since := time.Since(t0)
	if err != nil || !res.OK || res.Records != 1000 {
		b.Fatalf("verify --since-last: %v %+v", err, res)
	}
	b.ReportMetric(full.Seconds(), "verify-full-s")
	b.ReportMetric(float64(since.Microseconds())/1000, "verify-since-last-1000-ms")
}

// reportSpread reports the median, the fastest and the slowest of v in ms.
func reportSpread(b *testing.B, unit string, v []time.Duration) {
	v = slices.Clone(v)
	slices.Sort(v)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(v[len(v)/2]), unit+"-p50")
	b.ReportMetric(ms(v[0]), unit+"-min")
	b.ReportMetric(ms(v[len(v)-1]), unit+"-max")
}
