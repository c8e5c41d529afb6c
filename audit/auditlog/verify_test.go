package auditlog

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// contentCols are the columns a record's hash covers.
const contentCols = `time_ns, kind, profile, session, actor, target, decision, status, duration_ns,
	bytes_in, bytes_out, tokens_in, tokens_out, tokens_cache_read, tokens_cache_write, detail`

// tampered makes a closed log of 10 records and runs sql on it directly.
func tampered(sql string) func(t *testing.T) string {
	return func(t *testing.T) string {
		path := logWith(t, 10)
		rawExec(t, path, sql)
		return path
	}
}

// recordAt reads one record through Query.
func recordAt(t *testing.T, path string, seq int64) audit.Record {
	t.Helper()
	recs, _, err := audit.Query(t.Context(), path, audit.Filter{Before: seq + 1, Limit: 1})
	if err != nil || len(recs) != 1 || recs[0].Seq != seq {
		t.Fatalf("read record %d: got %v, %v", seq, recs, err)
	}
	return recs[0]
}

// rewrite stores r over the row with its seq, hashes included, as a forger
// who knows the format would.
func rewrite(t *testing.T, path string, r audit.Record) {
	t.Helper()
	db := rawConn(t, path)
	stmt, _, err := db.Prepare(`UPDATE records SET target = ?, prev_hash = ?, hash = ? WHERE seq = ?`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	prev, _ := hex.DecodeString(r.PrevHash)
	h, _ := hex.DecodeString(r.Hash)
	if err := errors.Join(stmt.BindText(1, r.Target), stmt.BindBlob(2, prev), stmt.BindBlob(3, h), stmt.BindInt64(4, r.Seq)); err != nil {
		t.Fatal(err)
	}
	if err := stmt.Exec(); err != nil {
		t.Fatalf("rewrite record %d: %v", r.Seq, err)
	}
	if got := db.Changes(); got != 1 {
		t.Fatalf("rewrite record %d: got %d rows changed, want 1", r.Seq, got)
	}
}

// forge edits the target of record seq and recomputes its hash, then
// relinks the records up to through (0: none).
func forge(seq, through int64) func(t *testing.T) string {
	return func(t *testing.T) string {
		path := logWith(t, 10)
		var prev []byte
		for s := seq; s == seq || s <= through; s++ {
			r := recordAt(t, path, s)
			if s == seq {
				r.Target = "forged"
				prev, _ = hex.DecodeString(r.PrevHash)
			}
			h := audit.ChainHash(prev, &r)
			r.PrevHash, r.Hash = hex.EncodeToString(prev), hex.EncodeToString(h)
			rewrite(t, path, r)
			prev = h
		}
		return path
	}
}

// olderCopy puts back a copy of the database taken after 5 records, once
// 5 more were appended.
func olderCopy(t *testing.T) string {
	path := logWith(t, 5)
	saved := filepath.Join(t.TempDir(), "old.db")
	for _, s := range dbFiles {
		copyFile(t, path+s, saved+s)
	}
	l, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 5)
	l.Close()
	if res := verify(t, path); !res.OK || res.Records != 10 {
		t.Fatalf("before restoring the old copy: got OK=%v Records=%d, want an intact log of 10", res.OK, res.Records)
	}
	for _, s := range dbFiles {
		copyFile(t, saved+s, path+s)
	}
	return path
}

func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		setup       func(t *testing.T) string
		wantBadSeq  int64
		wantProblem string
	}{
		{"edit a text field", tampered(`UPDATE records SET target = 'x' WHERE seq = 5`), 5, "record 5 was edited"},
		{"edit a number", tampered(`UPDATE records SET status = 500 WHERE seq = 7`), 7, "record 7 was edited"},
		{"edit the time by 1ns", tampered(`UPDATE records SET time_ns = time_ns + 1 WHERE seq = 2`), 2, "record 2 was edited"},
		{"edit the detail", tampered(`UPDATE records SET detail = '{}' WHERE seq = 9`), 9, "record 9 was edited"},
		{"edit the first record", tampered(`UPDATE records SET actor = 'someone' WHERE seq = 1`), 1, "record 1 was edited"},
		{"delete a middle record", tampered(`DELETE FROM records WHERE seq = 4`), 4, "record 4 is missing"},
		{"delete the first record", tampered(`DELETE FROM records WHERE seq = 1`), 1, "missing"},
		{"delete the last 3 records", tampered(`DELETE FROM records WHERE seq > 7`), 8, "the last records were removed"},
		{"delete every record", tampered(`DELETE FROM records`), 1, "the last records were removed"},
		{"swap two rows", tampered(`
			CREATE TEMP TABLE saved AS SELECT * FROM records WHERE seq IN (3, 6);
			UPDATE records SET (` + contentCols + `, prev_hash, hash) =
				(SELECT ` + contentCols + `, prev_hash, hash FROM saved WHERE saved.seq = 9 - records.seq)
				WHERE seq IN (3, 6);`), 3, "record 3 does not follow record 2"},
		{"swap the content of two rows", tampered(`
			CREATE TEMP TABLE saved AS SELECT * FROM records WHERE seq IN (3, 6);
			UPDATE records SET (` + contentCols + `) =
				(SELECT ` + contentCols + ` FROM saved WHERE saved.seq = 9 - records.seq)
				WHERE seq IN (3, 6);`), 3, "record 3 was edited"},
		{"swap two seq numbers", tampered(`
			UPDATE records SET seq = -1 WHERE seq = 3;
			UPDATE records SET seq = 3 WHERE seq = 6;
			UPDATE records SET seq = 6 WHERE seq = -1;`), 3, "record 3 does not follow record 2"},
		{"replace with an older copy", olderCopy, 6, "the last records were removed"},
		{"rehash an edited record", forge(5, 0), 6, "record 6 does not follow record 5"},
		{"rehash an edited last record", forge(10, 0), 10, "record 10 differs from the anchored record"},
		{"rehash the chain from an edited record", forge(5, 10), 10, "record 10 differs from the anchored record"},
		{"remove the anchor", func(t *testing.T) string {
			path := logWith(t, 10)
			if err := os.Remove(audit.AnchorPath(path)); err != nil {
				t.Fatal(err)
			}
			return path
		}, 10, "no anchor file"},
		{"empty the anchor", func(t *testing.T) string {
			path := logWith(t, 10)
			if err := os.Truncate(audit.AnchorPath(path), 0); err != nil {
				t.Fatal(err)
			}
			return path
		}, 10, "anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := tt.setup(t)
			res := verify(t, path)
			if res.OK {
				t.Fatalf("Verify: got OK=true (%d records), want the tampering found", res.Records)
			}
			if res.BadSeq != tt.wantBadSeq {
				t.Errorf("Verify: got bad seq %d, want %d (problem: %s)", res.BadSeq, tt.wantBadSeq, res.Problem)
			}
			if !strings.Contains(res.Problem, tt.wantProblem) {
				t.Errorf("Verify: got problem %q, want it to mention %q", res.Problem, tt.wantProblem)
			}
		})
	}
}

func TestVerifyIntact(t *testing.T) {
	t.Parallel()
	path := logWith(t, 10)
	res := verify(t, path)
	a, _, err := audit.ReadAnchor(path)
	if err != nil {
		t.Fatal(err)
	}
	want := audit.VerifyResult{Path: path, OK: true, Records: 10, FirstSeq: 1, LastSeq: 10, LastHash: a.Hash, AnchorSeq: 10}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("Verify:\ngot  %+v\nwant %+v", res, want)
	}
	if len(res.LastHash) != 64 {
		t.Errorf("Verify: got last hash %q, want 64 hex digits", res.LastHash)
	}
}

func TestVerifyEmptyLog(t *testing.T) {
	t.Parallel()
	path := logWith(t, 0)
	res := verify(t, path)
	if !res.OK || res.Records != 0 {
		t.Errorf("Verify of a log without records: got OK=%v Records=%d (%s), want OK=true Records=0", res.OK, res.Records, res.Problem)
	}
}

func TestVerifyErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(t *testing.T) string
		wantErr string
	}{
		{"no database", func(t *testing.T) string { return filepath.Join(t.TempDir(), "none.db") }, "no audit log at"},
		{"database is a directory", func(t *testing.T) string {
			path := filepath.Join(t.TempDir(), "dir.db")
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not a regular file"},
		{"anchor is garbage", func(t *testing.T) string {
			path := logWith(t, 3)
			if err := os.WriteFile(audit.AnchorPath(path), []byte("ringlet-audit-anchor v1 x y\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return path
		}, "not a ringlet audit anchor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := audit.Verify(tt.setup(t))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Verify: got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}
