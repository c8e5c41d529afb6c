package audit

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/neullabs/ringlet/privatefile"
)

// Filter selects records, newest first.
type Filter struct {
	Since    time.Time // inclusive; zero means no lower bound
	Until    time.Time // exclusive; zero means no upper bound
	Kinds    []string
	Profile  string
	Session  string
	Decision string
	Trace    string // a trace id: only its records
	// Text is free text: only records that hold it (ASCII letters in
	// either case) in their kind, profile, session, actor, target,
	// decision, trace id or detail. The log holds no secret values
	// (credentials appear only as HMACs), so every field may be searched.
	Text   string
	Limit  int   // default 100, at most 10000
	Before int64 // cursor: only records with seq < Before; 0 means from the newest
}

// DefaultLimit and MaxLimit bound a query's page.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// ParseTime reads a time bound: YYYY-MM-DD (midnight in loc), RFC 3339, or
// a duration before now such as 30m, 24h or 7d.
func ParseTime(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return inRange(s, t)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return inRange(s, t)
	}
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.Atoi(n); err == nil && d >= 0 && d <= 100000 {
			return now.AddDate(0, 0, -d), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: want YYYY-MM-DD, RFC 3339 (2026-05-01T12:00:00Z) or a duration ago (30m, 24h, 7d)", s)
}

// Records keep their time as int64 nanoseconds since 1970, which reach
// from 1677-09-21 to 2262-04-11; a bound outside would wrap around and
// silently select everything.
var minTime, maxTime = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

func inRange(s string, t time.Time) (time.Time, error) {
	if t.Before(minTime) || t.After(maxTime) {
		return time.Time{}, fmt.Errorf("time %q is out of range: the audit log holds times from 1677-09-22 to 2262-04-11", s)
	}
	return t, nil
}

// ParseFilter reads a filter from query parameters: since, until, kind
// (repeatable or comma-separated), profile, session, decision, limit and
// cursor. Unknown parameters are errors.
func ParseFilter(q url.Values, now time.Time, loc *time.Location) (Filter, error) {
	f := Filter{Limit: DefaultLimit}
	for key, vals := range q {
		if len(vals) == 0 {
			continue
		}
		v := vals[len(vals)-1]
		var err error
		switch key {
		case "since":
			f.Since, err = ParseTime(v, now, loc)
		case "until":
			f.Until, err = ParseTime(v, now, loc)
		case "kind":
			for _, raw := range vals {
				for _, k := range strings.Split(raw, ",") {
					k = strings.TrimSpace(k)
					if k == "" {
						continue
					}
					if !slices.Contains(Kinds, k) {
						return Filter{}, fmt.Errorf("unknown kind %q; kinds: %s", k, strings.Join(Kinds, ", "))
					}
					f.Kinds = append(f.Kinds, k)
				}
			}
		case "profile":
			f.Profile = v
		case "session":
			f.Session = v
		case "trace":
			if !ValidTraceID(v) {
				return Filter{}, fmt.Errorf("invalid trace %q: want 32 lower-case hex digits (a trace id, as 'ringlet audit trace' prints)", v)
			}
			f.Trace = v
		case "decision":
			if v != Allow && v != Deny && v != Error {
				return Filter{}, fmt.Errorf("invalid decision %q; accepted values: allow, deny, error", v)
			}
			f.Decision = v
		case "limit":
			f.Limit, err = strconv.Atoi(v)
			if err == nil && (f.Limit < 1 || f.Limit > MaxLimit) {
				err = fmt.Errorf("limit must be from 1 to %d", MaxLimit)
			}
		case "cursor":
			f.Before, err = strconv.ParseInt(v, 10, 64)
			if err == nil && f.Before < 1 {
				err = errors.New("cursor must be a positive record number")
			}
		default:
			return Filter{}, fmt.Errorf("unknown filter %q; filters: since, until, kind, profile, session, decision, trace, limit, cursor", key)
		}
		if err != nil {
			if strings.HasPrefix(err.Error(), "strconv.") {
				err = fmt.Errorf("%s must be a number", key)
			}
			return Filter{}, fmt.Errorf("invalid %s: %w", key, err)
		}
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Until.After(f.Since) {
		return Filter{}, errors.New("until must be after since")
	}
	return f, nil
}

const selectCols = `seq, time_ns, kind, profile, session, actor, target, decision, status, duration_ns,
	bytes_in, bytes_out, tokens_in, tokens_out, tokens_cache_read, tokens_cache_write, detail, prev_hash, hash,
	trace_id, span_id, parent_span_id, link`

// selectColsOld reads a log no daemon has opened since the trace columns
// were added (a reader does not migrate): its records have no trace.
const selectColsOld = `seq, time_ns, kind, profile, session, actor, target, decision, status, duration_ns,
	bytes_in, bytes_out, tokens_in, tokens_out, tokens_cache_read, tokens_cache_write, detail, prev_hash, hash,
	'', '', '', ''`

// HasTraceColumns reports whether the records table has the trace
// columns (a log written by this version of Ringlet).
func HasTraceColumns(db *sqlite3.Conn) bool {
	s, _, err := db.Prepare("SELECT trace_id, span_id, parent_span_id, link FROM records LIMIT 0")
	if err != nil {
		return false
	}
	s.Close()
	return true
}

// columns is what a reader selects from db.
func columns(db *sqlite3.Conn) string {
	if HasTraceColumns(db) {
		return selectCols
	}
	return selectColsOld
}

// OpenReader opens the database read-only; it may be read while a daemon
// writes it.
func OpenReader(path string) (*sqlite3.Conn, error) {
	if err := checkExists(path); err != nil {
		return nil, err
	}
	// A reader may be the first to open the database after the daemon
	// stopped; make sure the shared-memory file it creates is private too.
	_ = privatefile.Create(path+"-shm", nil)
	db, err := sqlite3.OpenFlags(DatabaseURI(path)+"&mode=ro", sqlite3.OPEN_READONLY|sqlite3.OPEN_URI)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", path, err)
	}
	if err := db.BusyTimeout(5 * time.Second); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// where is f as the conditions of a query of the records table, and
// their arguments. noTimeIndex keeps the time conditions off the time
// index (a unary +), so that a query bounded by sequence numbers walks
// its range of the table and nothing else.
func (f Filter) where(noTimeIndex bool) ([]string, []any) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	tcol := "time_ns"
	if noTimeIndex {
		tcol = "+time_ns"
	}
	if !f.Since.IsZero() {
		add(tcol+" >= ?", f.Since.UnixNano())
	}
	if !f.Until.IsZero() {
		add(tcol+" < ?", f.Until.UnixNano())
	}
	if f.Profile != "" {
		add("profile = ?", f.Profile)
	}
	if f.Session != "" {
		add("session = ?", f.Session)
	}
	if f.Decision != "" {
		add("decision = ?", f.Decision)
	}
	if f.Trace != "" {
		add("trace_id = ?", f.Trace)
		// The trace's time, from its id: the time index finds its
		// records (there is no index of trace ids).
		if since, until := TraceWindow(f.Trace); !since.IsZero() {
			add(tcol+" >= ?", since.UnixNano())
			add(tcol+" < ?", until.UnixNano())
		}
	}
	if f.Before > 0 {
		add("seq < ?", f.Before)
	}
	if len(f.Kinds) > 0 {
		where = append(where, "kind IN ("+strings.TrimSuffix(strings.Repeat("?,", len(f.Kinds)), ",")+")")
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	if f.Text != "" {
		add("instr(lower(kind||char(31)||profile||char(31)||session||char(31)||actor||char(31)||target||char(31)||decision||char(31)||trace_id||char(31)||detail), ?) > 0",
			asciiLower(f.Text))
	}
	return where, args
}

// asciiLower lowers A-Z only, as SQLite's lower() does: a needle
// lowered further (Ä to ä) would never match what lower() left as it was.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
}

// Query returns the records that match f, newest first, and the cursor
// for the next page (0 when there is none).
func Query(ctx context.Context, path string, f Filter) ([]Record, int64, error) {
	db, err := OpenReader(path)
	if err != nil {
		return nil, 0, err
	}
	defer db.Close()
	where, args := f.where(false)
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	sql := "SELECT " + columns(db) + " FROM records"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY seq DESC LIMIT ?"
	args = append(args, limit+1)
	stmt, _, err := db.Prepare(sql)
	if err != nil {
		return nil, 0, fmt.Errorf("query audit log: %w", Describe(err))
	}
	defer stmt.Close()
	for i, a := range args {
		switch v := a.(type) {
		case int64:
			err = stmt.BindInt64(i+1, v)
		case int:
			err = stmt.BindInt64(i+1, int64(v))
		case string:
			err = stmt.BindText(i+1, v)
		}
		if err != nil {
			return nil, 0, err
		}
	}
	var out []Record
	for stmt.Step() {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		out = append(out, scan(stmt))
	}
	if err := stmt.Err(); err != nil {
		return nil, 0, fmt.Errorf("query audit log: %w", Describe(err))
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].Seq
	}
	return out, next, nil
}

func scan(s *sqlite3.Stmt) Record {
	r := Record{
		Seq:              s.ColumnInt64(0),
		Time:             time.Unix(0, s.ColumnInt64(1)).UTC(),
		Kind:             s.ColumnText(2),
		Profile:          s.ColumnText(3),
		Session:          s.ColumnText(4),
		Actor:            s.ColumnText(5),
		Target:           s.ColumnText(6),
		Decision:         s.ColumnText(7),
		Status:           s.ColumnInt64(8),
		Duration:         time.Duration(s.ColumnInt64(9)),
		BytesIn:          s.ColumnInt64(10),
		BytesOut:         s.ColumnInt64(11),
		TokensIn:         s.ColumnInt64(12),
		TokensOut:        s.ColumnInt64(13),
		TokensCacheRead:  s.ColumnInt64(14),
		TokensCacheWrite: s.ColumnInt64(15),
		PrevHash:         hex.EncodeToString(s.ColumnRawBlob(17)),
		Hash:             hex.EncodeToString(s.ColumnRawBlob(18)),
		TraceID:          s.ColumnText(19),
		SpanID:           s.ColumnText(20),
		ParentSpanID:     s.ColumnText(21),
		Link:             s.ColumnText(22),
	}
	if d := s.ColumnText(16); d != "" {
		r.Detail = json.RawMessage(d)
	}
	return r
}
