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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ncruces/go-sqlite3"

	"github.com/neullabs/ringlet/privatefile"
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
	// SinceSeq is the last record verified before (VerifyOptions.SinceLast):
	// the walk started after it, and Records counts the records after it.
	// 0: the walk started at the first record.
	SinceSeq int64 `json:"since_seq,omitempty"`
}

// VerifyOptions change how Verify walks.
type VerifyOptions struct {
	// SinceLast starts the walk after the record the last successful
	// verify reached (its mark, MarkPath), if there is a usable mark; the
	// walk starts at the first record otherwise.
	SinceLast bool
	// Progress, if set, is told how many records have been checked of
	// how many there are to check, every progressEvery records and at
	// the end.
	Progress func(done, total int64)
}

// progressEvery is how often Verify calls Progress.
const progressEvery = 50_000

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
	return VerifyWith(path, VerifyOptions{})
}

// VerifyWith is Verify with options: a walk from the last verified record
// and progress.
func VerifyWith(path string, opts VerifyOptions) (VerifyResult, error) {
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
	// One read transaction: every query below sees the same commit.
	if err := db.Exec("BEGIN"); err != nil {
		return res, fmt.Errorf("read audit log: %w", Describe(err))
	}
	defer func() { _ = db.Exec("ROLLBACK") }() // read only: nothing to keep
	prev := Genesis()
	var last int64
	if opts.SinceLast {
		if m, ok := ReadMark(path); ok {
			h, err := hashAtSeq(db, m.Seq)
			if err != nil {
				return res, fmt.Errorf("read audit log: %w", Describe(err))
			}
			if h != m.Hash {
				// The chain up to the mark is no longer what was verified:
				// rewritten, replaced or truncated since.
				return fail(m.Seq, "record %d differs from when it was last verified (%s): the database was rewritten, replaced or truncated since; 'ringlet audit verify' without --since-last finds the first changed record", m.Seq, MarkPath(path))
			}
			prev, _ = hex.DecodeString(m.Hash)
			last, res.SinceSeq = m.Seq, m.Seq
			// Epochs before the mark are listed too: the anchor names
			// every one (looking for them by kind would read every record).
			if res.Epochs, err = anchoredEpochs(db, anchor, m.Seq); err != nil {
				return res, fmt.Errorf("read audit log: %w", Describe(err))
			}
		}
	}
	var total int64
	if opts.Progress != nil {
		tip, err := tipSeq(db)
		if err != nil {
			return res, fmt.Errorf("read audit log: %w", Describe(err))
		}
		total = max(tip-last, 0)
		opts.Progress(0, total)
	}
	stmt, _, err := db.Prepare("SELECT " + columns(db) + " FROM records WHERE seq > ? ORDER BY seq")
	if err != nil {
		return res, fmt.Errorf("read audit log: %w", Describe(err))
	}
	defer stmt.Close()
	if err := stmt.BindInt64(1, last); err != nil {
		return res, err
	}
	start := last
	hashes := map[int64]string{} // of the records the anchor names
	names := map[int64]bool{anchor.Seq: true}
	for _, e := range anchor.Epochs {
		names[e.Seq] = true
	}
	for stmt.Step() {
		r := scan(stmt)
		if opts.Progress != nil && (r.Seq-start)%progressEvery == 0 {
			opts.Progress(r.Seq-start, total)
		}
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
	if opts.Progress != nil {
		opts.Progress(last-start, total)
	}
	res.LastSeq, res.LastHash, res.AnchorSeq = last, hex.EncodeToString(prev), anchor.Seq
	// Records the anchor names at or before the mark were not walked now.
	lookup := func(seq int64) (string, error) {
		if h, ok := hashes[seq]; ok || seq > start {
			return h, nil
		}
		return hashAtSeq(db, seq)
	}
	problem, bad, err := AnchorProblem(path, anchor, anchored, true, last, lookup)
	if err != nil {
		return res, fmt.Errorf("read audit log: %w", Describe(err))
	}
	if problem != "" {
		return fail(bad, "%s", problem)
	}
	for _, e := range anchor.Epochs {
		h, err := lookup(e.Seq)
		if err != nil {
			return res, fmt.Errorf("read audit log: %w", Describe(err))
		}
		if h != e.Hash {
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

// hashAtSeq is the stored hash of record seq in hex, "" if there is none.
func hashAtSeq(db *sqlite3.Conn, seq int64) (string, error) {
	stmt, _, err := db.Prepare(`SELECT hash FROM records WHERE seq = ?`)
	if err != nil {
		return "", err
	}
	defer stmt.Close()
	if err := stmt.BindInt64(1, seq); err != nil {
		return "", err
	}
	if !stmt.Step() {
		return "", stmt.Err()
	}
	return hex.EncodeToString(stmt.ColumnRawBlob(0)), nil
}

func tipSeq(db *sqlite3.Conn) (int64, error) {
	stmt, _, err := db.Prepare(`SELECT seq FROM records ORDER BY seq DESC LIMIT 1`)
	if err != nil {
		return 0, err
	}
	defer stmt.Close()
	if !stmt.Step() {
		return 0, stmt.Err()
	}
	return stmt.ColumnInt64(0), nil
}

// anchoredEpochs returns the epochs the anchor names up to record seq.
func anchoredEpochs(db *sqlite3.Conn, a Anchor, seq int64) ([]EpochInfo, error) {
	stmt, _, err := db.Prepare("SELECT " + columns(db) + " FROM records WHERE seq = ?")
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	var out []EpochInfo
	for _, e := range a.Epochs {
		if e.Seq > seq {
			continue
		}
		if err := stmt.BindInt64(1, e.Seq); err != nil {
			return nil, err
		}
		if stmt.Step() {
			if r := scan(stmt); r.Kind == KindAuditEpoch {
				out = append(out, epochInfo(r))
			}
		}
		if err := stmt.Err(); err != nil {
			return nil, err
		}
		if err := stmt.Reset(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Mark is the last record a successful verify reached and its chain hash
// (hex), kept beside the database (MarkPath) so that the next verify can
// start after it. Its hash commits to every record up to it, so a walk
// from the mark still finds any rewrite of earlier records that keeps the
// chain consistent (the record at the mark then has another hash); what it
// does not re-check is an edit that broke the chain before the mark, which
// a full walk finds. It is no better protected than the anchor: whoever
// can rewrite the database, the anchor and the mark can make both walks
// pass.
type Mark struct {
	Seq  int64
	Hash string
}

const markMagic = "ringlet-audit-verified 1"

// MarkPath is where the mark of the database at db is kept.
func MarkPath(db string) string { return db + ".verified" }

// ReadMark returns the mark of the database at db; ok is false when there
// is none or it cannot be used (then the walk starts at the first record).
func ReadMark(db string) (m Mark, ok bool) {
	b, err := privatefile.Read(MarkPath(db), 4096)
	if err != nil {
		return Mark{}, false
	}
	magic, line, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	seqText, hash, _ := strings.Cut(line, " ")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if magic != markMagic || err != nil || seq <= 0 {
		return Mark{}, false
	}
	if h, err := hex.DecodeString(hash); err != nil || len(h) != 32 {
		return Mark{}, false
	}
	return Mark{Seq: seq, Hash: hash}, true
}

// SaveMark records that res, a successful verify, reached its last record.
// A log with no records has nothing to mark.
func SaveMark(res VerifyResult) error {
	if !res.OK || res.LastSeq == 0 {
		return nil
	}
	data := fmt.Sprintf("%s\n%d %s\n", markMagic, res.LastSeq, res.LastHash)
	if err := privatefile.WriteAtomic(MarkPath(res.Path), []byte(data), privatefile.FileMode); err != nil {
		return fmt.Errorf("save the verified mark: %w", err)
	}
	return nil
}
