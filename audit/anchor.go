package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// AnchorPath is the anchor file beside a database.
func AnchorPath(db string) string { return db + ".anchor" }

// Anchor is what the anchor file beside a database says: the last record
// committed to it that a writer knows of, and the epochs started on
// purpose since the database fell behind it (ringlet audit new-epoch).
//
// The first line is overwritten in place at every commit and has a fixed
// length; epoch lines follow it and are only ever added.
type Anchor struct {
	Seq    int64
	Hash   string
	Epochs []Epoch
}

// Epoch names the audit.epoch record that started an epoch: its seq and
// hash.
type Epoch struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

const (
	anchorPrefix = "ringlet-audit-anchor v1 "
	epochPrefix  = "ringlet-audit-epoch v1 "
	// AnchorLineLen is the length of the anchor file's first line.
	AnchorLineLen = len(anchorPrefix) + 20 + 1 + 64 + 1
)

func appendAnchorLine(b []byte, prefix string, seq int64, hash string) []byte {
	b = append(b, prefix...)
	b = fmt.Appendf(b, "%020d ", seq)
	b = append(b, hash...)
	return append(b, '\n')
}

// AppendAnchorLine appends the anchor file's first line, which names the
// last committed record: its length is fixed (AnchorLineLen), so a writer
// overwrites it in place at every commit.
func AppendAnchorLine(b []byte, seq int64, hash []byte) []byte {
	b = append(b, anchorPrefix...)
	b = fmt.Appendf(b, "%020d ", seq)
	b = hex.AppendEncode(b, hash)
	return append(b, '\n')
}

// Encode is the anchor file's content.
func (a Anchor) Encode() []byte {
	b := appendAnchorLine(nil, anchorPrefix, a.Seq, a.Hash)
	for _, e := range a.Epochs {
		b = appendAnchorLine(b, epochPrefix, e.Seq, e.Hash)
	}
	return b
}

// ReadAnchor returns the anchor of a database; ok is false when there is
// no anchor file or it is empty.
func ReadAnchor(db string) (a Anchor, ok bool, err error) {
	data, err := os.ReadFile(AnchorPath(db))
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(data) == 0) {
		return Anchor{}, false, nil
	}
	if err != nil {
		return Anchor{}, false, err
	}
	a, err = parseAnchor(data)
	if err != nil {
		return Anchor{}, false, fmt.Errorf("audit anchor %s: %w", AnchorPath(db), err)
	}
	return a, true, nil
}

// ErrNotAnchor means a file is not a ringlet audit anchor.
var ErrNotAnchor = errors.New("not a ringlet audit anchor")

func parseAnchor(b []byte) (Anchor, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	var a Anchor
	var err error
	if a.Seq, a.Hash, err = parseAnchorLine(lines[0], "ringlet-audit-anchor"); err != nil {
		return Anchor{}, err
	}
	for _, l := range lines[1:] {
		var e Epoch
		if e.Seq, e.Hash, err = parseAnchorLine(l, "ringlet-audit-epoch"); err != nil || e.Seq < 1 {
			return Anchor{}, ErrNotAnchor
		}
		a.Epochs = append(a.Epochs, e)
	}
	return a, nil
}

func parseAnchorLine(l, magic string) (int64, string, error) {
	f := strings.Fields(l)
	if len(f) != 4 || f[0] != magic || f[1] != "v1" || len(f[3]) != 64 {
		return 0, "", ErrNotAnchor
	}
	seq, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || seq < 0 {
		return 0, "", ErrNotAnchor
	}
	if _, err := hex.DecodeString(f[3]); err != nil {
		return 0, "", ErrNotAnchor
	}
	return seq, f[3], nil
}

// ErrAnchorMismatch means the database is not what its anchor says it
// should be: it was truncated, rolled back, replaced or deleted, or the
// anchor was removed. Nothing may be written to it until a new epoch is
// started on purpose.
var ErrAnchorMismatch = errors.New("the audit log does not match its anchor")

// AnchorError is how auditlog.Open refuses a database that does not match
// its anchor; Problem says how, in words a user can act on.
type AnchorError struct {
	Path    string
	Problem string
}

func (e *AnchorError) Error() string {
	return fmt.Sprintf("refusing to write to the audit log %s: %s. If you restored, moved or removed it on purpose, run 'ringlet audit new-epoch --reason TEXT' to continue from what is there as a new epoch, recorded in the log and its anchor; otherwise keep the files as they are for investigation ('ringlet audit verify' reports the same)", e.Path, e.Problem)
}

func (e *AnchorError) Unwrap() error { return ErrAnchorMismatch }

// AnchorProblem compares a database (tip is its last record, 0 if none;
// hashAt looks up the hash of a record, "" if there is none) with its
// anchor, and describes a mismatch; "" means they agree. A database ahead
// of its anchor agrees: the anchor is written after the commit.
func AnchorProblem(db string, a Anchor, anchored, dbExists bool, tip int64, hashAt func(int64) (string, error)) (problem string, badSeq int64, err error) {
	switch {
	case !anchored && tip > 0:
		return fmt.Sprintf("no anchor file %s for its %d records (removed?): removal of its last records cannot be ruled out", AnchorPath(db), tip), tip, nil
	case !anchored:
		return "", 0, nil
	case !dbExists && a.Seq > 0:
		return fmt.Sprintf("the database is missing but its anchor names record %d (deleted or moved)", a.Seq), 1, nil
	case a.Seq > tip:
		return fmt.Sprintf("the last records were removed: the database is behind its anchor, ending at record %d where the anchor names record %d (truncated, or replaced by an older copy)", tip, a.Seq), tip + 1, nil
	case a.Seq == 0:
		return "", 0, nil
	}
	h, err := hashAt(a.Seq)
	if err != nil {
		return "", 0, err
	}
	if h != a.Hash {
		return fmt.Sprintf("record %d differs from the anchored record: the database was replaced or rewritten", a.Seq), a.Seq, nil
	}
	return "", 0, nil
}

// EqualHex reports whether h is the hex form of b.
func EqualHex(h string, b []byte) bool {
	d, err := hex.DecodeString(h)
	return err == nil && bytes.Equal(d, b)
}
