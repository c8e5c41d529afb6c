package audit

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// Window is one page of QueryWindow: the records of a filter among a
// bounded range of the log.
type Window struct {
	Records []Record
	// From and To are the sequence numbers looked at (both included):
	// every record between them that matches the filter is in Records or
	// on a page before. From > To: the log holds nothing below the cursor.
	From, To int64
	// Next is the cursor of the next, older page: 0 when the looking
	// reached the first record.
	Next int64
	// Steps is the work SQLite did for the page (its virtual machine's
	// steps), what a test bounds.
	Steps int
}

// QueryWindow is Query that looks at no more than most records (by
// sequence number, below f.Before, or from the newest) however rare the
// matches are: a page of the dashboard's audit view costs the same in a
// log of a thousand records or of a million, with no index beyond the
// table's own order (an index per filter would cost every record's
// commit). A page may then hold fewer than f.Limit records, none even;
// Next goes on from where it stopped.
func QueryWindow(ctx context.Context, path string, f Filter, most int64) (Window, error) {
	db, err := OpenReader(path)
	if err != nil {
		return Window{}, err
	}
	defer db.Close()
	if err := db.Exec("BEGIN"); err != nil {
		return Window{}, fmt.Errorf("read audit log: %w", Describe(err))
	}
	defer func() { _ = db.Exec("ROLLBACK") }() // read only: nothing to keep
	hi := f.Before
	if hi <= 0 {
		tip, err := tipSeq(db)
		if err != nil {
			return Window{}, fmt.Errorf("read audit log: %w", Describe(err))
		}
		hi = tip + 1
	}
	if !f.Until.IsZero() {
		// Start at the newest record before until, found by the time
		// index, not by looking through every record after it.
		last, err := lastBefore(db, f.Until)
		if err != nil {
			return Window{}, fmt.Errorf("read audit log: %w", Describe(err))
		}
		hi = min(hi, last+1)
	}
	lo := max(hi-max(most, 1), 1)
	f.Before = hi
	sql, args, limit := windowSQL(db, f, lo)
	stmt, err := prepareBound(db, sql, args)
	if err != nil {
		return Window{}, fmt.Errorf("query audit log: %w", Describe(err))
	}
	defer stmt.Close()
	w := Window{From: lo, To: hi - 1}
	for stmt.Step() {
		if err := ctx.Err(); err != nil {
			return Window{}, err
		}
		w.Records = append(w.Records, scan(stmt))
	}
	if err := stmt.Err(); err != nil {
		return Window{}, fmt.Errorf("query audit log: %w", Describe(err))
	}
	w.Steps = stmt.Status(sqlite3.STMTSTATUS_VM_STEP, false)
	switch {
	case len(w.Records) > limit:
		w.Records = w.Records[:limit]
		w.Next = w.Records[limit-1].Seq
		w.From = w.Next
	case lo > 1:
		w.Next = lo
		if !f.Since.IsZero() {
			// Nothing older matches when the records below are older
			// than since.
			before, err := timeAt(db, lo-1)
			if err != nil {
				return Window{}, fmt.Errorf("read audit log: %w", Describe(err))
			}
			if before < f.Since.Add(-timeSlack).UnixNano() {
				w.Next = 0
			}
		}
	}
	if w.From > w.To {
		w.From, w.To = 0, 0
	}
	return w, nil
}

// timeSlack is how far out of order by time records may be: a record
// takes its time before it waits for its commit, and writers commit in
// turn. QueryWindow looks this much beyond a time bound.
const timeSlack = time.Minute

// lastBefore is the highest sequence number of the records written
// before t (0 if none): the newest by the time index, and the highest
// number among the records near it in time.
func lastBefore(db *sqlite3.Conn, t time.Time) (int64, error) {
	stmt, err := prepareBound(db, `SELECT max(seq) FROM records WHERE time_ns < ? AND time_ns >= (
		SELECT time_ns FROM records WHERE time_ns < ? ORDER BY time_ns DESC LIMIT 1) - ?`,
		[]any{t.UnixNano(), t.UnixNano(), int64(timeSlack)})
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	if !stmt.Step() {
		return 0, stmt.Err()
	}
	return stmt.ColumnInt64(0), nil
}

// timeAt is the time of record seq, as stored (0 if there is none).
func timeAt(db *sqlite3.Conn, seq int64) (int64, error) {
	stmt, err := prepareBound(db, `SELECT time_ns FROM records WHERE seq = ?`, []any{seq})
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	if !stmt.Step() {
		return 0, stmt.Err()
	}
	return stmt.ColumnInt64(0), nil
}

// windowSQL is the query of f among the records from lo up to f.Before,
// newest first: a walk of that range of the table by its primary key
// (the time index is kept out of it), one more record than the page
// holds; and its arguments, and the page's size.
func windowSQL(db *sqlite3.Conn, f Filter, lo int64) (string, []any, int) {
	where, args := f.where(true)
	where = append(where, "seq >= ?")
	args = append(args, lo)
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	sql := "SELECT " + columns(db) + " FROM records WHERE " + strings.Join(where, " AND ") + " ORDER BY seq DESC LIMIT ?"
	return sql, append(args, int64(limit+1)), limit
}

// WindowPlan is SQLite's plan of QueryWindow's query of f, one step a
// line: what a test reads to see that the query walks a range of the
// table and sorts nothing.
func WindowPlan(path string, f Filter) (string, error) {
	db, err := OpenReader(path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	if f.Before <= 0 {
		f.Before = 2
	}
	sql, args, _ := windowSQL(db, f, 1)
	plan, err := prepareBound(db, "EXPLAIN QUERY PLAN "+sql, args)
	if err != nil {
		return "", err
	}
	defer plan.Close()
	var lines []string
	for plan.Step() {
		lines = append(lines, plan.ColumnText(3))
	}
	return strings.Join(lines, "\n"), plan.Err()
}
