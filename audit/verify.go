package audit

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"time"
)

// VerifyResult is what verify found.
type VerifyResult struct {
	Path      string `json:"path"`
	OK        bool   `json:"ok"`
	Records   int64  `json:"records"`
	FirstSeq  int64  `json:"first_seq,omitempty"`
	LastSeq   int64  `json:"last_seq,omitempty"`
	LastHash  string `json:"last_hash,omitempty"`
	AnchorSeq int64  `json:"anchor_seq,omitempty"`
	// BadSeq is the first record found edited, missing or out of place.
	BadSeq  int64  `json:"bad_seq,omitempty"`
	Problem string `json:"problem,omitempty"`
	// Epochs are the new epochs started on purpose, oldest first.
	Epochs []EpochInfo `json:"epochs,omitempty"`
}

func checkExists(path string) error {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no audit log at %s (the daemon creates it on first start; see audit.path)", path)
	}
	if err != nil {
		return fmt.Errorf("audit log %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("audit log %s is not a regular file", path)
	}
	return CheckIsDatabase(path)
}

// sqliteHeader is how every SQLite database file begins.
const sqliteHeader = "SQLite format 3\x00"

// CheckIsDatabase refuses a regular file that holds something other than
// an SQLite database (an empty one is a database yet to be written):
// advice to chmod it or to move it aside, or a -shm file created beside
// it, would be wrong for a file that was never an audit log.
func CheckIsDatabase(path string) error {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil // the callers report a missing or unreadable file their way
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	var b [len(sqliteHeader)]byte
	n, _ := io.ReadFull(f, b[:])
	if n > 0 && string(b[:n]) != sqliteHeader {
		return fmt.Errorf("%s is not an SQLite audit database; name the audit log (by default $XDG_STATE_HOME/ringlet/audit.db)", path)
	}
	return nil
}

// Verify walks the hash chain of the database at path from the first
// record and checks it reaches the anchor beside it. It reports the first
// record that was edited, removed or reordered. An error means the walk
// could not be done; a broken chain is a result with OK false.
//
// Epochs started on purpose (audit.epoch records) are listed in the
// result; each one the anchor names must be in the chain.
func Verify(path string) (VerifyResult, error) {
	res := VerifyResult{Path: path}
	anchor, anchored, err := ReadAnchor(path)
	if err != nil {
		return res, err
	}
	fail := func(seq int64, format string, args ...any) (VerifyResult, error) {
		res.BadSeq, res.Problem = seq, fmt.Sprintf(format, args...)
		return res, nil
	}
	// A database that is missing or empty (truncated to nothing) holds no
	// records, and no table to read them from.
	if fi, err := os.Stat(path); (errors.Is(err, fs.ErrNotExist) || err == nil && fi.Size() == 0 && fi.Mode().IsRegular()) && anchored && anchor.Seq > 0 {
		res.AnchorSeq = anchor.Seq
		problem, bad, _ := AnchorProblem(path, anchor, anchored, err == nil, 0, nil)
		return fail(bad, "%s", problem)
	}
	db, err := OpenReader(path)
	if err != nil {
		return res, err
	}
	defer db.Close()
	stmt, _, err := db.Prepare("SELECT " + selectCols + " FROM records ORDER BY seq")
	if err != nil {
		return res, fmt.Errorf("read audit log: %w", Describe(err))
	}
	defer stmt.Close()
	prev := Genesis()
	var last int64
	hashes := map[int64]string{} // of the records the anchor names
	names := map[int64]bool{anchor.Seq: true}
	for _, e := range anchor.Epochs {
		names[e.Seq] = true
	}
	for stmt.Step() {
		r := scan(stmt)
		storedPrev, _ := hex.DecodeString(r.PrevHash)
		stored, _ := hex.DecodeString(r.Hash)
		switch {
		case r.Seq != last+1 && last == 0:
			return fail(1, "records 1 to %d are missing: the log does not start at record 1", r.Seq-1)
		case r.Seq != last+1:
			return fail(last+1, "record %d is missing: the sequence jumps from %d to %d (records were removed)", last+1, last, r.Seq)
		case !bytes.Equal(storedPrev, prev):
			return fail(r.Seq, "record %d does not follow record %d: its chain link differs (records were reordered or replaced)", r.Seq, last)
		case !bytes.Equal(ChainHash(prev, &r), stored):
			return fail(r.Seq, "record %d was edited: its content does not match its hash", r.Seq)
		}
		if res.Records == 0 {
			res.FirstSeq = r.Seq
		}
		res.Records++
		last, prev = r.Seq, stored
		if anchored && names[r.Seq] {
			hashes[r.Seq] = r.Hash
		}
		if r.Kind == KindAuditEpoch {
			res.Epochs = append(res.Epochs, epochInfo(r))
		}
	}
	if err := stmt.Err(); err != nil {
		return res, fmt.Errorf("read audit log: %w", Describe(err))
	}
	res.LastSeq, res.LastHash, res.AnchorSeq = last, hex.EncodeToString(prev), anchor.Seq
	problem, bad, _ := AnchorProblem(path, anchor, anchored, true, last, func(seq int64) (string, error) { return hashes[seq], nil })
	if problem != "" {
		return fail(bad, "%s", problem)
	}
	for _, e := range anchor.Epochs {
		if hashes[e.Seq] != e.Hash {
			return fail(e.Seq, "the anchor names a new epoch at record %d that the database does not hold (the database was replaced or rewritten)", e.Seq)
		}
	}
	res.OK = true
	return res, nil
}

// EpochInfo is an epoch started on purpose, as verify reports it.
type EpochInfo struct {
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Reason is what whoever started it said; Found is what the database
	// was found to be then.
	Reason string `json:"reason,omitempty"`
	Found  string `json:"found,omitempty"`
}

// EpochDetail is the detail of an audit.epoch record.
type EpochDetail struct {
	Reason             string `json:"reason"`
	Found              string `json:"found"`
	PreviousAnchorSeq  int64  `json:"previous_anchor_seq"`
	PreviousAnchorHash string `json:"previous_anchor_hash,omitempty"`
	DatabaseLastSeq    int64  `json:"database_last_seq"`
}

func epochInfo(r Record) EpochInfo {
	var d EpochDetail
	_ = json.Unmarshal(r.Detail, &d)
	return EpochInfo{Seq: r.Seq, Time: r.Time, Reason: d.Reason, Found: d.Found}
}
