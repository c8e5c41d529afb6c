package audit

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/ncruces/go-sqlite3"
)

// ErrUnavailable wraps every failure to record: the action that needed the
// record must be refused.
var ErrUnavailable = errors.New("the audit log cannot be written")

// UnavailableError is how a writer's Append fails: it matches
// ErrUnavailable, and Reason says why, in words a user can act on ("the
// disk holding the audit log is full; free space to resume").
type UnavailableError struct{ Reason error }

func (e *UnavailableError) Error() string   { return ErrUnavailable.Error() + ": " + e.Reason.Error() }
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Reason} }

// ErrDiskFull is a write that failed for want of space.
var ErrDiskFull = errors.New("the disk holding the audit log is full; free space to resume")

// Describe turns SQLite errors into a sentence a user can act on.
func Describe(err error) error {
	switch {
	case errors.Is(err, sqlite3.FULL):
		return ErrDiskFull
	case errors.Is(err, sqlite3.READONLY):
		return errors.New("the audit log file is read-only; make it writable to resume")
	case errors.Is(err, sqlite3.BUSY):
		return errors.New("the audit log is locked by another process that has it open for writing; end that process to resume")
	case errors.Is(err, sqlite3.CORRUPT), errors.Is(err, sqlite3.NOTADB):
		return errors.New("the audit log database is corrupted; move it aside and run 'ringlet audit verify' on the copy")
	case errors.Is(err, sqlite3.IOERR):
		return fmt.Errorf("I/O error writing the audit log (%v)", err)
	}
	return err
}

// DatabaseURI is the SQLite URI of path with modeof=path, so that the files
// SQLite creates beside it get its mode.
func DatabaseURI(path string) string {
	u := url.URL{Scheme: "file", Path: path, RawQuery: "modeof=" + url.QueryEscape(path)}
	return u.String()
}

// Files are the database's files: itself, its write-ahead log and shared
// memory, and its anchor.
func Files(db string) []string {
	return []string{db, db + "-wal", db + "-shm", AnchorPath(db)}
}
