package audit

import (
	"context"
	"fmt"
	"sort"
	"strings"
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

// UsageReport sums provider.request records that match f, grouped by day
// (UTC), model or profile.
func UsageReport(ctx context.Context, path string, f Filter, by string, cost CostFunc) ([]UsageRow, error) {
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
	stmt, _, err := db.Prepare(`SELECT ` + selectCols + ` FROM records WHERE kind = ? AND session != ''
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
