package auditlog

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// usageCost prices every model but "free-model" (left unpriced), so that
// both cost and unpriced counts are compared.
// usageCost prices by provider too, so that a report which lost a
// record's provider on the way prices it differently from the full scan.
func usageCost(provider, model string, in, out, cr, cw int64) (float64, bool) {
	if model == "free-model" {
		return 0, false
	}
	usd := float64(in)*1e-6 + float64(out)*3e-6 + float64(cr)*1e-7 + float64(cw)*2e-6
	if provider == "openai" {
		usd *= 2
	}
	return usd, true
}

// usageBase is the start of the generated records: not on an hour.
var usageBase = time.Date(2026, 5, 1, 22, 17, 31, 0, time.UTC)

// usageRecords appends n records over about three days: provider requests
// of several profiles, sessions, providers and models, and other kinds.
func usageRecords(t *testing.T, l *Log, rng *rand.Rand, n int) {
	t.Helper()
	for i := range n {
		if _, err := l.Append(t.Context(), usageRecord(rng, i)); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
	}
}

// usageRecord is usageRecords' i-th record: a provider request of one of
// several profiles, sessions, providers and models within about three
// days, or (every fifth) another kind carrying tokens that must never be
// counted.
func usageRecord(rng *rand.Rand, i int) audit.Record {
	if i%5 == 0 {
		r := testRecord(i)
		r.TokensIn = 99 // not a provider request: never counted
		return r
	}
	models := []string{"claude-sonnet-4-5", "gpt-5", "free-model", ""}
	return audit.Record{Time: usageBase.Add(time.Duration(rng.Int64N(int64(72 * time.Hour)))), Kind: audit.KindProviderRequest,
		Profile: fmt.Sprintf("p%d", rng.IntN(3)), Session: fmt.Sprintf("s%d", rng.IntN(4)), Actor: "tok", Target: "/v1/messages", Decision: audit.Allow,
		TokensIn: rng.Int64N(5000), TokensOut: rng.Int64N(2000), TokensCacheRead: rng.Int64N(100), TokensCacheWrite: rng.Int64N(50),
		Detail: audit.DetailJSON(map[string]any{"provider": []string{"anthropic", "openai"}[rng.IntN(2)], "model": models[rng.IntN(len(models))]})}
}

// usageFilters are the reports compared: whole and partial hours, one
// hour or less, each grouping, a profile, a session.
func usageFilters() map[string]audit.Filter {
	return map[string]audit.Filter{
		"all":               {},
		"since on the hour": {Since: usageBase.Truncate(time.Hour).Add(5 * time.Hour)},
		"since mid-hour":    {Since: usageBase.Add(7*time.Hour + 13*time.Minute + 5*time.Second)},
		"until mid-hour":    {Until: usageBase.Add(40*time.Hour + 59*time.Minute)},
		"both mid-hour":     {Since: usageBase.Add(3*time.Hour + 1), Until: usageBase.Add(50*time.Hour - 1)},
		"within one hour":   {Since: usageBase.Add(10*time.Hour + 10*time.Minute), Until: usageBase.Add(10*time.Hour + 40*time.Minute)},
		"across one hour":   {Since: usageBase.Add(10*time.Hour + 50*time.Minute), Until: usageBase.Add(11*time.Hour + 40*time.Minute)},
		"profile":           {Profile: "p1", Since: usageBase.Add(20*time.Hour + 7*time.Minute)},
		"session":           {Session: "s2", Until: usageBase.Add(30*time.Hour + 7*time.Second)},
		"nothing":           {Since: usageBase.Add(-48 * time.Hour), Until: usageBase.Add(-47 * time.Hour)},
	}
}

// checkUsage compares every report against the full scan of the records.
func checkUsage(t *testing.T, path string) {
	t.Helper()
	for name, f := range usageFilters() {
		for _, by := range []string{"day", "model", "profile"} {
			got, err := audit.UsageReport(t.Context(), path, f, by, usageCost)
			if err != nil {
				t.Fatalf("%s by %s: UsageReport: %v", name, by, err)
			}
			want, err := audit.UsageFullScan(t.Context(), path, f, by, usageCost)
			if err != nil {
				t.Fatalf("%s by %s: full scan: %v", name, by, err)
			}
			if !usageEqual(got, want) {
				t.Errorf("%s by %s:\ngot  %s\nwant %s", name, by, usageString(got), usageString(want))
			}
		}
	}
}

// checkAllSeries is checkSeries of every filter.
func checkAllSeries(t *testing.T, path string) {
	t.Helper()
	for name, f := range usageFilters() {
		checkSeries(t, path, name, f)
	}
}

// checkSeries compares each bucket of every usage series with the full
// scan of that bucket's records alone.
func checkSeries(t *testing.T, path, name string, f audit.Filter) {
	t.Helper()
	next := map[string]func(time.Time) time.Time{
		"hour":  func(b time.Time) time.Time { return b.Add(time.Hour) },
		"day":   func(b time.Time) time.Time { return b.AddDate(0, 0, 1) },
		"week":  func(b time.Time) time.Time { return b.AddDate(0, 0, 7) },
		"month": func(b time.Time) time.Time { return b.AddDate(0, 1, 0) },
	}
	for _, bucket := range audit.SeriesBuckets {
		for _, by := range []string{"model", "profile"} {
			got, err := audit.UsageSeries(t.Context(), path, f, bucket, by, usageCost)
			if err != nil {
				t.Fatalf("%s series by %s per %s: %v", name, by, bucket, err)
			}
			byBucket := map[time.Time][]audit.UsageRow{}
			var order []time.Time
			for i, r := range got {
				if i > 0 && !got[i-1].Bucket.Before(r.Bucket) && (!got[i-1].Bucket.Equal(r.Bucket) || got[i-1].Key >= r.Key) {
					t.Errorf("%s series by %s per %s: row %d out of order", name, by, bucket, i)
				}
				if !audit.BucketStart(bucket, r.Bucket).Equal(r.Bucket) {
					t.Errorf("%s series per %s: bucket %v is not a %s's start", name, bucket, r.Bucket, bucket)
				}
				if _, ok := byBucket[r.Bucket]; !ok {
					order = append(order, r.Bucket)
				}
				byBucket[r.Bucket] = append(byBucket[r.Bucket], r.UsageRow)
			}
			// Every record is in some bucket: the buckets add up to the report.
			total, err := audit.UsageReport(t.Context(), path, f, by, usageCost)
			if err != nil {
				t.Fatal(err)
			}
			var n, want int64
			for _, r := range got {
				n += r.Requests
			}
			for _, r := range total {
				want += r.Requests
			}
			if n != want {
				t.Errorf("%s series by %s per %s: %d requests in the buckets, want %d", name, by, bucket, n, want)
			}
			// The first, last and middle buckets (each a full scan: all of
			// them would take minutes under -race).
			if len(order) > 5 {
				order = []time.Time{order[0], order[1], order[len(order)/2], order[len(order)-2], order[len(order)-1]}
			}
			for _, b := range order {
				e := f
				if e.Since.IsZero() || e.Since.Before(b) {
					e.Since = b
				}
				if end := next[bucket](b); e.Until.IsZero() || end.Before(e.Until) {
					e.Until = end
				}
				want, err := audit.UsageFullScan(t.Context(), path, e, by, usageCost)
				if err != nil {
					t.Fatal(err)
				}
				if !usageEqual(byBucket[b], want) {
					t.Errorf("%s series by %s per %s, bucket %v:\ngot  %s\nwant %s", name, by, bucket, b, usageString(byBucket[b]), usageString(want))
				}
			}
		}
	}
}

func usageEqual(a, b []audit.UsageRow) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if (x.CostUSD == nil) != (y.CostUSD == nil) || x.CostUSD != nil && abs(*x.CostUSD-*y.CostUSD) > 1e-9 {
			return false
		}
		x.CostUSD, y.CostUSD = nil, nil
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

func abs(f float64) float64 { return max(f, -f) }

func usageString(rows []audit.UsageRow) string {
	s := ""
	for _, r := range rows {
		c := "-"
		if r.CostUSD != nil {
			c = fmt.Sprintf("%.6f", *r.CostUSD)
		}
		s += fmt.Sprintf("{%s n=%d in=%d out=%d cr=%d cw=%d $%s unpriced=%d} ", r.Key, r.Requests, r.Input, r.Output, r.CacheRead, r.CacheWrite, c, r.Unpriced)
	}
	return s
}

// The summary kept as records commit gives the same reports as a scan of
// every record.
func TestUsageSummaryMatchesFullScan(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	l.usageLag = 37 // the summary moves many times within these records
	usageRecords(t, l, rand.New(rand.NewPCG(1, 2)), 600)
	if n := countRows(t, path, "usage_hours"); n == 0 {
		t.Fatal("usage_hours is empty after the commits, want the summary")
	}
	if through := usageThroughSeq(t, path); through == 0 || through == 600 {
		t.Fatalf("through_seq %d after 600 records, want it moved and trailing the tip", through)
	}
	checkUsage(t, path)
	checkAllSeries(t, path)
}

// The summary is not written by every commit: it trails the log until
// usageLag records have been committed (the reports still count every
// record), and a writer that stops before moving it leaves the records
// after through_seq to the next Open, which sums them.
func TestUsageSummaryTrailsTheLog(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	usageRecords(t, l, rand.New(rand.NewPCG(9, 10)), 120)
	if through, n := usageThroughSeq(t, path), countRows(t, path, "usage_hours"); through != 0 || n != 0 {
		t.Errorf("through_seq %d and %d summary rows after 120 records, want 0 and 0 (the summary trails by up to %d)", through, n, usageLagMax)
	}
	checkUsage(t, path)
	l.Close()
	openLog(t, Options{Path: path})
	if through := usageThroughSeq(t, path); through != 120 {
		t.Errorf("through_seq %d after Open, want 120", through)
	}
	checkUsage(t, path)
}

func usageThroughSeq(t *testing.T, path string) int64 {
	t.Helper()
	return rawInt(t, path, `SELECT through_seq FROM usage_state`)
}

// A log written without the summary (by an older Ringlet) is summarised
// when opened, and then reads the same as a full scan.
func TestUsageSummaryBuiltAtOpen(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	usageRecords(t, l, rand.New(rand.NewPCG(3, 4)), 400)
	l.Close()
	rawExec(t, path, `DROP TABLE usage_hours; DROP TABLE usage_state`)
	// Without a summary the reports still hold (from the records alone).
	checkUsage(t, path)

	l = openLog(t, Options{Path: path})
	if n := countRows(t, path, "usage_hours"); n == 0 {
		t.Fatal("usage_hours is empty after open, want the summary built")
	}
	checkUsage(t, path)
	// And records appended since are added to it.
	usageRecords(t, l, rand.New(rand.NewPCG(5, 6)), 150)
	checkUsage(t, path)
}

// Records an older Ringlet appended after the summary's last one (its
// through_seq behind the log) are read from the records until the next
// open adds them.
func TestUsageSummaryBehind(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	usageRecords(t, l, rand.New(rand.NewPCG(7, 8)), 400)
	l.Close()
	// As if the last 100 records had been written without the summary.
	through := rawInt(t, path, `SELECT max(seq) - 100 FROM records`)
	rawExec(t, path, `DELETE FROM usage_hours`)
	rebuildUsageThrough(t, path, through)
	checkUsage(t, path)
	checkAllSeries(t, path)
	openLog(t, Options{Path: path})
	checkUsage(t, path)
}

// rebuildUsageThrough fills the summary with the records up to seq only.
func rebuildUsageThrough(t *testing.T, path string, seq int64) {
	t.Helper()
	rawExec(t, path, fmt.Sprintf(`INSERT INTO usage_hours SELECT time_ns / %d, profile, session,
		coalesce(json_extract(detail, '$.provider'), ''), coalesce(json_extract(detail, '$.model'), ''),
		count(*), sum(tokens_in), sum(tokens_out), sum(tokens_cache_read), sum(tokens_cache_write)
		FROM records WHERE kind = 'provider.request' AND seq <= %d GROUP BY 1, 2, 3, 4, 5;
		UPDATE usage_state SET through_seq = %d`, audit.UsageHour, seq, seq))
}

func countRows(t *testing.T, path, table string) int64 {
	t.Helper()
	return rawInt(t, path, `SELECT count(*) FROM `+table)
}

// TestToolCallsCountsChargedReads: the spend of tool calls a restart
// reloads counts the calls the budgets charged: MCP tool calls, the
// agent's own calls marked counted, and MCP resource reads and prompt
// gets that passed their hooks (marked counted, whatever the answer),
// but not refused ones nor a call a gateway tool's hook check saw first.
func TestToolCallsCountsChargedReads(t *testing.T) {
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	recs := []audit.Record{
		{Kind: audit.KindToolCall, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"event": "pre-tool-use", "via": "mcp"})},
		{Kind: audit.KindToolCall, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"event": "pre-tool-use", "via": "agent"})},
		{Kind: audit.KindToolCall, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"event": "pre-tool-use", "via": "agent", "counted": true})},
		{Kind: audit.KindToolCall, Decision: audit.Deny, Detail: audit.DetailJSON(map[string]any{"event": "pre-tool-use", "via": "mcp"})},
		{Kind: audit.KindMCPResourceRead, Decision: audit.Error, Detail: audit.DetailJSON(map[string]any{"via": "mcp", "counted": true})},
		{Kind: audit.KindMCPPromptGet, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"via": "mcp", "counted": true})},
		{Kind: audit.KindMCPPromptGet, Decision: audit.Deny, Detail: audit.DetailJSON(map[string]any{"via": "mcp"})},
		{Kind: audit.KindMCPResourceRead, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"via": "mcp"})},
	}
	for i, r := range recs {
		r.Profile, r.Session, r.Target = "work", "s1", fmt.Sprintf("t%d", i)
		if _, err := l.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	n, err := audit.ToolCalls(t.Context(), path, audit.Filter{Profile: "work"})
	if err != nil || n != 4 {
		t.Errorf("ToolCalls: got %d, %v; want 4 (an MCP call, a counted agent call, a counted read and a counted get)", n, err)
	}
	if n, err := audit.ToolCalls(t.Context(), path, audit.Filter{Profile: "other"}); err != nil || n != 0 {
		t.Errorf("ToolCalls of another profile: got %d, %v; want 0", n, err)
	}
}

// A commit that would move the summary and fails (here a trigger refuses
// the move) leaves the sums waiting in memory as they were: the next
// commit that moves it adds them, and every report, before and after a
// reopen, is still the full scan's.
func TestUsageSummaryFailedMove(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	l.usageLag = 10
	rng := rand.New(rand.NewPCG(11, 12))
	usageRecords(t, l, rng, 25)
	rawExec(t, path, `CREATE TRIGGER refuse_move BEFORE UPDATE ON usage_state BEGIN SELECT RAISE(ABORT, 'injected'); END`)
	failed := 0
	for i := 0; failed == 0 && i < 20; i++ {
		r := audit.Record{Time: usageBase.Add(time.Duration(i) * time.Hour), Kind: audit.KindProviderRequest, Profile: "p1", Session: "s1", Actor: "tok",
			Target: "/v1/messages", Decision: audit.Allow, TokensIn: 1000 + int64(i), TokensOut: 7,
			Detail: audit.DetailJSON(map[string]any{"provider": "anthropic", "model": "gpt-5"})}
		if _, err := l.Append(t.Context(), r); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("no commit failed with the summary's move refused")
	}
	checkUsage(t, path)
	rawExec(t, path, `DROP TRIGGER refuse_move`)
	usageRecords(t, l, rng, 30)
	if through := usageThroughSeq(t, path); through <= 25 {
		t.Fatalf("through_seq %d, want it moved again past the failed commit", through)
	}
	checkUsage(t, path)
	l.Close()
	openLog(t, Options{Path: path})
	checkUsage(t, path)
}
