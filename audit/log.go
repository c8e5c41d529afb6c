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

// Log appends records through one writer goroutine that commits them in
// batches: callers wait until their own record is committed.
type Log struct {
	opts    Options
	anchor  *anchorFile
	queue   chan *pending
	metrics *Metrics

	// pendingN counts records handed to Append and not yet committed or
	// failed, including those whose callers are about to queue them: the
	// writer waits briefly for those to fill a batch.
	pendingN atomic.Int64

	// queueing is held for reading while an Append checks closed and
	// queues its record, and for writing while Close closes closed: no
	// record can be queued after the writer has drained the queue and
	// stopped, where nobody would ever answer its caller.
	queueing  sync.RWMutex
	closeOnce sync.Once
	closed    chan struct{}
	done      chan struct{}
	healthy   atomic.Bool

	db     *sqlite3.Conn
	insert *sqlite3.Stmt
	tip    *sqlite3.Stmt
}

type pending struct {
	rec  Record
	done chan error
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// Open opens (creating if needed) the database at opts.Path with mode 0600
// in a 0700 directory, and starts the writer. Close stops it.
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
	l := &Log{opts: opts, db: db, queue: make(chan *pending, 4*maxBatch), closed: make(chan struct{}), done: make(chan struct{}), metrics: newMetrics()}
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
	go l.run()
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
	l.tip, _, err = l.db.Prepare(`SELECT seq, hash FROM records ORDER BY seq DESC LIMIT 1`)
	return err
}

func (l *Log) closeDB() {
	if l.insert != nil {
		l.insert.Close()
	}
	if l.tip != nil {
		l.tip.Close()
	}
	l.db.Close()
}

// Path is the database file.
func (l *Log) Path() string { return l.opts.Path }

// Healthy reports whether the last commit succeeded.
func (l *Log) Healthy() bool { return l.healthy.Load() }

// Metrics returns the log's Prometheus collectors.
func (l *Log) Metrics() *Metrics { return l.metrics }

// Append hands r to the writer and waits until it is committed. It returns
// the record as stored (with Seq and hashes). An error wraps
// ErrUnavailable: the record was not written and the action that needed it
// must be refused.
func (l *Log) Append(ctx context.Context, r Record) (Record, error) {
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	r.Time = r.Time.UTC()
	r.sanitize()
	p := pendingPool.Get().(*pending)
	p.rec = r
	l.queueing.RLock()
	select {
	case <-l.closed:
		l.queueing.RUnlock()
		pendingPool.Put(p)
		return Record{}, unavailable(ErrClosed)
	default:
	}
	l.pendingN.Add(1)
	select {
	case l.queue <- p:
		l.metrics.queueDepth.Inc()
	case <-ctx.Done():
		l.queueing.RUnlock()
		l.pendingN.Add(-1)
		pendingPool.Put(p)
		return Record{}, unavailable(ctx.Err())
	}
	l.queueing.RUnlock()
	// Once queued, the record's fate is decided by the writer; waiting for
	// it is bounded by the commit, so the caller's context is not consulted
	// again: returning early could acknowledge an action whose record is
	// then lost.
	err := <-p.done
	out := p.rec
	p.rec = Record{}
	pendingPool.Put(p)
	if err != nil {
		return Record{}, err
	}
	return out, nil
}

// Close stops accepting records, commits what is queued and closes the
// database.
func (l *Log) Close() error {
	l.closeOnce.Do(func() {
		l.queueing.Lock()
		close(l.closed)
		l.queueing.Unlock()
	})
	<-l.done
	return nil
}

// maxLinger bounds how long the writer waits for callers that are about to
// queue a record, so that concurrent writers share a transaction. A lone
// writer never waits: nobody else is pending.
const maxLinger = time.Millisecond

// fill adds queued records to batch: first whatever is queued, then, while
// more callers are known to be on their way, what arrives within maxLinger.
func (l *Log) fill(batch []*pending, linger *time.Timer) []*pending {
	for len(batch) < maxBatch {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
			continue
		default:
		}
		if l.pendingN.Load() <= int64(len(batch)) {
			return batch
		}
		break
	}
	linger.Reset(maxLinger)
	defer linger.Stop()
	for len(batch) < maxBatch && l.pendingN.Load() > int64(len(batch)) {
		select {
		case p := <-l.queue:
			batch = append(batch, p)
		case <-linger.C:
			return batch
		}
	}
	return batch
}

func (l *Log) run() {
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer close(l.done)
	defer l.closeDB()
	defer l.anchor.close()
	batch := make([]*pending, 0, maxBatch)
	for {
		var first *pending
		select {
		case first = <-l.queue:
		case <-l.closed:
			// Drain what was queued before Close.
			for {
				select {
				case p := <-l.queue:
					l.metrics.queueDepth.Dec()
					l.commit([]*pending{p})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		batch = l.fill(batch, linger)
		l.metrics.queueDepth.Sub(float64(len(batch)))
		l.commit(batch)
	}
}

// commit writes one batch in one transaction and releases its callers.
func (l *Log) commit(batch []*pending) {
	start := time.Now()
	recs, err := l.write(batch)
	// These callers are released below; they no longer count as pending.
	l.pendingN.Add(-int64(len(batch)))
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
		l.opts.OnCommit(recs)
	}
}

func (l *Log) write(batch []*pending) (recs []Record, err error) {
	if err := l.db.Exec("BEGIN IMMEDIATE"); err != nil {
		return nil, l.describe(err)
	}
	defer func() {
		if err != nil && !l.db.GetAutocommit() {
			l.db.Exec("ROLLBACK")
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
	if err := l.db.Exec("COMMIT"); err != nil {
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
			Name: "ringlet_audit_queue_depth", Help: "Audit records waiting for the writer.",
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
