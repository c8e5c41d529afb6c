package auditlog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/privatefile"
)

// fault is why the log cannot be written, and since when.
type fault struct {
	err   error
	since time.Time
}

// health is what the log knows, in memory, about whether a record could be
// committed now. Three things can say no:
//
//   - broken: the database's files were replaced, truncated or deleted
//     under the writer, or the database went back. Nothing clears it but a
//     restart (and Open then compares the database with its anchor).
//   - env: the file system holding the log is read-only or full, as Run
//     last saw it; cleared when Run sees otherwise.
//   - write: the last commit failed; cleared by a commit that succeeds,
//     which a probe tries when nothing else clears it.
//
// An outage (any of them) ends with an audit.resume record, committed in
// the same transaction as the first records written after it.
type health struct {
	metrics *Metrics
	log     *slog.Logger

	broken, env, write atomic.Pointer[fault]

	// mu serialises changes of state, so that each is logged once.
	mu sync.Mutex
	// outage is the unwritable spell the next commit reports, nil if none.
	outage *outage
}

type outage struct {
	since   time.Time
	reason  string
	failed  int64 // records whose commit failed
	refused int64 // requests refused by Writable without trying
}

func (h *health) init(m *Metrics, log *slog.Logger) {
	h.metrics, h.log = m, log
	m.healthy.Set(1)
}

// current is the fault that stops writes now, nil if none.
func (h *health) current() *fault {
	if f := h.broken.Load(); f != nil {
		return f
	}
	if f := h.env.Load(); f != nil {
		return f
	}
	return h.write.Load()
}

func (h *health) brokenFault() error {
	if f := h.broken.Load(); f != nil {
		return f.err
	}
	return nil
}

// set records a fault of one kind (nil clears it) and logs what changed.
func (h *health) set(which *atomic.Pointer[fault], err error) {
	old := which.Load()
	if (old == nil) == (err == nil) && (err == nil || old.err.Error() == err.Error()) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	wasOK := h.current() == nil
	if err == nil {
		which.Store(nil)
	} else {
		which.Store(&fault{err: err, since: time.Now()})
		if h.outage == nil {
			h.outage = &outage{since: time.Now(), reason: err.Error()}
		}
	}
	ok := h.current() == nil
	switch {
	case wasOK && !ok:
		h.metrics.healthy.Set(0)
		h.log.Error("the audit log cannot be written; actions are refused until it can", "reason", err.Error())
	case !wasOK && ok:
		h.metrics.healthy.Set(1)
		h.log.Info("the audit log can be written again")
	case err != nil:
		h.log.Error("the audit log cannot be written", "reason", err.Error())
	}
}

// setBroken makes err permanent for this log and returns it.
func (h *health) setBroken(err error) error {
	err = fmt.Errorf("%w; no record can be written safely any more: stop the daemon, keep the files as they are, and check them with 'ringlet audit verify'", err)
	h.set(&h.broken, err)
	return err
}

func (h *health) commitFailed(err error, records int) {
	if h.broken.Load() != nil {
		h.countOutage(int64(records), 0)
		return
	}
	h.set(&h.write, err)
	h.countOutage(int64(records), 0)
}

// commitSucceeded clears a failed commit and ends the outage whose
// audit.resume record the commit carried (nil if none).
func (h *health) commitSucceeded(ended *outage) {
	if ended != nil {
		h.mu.Lock()
		if h.outage == ended {
			h.outage = nil
		}
		h.mu.Unlock()
	}
	if h.write.Load() != nil {
		h.set(&h.write, nil)
	}
}

func (h *health) countOutage(failed, refused int64) {
	h.mu.Lock()
	if h.outage != nil {
		h.outage.failed += failed
		h.outage.refused += refused
	}
	h.mu.Unlock()
}

// resumeRecord is the audit.resume record of the outage that the commit in
// progress would end, if any; commitSucceeded(o) ends it.
func (h *health) resumeRecord() (audit.Record, *outage) {
	h.mu.Lock()
	o := h.outage
	var r audit.Record
	if o != nil {
		r = audit.Record{
			Time: time.Now().UTC(), Kind: audit.KindAuditResume, Decision: audit.Allow,
			Detail: audit.DetailJSON(map[string]any{
				"unwritable_since": o.since.UTC().Format(time.RFC3339Nano),
				"reason":           o.reason,
				"failed_records":   o.failed,
				"refused_requests": o.refused,
			}),
		}
	}
	h.mu.Unlock()
	return r, o
}

// Writable reports, from memory, whether a record can be committed now:
// nil, or why not (an error matching ErrUnavailable). Callers that act
// before they record, like the provider proxy, ask it first.
//
// While the log is unwritable, each call checks again (files, file system,
// and a commit that writes nothing), so the first caller after the cause
// is gone finds it writable without waiting for anything else to write.
// Concurrent calls share one check.
func (l *Log) Writable() error {
	if l.health.current() == nil {
		return nil
	}
	if l.health.broken.Load() == nil {
		l.checks.fresh(l.check)
	}
	if f := l.health.current(); f != nil {
		l.health.countOutage(0, 1)
		return unavailable(f.err)
	}
	return nil
}

// State is what the log last found about whether it can be written: nil,
// or why not. Unlike Writable it neither checks again nor counts a
// refusal: it is for reports (/api/health), not for actions.
func (l *Log) State() error {
	if f := l.health.current(); f != nil {
		return unavailable(f.err)
	}
	return nil
}

// Healthy reports whether the log can be written, as Writable does.
func (l *Log) Healthy() bool { return l.Writable() == nil }

// Run checks, every CheckInterval until ctx ends, what makes the log
// unwritable before a commit fails: its files replaced, truncated or
// deleted, its file system read-only or full. While the log is unwritable
// it probes with a commit, so that it recovers (and Writable says so)
// whatever kind of action comes next. Close the log after Run returns.
func (l *Log) Run(ctx context.Context) error {
	t := time.NewTicker(l.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.checks.fresh(l.check)
		}
	}
}

// check looks at the files and the file system, and probes with a commit
// when only a failed commit stands in the way.
func (l *Log) check() {
	if l.health.broken.Load() != nil {
		return
	}
	if err := l.files.check(); err != nil {
		_ = l.health.setBroken(err) // the log says why from now on
		return
	}
	l.health.set(&l.health.env, checkFileSystem(filepath.Dir(l.opts.Path)))
	if l.health.env.Load() == nil && l.health.write.Load() != nil {
		p := pendingPool.Get().(*pending)
		p.probe = true
		_, _ = release(p, l.submit(p)) // a probe: its outcome is the health it sets
	}
}

// singleCheck runs one check at a time; fresh waits for one that started
// after it was called.
type singleCheck struct {
	mu       sync.Mutex
	started  uint64
	inflight *checkCall
}

type checkCall struct {
	gen  uint64
	done chan struct{}
}

// fresh returns once a run of check that began after the call has ended,
// running it itself when none is in flight.
func (s *singleCheck) fresh(check func()) {
	s.mu.Lock()
	arrived := s.started
	for {
		c := s.inflight
		if c == nil {
			s.started++
			c = &checkCall{gen: s.started, done: make(chan struct{})}
			s.inflight = c
			s.mu.Unlock()
			defer func() {
				s.mu.Lock()
				s.inflight = nil
				s.mu.Unlock()
				close(c.done)
			}()
			check()
			return
		}
		s.mu.Unlock()
		<-c.done
		if c.gen > arrived {
			return
		}
		s.mu.Lock()
	}
}

// minFree is the free space below which the file system holding the log
// counts as full: a commit needs a few pages of write-ahead log.
const minFree = 64 << 10

var errReadOnlyFS = errors.New("the file system holding the audit log is read-only (remounted read-only after an error?); make it writable to resume")

// checkFileSystem reports whether the file system holding dir is
// read-only or full; nil when it cannot tell.
func checkFileSystem(dir string) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil
	}
	// ST_RDONLY on Linux and MNT_RDONLY on macOS are both 1.
	if uint64(st.Flags)&1 != 0 {
		return errReadOnlyFS
	}
	if uint64(st.Bavail)*uint64(st.Bsize) < minFree {
		return audit.ErrDiskFull
	}
	return nil
}

// describe is describe for a failed write, with what the log can find out
// about the cause. ncruces/go-sqlite3 (v0.37.0) reports most failed writes
// as a bare SQLITE_IOERR (a full disk too: its ENOSPC check is a type
// assertion that the *fs.PathError from os.File.WriteAt defeats), so the
// files and the file system are looked at: replaced or deleted files, a
// read-only or full file system.
func (l *Log) describe(err error) error {
	if errors.Is(err, sqlite3.IOERR) || errors.Is(err, sqlite3.READONLY) || errors.Is(err, sqlite3.CANTOPEN) || errors.Is(err, sqlite3.FULL) {
		if ferr := l.files.check(); ferr != nil {
			return l.health.setBroken(ferr)
		}
		if fsErr := checkFileSystem(filepath.Dir(l.opts.Path)); errors.Is(fsErr, errReadOnlyFS) {
			return fsErr
		}
		if errors.Is(err, sqlite3.FULL) || lowOnSpace(filepath.Dir(l.opts.Path)) {
			return audit.ErrDiskFull
		}
	}
	return audit.Describe(err)
}

// lowOnSpace reports whether the file system holding dir has less than
// 1 MiB available: an I/O error then is most likely the full disk.
func lowOnSpace(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	return uint64(st.Bavail)*uint64(st.Bsize) < 1<<20
}

// watchedFiles are the database's files as the writer opened them. The
// writer holds them open, so a file replaced, truncated or deleted behind
// its back would keep taking records nobody else can read.
type watchedFiles struct {
	mu    sync.Mutex
	paths [3]string // database, write-ahead log, shared memory
	ids   [3]fileID
	least [2]int64 // sizes seen: the database and its log never shrink under a writer
}

type fileID struct{ dev, ino uint64 }

var watchedNames = [3]string{"audit database", "audit database's write-ahead log", "audit database's shared memory file"}

func watchFiles(db string) (*watchedFiles, error) {
	w := &watchedFiles{paths: [3]string{db, db + "-wal", db + "-shm"}}
	for i, p := range w.paths {
		var st syscall.Stat_t
		if err := privatefile.Stat(p, &st); err != nil {
			return nil, fmt.Errorf("audit log %s: %w", p, err)
		}
		w.ids[i] = fileID{uint64(st.Dev), uint64(st.Ino)}
		if i < len(w.least) {
			w.least[i] = st.Size
		}
	}
	return w, nil
}

// check reports a file replaced, truncated or deleted since the writer
// opened it.
func (w *watchedFiles) check() error { return w.checkFirst(len(w.paths)) }

// checkCommit is check for the database and its write-ahead log, the two
// files a commit writes: each stat call costs a noticeable part of a
// commit, so the shared memory file is left to Run.
func (w *watchedFiles) checkCommit() error { return w.checkFirst(2) }

func (w *watchedFiles) checkFirst(n int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i, p := range w.paths[:n] {
		var st syscall.Stat_t
		if err := privatefile.Stat(p, &st); err != nil {
			if errors.Is(err, syscall.ENOENT) {
				return fmt.Errorf("the %s %s was deleted or moved while it was being written", watchedNames[i], p)
			}
			return nil // not a verdict: the commit finds out
		}
		if (fileID{uint64(st.Dev), uint64(st.Ino)}) != w.ids[i] {
			return fmt.Errorf("the %s %s was replaced by another file while it was being written", watchedNames[i], p)
		}
		if i < len(w.least) {
			if st.Size < w.least[i] {
				return fmt.Errorf("the %s %s was truncated while it was being written (%d bytes, down from %d)", watchedNames[i], p, st.Size, w.least[i])
			}
			w.least[i] = st.Size
		}
	}
	return nil
}
