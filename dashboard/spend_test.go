package dashboard

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/neullabs/ringlet/audit"
)

func usd(v float64) *float64 { return &v }

// TestSpendCSVIsTheTable: the CSV download is the table the page shows,
// cell for cell, except that a cell a spreadsheet would run as a formula
// (a model name an agent chose) is prefixed so it shows as text.
func TestSpendCSVIsTheTable(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 3, 10, 30, 0, 0, time.UTC)
	day := time.Date(2026, 5, 2, 0, 0, 0, 0, time.UTC)
	hostile := []string{`=HYPERLINK("http://x","y")`, "+1", "-2", "@SUM(A1)", "\tx", "\r=1"}
	var rows []audit.SeriesRow
	for i, name := range append([]string{"claude-sonnet-4-5"}, hostile...) {
		rows = append(rows, audit.SeriesRow{Bucket: day, UsageRow: audit.UsageRow{Key: name, Requests: 1, Input: int64(100 + i), Output: 7, CostUSD: usd(0.5)}})
	}
	s := NewSpend(SpendQuery{By: "model", Bucket: "day", Range: "7d"}, now, rows, nil)
	rec := httptest.NewRecorder()
	WriteSpendCSV(rec, s)
	if cd := rec.Header().Get("Content-Disposition"); cd != `attachment; filename="ringlet-spend-by-model-per-day-7d.csv"` {
		t.Errorf("Content-Disposition: got %q", cd)
	}
	got, err := csv.NewReader(strings.NewReader(rec.Body.String())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	table := s.Table()
	if len(got) != len(table) || len(table) != 1+2*len(rows) {
		t.Fatalf("CSV: got %d rows, table %d, want %d", len(got), len(table), 1+2*len(rows))
	}
	for i := range table {
		for j := range table[i] {
			want := table[i][j]
			if strings.ContainsAny(want[:1], "=+-@\t\r") {
				want = "'" + want
			}
			if got[i][j] != want {
				t.Errorf("CSV cell %d,%d: got %q, want %q", i, j, got[i][j], want)
			}
		}
	}
	for _, line := range got {
		if c := line[1]; strings.ContainsAny(c[:1], "=+-@\t\r") {
			t.Errorf("CSV cell %q begins with a formula character", c)
		}
	}
}

// TestSpendSeriesBounded: past MaxSeries names (an agent naming a new
// model at each request), the smallest are one "other" series, in the
// plot and the table alike, and nothing is lost from the totals.
func TestSpendSeriesBounded(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 3, 10, 30, 0, 0, time.UTC)
	var rows []audit.SeriesRow
	var want int64
	for d := range 2 {
		for i := range 100 {
			rows = append(rows, audit.SeriesRow{Bucket: time.Date(2026, 5, 2+d, 0, 0, 0, 0, time.UTC),
				UsageRow: audit.UsageRow{Key: fmt.Sprintf("m%03d", i), Requests: 1, Input: int64(1000 - i)}})
			want += int64(1000 - i)
		}
	}
	s := NewSpend(SpendQuery{By: "model", Bucket: "day", Range: "7d"}, now, rows, nil)
	p := s.Plot()
	if len(p.Series) != MaxSeries || len(s.Totals) != MaxSeries || p.Series[MaxSeries-1].Label != "other (89)" {
		t.Fatalf("series: got %d (last %q), want %d with other (89)", len(p.Series), p.Series[len(p.Series)-1].Label, MaxSeries)
	}
	if len(s.Rows) != 2*MaxSeries {
		t.Errorf("rows: got %d, want %d", len(s.Rows), 2*MaxSeries)
	}
	var sum int64
	for _, r := range s.Totals {
		sum += r.Input
	}
	if sum != want {
		t.Errorf("totals: got %d input tokens, want %d", sum, want)
	}
	if len(p.X) != 8 || p.X[0] != time.Date(2026, 4, 26, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("buckets: got %d from %v, want 8 days from 2026-04-26", len(p.X), time.Unix(p.X[0], 0).UTC())
	}
}

func TestParseSpendQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q    string
		want SpendQuery
		err  string
	}{
		{"", SpendQuery{"profile", "day", "7d"}, ""},
		{"by=model&bucket=hour&range=24h", SpendQuery{"model", "hour", "24h"}, ""},
		{"bucket=hour&range=90d", SpendQuery{}, "30 days at most"},
		{"by=session", SpendQuery{}, "want profile or model"},
		{"range=1y", SpendQuery{}, "want 24h"},
		{"limit=5", SpendQuery{}, "unknown parameter"},
		{"by=model&by=profile", SpendQuery{}, "give it once"},
	} {
		v, _ := url.ParseQuery(tc.q)
		got, err := ParseSpendQuery(v)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, want an error with %q", tc.q, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, %v; want %+v", tc.q, got, err, tc.want)
		}
	}
}

// TestSpendTableIsText: names in the table are escaped text.
func TestSpendTableIsText(t *testing.T) {
	t.Parallel()
	evil := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	s := NewSpend(SpendQuery{By: "model", Bucket: "day", Range: "7d"}, time.Now(),
		[]audit.SeriesRow{{Bucket: audit.BucketStart("day", time.Now()), UsageRow: audit.UsageRow{Key: evil, Requests: 1}}}, nil)
	rec := httptest.NewRecorder()
	RenderSpendTable(rec, s)
	if body := rec.Body.String(); strings.Contains(body, "<script>") || strings.Contains(body, "<img") {
		t.Errorf("table: got markup from a model name:\n%s", body)
	}
}

// TestVendoredFiles: the third-party files embedded are those of
// assets/vendor/SHA256SUMS, which 'make dashboard-vendor' checks the
// files it copies from npm against.
func TestVendoredFiles(t *testing.T) {
	t.Parallel()
	sums, err := fs.ReadFile(assetFS, "assets/vendor/SHA256SUMS")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(sums)) {
		sum, name, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		data, err := fs.ReadFile(assetFS, "assets/vendor/"+name)
		if err != nil {
			t.Fatal(err)
		}
		if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != sum {
			t.Errorf("%s: sha256 %x, want %s (SHA256SUMS)", name, h, sum)
		}
		n++
	}
	if n != 8 {
		t.Errorf("SHA256SUMS lists %d files, want uPlot's and xterm.js's script, stylesheet and license, and the fit addon's script and license", n)
	}
}

// TestSpendLabelClipped: a model name of any length is a legend label
// of at most 120 bytes and an ellipsis; the table keeps it whole.
func TestSpendLabelClipped(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 500)
	s := NewSpend(SpendQuery{By: "model", Bucket: "day", Range: "7d"}, time.Now(),
		[]audit.SeriesRow{{Bucket: audit.BucketStart("day", time.Now()), UsageRow: audit.UsageRow{Key: long, Requests: 1}}}, nil)
	if l := s.Plot().Series[0].Label; len(l) > 120+len("…") || !strings.HasSuffix(l, "…") || !utf8.ValidString(l) {
		t.Errorf("label: got %d bytes, want at most 123, valid UTF-8, ending in …", len(l))
	}
	if s.Table()[1][1] != long {
		t.Error("the table clipped the name, want it whole")
	}
}
