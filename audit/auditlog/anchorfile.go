package auditlog

import (
	"fmt"
	"os"
	"syscall"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/privatefile"
)

// anchorFile holds the latest committed (seq, hash) outside the database,
// so a truncated or replaced database is caught: by verify, and by the
// next writer to open it.
type anchorFile struct {
	f    *os.File
	sync bool
	last int64  // the highest seq the file names; it never goes back
	line []byte // reused line buffer
}

// openAnchor opens the anchor file for writing; last is the seq it names
// now.
func openAnchor(path string, sync bool, last int64) (*anchorFile, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, privatefile.FileMode)
	if err != nil {
		return nil, fmt.Errorf("open audit anchor %s: %w", path, err)
	}
	if err := privatefile.Check(path); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit anchor: %w", err)
	}
	return &anchorFile{f: f, sync: sync, last: last}, nil
}

func (a *anchorFile) close() { a.f.Close() }

func (a *anchorFile) advance(seq int64, hash []byte) error {
	// No file lock and no read-back: a commit's anchor write is two
	// syscalls on the hot path. Were writers in other processes to
	// interleave (the daemon lock keeps them out) so that an older tip is
	// written last, the anchor would lag the database, which verify and
	// Open accept, and the next commit would move it on. It never runs
	// ahead of the database, and a writer never moves it back from what
	// the file said when it opened it.
	if seq <= a.last {
		return nil
	}
	return a.write(seq, hash)
}

// write overwrites the anchor line with (seq, hash).
func (a *anchorFile) write(seq int64, hash []byte) error {
	a.line = audit.AppendAnchorLine(a.line[:0], seq, hash)
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
