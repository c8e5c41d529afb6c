package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"

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

// ErrUnavailable wraps every failure to record: the action that needed the
// record must be refused.
var ErrUnavailable = errors.New("the audit log cannot be written")

// UnavailableError is how Append fails: it matches ErrUnavailable, and
// Reason says why, in words a user can act on ("the disk holding the audit
// log is full; free space to resume").
type UnavailableError struct{ Reason error }

func (e *UnavailableError) Error() string   { return ErrUnavailable.Error() + ": " + e.Reason.Error() }
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Reason} }

func unavailable(reason error) error { return &UnavailableError{Reason: reason} }

// ErrClosed means the log has been closed.
var ErrClosed = errors.New("the audit log is closed")

// Options configure a Log.
type Options struct {
	Path string // the database file; its directory is created 0700
	Sync string // SyncNormal (default) or SyncFull
	// OnCommit receives every committed batch, in order, after the callers
	// have been released. It must not block.
	OnCommit func([]Record)
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
type Log struct {
	opts    Options
	anchor  *anchorFile
	metrics *Metrics

	// mu guards waiting, leading and closed.
	mu      sync.Mutex
	idle    sync.Cond // broadcast when leading turns false
	waiting []*pending
	leading bool
	closed  bool
	batch   []*pending // the leader's; reused

	closeOnce sync.Once
	healthy   atomic.Bool

	db     *sqlite3.Conn
	insert *sqlite3.Stmt
	tip    *sqlite3.Stmt
	// Prepared once: parsing them on every commit cost a fifth of it.
	begin, commitTx, rollback *sqlite3.Stmt
}

type pending struct {
	rec  Record
	done chan error
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Open opens (creating if needed) the database at opts.Path with mode 0600
// in a 0700 directory. Close closes it.
func Open(opts Options) (*Log, error) {
	if opts.Sync == "" {
		opts.Sync = SyncNormal
	}
	if opts.Sync != SyncNormal && opts.Sync != SyncFull {
		return nil, fmt.Errorf("invalid audit.sync %q; accepted values: normal, full", opts.Sync)
	}
	if err := privatefile.EnsureDir(filepath.Dir(opts.Path)); err != nil {
		return nil, fmt.Errorf("audit log directory: %w", err)
	}
	if err := checkIsDatabase(opts.Path); err != nil {
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
	db, err := sqlite3.OpenFlags(dbURI(opts.Path), sqlite3.OPEN_READWRITE|sqlite3.OPEN_CREATE|sqlite3.OPEN_URI)
	if err != nil {
		return nil, fmt.Errorf("open audit log %s: %w", opts.Path, err)
	}
	l := &Log{opts: opts, db: db, metrics: newMetrics(), batch: make([]*pending, 0, maxBatch)}
	l.idle.L = &l.mu
	if err := l.init(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open audit log %s: %w", opts.Path, err)
	}
	l.anchor, err = openAnchor(AnchorPath(opts.Path), opts.Sync == SyncFull)
	if err != nil {
		l.closeDB()
		return nil, err
	}
	l.healthy.Store(true)
	l.metrics.healthy.Set(1)
	return l, nil
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

// dbURI is the SQLite URI of path with modeof=path, so that the files
// SQLite creates beside it get its mode.
func dbURI(path string) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: "modeof=" + url.QueryEscape(path)}
	return u.String()
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
	hash               BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS records_time ON records(time_ns);
`

const insertSQL = `INSERT INTO records (seq, time_ns, kind, profile, session, actor, target, decision,
	status, duration_ns, bytes_in, bytes_out, tokens_in, tokens_out, tokens_cache_read, tokens_cache_write,
	detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

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
	var err error
	if l.insert, _, err = l.db.Prepare(insertSQL); err != nil {
		return err
	}
	if l.tip, _, err = l.db.Prepare(`SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`); err != nil {
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
	for _, s := range []*sqlite3.Stmt{l.insert, l.tip, l.begin, l.commitTx, l.rollback} {
		if s != nil {
			s.Close()
		}
	}
	l.db.Close()
}

// Path is the database file.
func (l *Log) Path() string { return l.opts.Path }

// Healthy reports whether the last commit succeeded.
func (l *Log) Healthy() bool { return l.healthy.Load() }

// Metrics returns the log's Prometheus collectors.
func (l *Log) Metrics() *Metrics { return l.metrics }

// Append commits r, alone or with records appended at the same time, and
// returns it as stored (with Seq and hashes). An error wraps
// ErrUnavailable: the record was not written and the action that needed it
// must be refused.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	r.sanitize()
	if err := ctx.Err(); err != nil {
		return Record{}, unavailable(err)
	}
	p := pendingPool.Get().(*pending)
	p.rec = r
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		pendingPool.Put(p)
		return Record{}, unavailable(ErrClosed)
	}
	l.waiting = append(l.waiting, p)
	l.metrics.queueDepth.Inc()
	if l.leading {
		l.mu.Unlock()
		// Once waiting, the record's fate is decided by a leader; the
		// caller's context is not consulted again: returning early could
		// acknowledge an action whose record is then lost.
		if err := <-p.done; err != errLead {
			return release(p, err)
		}
		l.mu.Lock()
	}
	// Leading: p is waiting[0], as a new leader finds nobody waiting and a
	// handed lead goes to the head of the line.
	l.leading = true
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
	return release(p, <-p.done)
}

// errLead tells a waiting caller that it leads the next commit.
var errLead = errors.New("lead the next commit")

// release returns p to its pool with the outcome of its record.
func release(p *pending, err error) (Record, error) {
	out := p.rec
	p.rec = Record{}
	pendingPool.Put(p)
	if err != nil {
		return Record{}, err
	}
	return out, nil
}

// Close stops accepting records, lets the records already waiting be
// committed, and closes the database.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		for l.leading {
			l.idle.Wait()
		}
		l.mu.Unlock()
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
		l.healthy.Store(false)
		l.metrics.healthy.Set(0)
		l.metrics.failures.Add(float64(len(batch)))
		err = unavailable(err)
		for _, p := range batch {
			p.done <- err
		}
		return
	}
	l.healthy.Store(true)
	l.metrics.healthy.Set(1)
	for i, p := range batch {
		l.metrics.written.WithLabelValues(recs[i].Kind).Inc()
		p.rec = recs[i]
		p.done <- nil
	}
	if l.opts.OnCommit != nil {
		// A notification hook: its failure must not stop the log.
		func() {
			defer func() { _ = recover() }()
			l.opts.OnCommit(recs)
		}()
	}
}

func (l *Log) write(batch []*pending) (recs []Record, err error) {
	if err := l.begin.Exec(); err != nil {
		return nil, l.describe(err)
	}
	defer func() {
		if err != nil && !l.db.GetAutocommit() {
			l.rollback.Exec()
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
	recs = make([]Record, len(batch))
	for i, p := range batch {
		r := p.rec
		seq++
		r.Seq = seq
		h := chainHash(prev, &r)
		r.PrevHash, r.Hash = hex.EncodeToString(prev), hex.EncodeToString(h)
		if err := l.bindInsert(&r, prev, h); err != nil {
			return nil, l.describe(err)
		}
		prev = h
		recs[i] = r
	}
	if err := l.commitTx.Exec(); err != nil {
		return nil, l.describe(err)
	}
	// The anchor is written after the commit: a crash in between leaves it
	// behind the database, which verify accepts; the reverse would look
	// like removed records.
	if err := l.anchor.advance(seq, prev); err != nil {
		return nil, err
	}
	return recs, nil
}

func (l *Log) readTip() (int64, []byte, error) {
	defer l.tip.Reset()
	if !l.tip.Step() {
		if err := l.tip.Err(); err != nil {
			return 0, nil, err
		}
		return 0, genesis, nil
	}
	seq := l.tip.ColumnInt64(0)
	h := append([]byte(nil), l.tip.ColumnRawBlob(1)...)
	return seq, h, nil
}

func (l *Log) bindInsert(r *Record, prev, h []byte) error {
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
	if err := s.BindText(17, string(r.Detail)); err != nil {
		return err
	}
	if err := s.BindBlob(18, prev); err != nil {
		return err
	}
	if err := s.BindBlob(19, h); err != nil {
		return err
	}
	return s.Exec()
}

// describe turns SQLite errors into a sentence a user can act on.
func describe(err error) error {
	switch {
	case errors.Is(err, sqlite3.FULL):
		return errors.New("the disk holding the audit log is full; free space to resume")
	case errors.Is(err, sqlite3.READONLY):
		return errors.New("the audit log is read-only; make it writable to resume")
	case errors.Is(err, sqlite3.BUSY):
		return errors.New("the audit log is locked by another process")
	case errors.Is(err, sqlite3.CORRUPT), errors.Is(err, sqlite3.NOTADB):
		return errors.New("the audit log database is corrupted; move it aside and run 'ringlet audit verify' on the copy")
	case errors.Is(err, sqlite3.IOERR):
		return fmt.Errorf("I/O error writing the audit log (%v)", err)
	}
	return err
}

// describe is describe for a failed write, which also recognises a full
// disk. ncruces/go-sqlite3 (v0.37.0) reports one as SQLITE_IOERR_WRITE,
// not SQLITE_FULL: its ENOSPC check is a type assertion that the
// *fs.PathError from os.File.WriteAt defeats. An I/O error while the file
// system holding the log has almost no space left is taken for the full
// disk it most likely is.
func (l *Log) describe(err error) error {
	if errors.Is(err, sqlite3.IOERR) && lowOnSpace(filepath.Dir(l.opts.Path)) {
		return describe(sqlite3.FULL)
	}
	return describe(err)
}

// lowOnSpace reports whether the file system holding dir has less than
// 1 MiB available.
func lowOnSpace(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return uint64(st.Bavail)*uint64(st.Bsize) < 1<<20
}

// AnchorPath is the anchor file beside a database.
func AnchorPath(db string) string { return db + ".anchor" }

// Files are the database's files: itself, its write-ahead log and shared
// memory, and its anchor.
func Files(db string) []string {
	return []string{db, db + "-wal", db + "-shm", AnchorPath(db)}
}

// anchorFile holds the latest committed (seq, hash) outside the database,
// as one fixed-length line overwritten in place, so a truncated or
// replaced database is caught by verify.
type anchorFile struct {
	f    *os.File
	sync bool
	last int64  // the highest seq this process anchored
	line []byte // reused line buffer
}

const anchorLen = len("ringlet-audit-anchor v1 ") + 20 + 1 + 64 + 1

func openAnchor(path string, sync bool) (*anchorFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, privatefile.FileMode)
	if err != nil {
		return nil, fmt.Errorf("open audit anchor %s: %w", path, err)
	}
	if err := privatefile.Check(path); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit anchor: %w", err)
	}
	return &anchorFile{f: f, sync: sync}, nil
}

func (a *anchorFile) close() { a.f.Close() }

func (a *anchorFile) advance(seq int64, hash []byte) error {
	// No file lock and no read-back: a commit's anchor write is two
	// syscalls on the hot path. Writers in other processes (the CLI) can
	// interleave so that an older tip is written last; the anchor then lags
	// the database, which verify accepts, and the next commit moves it on.
	// It never runs ahead of the database, which is what verify checks.
	if seq <= a.last {
		return nil
	}
	a.line = append(a.line[:0], "ringlet-audit-anchor v1 "...)
	a.line = fmt.Appendf(a.line, "%020d ", seq)
	a.line = hex.AppendEncode(a.line, hash)
	a.line = append(a.line, '\n')
	if _, err := a.f.WriteAt(a.line, 0); err != nil {
		return fmt.Errorf("write audit anchor: %w", err)
	}
	if a.sync {
		if err := a.f.Sync(); err != nil {
			return fmt.Errorf("sync audit anchor: %w", err)
		}
	}
	a.last = seq
	return nil
}

// ReadAnchor returns the anchored (seq, hash) of a database; ok is false
// when there is no anchor file or it is empty.
func ReadAnchor(db string) (seq int64, hash string, ok bool, err error) {
	data, err := os.ReadFile(AnchorPath(db))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(data) == 0) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, err
	}
	seq, hash, err = parseAnchor(data)
	if err != nil {
		return 0, "", false, fmt.Errorf("audit anchor %s: %w", AnchorPath(db), err)
	}
	return seq, hash, true, nil
}

func parseAnchor(b []byte) (int64, string, error) {
	f := strings.Fields(string(b))
	if len(f) != 4 || f[0] != "ringlet-audit-anchor" || f[1] != "v1" || len(f[3]) != 64 {
		return 0, "", errors.New("not a ringlet audit anchor")
	}
	seq, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || seq < 0 {
		return 0, "", errors.New("not a ringlet audit anchor")
	}
	if _, err := hex.DecodeString(f[3]); err != nil {
		return 0, "", errors.New("not a ringlet audit anchor")
	}
	return seq, f[3], nil
}

// Metrics are the audit log's Prometheus collectors.
type Metrics struct {
	written       *prometheus.CounterVec
	batchSize     prometheus.Histogram
	commitSeconds prometheus.Histogram
	failures      prometheus.Counter
	queueDepth    prometheus.Gauge
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
		healthy: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ringlet_audit_writable", Help: "1 when the last audit commit succeeded, 0 while the log cannot be written and actions are refused.",
		}),
	}
	for _, k := range Kinds {
		m.written.WithLabelValues(k)
	}
	return m
}

// Collectors lists the collectors to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.written, m.batchSize, m.commitSeconds, m.failures, m.queueDepth, m.healthy}
}
