// Package auditlog writes Ringlet's audit log (package audit says what it
// holds): group commits that return once a record is durable, refusals
// while it cannot be written, the anchor beside the database, and new
// epochs. Only the daemon opens it, under the daemon lock, so there is
// one writer.
package auditlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/ncruces/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/privatefile"
)

// Sync modes, as in audit.sync.
const (
	// SyncNormal: a committed record survives a crash of the process
	// (kill -9); the last transactions may be lost on power failure.
	SyncNormal = "normal"
	// SyncFull: a committed record survives power failure too, at the cost
	// of an fsync per batch.
	SyncFull = "full"
)

// maxBatch bounds the records committed in one transaction.
const maxBatch = 1000

// defaultDeliveryQueue bounds the committed batches that wait for
// OnCommit: at most that many times maxBatch records in memory.
const defaultDeliveryQueue = 64

func unavailable(reason error) error { return &audit.UnavailableError{Reason: reason} }

// ErrClosed means the log has been closed.
var ErrClosed = errors.New("the audit log is closed")

// Options configure a Log.
type Options struct {
	Path string // the database file; its directory is created 0700
	Sync string // SyncNormal (default) or SyncFull
	// OnCommit receives every committed batch, in order, on a goroutine
	// of the log's own (deliver), not on a committing caller's: an Append
	// returns once its record is committed, whatever OnCommit is doing.
	// Up to deliveryQueue batches wait for it; past that, commits wait
	// (nothing is dropped). Close returns after its last call. It should
	// not block: while it does, later batches wait, and then commits. It
	// must not Append, nor wait for anything that does (a lock held
	// around an Append): with the queue full, that Append's commit waits
	// for OnCommit, which waits for it. Close must not be called from it.
	OnCommit func([]audit.Record)
	// deliveryQueue is how many committed batches may wait for OnCommit;
	// 0 is defaultDeliveryQueue, -1 none (tests: every commit then waits
	// until OnCommit has taken its batch).
	deliveryQueue int
	// CheckInterval is how often Run looks at the log's files and file
	// system for what makes it unwritable. Default 250ms.
	CheckInterval time.Duration
	// Logger hears when the log stops and starts being writable. Default:
	// discard.
	Logger *slog.Logger
	// FindOpenSessions has Open read the session.start records that have
	// no session.end (OpenSessions), on the log's own connection.
	FindOpenSessions bool
}

// Log appends records in group commits: callers wait until their own
// record is committed, and callers that arrive together share one
// transaction.
//
// There is no writer goroutine. The first caller to find no commit in
// progress leads: it takes every waiting record (up to maxBatch) into one
// transaction, releases their callers and hands the lead to the next
// waiting caller, if any. Callers that arrive during a commit wait and go
// into the next one. A lone caller commits its own record on its own
// goroutine, without waking another: on an idle daemon, a hand-off to a
// writer goroutine and back costs more than the commit.
//
// Whether a record could be written now is kept in memory (Writable), from
// the outcome of each commit and from the checks Run makes.
type Log struct {
	opts    Options
	anchor  *anchorFile
	metrics *Metrics
	health  health
	checks  singleCheck
	files   *watchedFiles

	// mu guards waiting, leading and closed.
	mu      sync.Mutex
	idle    sync.Cond // broadcast when leading turns false
	waiting []*pending
	leading bool
	closed  bool
	batch   []*pending // the leader's; reused

	closeOnce sync.Once

	// Committed batches on their way to OnCommit (nil without one), and
	// deliver's end, which Close waits for.
	delivery  chan []audit.Record
	delivered chan struct{}

	// The leader's: the last record this log committed or found at open,
	// which the database must still hold at the next commit.
	lastSeq  int64
	lastHash []byte
	ended    *outage // the outage the last write ended

	db     *sqlite3.Conn
	insert *sqlite3.Stmt
	tip    *sqlite3.Stmt
	hashAt *sqlite3.Stmt
	// Prepared once: parsing them on every commit cost a fifth of it.
	begin, commitTx, rollback *sqlite3.Stmt
	// The usage summary's (usage.go): the through_seq it last saved, the
	// sums of the provider.request records committed since (not yet in
	// the summary), and how far through_seq may trail the tip.
	usageUpsert, usageThrough *sqlite3.Stmt
	usageSaved                int64
	usagePending              usageSums
	usageLag                  int64

	openSessions []audit.Record // found at open (Options.FindOpenSessions)
}

type pending struct {
	rec  audit.Record
	done chan error
	// probe asks only whether a commit works: it inserts no record of its
	// own (but carries the audit.resume record of an outage).
	probe bool
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Open opens (creating if needed) the database at opts.Path with mode 0600
// in a 0700 directory. Close closes it.
//
// It refuses a database that does not match its anchor (an *AnchorError):
// one truncated, rolled back to an older copy, replaced or deleted, or
// whose anchor was removed. Writing to it would move the anchor to what
// is there and hide that. NewEpoch continues from such a database on
// purpose.
func Open(opts Options) (*Log, error) {
	return open(opts, false)
}

func open(opts Options, newEpoch bool) (*Log, error) {
	if opts.Sync == "" {
		opts.Sync = SyncNormal
	}
	if opts.Sync != SyncNormal && opts.Sync != SyncFull {
		return nil, fmt.Errorf("invalid audit.sync %q; accepted values: normal, full", opts.Sync)
	}
	if opts.CheckInterval <= 0 {
		opts.CheckInterval = 250 * time.Millisecond
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	dir := filepath.Dir(opts.Path)
	if err := privatefile.EnsureDir(dir); err != nil {
		return nil, fmt.Errorf("audit log directory: %w", err)
	}
	if err := checkFileSystem(dir); errors.Is(err, errReadOnlyFS) {
		return nil, fmt.Errorf("audit log %s: %w", opts.Path, err)
	}
	// The anchor is read before the database: it trails the database's
	// commits, so the database found next is never legitimately behind it.
	anchor, anchored, err := audit.ReadAnchor(opts.Path)
	switch {
	case err == nil, newEpoch && errors.Is(err, audit.ErrNotAnchor):
	case errors.Is(err, audit.ErrNotAnchor):
		return nil, &audit.AnchorError{Path: opts.Path, Problem: fmt.Sprintf("its anchor file %s is damaged (not a ringlet audit anchor)", audit.AnchorPath(opts.Path))}
	default:
		return nil, err
	}
	fi, statErr := os.Stat(opts.Path)
	dbExists := statErr == nil
	if (!dbExists || fi.Size() == 0) && anchored && anchor.Seq > 0 && !newEpoch {
		// Refused before an empty database is made in its place.
		problem, _, _ := audit.AnchorProblem(opts.Path, anchor, anchored, dbExists, 0, nil)
		return nil, &audit.AnchorError{Path: opts.Path, Problem: problem}
	}
	if err := audit.CheckIsDatabase(opts.Path); err != nil {
		return nil, err
	}
	if err := ensureFile(opts.Path); err != nil {
		return nil, err
	}
	// modeof gives the WAL the database file's 0600 mode; the shared
	// memory index is created 0600 beforehand because the VFS does not
	// apply modeof to it.
	if err := ensureFile(opts.Path + "-shm"); err != nil {
		return nil, err
	}
	db, err := sqlite3.OpenFlags(audit.DatabaseURI(opts.Path), sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE|sqlite3.OPEN_URI)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", opts.Path, audit.Describe(err))
	}
	l := &Log{opts: opts, db: db, metrics: newMetrics(), batch: make([]*pending, 0, maxBatch), usageLag: usageLagMax}
	l.idle.L = &l.mu
	l.health.init(l.metrics, opts.Logger)
	if err := l.init(); err != nil {
		l.closeDB()
		return nil, fmt.Errorf("open audit log %s: %w", opts.Path, audit.Describe(err))
	}
	seq, hash, err := l.readTip()
	if err != nil {
		l.closeDB()
		return nil, fmt.Errorf("open audit log %s: %w", opts.Path, audit.Describe(err))
	}
	if !newEpoch {
		problem, _, err := audit.AnchorProblem(opts.Path, anchor, anchored, dbExists, seq, l.recordHash)
		if err == nil && problem != "" {
			err = &audit.AnchorError{Path: opts.Path, Problem: problem}
		}
		if err != nil {
			l.closeDB()
			return nil, err
		}
	}
	l.lastSeq, l.lastHash = seq, hash
	if err := l.catchUpUsage(seq); err != nil {
		l.closeDB()
		return nil, fmt.Errorf("open audit log %s: summarise usage: %w", opts.Path, audit.Describe(err))
	}
	if opts.FindOpenSessions {
		if l.openSessions, err = audit.OpenSessionsIn(context.Background(), l.db); err != nil {
			l.closeDB()
			return nil, fmt.Errorf("open audit log %s: %w", opts.Path, err)
		}
	}
	if l.files, err = watchFiles(opts.Path); err != nil {
		l.closeDB()
		return nil, err
	}
	l.anchor, err = openAnchor(audit.AnchorPath(opts.Path), opts.Sync == SyncFull, anchor.Seq)
	if err != nil {
		l.closeDB()
		return nil, err
	}
	if !anchored && seq == 0 {
		// A new log is anchored at record 0 before its first commit, so
		// that a crash between that commit and its anchor leaves an
		// anchor behind the database (accepted), not a missing one.
		if err := l.anchor.write(0, audit.Genesis()); err != nil {
			l.anchor.close()
			l.closeDB()
			return nil, err
		}
	}
	if opts.OnCommit != nil {
		n := opts.deliveryQueue
		switch {
		case n == 0:
			n = defaultDeliveryQueue
		case n < 0:
			n = 0
		}
		l.delivery, l.delivered = make(chan []audit.Record, n), make(chan struct{})
		go l.deliver() // Close waits for it
	}
	return l, nil
}

// deliver hands committed batches to OnCommit in commit order, off the
// committing callers' goroutines: at concurrency 1 the leader is the
// caller itself, whose answer would otherwise wait for every observer
// (the dashboard, /api/events, the OpenTelemetry export). It returns once
// Close has closed the queue and the last batch was delivered.
func (l *Log) deliver() {
	defer close(l.delivered)
	for recs := range l.delivery {
		l.metrics.deliveryDepth.Dec()
		func() {
			// A notification hook: its failure must not stop the log.
			defer func() { _ = recover() }()
			l.opts.OnCommit(recs)
		}()
	}
}

// ensureFile creates the database file with mode 0600 before SQLite opens
// it, and refuses one that others can read.
func ensureFile(path string) error {
	err := privatefile.Create(path, nil)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create audit log %s: %w", path, err)
	}
	if err := privatefile.Check(path); err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	return nil
}

const schema = `
CREATE TABLE IF NOT EXISTS records (
	seq                INTEGER PRIMARY KEY,
	time_ns            INTEGER NOT NULL,
	kind               TEXT NOT NULL,
	profile            TEXT NOT NULL DEFAULT '',
	session            TEXT NOT NULL DEFAULT '',
	actor              TEXT NOT NULL DEFAULT '',
	target             TEXT NOT NULL DEFAULT '',
	decision           TEXT NOT NULL DEFAULT '',
	status             INTEGER NOT NULL DEFAULT 0,
	duration_ns        INTEGER NOT NULL DEFAULT 0,
	bytes_in           INTEGER NOT NULL DEFAULT 0,
	bytes_out          INTEGER NOT NULL DEFAULT 0,
	tokens_in          INTEGER NOT NULL DEFAULT 0,
	tokens_out         INTEGER NOT NULL DEFAULT 0,
	tokens_cache_read  INTEGER NOT NULL DEFAULT 0,
	tokens_cache_write INTEGER NOT NULL DEFAULT 0,
	detail             TEXT NOT NULL DEFAULT '',
	prev_hash          BLOB NOT NULL,
	hash               BLOB NOT NULL,
	trace_id           TEXT NOT NULL DEFAULT '',
	span_id            TEXT NOT NULL DEFAULT '',
	parent_span_id     TEXT NOT NULL DEFAULT '',
	link               TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX IF NOT EXISTS records_time ON records(time_ns);
`

// traceMigration adds the trace columns to a log created before they
// existed; its records keep ” there, which hash as they did. Plain SQL
// (PostgreSQL's ALTER TABLE ADD COLUMN is the same).
const traceMigration = `
ALTER TABLE records ADD COLUMN trace_id TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN span_id TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN parent_span_id TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN link TEXT NOT NULL DEFAULT '';
`

const insertSQL = `INSERT INTO records (seq, time_ns, kind, profile, session, actor, target, decision,
	status, duration_ns, bytes_in, bytes_out, tokens_in, tokens_out, tokens_cache_read, tokens_cache_write,
	detail, prev_hash, hash, trace_id, span_id, parent_span_id, link) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

func (l *Log) init() error {
	if err := l.db.BusyTimeout(10 * time.Second); err != nil {
		return err
	}
	sync := "NORMAL"
	if l.opts.Sync == SyncFull {
		sync = "FULL"
	}
	if err := l.db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=" + sync + ";" + schema); err != nil {
		return err
	}
	if !audit.HasTraceColumns(l.db) {
		if err := l.db.Exec("BEGIN IMMEDIATE;" + traceMigration + "COMMIT;"); err != nil {
			_ = l.db.Exec("ROLLBACK") // the migration's error is returned
			return fmt.Errorf("add the trace columns: %w", err)
		}
	}
	var err error
	if l.insert, _, err = l.db.Prepare(insertSQL); err != nil {
		return err
	}
	if l.tip, _, err = l.db.Prepare(`SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`); err != nil {
		return err
	}
	if l.hashAt, _, err = l.db.Prepare(`SELECT hash FROM records WHERE seq = ?`); err != nil {
		return err
	}
	if l.begin, _, err = l.db.Prepare("BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if l.commitTx, _, err = l.db.Prepare("COMMIT"); err != nil {
		return err
	}
	l.rollback, _, err = l.db.Prepare("ROLLBACK")
	return err
}

func (l *Log) closeDB() {
	for _, s := range []*sqlite3.Stmt{l.insert, l.tip, l.hashAt, l.begin, l.commitTx, l.rollback, l.usageUpsert, l.usageThrough} {
		if s != nil {
			s.Close()
		}
	}
	l.db.Close()
}

// Path is the database file.
func (l *Log) Path() string { return l.opts.Path }

// OpenSessions returns the session.start records that had no
// session.end when the log was opened with Options.FindOpenSessions, as
// audit.OpenSessions finds them; nil without that option.
func (l *Log) OpenSessions() []audit.Record { return l.openSessions }

// Metrics returns the log's Prometheus collectors.
func (l *Log) Metrics() *Metrics { return l.metrics }

// Append commits r, alone or with records appended at the same time, and
// returns it as stored (with Seq and hashes). An error wraps
// ErrUnavailable: the record was not written and the action that needed it
// must be refused.
func (l *Log) Append(ctx context.Context, r audit.Record) (audit.Record, error) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	r.Sanitize()
	if err := ctx.Err(); err != nil {
		return audit.Record{}, unavailable(err)
	}
	p := pendingPool.Get().(*pending)
	p.rec = r
	return release(p, l.submit(p))
}

// submit waits until p is committed (or has failed), leading the commit if
// nobody else is.
func (l *Log) submit(p *pending) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return unavailable(ErrClosed)
	}
	l.waiting = append(l.waiting, p)
	l.metrics.queueDepth.Inc()
	if l.leading {
		l.mu.Unlock()
		// Once waiting, the record's fate is decided by a leader; the
		// caller's context is not consulted again: returning early could
		// acknowledge an action whose record is then lost.
		if err := <-p.done; err != errLead {
			return err
		}
		l.mu.Lock()
	}
	// Leading: p is waiting[0], as a new leader finds nobody waiting and a
	// handed lead goes to the head of the line.
	if !l.leading {
		// A new leader lets the goroutines that can run go first, so
		// that records about to be appended join this commit rather
		// than each paying a commit of its own; alone, it goes on at
		// once. (A handed lead finds the records that came during the
		// last commit waiting already.)
		l.leading = true
		l.mu.Unlock()
		runtime.Gosched()
		l.mu.Lock()
	}
	n := min(len(l.waiting), maxBatch)
	batch := append(l.batch[:0], l.waiting[:n]...)
	rest := copy(l.waiting, l.waiting[n:])
	clear(l.waiting[rest:])
	l.waiting = l.waiting[:rest]
	l.metrics.queueDepth.Sub(float64(n))
	l.mu.Unlock()

	func() {
		// The lead passes on however the commit ends.
		defer func() {
			l.mu.Lock()
			if len(l.waiting) > 0 {
				l.waiting[0].done <- errLead
			} else {
				l.leading = false
				l.idle.Broadcast()
			}
			l.mu.Unlock()
		}()
		l.commit(batch)
		clear(batch)
	}()
	return <-p.done
}

// errLead tells a waiting caller that it leads the next commit.
var errLead = errors.New("lead the next commit")

// release returns p to its pool with the outcome of its record.
func release(p *pending, err error) (audit.Record, error) {
	out := p.rec
	p.rec = audit.Record{}
	p.probe = false
	pendingPool.Put(p)
	if err != nil {
		return audit.Record{}, err
	}
	return out, nil
}

// Close stops accepting records, lets the records already waiting be
// committed, waits until OnCommit has had every committed batch, and
// closes the database. Run must have returned.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		for l.leading {
			l.idle.Wait()
		}
		l.mu.Unlock()
		// No commit is in progress nor can start: the last batch is queued.
		if l.delivery != nil {
			close(l.delivery)
			<-l.delivered
		}
		l.anchor.close()
		l.closeDB()
	})
	return nil
}

// commit writes one batch in one transaction and releases its callers.
func (l *Log) commit(batch []*pending) {
	start := time.Now()
	recs, err := l.write(batch)
	l.metrics.commitSeconds.Observe(time.Since(start).Seconds())
	l.metrics.batchSize.Observe(float64(len(batch)))
	if err != nil {
		failed := 0
		for _, p := range batch {
			if !p.probe {
				failed++
			}
		}
		l.health.commitFailed(err, failed)
		l.metrics.failures.Add(float64(failed))
		err = unavailable(err)
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	l.health.commitSucceeded(l.ended)
	l.ended = nil
	i := 0
	if len(recs) > 0 && recs[0].Kind == audit.KindAuditResume {
		l.metrics.written.WithLabelValues(audit.KindAuditResume).Inc()
		i = 1
	}
	for _, p := range batch {
		if !p.probe {
			l.metrics.written.WithLabelValues(recs[i].Kind).Inc()
			p.rec = recs[i]
			i++
		}
		p.done <- nil
	}
	if l.delivery != nil && len(recs) > 0 {
		// Waits only while the queue is full: back-pressure, not loss.
		// Counted before the send, so that a commit waiting for room
		// shows as one more than the queue holds.
		l.metrics.deliveryDepth.Inc()
		l.delivery <- recs
	}
}

// write commits the batch's records, after the audit.resume record of an
// outage that this commit ends, and returns what it committed in order.
func (l *Log) write(batch []*pending) (recs []audit.Record, err error) {
	if f := l.health.brokenFault(); f != nil {
		return nil, f
	}
	if err := l.begin.Exec(); err != nil {
		return nil, l.describe(err)
	}
	defer func() {
		if err != nil && !l.db.GetAutocommit() {
			_ = l.rollback.Exec() // the transaction failed already; that error is returned
		}
	}()
	// A commit runs on a caller's goroutine, whose panic the HTTP server
	// would recover from: the batch fails instead, and the lead passes on.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("audit commit failed: %v", v)
		}
	}()
	seq, prev, err := l.readTip()
	if err != nil {
		return nil, l.describe(err)
	}
	// The database must be the one this log has been writing: not
	// replaced, truncated or rolled back since its last commit. Appending
	// to another would acknowledge actions into a file nobody reads.
	if err := l.checkContinuity(seq, prev); err != nil {
		return nil, l.health.setBroken(err)
	}
	if err := l.files.checkCommit(); err != nil {
		return nil, l.health.setBroken(err)
	}
	recs = make([]audit.Record, 0, len(batch)+1)
	resume, ended := l.health.resumeRecord()
	if ended != nil {
		recs = append(recs, resume)
	}
	for _, p := range batch {
		if !p.probe {
			recs = append(recs, p.rec)
		}
	}
	if len(recs) == 0 {
		// A probe with nothing to write: taking the write lock worked.
		if err := l.rollback.Exec(); err != nil {
			return nil, l.describe(err)
		}
		return nil, nil
	}
	for i := range recs {
		r := &recs[i]
		seq++
		r.Seq = seq
		h := audit.ChainHash(prev, r)
		if i > 0 {
			r.PrevHash = recs[i-1].Hash // hexHash(prev): prev is that record's hash
		} else {
			r.PrevHash = hexHash(prev)
		}
		r.Hash = hexHash(h)
		if err := l.bindInsert(r, prev, h); err != nil {
			return nil, l.describe(err)
		}
		prev = h
	}
	// The usage summary moves with the records it sums, in the same
	// transaction, but only every usageLag records: readers add the
	// records after through_seq from the records themselves, so the
	// summary may trail, and writing it on every commit would add two
	// pages (usage_hours and usage_state) to each provider request's.
	// The sums of the records committed since wait in memory; a crash
	// loses only them, and the next Open sums those records again.
	saved := seq-l.usageSaved >= l.usageLag
	if saved {
		sums := l.usagePending.with(recs)
		if err := l.saveUsage(sums, seq); err != nil {
			return nil, l.describe(err)
		}
	}
	if err := l.commitTx.Exec(); err != nil {
		return nil, l.describe(err)
	}
	l.lastSeq, l.lastHash = seq, prev
	if saved {
		l.usageSaved = seq
		l.usagePending = nil
	} else {
		l.usagePending = l.usagePending.add(recs)
	}
	// The anchor is written after the commit: a crash in between leaves it
	// behind the database, which verify accepts; the reverse would look
	// like removed records.
	if err := l.anchor.advance(seq, prev); err != nil {
		return nil, err
	}
	l.ended = ended
	return recs, nil
}

// checkContinuity reports whether the database's tip (seq, hash) still
// holds the last record this log committed. No other writer should have
// added records after it (the daemon lock keeps them out), but the files
// may have been changed behind its back.
func (l *Log) checkContinuity(seq int64, hash []byte) error {
	switch {
	case seq < l.lastSeq:
		return fmt.Errorf("the audit database %s went back from record %d to record %d while it was being written (truncated, or replaced by an older copy)", l.opts.Path, l.lastSeq, seq)
	case seq == l.lastSeq && !bytes.Equal(hash, l.lastHash):
		return fmt.Errorf("record %d of the audit database %s changed while it was being written (the database was replaced)", seq, l.opts.Path)
	case seq > l.lastSeq && l.lastSeq > 0:
		h, err := l.recordHash(l.lastSeq)
		if err != nil {
			return l.describe(err)
		}
		if !audit.EqualHex(h, l.lastHash) {
			return fmt.Errorf("record %d of the audit database %s changed while it was being written (the database was replaced)", l.lastSeq, l.opts.Path)
		}
	}
	return nil
}

func (l *Log) readTip() (int64, []byte, error) {
	defer l.tip.Reset()
	if !l.tip.Step() {
		if err := l.tip.Err(); err != nil {
			return 0, nil, err
		}
		return 0, audit.Genesis(), nil
	}
	seq := l.tip.ColumnInt64(0)
	h := append([]byte(nil), l.tip.ColumnRawBlob(1)...)
	return seq, h, nil
}

// hexHash is hex.EncodeToString(h) in one allocation instead of two:
// every record of every commit takes two.
func hexHash(h []byte) string {
	var buf [2 * sha256.Size]byte
	if len(h) > sha256.Size {
		return hex.EncodeToString(h)
	}
	return string(buf[:hex.Encode(buf[:], h)])
}

// recordHash is the hash of record seq in hex, "" if there is none.
func (l *Log) recordHash(seq int64) (string, error) {
	s := l.hashAt
	defer s.Reset()
	if err := s.BindInt64(1, seq); err != nil {
		return "", err
	}
	if !s.Step() {
		return "", s.Err()
	}
	return hex.EncodeToString(s.ColumnRawBlob(0)), nil
}

func (l *Log) bindInsert(r *audit.Record, prev, h []byte) error {
	s := l.insert
	defer s.Reset()
	ints := []int64{r.Seq, r.Time.UnixNano()}
	for i, v := range ints {
		if err := s.BindInt64(i+1, v); err != nil {
			return err
		}
	}
	for i, v := range []string{r.Kind, r.Profile, r.Session, r.Actor, r.Target, r.Decision} {
		if err := s.BindText(i+3, v); err != nil {
			return err
		}
	}
	for i, v := range []int64{r.Status, int64(r.Duration), r.BytesIn, r.BytesOut, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite} {
		if err := s.BindInt64(i+9, v); err != nil {
			return err
		}
	}
	// BindText copies the text into SQLite's memory and keeps nothing of
	// the string: the detail's bytes are bound as they are, without the
	// copy string(r.Detail) would allocate on every record.
	if err := s.BindText(17, unsafe.String(unsafe.SliceData(r.Detail), len(r.Detail))); err != nil { //nolint:gosec // G103: read only for the call, see above
		return err
	}
	if err := s.BindBlob(18, prev); err != nil {
		return err
	}
	if err := s.BindBlob(19, h); err != nil {
		return err
	}
	for i, v := range []string{r.TraceID, r.SpanID, r.ParentSpanID, r.Link} {
		if err := s.BindText(i+20, v); err != nil {
			return err
		}
	}
	return s.Exec()
}

// Metrics are the audit log's Prometheus collectors.
type Metrics struct {
	written       *prometheus.CounterVec
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
	failures      prometheus.Counter
	queueDepth    prometheus.Gauge
	deliveryDepth prometheus.Gauge
	healthy       prometheus.Gauge
}

func newMetrics() *Metrics {
	m := &Metrics{
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ringlet_audit_records_total", Help: "Audit records committed, by kind.",
		}, []string{"kind"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ringlet_audit_batch_records", Help: "Records committed per audit transaction.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ringlet_audit_commit_duration_seconds", Help: "Time to commit one audit transaction.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1},
		}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ringlet_audit_write_failures_total", Help: "Audit records that could not be written; their actions were refused.",
		}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringlet_audit_queue_depth", Help: "Audit records waiting for a commit.",
		}),
		deliveryDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringlet_audit_delivery_queue_batches", Help: "Committed audit batches waiting for the daemon's observers (the dashboard, /api/events, the OpenTelemetry export); when the queue is full, the next commit waits.",
		}),
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringlet_audit_writable", Help: "1 while the audit log can be written, 0 while it cannot (a failed commit, its files replaced, its file system read-only or full) and actions are refused.",
		}),
	}
	for _, k := range audit.Kinds {
		m.written.WithLabelValues(k)
	}
	return m
}

// Collectors lists the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.written, m.batchSize, m.commitSeconds, m.failures, m.queueDepth, m.deliveryDepth, m.healthy}
}
