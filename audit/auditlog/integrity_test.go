package auditlog

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ncruces/go-sqlite3"

	"github.com/neullabs/ringlet/audit"
)

// tamperings are what can happen to a log while no writer has it open.
// Each returns the problem Open and Verify must name.
var tamperings = []struct {
	name    string
	setup   func(t *testing.T) string
	problem string
}{
	{"older copy restored", olderCopy, "the last records were removed"},
	{"truncated to nothing", func(t *testing.T) string {
		path := logWith(t, 10)
		for _, s := range dbFiles {
			if err := os.Truncate(path+s, 0); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		return path
	}, "the last records were removed"},
	{"last records deleted", tampered(`DELETE FROM records WHERE seq > 7`), "the last records were removed"},
	{"deleted", func(t *testing.T) string {
		path := logWith(t, 10)
		for _, s := range dbFiles {
			os.Remove(path + s)
		}
		return path
	}, "the database is missing but its anchor names record 10"},
	{"anchor removed", func(t *testing.T) string {
		path := logWith(t, 10)
		if err := os.Remove(audit.AnchorPath(path)); err != nil {
			t.Fatal(err)
		}
		return path
	}, "no anchor file"},
	{"anchored record rewritten", forge(10, 0), "record 10 differs from the anchored record"},
}

// TestOpenRefusesWhatVerifyRefuses: a writer must not re-anchor a database
// that does not match its anchor (issue #11 item 4). Open refuses, the
// anchor and database stay as they were, and Verify keeps failing.
func TestOpenRefusesWhatVerifyRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range tamperings {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.setup(t)
			anchorBefore, _ := os.ReadFile(audit.AnchorPath(path))
			_, statBefore := os.Stat(path)

			l, err := Open(Options{Path: path})
			if err == nil {
				l.Append(t.Context(), testRecord(99))
				l.Close()
				t.Fatalf("Open: got a log, want a refusal")
			}
			var ae *audit.AnchorError
			if !errors.As(err, &ae) || !errors.Is(err, audit.ErrAnchorMismatch) || !strings.Contains(err.Error(), tt.problem) || !strings.Contains(err.Error(), "ringlet audit new-epoch") {
				t.Errorf("Open: got %v, want an *AnchorError naming %q and 'ringlet audit new-epoch'", err, tt.problem)
			}
			if got, _ := os.ReadFile(audit.AnchorPath(path)); string(got) != string(anchorBefore) {
				t.Errorf("anchor after the refused Open: got %q, want it unchanged %q", got, anchorBefore)
			}
			if _, err := os.Stat(path); os.IsNotExist(statBefore) && !os.IsNotExist(err) {
				t.Errorf("the refused Open created %s", path)
			}
			res := verify(t, path)
			if res.OK || !strings.Contains(res.Problem, tt.problem) {
				t.Errorf("Verify: got OK=%v problem %q, want not OK naming %q", res.OK, res.Problem, tt.problem)
			}
		})
	}
}

// TestOpenAcceptsAnchorBehind: the anchor is written after the commit, so a
// crash in between leaves the database ahead of it, which is not
// tampering.
func TestOpenAcceptsAnchorBehind(t *testing.T) {
	t.Parallel()
	// A new log is anchored at record 0 before its first commit: a crash
	// right after that commit leaves an anchor behind, not none.
	fresh := dbPath(t)
	l := openLog(t, Options{Path: fresh})
	a, ok, err := audit.ReadAnchor(fresh)
	if err != nil || !ok || a.Seq != 0 {
		t.Fatalf("anchor of a new log: got %+v (ok %v, %v), want record 0", a, ok, err)
	}
	appendN(t, l, 2)
	l.Close()
	zero := audit.Anchor{Seq: 0, Hash: strings.Repeat("0", 64)}
	if err := os.WriteFile(audit.AnchorPath(fresh), zero.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, Options{Path: fresh})
	l.Close()
	mustVerifyOK(t, fresh, 2)

	path := logWith(t, 4)
	before, err := os.ReadFile(audit.AnchorPath(path))
	if err != nil {
		t.Fatal(err)
	}
	l = openLog(t, Options{Path: path})
	appendN(t, l, 3)
	l.Close()
	// As if the last commit's anchor write never happened.
	if err := os.WriteFile(audit.AnchorPath(path), before, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, Options{Path: path})
	appendN(t, l, 1)
	l.Close()
	mustVerifyOK(t, path, 8)
}

// TestNewEpoch accepts each tampering on purpose: an audit.epoch record
// chained to what the database holds, anchored and named in the anchor
// file, which Verify reports. An intact log needs no epoch.
func TestNewEpoch(t *testing.T) {
	t.Parallel()
	for _, tt := range tamperings {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.setup(t)
			if _, err := NewEpoch(t.Context(), Options{Path: path}, "  ", audit.ActorCLI); err == nil {
				t.Fatal("NewEpoch without a reason: got no error")
			}
			r, err := NewEpoch(t.Context(), Options{Path: path}, "restored on purpose", audit.ActorCLI)
			if err != nil {
				t.Fatalf("NewEpoch: %v", err)
			}
			if r.Kind != audit.KindAuditEpoch || r.Actor != audit.ActorCLI || !strings.Contains(string(r.Detail), tt.problem) || !strings.Contains(string(r.Detail), "restored on purpose") {
				t.Errorf("epoch record: got %s by %s %s, want audit.epoch by cli with the problem and reason", r.Kind, r.Actor, r.Detail)
			}
			res := mustVerifyOK(t, path, r.Seq)
			if len(res.Epochs) != 1 || res.Epochs[0].Seq != r.Seq || res.Epochs[0].Reason != "restored on purpose" || !strings.Contains(res.Epochs[0].Found, tt.problem) {
				t.Errorf("Verify epochs: got %+v, want one at %d with the reason and what was found", res.Epochs, r.Seq)
			}
			if _, err := NewEpoch(t.Context(), Options{Path: path}, "again", audit.ActorCLI); !errors.Is(err, ErrNoEpochNeeded) {
				t.Errorf("NewEpoch on a log that matches its anchor: got %v, want ErrNoEpochNeeded", err)
			}
			l := openLog(t, Options{Path: path})
			appendN(t, l, 2)
			l.Close()
			res = mustVerifyOK(t, path, r.Seq+2)
			if len(res.Epochs) != 1 {
				t.Errorf("Verify epochs after more records: got %+v, want the one epoch", res.Epochs)
			}

			// An anchor that names an epoch the database lacks is a
			// replaced database.
			a, _, err := audit.ReadAnchor(path)
			if err != nil {
				t.Fatal(err)
			}
			a.Epochs[0].Hash = strings.Repeat("0", 64)
			if err := os.WriteFile(audit.AnchorPath(path), a.Encode(), 0o600); err != nil {
				t.Fatal(err)
			}
			if res := verify(t, path); res.OK || !strings.Contains(res.Problem, "new epoch at record") {
				t.Errorf("Verify with an epoch the database lacks: got OK=%v %q, want it refused", res.OK, res.Problem)
			}
		})
	}
}

// TestAnchorFormat: the first line is overwritten in place at every
// commit, so epoch lines after it survive commits.
func TestAnchorFormat(t *testing.T) {
	t.Parallel()
	path := olderCopy(t)
	r, err := NewEpoch(t.Context(), Options{Path: path}, "why", audit.ActorCLI)
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, Options{Path: path})
	last := appendN(t, l, 3)[2]
	l.Close()
	data, err := os.ReadFile(audit.AnchorPath(path))
	if err != nil {
		t.Fatal(err)
	}
	want := "ringlet-audit-anchor v1 " + pad20(last.Seq) + " " + last.Hash + "\n" +
		"ringlet-audit-epoch v1 " + pad20(r.Seq) + " " + r.Hash + "\n"
	if string(data) != want {
		t.Errorf("anchor file:\ngot  %q\nwant %q", data, want)
	}
	if len(strings.SplitN(string(data), "\n", 2)[0])+1 != audit.AnchorLineLen {
		t.Errorf("anchor line: got %d bytes, want %d", len(strings.SplitN(string(data), "\n", 2)[0])+1, audit.AnchorLineLen)
	}
}

func pad20(n int64) string {
	s := "00000000000000000000" + itoa(n)
	return s[len(s)-20:]
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// TestDetectsFilesChangedUnderWriter: a database replaced, truncated or
// deleted while a log writes it must not take records nobody can read
// (issue #11 item 7). The next commit fails, and every one after it: the
// log stays unwritable until it is reopened.
func TestDetectsFilesChangedUnderWriter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(t *testing.T, path, older string)
		want   string
	}{
		{"database replaced by rename", func(t *testing.T, path, older string) {
			copyFile(t, older, path+".new")
			if err := os.Rename(path+".new", path); err != nil {
				t.Fatal(err)
			}
		}, "was replaced by another file"},
		{"database deleted", func(t *testing.T, path, older string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "was deleted or moved"},
		{"database truncated", func(t *testing.T, path, older string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, "was truncated"},
		{"write-ahead log deleted", func(t *testing.T, path, older string) {
			if err := os.Remove(path + "-wal"); err != nil {
				t.Fatal(err)
			}
		}, "write-ahead log"},
		{"write-ahead log truncated", func(t *testing.T, path, older string) {
			if err := os.Truncate(path+"-wal", 0); err != nil {
				t.Fatal(err)
			}
		}, "write-ahead log"},
		{"older copy written over it in place", func(t *testing.T, path, older string) {
			for _, s := range dbFiles[:2] {
				copyFile(t, older+s, path+s)
			}
		}, "the audit database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := dbPath(t)
			l := openLog(t, Options{Path: path})
			appendN(t, l, 3)
			older := filepath.Join(t.TempDir(), "older.db")
			for _, s := range dbFiles {
				copyFile(t, path+s, older+s)
			}
			appendN(t, l, 40)
			// Into the database file itself, not only its write-ahead log.
			if err := l.db.Exec("PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
				t.Fatal(err)
			}

			tt.change(t, path, older)
			for i := range 2 {
				_, err := l.Append(t.Context(), testRecord(100+i))
				if !errors.Is(err, audit.ErrUnavailable) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "ringlet audit verify") {
					t.Fatalf("Append %d after the change: got %v, want ErrUnavailable naming %q and what to do", i, err, tt.want)
				}
			}
			if err := l.Writable(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Writable: got %v, want the change named", err)
			}
			if got := metric(t, l.Metrics(), "ringlet_audit_writable"); got != 0 {
				t.Errorf("ringlet_audit_writable: got %v, want 0", got)
			}
		})
	}
}

// TestRunNoticesBeforeACommit: with Run going, a file replaced under the
// log or a full disk makes Writable say so before anything tries to
// commit, so that the provider proxy refuses before it forwards (issue #11
// item 6); once room is made, Writable clears at once, and the next
// commit carries the audit.resume record.
func TestRunNoticesBeforeACommit(t *testing.T) {
	t.Parallel()
	t.Run("disk full", func(t *testing.T) {
		t.Parallel()
		dir := mountTmpfs(t, "256k")
		path := filepath.Join(dir, "audit", "audit.db")
		l := openLog(t, Options{Path: path})
		runLog(t, l)
		appendN(t, l, 2)
		filler := fillDisk(t, dir)
		waitFor(t, "Writable to report the full disk", func() bool { return l.Writable() != nil })
		if err := l.Writable(); !errors.Is(err, audit.ErrUnavailable) || !strings.Contains(err.Error(), "disk holding the audit log is full") {
			t.Errorf("Writable with the disk full: got %v, want it named", err)
		}
		if got := metric(t, l.Metrics(), "ringlet_audit_write_failures_total"); got != 0 {
			t.Errorf("ringlet_audit_write_failures_total: got %v, want 0 (nothing tried to commit)", got)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		if err := l.Writable(); err != nil {
			t.Fatalf("Writable right after room was made: got %v, want nil", err)
		}
		r, err := l.Append(t.Context(), testRecord(7))
		if err != nil {
			t.Fatal(err)
		}
		recs := allRecords(t, path)
		if r.Seq != 4 || len(recs) != 4 || recs[1].Kind != audit.KindAuditResume || !strings.Contains(string(recs[1].Detail), "refused_requests") {
			t.Errorf("records after the outage: got seq %d and %d records (%s), want the resume record at 3 before the new one", r.Seq, len(recs), recs[1].Kind)
		}
	})
	t.Run("database replaced", func(t *testing.T) {
		t.Parallel()
		path := dbPath(t)
		l := openLog(t, Options{Path: path})
		runLog(t, l)
		appendN(t, l, 2)
		copyFile(t, path, path+".new")
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "Writable to report the replaced database", func() bool { return l.Writable() != nil })
		if err := l.Writable(); !strings.Contains(err.Error(), "replaced") {
			t.Errorf("Writable: got %v, want the replacement named", err)
		}
	})
}

// TestWritableRecoversWithoutOtherWrites: a failed commit makes the log
// unwritable; once the cause is gone, the next Writable probes with a
// commit and clears, whatever kind of caller asks, with no record written
// by anyone else.
func TestWritableRecoversWithoutOtherWrites(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "256k")
	path := filepath.Join(dir, "audit", "audit.db")
	l := openLog(t, Options{Path: path})
	appendN(t, l, 2)
	filler := fillDisk(t, dir)
	if _, err := l.Append(t.Context(), bigRecord()); err == nil {
		t.Fatal("Append with the disk full: got no error")
	}
	if err := l.Writable(); err == nil {
		t.Fatal("Writable after a failed commit: got nil")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l.Writable(); err != nil {
		t.Fatalf("Writable once there is room: got %v, want nil", err)
	}
	recs := allRecords(t, path)
	if len(recs) != 3 || recs[0].Kind != audit.KindAuditResume || !strings.Contains(string(recs[0].Detail), `"failed_records":1`) {
		t.Errorf("records: got %d, newest %s %s; want the probe's audit.resume record", len(recs), recs[0].Kind, recs[0].Detail)
	}
	mustVerifyOK(t, path, 3)
}

// TestWritableConcurrent: many callers during an outage share checks and
// all see the log writable once it is.
func TestWritableConcurrent(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	runLog(t, l)
	appendN(t, l, 1)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 50 {
				if err := l.Writable(); err != nil {
					t.Errorf("Writable: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestOpenReadOnlyFileSystem names the cause instead of an I/O error.
func TestOpenReadOnlyFileSystem(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "1m")
	path := filepath.Join(dir, "audit", "audit.db")
	l := openLog(t, Options{Path: path})
	appendN(t, l, 2)
	l.Close()
	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Fatalf("remount read-only: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("mount", "-o", "remount,rw", dir).Run() })
	_, err := Open(Options{Path: path})
	if err == nil || !strings.Contains(err.Error(), "file system holding the audit log is read-only") {
		t.Errorf("Open on a read-only file system: got %v, want it named", err)
	}
}

// runLog runs l.Run until the test ends, before the log is closed.
func runLog(t *testing.T, l *Log) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(ctx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// TestReadOnlyFileSystemNamed: a write error on a file system that turned
// read-only (as ext4 does after an error) names it, instead of "disk I/O
// error", and Run notices it before a commit fails. A read-only bind
// mount over the log's directory stands in for the remount: the writer's
// open files stay writable, but the file system it sees is read-only.
func TestReadOnlyFileSystemNamed(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(mountTmpfs(t, "1m"), "audit")
	path := filepath.Join(dir, "audit.db")
	l := openLog(t, Options{Path: path})
	runLog(t, l)
	appendN(t, l, 1)
	for _, args := range [][]string{{"--bind", dir, dir}, {"-o", "remount,bind,ro", dir}} {
		if out, err := exec.Command("mount", args...).CombinedOutput(); err != nil {
			t.Fatalf("mount %v: %v: %s", args, err, out)
		}
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	if err := l.describe(sqlite3.IOERR); !errors.Is(err, errReadOnlyFS) {
		t.Errorf("an I/O error on a read-only file system: got %v, want it named", err)
	}
	waitFor(t, "Writable to report the read-only file system", func() bool { return l.Writable() != nil })
	if err := l.Writable(); !strings.Contains(err.Error(), "file system holding the audit log is read-only") {
		t.Errorf("Writable: got %v, want the read-only file system named", err)
	}
}

// The checks before every commit stat the database and its log: they
// allocate nothing (os.Stat or syscall.Stat would allocate the path as a
// C string each time), and a replaced log is still found.
func TestCommitCheckAllocations(t *testing.T) {
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	appendN(t, l, 1)
	if got := testing.AllocsPerRun(100, func() {
		if err := l.files.checkCommit(); err != nil {
			t.Fatal(err)
		}
	}); got != 0 {
		t.Errorf("checkCommit: got %v allocations, want 0", got)
	}
	w, err := watchFiles(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+"-wal", path+"-wal.moved"); err != nil {
		t.Fatal(err)
	}
	if err := w.checkCommit(); err == nil || !strings.Contains(err.Error(), "write-ahead log") {
		t.Errorf("checkCommit with the log moved away: got %v, want the log deleted or moved", err)
	}
}

// A record's detail is bound as it is: its length costs no allocation
// (string(r.Detail) would copy every detail longer than 32 bytes).
func TestBindInsertDetailAllocations(t *testing.T) {
	l := openLog(t, Options{Path: dbPath(t)})
	prev, h := make([]byte, 32), make([]byte, 32)
	seq := int64(1 << 40)
	bind := func(detail []byte) func() {
		return func() {
			rec := testRecord(1)
			rec.Seq, rec.Detail = seq, detail
			seq++
			if err := l.bindInsert(&rec, prev, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	short := testing.AllocsPerRun(50, bind([]byte(`{}`)))
	long := testing.AllocsPerRun(50, bind([]byte(`{"text":"`+strings.Repeat("x", 2000)+`"}`)))
	if long > short {
		t.Errorf("binding a 2 KB detail: got %v allocations, want no more than a 2-byte one's %v", long, short)
	}
}
