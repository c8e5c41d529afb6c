package auditlog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// mountTmpfs mounts a small tmpfs on a temporary directory and unmounts it
// when the test ends (after the logs on it are closed: cleanups run last
// registered first). Mounting needs root; CI runs as root and must not
// skip.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0700"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("mount a tmpfs on %s: %v (CI runs the tests as root so that this test runs)", dir, err)
		}
		t.Skipf("cannot mount a tmpfs (%v); run the tests as root to check a full disk", err)
	}
	t.Cleanup(func() {
		// A parallel test's child process (mount, between fork and exec)
		// can hold a copy of a descriptor on this file system for a
		// moment: EBUSY is retried until a deadline.
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := syscall.Unmount(dir, 0)
			if err == nil {
				return
			}
			if !errors.Is(err, syscall.EBUSY) || time.Now().After(deadline) {
				t.Errorf("unmount %s: %v", dir, err)
				syscall.Unmount(dir, syscall.MNT_DETACH)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	return dir
}

// fillDisk writes a file in dir until the file system is full.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; ; i++ {
		_, err := f.Write(buf)
		if errors.Is(err, syscall.ENOSPC) {
			return path
		}
		if err != nil {
			t.Fatalf("fill %s: %v", dir, err)
		}
		if i > 1<<16 {
			t.Fatalf("fill %s: wrote 256 MiB without running out of space", dir)
		}
	}
}

// bigRecord needs new pages in the WAL, so it cannot fit in space that
// earlier commits left allocated.
func bigRecord() audit.Record {
	r := testRecord(-1)
	r.Target = "the refused action"
	r.Detail = audit.DetailJSON(map[string]any{"padding": strings.Repeat("p", 64<<10)})
	return r
}

// checkRefused appends bigRecord, expects it refused with a message
// containing wantMsg, and checks the log reports itself unwritable.
func checkRefused(t *testing.T, l *Log, wantMsg string) {
	t.Helper()
	_, err := l.Append(t.Context(), bigRecord())
	if !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("Append: got %v, want an error matching ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("Append: got %q, want it to mention %q", err, wantMsg)
	}
	if l.Healthy() {
		t.Errorf("Healthy after a failed commit: got true, want false")
	}
	if got := metric(t, l.Metrics(), "ringlet_audit_write_failures_total"); got != 1 {
		t.Errorf("ringlet_audit_write_failures_total: got %v, want 1", got)
	}
	if got := metric(t, l.Metrics(), "ringlet_audit_writable"); got != 0 {
		t.Errorf("ringlet_audit_writable: got %v, want 0", got)
	}
}

// checkRecovered appends once writes work again and checks the refused
// record left no trace.
func checkRecovered(t *testing.T, l *Log, stored int64, wantMsg string) {
	t.Helper()
	r, err := l.Append(t.Context(), testRecord(99))
	if err != nil {
		t.Fatalf("Append once writable again: %v", err)
	}
	// The outage's audit.resume record comes first, in the same commit.
	if r.Seq != stored+2 {
		t.Errorf("Append once writable again: got seq %d, want %d", r.Seq, stored+2)
	}
	if !l.Healthy() {
		t.Errorf("Healthy after a successful commit: got false, want true")
	}
	if got := metric(t, l.Metrics(), "ringlet_audit_writable"); got != 1 {
		t.Errorf("ringlet_audit_writable: got %v, want 1", got)
	}
	mustVerifyOK(t, l.Path(), stored+2)
	for _, r := range allRecords(t, l.Path()) {
		if r.Target == bigRecord().Target {
			t.Errorf("record %d is the one whose Append failed", r.Seq)
		}
		if r.Seq == stored+1 && (r.Kind != audit.KindAuditResume || !strings.Contains(string(r.Detail), `"failed_records":1`) || !strings.Contains(string(r.Detail), wantMsg)) {
			t.Errorf("record %d: got %s %s, want audit.resume with failed_records 1 and the reason %q", r.Seq, r.Kind, r.Detail, wantMsg)
		}
	}
}

func TestFailClosedDiskFull(t *testing.T) {
	t.Parallel()
	dir := mountTmpfs(t, "256k")
	path := filepath.Join(dir, "audit", "audit.db")
	l := openLog(t, Options{Path: path})
	appendN(t, l, 2)

	filler := fillDisk(t, dir)
	checkRefused(t, l, "disk holding the audit log is full")

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	checkRecovered(t, l, 2, "disk holding the audit log is full")
}

// TestFailClosedFileSizeLimit makes writes fail without a mount. The tests
// run as root, so permissions do not stop writes, and overwriting the
// database file under an open connection is not reliably noticed: in WAL
// mode SQLite writes to the WAL and reads from its cache. A file size
// limit (RLIMIT_FSIZE) binds root too: a write that would grow a file
// past it fails with EFBIG (Go ignores the SIGXFSZ sent with it). The
// limit is per process, so this test must not run in parallel with others
// that write files.
func TestFailClosedFileSizeLimit(t *testing.T) {
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	appendN(t, l, 2)

	fi, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = uint64(fi.Size())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
				t.Fatalf("restore RLIMIT_FSIZE: %v", err)
			}
		}
	}
	defer restore()

	checkRefused(t, l, "I/O error writing the audit log")
	restore()
	checkRecovered(t, l, 2, "I/O error writing the audit log")
}
