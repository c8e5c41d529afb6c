package auditlog

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// windowTestRecords is the size of the log TestQueryWindowBounded pages
// through (RINGLET_TEST_WINDOW_RECORDS overrides it).
const windowTestRecords = 1_000_000

// TestQueryWindowBounded pages a log of a million records the way the
// dashboard's audit view does and holds each page's work (SQLite's
// steps) to what the page looks at, not to the size of the log: the
// first page, a page filtered by profile, by kind and by free text that
// match nothing in the window, and the next page. The same filter over
// the whole log (what Query does) costs the log's size: the measure
// would catch a page that scans it all.
func TestQueryWindowBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a log of a million records")
	}
	n := windowTestRecords
	if v, err := strconv.Atoi(os.Getenv("RINGLET_TEST_WINDOW_RECORDS")); err == nil && v > 0 {
		n = v
	}
	path := filepath.Join(t.TempDir(), "audit.db")
	end := time.Now()
	fillLog(t, path, n, end)
	const scan, limit = 20_000, 100
	// stepsPerRow bounds SQLite's steps for each record a page looks at
	// (its columns read, its conditions checked): 5 to 35 measured, 28 a
	// record returned.
	const stepsPerRow = 200
	// stepsPerLook bounds the steps for each record a filtered page looks
	// at and passes over: 5 (a column compared) to 35 (free text)
	// measured. The whole log's 1M records cost 5M steps or more.
	const stepsPerLook = 50

	first, err := audit.QueryWindow(t.Context(), path, audit.Filter{Limit: limit}, scan)
	if err != nil {
		t.Fatal(err)
	}
	if len(first.Records) != limit || first.Records[0].Seq != int64(n) || first.Next != int64(n-limit+1) {
		t.Fatalf("first page: got %d records from %d, next %d; want %d from %d, next %d", len(first.Records), first.Records[0].Seq, first.Next, limit, n, n-limit+1)
	}
	if first.Steps > stepsPerRow*(limit+1) {
		t.Errorf("first page: got %d steps, want at most %d (it reads %d records)", first.Steps, stepsPerRow*(limit+1), limit+1)
	}
	t.Logf("first page: %d steps", first.Steps)

	for _, f := range []audit.Filter{
		{Profile: "nosuch"},
		{Kinds: []string{audit.KindHookDecision}},
		{Text: "no such text"},
		{Profile: "p3", Since: time.Now().Add(-24 * time.Hour)},
	} {
		f.Limit = limit
		w, err := audit.QueryWindow(t.Context(), path, f, scan)
		if err != nil {
			t.Fatal(err)
		}
		if w.To-w.From+1 > scan || w.Steps > stepsPerLook*scan+stepsPerRow*(limit+1) {
			t.Errorf("%+v: looked at %d..%d in %d steps; want at most %d records and %d steps", f, w.From, w.To, w.Steps, scan, stepsPerLook*scan+stepsPerRow*(limit+1))
		}
		if len(w.Records) < limit && w.Next != w.From {
			t.Errorf("%+v: a short page's next cursor is %d, want %d (where it stopped looking)", f, w.Next, w.From)
		}
		// The next page goes on below it, as far again.
		g := f
		g.Before = w.Next
		w2, err := audit.QueryWindow(t.Context(), path, g, scan)
		if err != nil {
			t.Fatal(err)
		}
		if w2.To != w.Next-1 || w2.Steps > stepsPerLook*scan+stepsPerRow*(limit+1) {
			t.Errorf("%+v: the next page looked at %d..%d in %d steps; want from %d, at most %d steps", f, w2.From, w2.To, w2.Steps, w.Next-1, stepsPerLook*scan+stepsPerRow*(limit+1))
		}
		plan, err := audit.WindowPlan(path, f)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan, "USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)") || strings.Contains(plan, "TEMP B-TREE") || strings.Contains(plan, "records_time") {
			t.Errorf("%+v: the plan is\n%s\nwant a walk of a range of the table by its key, no sort, not the time index", f, plan)
		}
		t.Logf("%+v: %d records, %d steps", f, len(w.Records), w.Steps)
	}

	// A time range: the first page starts at until (by the time index),
	// and a page stops the paging when the records below are older than
	// since.
	until := end.AddDate(0, 0, -30)
	w, err := audit.QueryWindow(t.Context(), path, audit.Filter{Until: until, Limit: limit}, scan)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Records) != limit || !w.Records[0].Time.Before(until) || w.Records[0].Seq < int64(n/2-n/100) || w.Steps > stepsPerRow*(limit+1) {
		t.Errorf("until 30 days ago: got %d records from %d (%s) in %d steps; want %d from about record %d, before %s, at most %d steps",
			len(w.Records), w.Records[0].Seq, w.Records[0].Time, w.Steps, limit, n/2, until, stepsPerRow*(limit+1))
	}
	w, err = audit.QueryWindow(t.Context(), path, audit.Filter{Since: end.Add(-time.Hour), Kinds: []string{audit.KindHookDecision}, Limit: limit}, scan)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Records) != 0 || w.Next != 0 {
		t.Errorf("since an hour ago, a kind no record has: got %d records, next %d; want none and no next page (older records are older than since)", len(w.Records), w.Next)
	}

	// What the window saves: the same rare filter over the whole log.
	all, err := audit.QueryWindow(t.Context(), path, audit.Filter{Profile: "nosuch", Limit: limit}, int64(n))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the whole log: %d steps", all.Steps)
	if all.Steps <= stepsPerLook*scan+stepsPerRow*(limit+1) || all.Steps < n {
		t.Errorf("the whole log (%d records) took %d steps: the measure does not see a full scan", n, all.Steps)
	}
}

// BenchmarkAuditPage times a page of the dashboard's Audit page over a
// log of a million records (RINGLET_BENCH_USAGE_RECORDS overrides it):
// the newest page and a page filtered by a profile no record has, by
// audit.QueryWindow (20,000 records looked at, at most, as the dashboard
// does), each round beside the same page by audit.Query (what
// /api/audit answers), which walks the log until the page is full.
func BenchmarkAuditPage(b *testing.B) {
	n := usageBenchRecords
	if v, err := strconv.Atoi(os.Getenv("RINGLET_BENCH_USAGE_RECORDS")); err == nil && v > 0 {
		n = v
	}
	path := filepath.Join(b.TempDir(), "audit.db")
	fillLog(b, path, n, time.Now())
	b.ResetTimer()
	for _, c := range []struct {
		name string
		f    audit.Filter
	}{{"newest", audit.Filter{Limit: 100}}, {"rare-profile", audit.Filter{Profile: "nosuch", Limit: 100}}} {
		var win, query []time.Duration
		for range usageRounds {
			t0 := time.Now()
			if _, err := audit.QueryWindow(b.Context(), path, c.f, 20_000); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, _, err := audit.Query(b.Context(), path, c.f); err != nil {
				b.Fatal(err)
			}
			win, query = append(win, t1.Sub(t0)), append(query, time.Since(t1))
		}
		reportSpread(b, c.name+"-window-ms", win)
		reportSpread(b, c.name+"-query-ms", query)
		ratios := make([]float64, len(win))
		for i := range win {
			ratios[i] = float64(query[i]) / float64(win[i])
		}
		slices.Sort(ratios)
		b.ReportMetric(ratios[len(ratios)/2], c.name+"-speedup-p50")
		b.ReportMetric(ratios[0], c.name+"-speedup-min")
		b.ReportMetric(ratios[len(ratios)-1], c.name+"-speedup-max")
	}
	b.ReportMetric(float64(n), "records")
	b.ReportMetric(0, "ns/op")
}
