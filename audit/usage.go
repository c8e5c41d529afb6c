package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// UsageRow is one line of a usage report.
type UsageRow struct {
	Key        string   `json:"key"` // the day, model or profile
	Requests   int64    `json:"requests"`
	Input      int64    `json:"input_tokens"`
	Output     int64    `json:"output_tokens"`
	CacheRead  int64    `json:"cache_read_tokens"`
	CacheWrite int64    `json:"cache_write_tokens"`
	CostUSD    *float64 `json:"cost_usd,omitempty"` // nil when a model's price is unknown
	Unpriced   int64    `json:"unpriced_requests,omitempty"`
}

// CostFunc prices tokens of a model at a provider in USD; ok is false
// for unknown models.
type CostFunc func(provider, model string, input, output, cacheRead, cacheWrite int64) (usd float64, ok bool)

// UsageHour is the length of one row of the usage summary.
const UsageHour = int64(time.Hour)

// UsageKey is what the usage summary groups a provider.request record by
// besides its hour, profile and session: the provider and the model named
// in its detail.
func UsageKey(detail json.RawMessage) (provider, model string) {
	if p, m, ok := plainUsageKey(detail); ok {
		return string(p), string(m)
	}
	var d struct {
		Provider string `json:"provider"`
		Model    string `json:"model"`
	}
	_ = json.Unmarshal(detail, &d) // a detail without them is counted under ""
	return d.Provider, d.Model
}

// DetailModel is UsageKey's model alone.
func DetailModel(detail json.RawMessage) string {
	if _, m, ok := plainUsageKey(detail); ok {
		return string(m)
	}
	_, m := UsageKey(detail)
	return m
}

// plainUsageKey is UsageKey without json.Unmarshal's allocations (it runs
// on every provider request's commit): a walk over the detail's
// top-level members that yields what json.Unmarshal would, or ok false
// where a member name or one of the two values carries an escape or a
// byte outside printable ASCII (encoding/json folds and replaces those
// in ways a byte compare does not), for json.Unmarshal to decode.
// FuzzUsageKey holds the two equal.
func plainUsageKey(b []byte) (provider, model []byte, ok bool) {
	if !json.Valid(b) {
		return nil, nil, true // json.Unmarshal fails and sets neither
	}
	i := skipJSONSpace(b, 0)
	if b[i] != '{' {
		return nil, nil, true // not an object: no member is set
	}
	i = skipJSONSpace(b, i+1)
	if b[i] == '}' {
		return nil, nil, true
	}
	for {
		// b is valid JSON, so a member name begins at i.
		key, end, plain := plainJSONString(b, i)
		if !plain {
			return nil, nil, false
		}
		i = skipJSONSpace(b, skipJSONSpace(b, end)+1) // past the ':'
		var dst *[]byte
		switch {
		case equalFoldASCII(key, "provider"):
			dst = &provider
		case equalFoldASCII(key, "model"):
			dst = &model
		}
		if dst != nil && b[i] == '"' {
			v, vend, plain := plainJSONString(b, i)
			if !plain {
				return nil, nil, false
			}
			*dst, i = v, vend // a later duplicate wins, as in json.Unmarshal
		} else {
			// Any other value leaves a string field as it is.
			i = skipJSONValue(b, i)
		}
		i = skipJSONSpace(b, i)
		if b[i] == '}' {
			return provider, model, true
		}
		i = skipJSONSpace(b, i+1) // past the ','
	}
}

// plainJSONString returns the contents of the string that begins at
// b[i] (a '"') and the index after it; plain is false when they hold an
// escape or a byte outside printable ASCII.
func plainJSONString(b []byte, i int) (s []byte, end int, plain bool) {
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return b[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20 || c >= 0x7f:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// skipJSONValue returns the index after the value that begins at b[i],
// in a b known to be valid JSON.
func skipJSONValue(b []byte, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; b[i] != '"'; i++ {
				if b[i] == '\\' {
					i++
				}
			}
			if depth == 0 {
				return i + 1
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i // the end of a number or literal
			}
		}
	}
	return i
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// equalFoldASCII reports whether b is name (lower-case ASCII letters)
// with any of its letters in upper case.
func equalFoldASCII(b []byte, name string) bool {
	if len(b) != len(name) {
		return false
	}
	for i := range b {
		if c := b[i]; c != name[i] && c+('a'-'A') != name[i] {
			return false
		}
	}
	return true
}

// usageGroups sums usage by (key, provider, model) before pricing, so
// that every way of reading it (the summary, the records) prices the same
// sums.
type usageGroups map[[3]string]*[5]int64

func (g usageGroups) add(key, provider, model string, n, in, out, cr, cw int64) {
	k := [3]string{key, provider, model}
	v := g[k]
	if v == nil {
		v = new([5]int64)
		g[k] = v
	}
	v[0] += n
	v[1] += in
	v[2] += out
	v[3] += cr
	v[4] += cw
}

func (g usageGroups) rows(cost CostFunc) []UsageRow {
	rows := map[string]*UsageRow{}
	for k, v := range g {
		r := rows[k[0]]
		if r == nil {
			r = &UsageRow{Key: k[0], CostUSD: new(float64)}
			rows[k[0]] = r
		}
		n, in, out, cr, cw := v[0], v[1], v[2], v[3], v[4]
		r.Requests += n
		r.Input += in
		r.Output += out
		r.CacheRead += cr
		r.CacheWrite += cw
		if usd, ok := cost(k[1], k[2], in, out, cr, cw); ok {
			*r.CostUSD += usd
		} else if in+out+cr+cw > 0 {
			r.Unpriced += n
		}
	}
	out := make([]UsageRow, 0, len(rows))
	for _, r := range rows {
		if r.Unpriced == r.Requests && *r.CostUSD == 0 {
			r.CostUSD = nil
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// usageKeyOf names the group of a record or summary row.
func usageKeyOf(by string, timeNs int64, profile, model string) string {
	switch by {
	case "model":
		return model
	case "profile":
		return profile
	}
	return time.Unix(0, timeNs).UTC().Format(time.DateOnly)
}

// UsageReport sums provider.request records that match f, grouped by day
// (UTC), model or profile.
//
// It reads the usage summary the log keeps as records commit (one row per
// hour, profile, session, provider and model; see package auditlog) for
// the whole hours in f, and the records themselves only for the partial
// hours at f's ends and for records after the summary's last one (a log
// written by a Ringlet without the summary, until the daemon next opens
// it). A log without a summary is read from its records alone.
func UsageReport(ctx context.Context, path string, f Filter, by string, cost CostFunc) ([]UsageRow, error) {
	switch by {
	case "":
		by = "day"
	case "day", "model", "profile":
	default:
		return nil, fmt.Errorf("invalid by %q: want day, model or profile", by)
	}
	g, err := usageSums(ctx, path, f, func(timeNs int64, profile, model string) string { return usageKeyOf(by, timeNs, profile, model) })
	if err != nil {
		return nil, err
	}
	return g.rows(cost), nil
}

// Buckets of a usage series: the periods of the budgets (UTC), and hours.
var SeriesBuckets = []string{"hour", "day", "week", "month"}

// SeriesRow is the usage of one series (a profile or a model) in one
// bucket of time.
type SeriesRow struct {
	Bucket time.Time `json:"bucket"` // the bucket's start, UTC
	UsageRow
}

// BucketStart is the start of the bucket (hour, day, week from Monday or
// month, UTC) that holds t: the periods budgets are counted in.
func BucketStart(bucket string, t time.Time) time.Time {
	t = t.UTC()
	switch bucket {
	case "hour":
		return t.Truncate(time.Hour)
	case "week":
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return d.AddDate(0, 0, -((int(d.Weekday()) + 6) % 7))
	case "month":
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
	}
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// UsageSeries sums provider.request records that match f by bucket of
// time (SeriesBuckets) and by profile or model ("by"): the rows of a plot
// over time, oldest bucket first, then by key. It reads what UsageReport
// reads (the hourly summary, and records only for partial hours and the
// summary's tail), so its cost does not grow with the log: f.Since at a
// whole hour reads no record but the tail's.
func UsageSeries(ctx context.Context, path string, f Filter, bucket, by string, cost CostFunc) ([]SeriesRow, error) {
	if !slices.Contains(SeriesBuckets, bucket) {
		return nil, fmt.Errorf("invalid bucket %q: want hour, day, week or month", bucket)
	}
	if by != "model" && by != "profile" {
		return nil, fmt.Errorf("invalid by %q: want model or profile", by)
	}
	// The key is the bucket's start in seconds, a NUL, then the name: the
	// first NUL splits it, whatever the name (an agent's choice) holds.
	g, err := usageSums(ctx, path, f, func(timeNs int64, profile, model string) string {
		name := profile
		if by == "model" {
			name = model
		}
		return strconv.FormatInt(BucketStart(bucket, time.Unix(0, timeNs)).Unix(), 10) + "\x00" + name
	})
	if err != nil {
		return nil, err
	}
	rows := g.rows(cost)
	out := make([]SeriesRow, 0, len(rows))
	for _, r := range rows {
		at, name, _ := strings.Cut(r.Key, "\x00")
		sec, err := strconv.ParseInt(at, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("usage series: bad bucket %q", at)
		}
		r.Key = name
		out = append(out, SeriesRow{Bucket: time.Unix(sec, 0).UTC(), UsageRow: r})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Bucket.Equal(out[j].Bucket) {
			return out[i].Bucket.Before(out[j].Bucket)
		}
		return out[i].Key < out[j].Key
	})
	return out, nil
}

// usageSums reads the usage of f grouped by key (see UsageReport for what
// it reads).
func usageSums(ctx context.Context, path string, f Filter, key func(timeNs int64, profile, model string) string) (usageGroups, error) {
	db, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	// One read transaction: the summary and the records are read at the
	// same commit.
	if err := db.Exec("BEGIN"); err != nil {
		return nil, fmt.Errorf("usage report: %w", Describe(err))
	}
	defer func() { _ = db.Exec("ROLLBACK") }() // read only: nothing to keep
	through, summarised, err := usageThrough(db)
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", Describe(err))
	}
	g := usageGroups{}
	if !summarised {
		return g, usageFromRecords(ctx, db, f, key, 0, 0, false, g)
	}
	// Whole hours [loH, hiH) come from the summary.
	loH, hiH := int64(math.MinInt64/UsageHour), int64(math.MaxInt64/UsageHour)
	if !f.Since.IsZero() {
		loH = ceilDiv(f.Since.UnixNano(), UsageHour)
	}
	if !f.Until.IsZero() {
		hiH = floorDiv(f.Until.UnixNano(), UsageHour)
	}
	if loH >= hiH {
		// Within one hour: the records are few.
		return g, usageFromRecords(ctx, db, f, key, 0, 0, false, g)
	}
	if err := usageFromSummary(ctx, db, f, key, loH, hiH, g); err != nil {
		return nil, err
	}
	// The partial hours at the ends, up to the summary's last record.
	if !f.Since.IsZero() && f.Since.UnixNano() < loH*UsageHour {
		e := f
		e.Until = time.Unix(0, loH*UsageHour)
		if err := usageFromRecords(ctx, db, e, key, 0, through, true, g); err != nil {
			return nil, err
		}
	}
	if !f.Until.IsZero() && hiH*UsageHour < f.Until.UnixNano() {
		e := f
		e.Since = time.Unix(0, hiH*UsageHour)
		if err := usageFromRecords(ctx, db, e, key, 0, through, true, g); err != nil {
			return nil, err
		}
	}
	// Records after the summary's last, whatever their time.
	if err := usageFromRecords(ctx, db, f, key, through, 0, false, g); err != nil {
		return nil, err
	}
	return g, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// usageThrough is the last record the usage summary holds; summarised is
// false for a log that has none.
func usageThrough(db *sqlite3.Conn) (through int64, summarised bool, err error) {
	stmt, _, err := db.Prepare(`SELECT through_seq FROM usage_state WHERE id = 1`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return 0, false, nil
		}
		return 0, false, err
	}
	defer stmt.Close()
	if !stmt.Step() {
		return 0, false, stmt.Err()
	}
	return stmt.ColumnInt64(0), true, nil
}

func usageFromSummary(ctx context.Context, db *sqlite3.Conn, f Filter, key func(int64, string, string) string, loH, hiH int64, g usageGroups) error {
	where := []string{"hour >= ?", "hour < ?"}
	args := []any{loH, hiH}
	if f.Profile != "" {
		where, args = append(where, "profile = ?"), append(args, f.Profile)
	}
	if f.Session != "" {
		where, args = append(where, "session = ?"), append(args, f.Session)
	}
	stmt, err := prepareBound(db, `SELECT hour, profile, model, provider, sum(requests), sum(tokens_in), sum(tokens_out), sum(tokens_cache_read), sum(tokens_cache_write)
		FROM usage_hours WHERE `+strings.Join(where, " AND ")+` GROUP BY hour, profile, model, provider`, args)
	if err != nil {
		return fmt.Errorf("usage report: %w", Describe(err))
	}
	defer stmt.Close()
	for stmt.Step() {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := key(stmt.ColumnInt64(0)*UsageHour, stmt.ColumnText(1), stmt.ColumnText(2))
		g.add(k, stmt.ColumnText(3), stmt.ColumnText(2), stmt.ColumnInt64(4), stmt.ColumnInt64(5), stmt.ColumnInt64(6), stmt.ColumnInt64(7), stmt.ColumnInt64(8))
	}
	if err := stmt.Err(); err != nil {
		return fmt.Errorf("usage report: %w", Describe(err))
	}
	return nil
}

// usageFromRecords adds the provider.request records that match f and
// have after < seq (when after > 0) and seq <= upTo (when bounded).
func usageFromRecords(ctx context.Context, db *sqlite3.Conn, f Filter, key func(int64, string, string) string, after, upTo int64, bounded bool, g usageGroups) error {
	where := []string{"kind = ?"}
	args := []any{KindProviderRequest}
	if after > 0 {
		where, args = append(where, "seq > ?"), append(args, after)
	}
	if bounded {
		where, args = append(where, "seq <= ?"), append(args, upTo)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "time_ns >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time_ns < ?"), append(args, f.Until.UnixNano())
	}
	if f.Profile != "" {
		where, args = append(where, "profile = ?"), append(args, f.Profile)
	}
	if f.Session != "" {
		where, args = append(where, "session = ?"), append(args, f.Session)
	}
	stmt, err := prepareBound(db, `SELECT time_ns, profile, detail, tokens_in, tokens_out, tokens_cache_read, tokens_cache_write
		FROM records WHERE `+strings.Join(where, " AND "), args)
	if err != nil {
		return fmt.Errorf("usage report: %w", Describe(err))
	}
	defer stmt.Close()
	for stmt.Step() {
		if err := ctx.Err(); err != nil {
			return err
		}
		prov, model := UsageKey(stmt.ColumnRawText(2))
		k := key(stmt.ColumnInt64(0), stmt.ColumnText(1), model)
		g.add(k, prov, model, 1, stmt.ColumnInt64(3), stmt.ColumnInt64(4), stmt.ColumnInt64(5), stmt.ColumnInt64(6))
	}
	if err := stmt.Err(); err != nil {
		return fmt.Errorf("usage report: %w", Describe(err))
	}
	return nil
}

func prepareBound(db *sqlite3.Conn, sql string, args []any) (*sqlite3.Stmt, error) {
	stmt, _, err := db.Prepare(sql)
	if err != nil {
		return nil, err
	}
	for i, a := range args {
		switch v := a.(type) {
		case int64:
			err = stmt.BindInt64(i+1, v)
		case string:
			err = stmt.BindText(i+1, v)
		}
		if err != nil {
			stmt.Close()
			return nil, err
		}
	}
	return stmt, nil
}

// UsageFullScan is UsageReport as it was before the usage summary: one
// SQLite query over every matching record. It is the reference the summary
// is tested and measured against.
func UsageFullScan(ctx context.Context, path string, f Filter, by string, cost CostFunc) ([]UsageRow, error) {
	var key string
	switch by {
	case "", "day":
		key = `strftime('%Y-%m-%d', time_ns / 1000000000, 'unixepoch')`
	case "model":
		key = `coalesce(json_extract(detail, '$.model'), '')`
	case "profile":
		key = `profile`
	default:
		return nil, fmt.Errorf("invalid by %q: want day, model or profile", by)
	}
	db, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	where := []string{"kind = ?"}
	args := []any{KindProviderRequest}
	if !f.Since.IsZero() {
		where, args = append(where, "time_ns >= ?"), append(args, f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		where, args = append(where, "time_ns < ?"), append(args, f.Until.UnixNano())
	}
	if f.Profile != "" {
		where, args = append(where, "profile = ?"), append(args, f.Profile)
	}
	if f.Session != "" {
		where, args = append(where, "session = ?"), append(args, f.Session)
	}
	sql := `SELECT ` + key + `, coalesce(json_extract(detail, '$.model'), ''), coalesce(json_extract(detail, '$.provider'), ''), count(*),
		sum(tokens_in), sum(tokens_out), sum(tokens_cache_read), sum(tokens_cache_write) FROM records WHERE ` + strings.Join(where, " AND ") + ` GROUP BY 1, 2, 3`
	stmt, _, err := db.Prepare(sql)
	if err != nil {
		return nil, fmt.Errorf("usage report: %w", Describe(err))
	}
	defer stmt.Close()
	for i, a := range args {
		switch v := a.(type) {
		case int64:
			err = stmt.BindInt64(i+1, v)
		case string:
			err = stmt.BindText(i+1, v)
		}
		if err != nil {
			return nil, err
		}
	}
	rows := map[string]*UsageRow{}
	for stmt.Step() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		k, model, prov := stmt.ColumnText(0), stmt.ColumnText(1), stmt.ColumnText(2)
		r := rows[k]
		if r == nil {
			r = &UsageRow{Key: k, CostUSD: new(float64)}
			rows[k] = r
		}
		n, in, out, cr, cw := stmt.ColumnInt64(3), stmt.ColumnInt64(4), stmt.ColumnInt64(5), stmt.ColumnInt64(6), stmt.ColumnInt64(7)
		r.Requests += n
		r.Input += in
		r.Output += out
		r.CacheRead += cr
		r.CacheWrite += cw
		if usd, ok := cost(prov, model, in, out, cr, cw); ok {
			*r.CostUSD += usd
		} else if in+out+cr+cw > 0 {
			r.Unpriced += n
		}
	}
	if err := stmt.Err(); err != nil {
		return nil, fmt.Errorf("usage report: %w", Describe(err))
	}
	out := make([]UsageRow, 0, len(rows))
	for _, r := range rows {
		if r.Unpriced == r.Requests && *r.CostUSD == 0 {
			r.CostUSD = nil
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// OpenSessions returns the session.start records that have no session.end:
// sessions a daemon lost when it stopped without ending them (a crash, a
// kill -9). The daemon ends them in the log when it starts again.
func OpenSessions(ctx context.Context, path string) ([]Record, error) {
	db, err := OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return OpenSessionsIn(ctx, db)
}

// OpenSessionsIn is OpenSessions on a connection to the database that is
// already open, such as the audit log's own: a second connection costs
// the daemon's start more than the query.
func OpenSessionsIn(ctx context.Context, db *sqlite3.Conn) ([]Record, error) {
	stmt, _, err := db.Prepare(`SELECT ` + columns(db) + ` FROM records WHERE kind = ? AND session != ''
		AND session NOT IN (SELECT session FROM records WHERE kind = ?) ORDER BY seq`)
	if err != nil {
		return nil, fmt.Errorf("find open sessions: %w", Describe(err))
	}
	defer stmt.Close()
	if err := stmt.BindText(1, KindSessionStart); err != nil {
		return nil, err
	}
	if err := stmt.BindText(2, KindSessionEnd); err != nil {
		return nil, err
	}
	var out []Record
	for stmt.Step() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		out = append(out, scan(stmt))
	}
	if err := stmt.Err(); err != nil {
		return nil, fmt.Errorf("find open sessions: %w", Describe(err))
	}
	return out, nil
}

// ToolCalls counts the tool calls that f matches and that were let
// through: those through the MCP gateway (tool.call records of a
// pre-tool-use check via mcp, allowed) and the agents' own calls that
// their hook adapter asked about and the budgets counted ("counted":
// true; a call to the gateway's tools is counted there, not twice):
// what a tool-call budget has spent.
func ToolCalls(ctx context.Context, path string, f Filter) (int64, error) {
	db, err := OpenReader(path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	// An MCP resource read or prompt get that passed its hooks was charged
	// as a tool call too; its record, written after the answer, says so
	// ("counted": true) whatever the answer was.
	where := []string{"((kind = ? AND decision = ? AND (json_extract(detail, '$.via') = 'mcp' OR json_extract(detail, '$.counted') = 1) AND json_extract(detail, '$.event') = 'pre-tool-use')" +
		" OR (kind IN (?, ?) AND json_extract(detail, '$.counted') = 1))"}
	args := []any{KindToolCall, Allow, KindMCPResourceRead, KindMCPPromptGet}
	if !f.Since.IsZero() {
		where, args = append(where, "time_ns >= ?"), append(args, f.Since.UnixNano())
	}
	if f.Profile != "" {
		where, args = append(where, "profile = ?"), append(args, f.Profile)
	}
	if f.Session != "" {
		where, args = append(where, "session = ?"), append(args, f.Session)
	}
	stmt, err := prepareBound(db, `SELECT count(*) FROM records WHERE `+strings.Join(where, " AND "), args)
	if err != nil {
		return 0, fmt.Errorf("count tool calls: %w", Describe(err))
	}
	defer stmt.Close()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if !stmt.Step() {
		return 0, fmt.Errorf("count tool calls: %w", Describe(stmt.Err()))
	}
	return stmt.ColumnInt64(0), nil
}
