package auditlog

import (
	"fmt"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// The usage summary: the provider.request records' counts and tokens
// summed by hour, profile, session, provider and model, so that a usage
// report reads a few thousand rows instead of every record
// (audit.UsageReport). Every provider.request record up to
// usage_state.through_seq is in it and none after. It moves in the
// transaction of a commit once every usageLagMax records, with the sums of
// the records committed since; a report reads the records after
// through_seq. A log written by a Ringlet without the summary, or whose
// writer stopped before moving it, is caught up when opened. Plain SQL (ON CONFLICT is
// PostgreSQL's too); records are taken in seq order.
const usageSchema = `
CREATE TABLE IF NOT EXISTS usage_hours (
	hour               INTEGER NOT NULL,
	profile            TEXT NOT NULL,
	session            TEXT NOT NULL,
	provider           TEXT NOT NULL,
	model              TEXT NOT NULL,
	requests           INTEGER NOT NULL,
	tokens_in          INTEGER NOT NULL,
	tokens_out         INTEGER NOT NULL,
	tokens_cache_read  INTEGER NOT NULL,
	tokens_cache_write INTEGER NOT NULL,
	PRIMARY KEY (hour, profile, session, provider, model)
) STRICT;
CREATE TABLE IF NOT EXISTS usage_state (
	id          INTEGER PRIMARY KEY CHECK (id = 1),
	through_seq INTEGER NOT NULL
) STRICT;
INSERT INTO usage_state (id, through_seq) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
`

const usageUpsertSQL = `INSERT INTO usage_hours (hour, profile, session, provider, model, requests,
	tokens_in, tokens_out, tokens_cache_read, tokens_cache_write) VALUES (?,?,?,?,?,?,?,?,?,?)
	ON CONFLICT (hour, profile, session, provider, model) DO UPDATE SET
	requests = usage_hours.requests + excluded.requests,
	tokens_in = usage_hours.tokens_in + excluded.tokens_in,
	tokens_out = usage_hours.tokens_out + excluded.tokens_out,
	tokens_cache_read = usage_hours.tokens_cache_read + excluded.tokens_cache_read,
	tokens_cache_write = usage_hours.tokens_cache_write + excluded.tokens_cache_write`

type usageKey struct {
	hour                              int64
	profile, session, provider, model string
}

// usageSums adds up records by usageKey.
type usageSums map[usageKey]*[5]int64

// add adds the provider.request records among recs to u (made if nil)
// and returns it.
func (u usageSums) add(recs []audit.Record) usageSums {
	for i := range recs {
		if recs[i].Kind == audit.KindProviderRequest {
			if u == nil {
				u = usageSums{}
			}
			u.addOne(&recs[i])
		}
	}
	return u
}

// with is u and the provider.request records among recs, in a new map:
// u is left as it is until the transaction that saves the sum commits.
func (u usageSums) with(recs []audit.Record) usageSums {
	sum := make(usageSums, len(u)+1)
	for k, v := range u {
		c := *v
		sum[k] = &c
	}
	return sum.add(recs)
}

func (u usageSums) addOne(r *audit.Record) {
	if r.Kind != audit.KindProviderRequest {
		return
	}
	provider, model := audit.UsageKey(r.Detail)
	k := usageKey{floorHour(r.Time.UnixNano()), r.Profile, r.Session, provider, model}
	v := u[k]
	if v == nil {
		v = new([5]int64)
		u[k] = v
	}
	v[0]++
	v[1] += r.TokensIn
	v[2] += r.TokensOut
	v[3] += r.TokensCacheRead
	v[4] += r.TokensCacheWrite
}

func floorHour(ns int64) int64 {
	h := ns / audit.UsageHour
	if ns%audit.UsageHour != 0 && ns < 0 {
		h--
	}
	return h
}

// saveUsage writes sums and through into the open transaction.
func (l *Log) saveUsage(sums usageSums, through int64) error {
	s := l.usageUpsert
	for k, v := range sums {
		if err := s.BindInt64(1, k.hour); err != nil {
			return err
		}
		for i, t := range []string{k.profile, k.session, k.provider, k.model} {
			if err := s.BindText(i+2, t); err != nil {
				return err
			}
		}
		for i, n := range v {
			if err := s.BindInt64(i+6, n); err != nil {
				return err
			}
		}
		err := s.Exec()
		s.Reset()
		if err != nil {
			return err
		}
	}
	defer l.usageThrough.Reset()
	if err := l.usageThrough.BindInt64(1, through); err != nil {
		return err
	}
	return l.usageThrough.Exec()
}

// usageLagMax bounds how far through_seq may trail the log's tip: the
// records a usage report reads besides the summary, and the records whose
// sums wait in memory.
const usageLagMax = 1024

// usageProgressEvery is how many records catching up the summary reads
// between two progress lines in the log.
const usageProgressEvery = 200_000

// catchUpUsage creates the usage summary if the log has none and adds to
// it the records after its last one, in one transaction: a log written by
// a Ringlet without the summary (or by one started from an older copy) is
// summarised once, at open.
func (l *Log) catchUpUsage(tip int64) (err error) {
	if err := l.db.Exec("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = l.db.Exec("ROLLBACK") // the catch-up failed already; that error is returned
		}
	}()
	if err := l.db.Exec(usageSchema); err != nil {
		return err
	}
	if l.usageUpsert == nil {
		if l.usageUpsert, _, err = l.db.Prepare(usageUpsertSQL); err != nil {
			return err
		}
		if l.usageThrough, _, err = l.db.Prepare(`UPDATE usage_state SET through_seq = ? WHERE id = 1`); err != nil {
			return err
		}
	}
	through, err := l.readUsageThrough()
	if err != nil {
		return err
	}
	if through > tip {
		// The summary counts records the log no longer holds: its tail
		// was cut and then accepted with a new epoch. It is summed again
		// from the records there are; kept, it would count the lost
		// records and miss the new ones up to its through_seq.
		if err := l.db.Exec(`DELETE FROM usage_hours; UPDATE usage_state SET through_seq = 0 WHERE id = 1`); err != nil {
			return err
		}
		through = 0
	}
	if through == tip {
		l.usageSaved = through
		return l.db.Exec("COMMIT")
	}
	start := time.Now()
	total := tip - through
	if total > usageProgressEvery {
		l.opts.Logger.Info("summarising the audit log's usage once (a log written by an older Ringlet)", "records", total)
	}
	stmt, _, err := l.db.Prepare(`SELECT seq, time_ns, profile, session, detail, tokens_in, tokens_out, tokens_cache_read, tokens_cache_write
		FROM records WHERE kind = ? AND seq > ? ORDER BY seq`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	if err := stmt.BindText(1, audit.KindProviderRequest); err != nil {
		return err
	}
	if err := stmt.BindInt64(2, through); err != nil {
		return err
	}
	sums := usageSums{}
	next := through + usageProgressEvery
	for stmt.Step() {
		seq := stmt.ColumnInt64(0)
		r := audit.Record{Kind: audit.KindProviderRequest, Time: time.Unix(0, stmt.ColumnInt64(1)), Profile: stmt.ColumnText(2), Session: stmt.ColumnText(3),
			Detail: stmt.ColumnRawText(4), TokensIn: stmt.ColumnInt64(5), TokensOut: stmt.ColumnInt64(6), TokensCacheRead: stmt.ColumnInt64(7), TokensCacheWrite: stmt.ColumnInt64(8)}
		sums.addOne(&r)
		if total > usageProgressEvery && seq >= next {
			l.opts.Logger.Info("summarising the audit log's usage", "done", seq-through, "of", total)
			next = seq + usageProgressEvery
		}
	}
	if err := stmt.Err(); err != nil {
		return err
	}
	if err := l.saveUsage(sums, tip); err != nil {
		return err
	}
	if err := l.db.Exec("COMMIT"); err != nil {
		return err
	}
	l.usageSaved = tip
	if total > usageProgressEvery {
		l.opts.Logger.Info("summarised the audit log's usage", "records", total, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}

func (l *Log) readUsageThrough() (int64, error) {
	stmt, _, err := l.db.Prepare(`SELECT through_seq FROM usage_state WHERE id = 1`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	if !stmt.Step() {
		if err := stmt.Err(); err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("usage_state has no row")
	}
	return stmt.ColumnInt64(0), nil
}
