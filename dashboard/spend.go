package dashboard

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// spendRanges are the Spend page's ranges: how far back each reaches.
var spendRanges = map[string]time.Duration{
	"24h":  24 * time.Hour,
	"7d":   7 * 24 * time.Hour,
	"30d":  30 * 24 * time.Hour,
	"90d":  90 * 24 * time.Hour,
	"365d": 365 * 24 * time.Hour,
}

// maxHourRange bounds a range plotted by the hour (720 buckets).
const maxHourRange = 30 * 24 * time.Hour

// MaxSeries bounds the series of one plot, and so the rows of its table
// per bucket: agents choose model names, and one that asks for a new
// model at each request must not make the page unbounded. Past it, the
// series with the least tokens are summed into one row, "other (N)".
const MaxSeries = 12

// SpendQuery is what one plot of the Spend page shows: its series (by
// profile or by model), its buckets (hour, day, week, month; UTC) and
// its range (24h, 7d, 30d, 90d, 365d).
type SpendQuery struct {
	By, Bucket, Range string
}

// ParseSpendQuery reads a SpendQuery from the query parameters by,
// bucket and range; an unknown parameter or value is an error that says
// what is valid.
func ParseSpendQuery(v url.Values) (SpendQuery, error) {
	q := SpendQuery{By: "profile", Bucket: "day", Range: "7d"}
	for key, vals := range v {
		if len(vals) != 1 {
			return q, fmt.Errorf("%s: give it once", key)
		}
		switch val := vals[0]; key {
		case "by":
			if val != "profile" && val != "model" {
				return q, fmt.Errorf("by %q: want profile or model", val)
			}
			q.By = val
		case "bucket":
			if val != "hour" && val != "day" && val != "week" && val != "month" {
				return q, fmt.Errorf("bucket %q: want hour, day, week or month", val)
			}
			q.Bucket = val
		case "range":
			if _, ok := spendRanges[val]; !ok {
				return q, fmt.Errorf("range %q: want 24h, 7d, 30d, 90d or 365d", val)
			}
			q.Range = val
		default:
			return q, fmt.Errorf("unknown parameter %q: want by, bucket and range", key)
		}
	}
	if q.Bucket == "hour" && spendRanges[q.Range] > maxHourRange {
		return q, errors.New("hourly buckets reach back 30 days at most: choose a shorter range or daily buckets")
	}
	return q, nil
}

// Since is where q's range starts at now: the start of the bucket that
// holds now minus the range, so the first bucket is whole and every
// bucket is read from the usage summary's whole hours.
func (q SpendQuery) Since(now time.Time) time.Time {
	return audit.BucketStart(q.Bucket, now.Add(-spendRanges[q.Range]))
}

// BudgetLine is a budget drawn on a plot: the cap of a profile's
// budget whose period is the plot's bucket, on the series of that
// profile. Metric is usd, input (tokens, cache included, as budgets
// count them) or output.
type BudgetLine struct {
	Name   string  `json:"name"`
	Period string  `json:"period"`
	Metric string  `json:"metric"`
	Cap    float64 `json:"cap"`
}

// SpendRow is one row of a Spend table: a series' usage in one bucket,
// or over the whole range (a total: Bucket zero).
type SpendRow struct {
	Bucket time.Time
	Name   string
	// Other is how many names this row sums when it is the "other" row
	// (0 for a named series).
	Other                                  int
	Requests, Input, Output, CacheRead, CW int64
	USD                                    *float64 // nil when no request of it could be priced
	Unpriced                               int64
}

// Label is what the page, the legend and the CSV call the row's series.
func (r SpendRow) Label() string {
	if r.Other > 0 {
		return fmt.Sprintf("other (%d)", r.Other)
	}
	return r.Name
}

func (r *SpendRow) add(u audit.UsageRow) {
	r.Requests += u.Requests
	r.Input += u.Input
	r.Output += u.Output
	r.CacheRead += u.CacheRead
	r.CW += u.CacheWrite
	r.Unpriced += u.Unpriced
	if u.CostUSD != nil {
		if r.USD == nil {
			r.USD = new(float64)
		}
		*r.USD += *u.CostUSD
	}
}

// Spend is one plot of the Spend page and the table behind it.
type Spend struct {
	Query        SpendQuery
	Since, Until time.Time
	// Buckets are every bucket of the range, oldest first.
	Buckets []time.Time
	// Series are the plot's series, most tokens first; Rows their usage
	// per bucket (buckets without requests left out), oldest first;
	// Totals their usage over the range, in the order of Series.
	Series  []SpendRow
	Rows    []SpendRow
	Totals  []SpendRow
	Budgets []BudgetLine
}

// NewSpend builds the plot of q at now from the usage series rows (of
// audit.UsageSeries, since q.Since(now)) and the budgets that cover it.
func NewSpend(q SpendQuery, now time.Time, rows []audit.SeriesRow, budgets []BudgetLine) Spend {
	s := Spend{Query: q, Since: q.Since(now), Until: now, Budgets: budgets}
	for b := s.Since; !b.After(now); b = nextBucket(q.Bucket, b) {
		s.Buckets = append(s.Buckets, b)
	}
	totals := map[string]*SpendRow{}
	for _, r := range rows {
		t := totals[r.Key]
		if t == nil {
			t = &SpendRow{Name: r.Key}
			totals[r.Key] = t
		}
		t.add(r.UsageRow)
	}
	names := make([]string, 0, len(totals))
	for n := range totals {
		names = append(names, n)
	}
	tokens := func(r *SpendRow) int64 { return r.Input + r.Output + r.CacheRead + r.CW }
	sort.Slice(names, func(i, j int) bool {
		a, b := totals[names[i]], totals[names[j]]
		if tokens(a) != tokens(b) {
			return tokens(a) > tokens(b)
		}
		return a.Name < b.Name
	})
	kept := names
	other := 0
	if len(names) > MaxSeries {
		kept, other = names[:MaxSeries-1], len(names)-(MaxSeries-1)
	}
	in := map[string]bool{}
	for _, n := range kept {
		in[n] = true
		s.Totals = append(s.Totals, *totals[n])
	}
	if other > 0 {
		o := SpendRow{Other: other}
		for _, n := range names[MaxSeries-1:] {
			t := totals[n]
			o.add(audit.UsageRow{Requests: t.Requests, Input: t.Input, Output: t.Output, CacheRead: t.CacheRead, CacheWrite: t.CW, CostUSD: t.USD, Unpriced: t.Unpriced})
		}
		s.Totals = append(s.Totals, o)
	}
	for _, t := range s.Totals {
		s.Series = append(s.Series, SpendRow{Name: t.Name, Other: t.Other})
	}
	// Rows: the named ones as they are, the others summed per bucket.
	var otherRow *SpendRow
	flush := func() {
		if otherRow != nil {
			s.Rows = append(s.Rows, *otherRow)
			otherRow = nil
		}
	}
	var prev time.Time
	for _, r := range rows {
		if !r.Bucket.Equal(prev) {
			flush()
			prev = r.Bucket
		}
		if in[r.Key] {
			row := SpendRow{Bucket: r.Bucket, Name: r.Key}
			row.add(r.UsageRow)
			s.Rows = append(s.Rows, row)
			continue
		}
		if otherRow == nil {
			otherRow = &SpendRow{Bucket: r.Bucket, Other: other}
		}
		otherRow.add(r.UsageRow)
	}
	flush()
	return s
}

func nextBucket(bucket string, b time.Time) time.Time {
	switch bucket {
	case "hour":
		return b.Add(time.Hour)
	case "week":
		return b.AddDate(0, 0, 7)
	case "month":
		return b.AddDate(0, 1, 0)
	}
	return b.AddDate(0, 0, 1)
}

// period is how the table names a bucket.
func (s Spend) period(b time.Time) string {
	switch {
	case b.IsZero():
		return "total"
	case s.Query.Bucket == "hour":
		return b.UTC().Format("2006-01-02 15:00Z")
	case s.Query.Bucket == "month":
		return b.UTC().Format("2006-01")
	}
	return b.UTC().Format(time.DateOnly)
}

// Table is the table behind the plot, header first: the page renders it
// and the CSV download is it, cell for cell. A row per series and bucket
// with requests, then a total row per series.
func (s Spend) Table() [][]string {
	name := "profile"
	if s.Query.By == "model" {
		name = "model"
	}
	period := map[string]string{"hour": "hour (UTC)", "day": "day (UTC)", "week": "week from (UTC)", "month": "month (UTC)"}[s.Query.Bucket]
	out := [][]string{{period, name, "requests", "input tokens", "output tokens", "cache read tokens", "cache write tokens", "cost USD"}}
	row := func(r SpendRow) []string {
		cost := "unpriced"
		if r.USD != nil {
			cost = strconv.FormatFloat(*r.USD, 'f', 6, 64)
			if r.Unpriced > 0 {
				cost += fmt.Sprintf(" (+%d unpriced)", r.Unpriced)
			}
		} else if r.Unpriced == 0 {
			cost = "0.000000"
		}
		i := strconv.FormatInt
		return []string{s.period(r.Bucket), r.Label(), i(r.Requests, 10), i(r.Input, 10), i(r.Output, 10), i(r.CacheRead, 10), i(r.CW, 10), cost}
	}
	for _, r := range s.Rows {
		out = append(out, row(r))
	}
	for _, r := range s.Totals {
		out = append(out, row(r))
	}
	return out
}

// csvSafe keeps a spreadsheet from running a cell as a formula: a cell
// that begins with = + - @ (or a tab or carriage return, which some
// spreadsheets skip before one) gets a leading apostrophe, which they
// show as text. Agents choose model names: "=HYPERLINK(...)" is one.
func csvSafe(cell string) string {
	if cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) {
		return "'" + cell
	}
	return cell
}

// WriteSpendCSV writes the table of s as CSV, as a download named for
// what it holds; every cell goes through csvSafe.
func WriteSpendCSV(w http.ResponseWriter, s Spend) {
	var buf strings.Builder
	cw := csv.NewWriter(&buf)
	for _, row := range s.Table() {
		safe := make([]string, len(row))
		for i, c := range row {
			safe[i] = csvSafe(c)
		}
		_ = cw.Write(safe) // a strings.Builder does not fail
	}
	cw.Flush()
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, s.FileName()))
	_, _ = w.Write([]byte(buf.String())) // the browser went away: nothing to do
}

// FileName is the CSV download's name: ringlet-spend-by-BY-per-BUCKET-RANGE.csv.
func (s Spend) FileName() string {
	return fmt.Sprintf("ringlet-spend-by-%s-per-%s-%s.csv", s.Query.By, s.Query.Bucket, s.Query.Range)
}

// SpendPlot is a plot as the page's script draws it (uPlot's data:
// shared x, one array per series and metric). Labels are text: the
// script hands them to uPlot, which sets them with textContent.
type SpendPlot struct {
	Bucket string `json:"bucket"`
	// X are the buckets' starts, in Unix seconds.
	X       []int64      `json:"x"`
	Series  []PlotSeries `json:"series"`
	Budgets []BudgetLine `json:"budgets"`
}

// PlotSeries is one series of a plot, per bucket: cost (null where
// none of its requests could be priced), input tokens (cache included)
// and output tokens.
type PlotSeries struct {
	Label  string     `json:"label"`
	Name   string     `json:"name"`
	USD    []*float64 `json:"usd"`
	Input  []int64    `json:"input"`
	Output []int64    `json:"output"`
}

// Plot is s as the page draws it.
func (s Spend) Plot() SpendPlot {
	p := SpendPlot{Bucket: s.Query.Bucket, Budgets: s.Budgets, X: make([]int64, len(s.Buckets)), Series: []PlotSeries{}}
	if p.Budgets == nil {
		p.Budgets = []BudgetLine{}
	}
	at := map[int64]int{}
	for i, b := range s.Buckets {
		p.X[i] = b.Unix()
		at[b.Unix()] = i
	}
	idx := map[string]int{}
	for i, r := range s.Series {
		ps := PlotSeries{Label: clipLabel(r.Label()), Name: r.Name, USD: make([]*float64, len(s.Buckets)), Input: make([]int64, len(s.Buckets)), Output: make([]int64, len(s.Buckets))}
		for j := range ps.USD {
			ps.USD[j] = new(float64)
		}
		p.Series = append(p.Series, ps)
		idx[r.Label()+"\x00"+strconv.Itoa(r.Other)] = i
	}
	for _, r := range s.Rows {
		j, ok := at[r.Bucket.Unix()]
		if !ok {
			continue
		}
		ps := &p.Series[idx[r.Label()+"\x00"+strconv.Itoa(r.Other)]]
		ps.Input[j] = r.Input + r.CacheRead + r.CW
		ps.Output[j] = r.Output
		ps.USD[j] = r.USD
	}
	return p
}

// clipLabel bounds a legend's label (an agent chooses model names); the
// table and the CSV keep the whole name.
func clipLabel(s string) string {
	const most = 120
	if len(s) <= most {
		return s
	}
	return strings.ToValidUTF8(s[:most], "") + "…"
}

// RenderSpend writes the Spend page's shell (no data: its script
// fetches the plots and tables with the page key).
func RenderSpend(w http.ResponseWriter) {
	render(w, http.StatusOK, "spend", page{Title: "Spend", Nav: "spend"})
}

// RenderSpendTable writes the table of s alone (what the page fetches
// when the event stream says usage changed): the rows of Table, as text.
func RenderSpendTable(w http.ResponseWriter, s Spend) {
	t := s.Table()
	render(w, http.StatusOK, "spendtable", struct {
		Head []string
		Rows [][]string
	}{t[0], t[1:]})
}
