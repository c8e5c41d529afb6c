package auditlog

import (
	"encoding/hex"
	"fmt"
	"os"
	"testing"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/privatefile"
)

// markedLog makes a closed log of 10 records, verifies it fully (which
// leaves the mark at record 10) and appends 5 more.
func markedLog(t *testing.T) string {
	t.Helper()
	path := logWith(t, 10)
	res := mustVerifyOK(t, path, 10)
	if err := audit.SaveMark(res); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, Options{Path: path})
	appendN(t, l, 5)
	l.Close()
	return path
}

func verifySinceLast(t *testing.T, path string) audit.VerifyResult {
	t.Helper()
	res, err := audit.VerifyWith(path, audit.VerifyOptions{SinceLast: true})
	if err != nil {
		t.Fatalf("VerifyWith(%s, SinceLast): %v", path, err)
	}
	return res
}

// rechain rewrites record seq's target and every hash from it to the tip,
// and moves the anchor to the new tip: a forger who rewrites history
// consistently, anchor included.
func rechain(t *testing.T, path string, seq int64) {
	t.Helper()
	recs := allRecords(t, path) // newest first
	prev := audit.Genesis()
	var last audit.Record
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Seq == seq {
			r.Target = "forged"
		}
		if r.Seq >= seq {
			h := audit.ChainHash(prev, &r)
			r.PrevHash, r.Hash = hex.EncodeToString(prev), hex.EncodeToString(h)
			rewrite(t, path, r)
		}
		prev, _ = hex.DecodeString(r.Hash)
		last = r
	}
	if err := os.WriteFile(audit.AnchorPath(path), audit.Anchor{Seq: last.Seq, Hash: last.Hash}.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestVerifySinceLast(t *testing.T) {
	t.Parallel()
	t.Run("walks only the records after the mark", func(t *testing.T) {
		t.Parallel()
		path := markedLog(t)
		res := verifySinceLast(t, path)
		if !res.OK || res.SinceSeq != 10 || res.Records != 5 || res.LastSeq != 15 {
			t.Fatalf("got OK=%v since=%d records=%d last=%d (%s), want OK since=10 records=5 last=15", res.OK, res.SinceSeq, res.Records, res.LastSeq, res.Problem)
		}
		// The next walk starts at the new mark.
		if err := audit.SaveMark(res); err != nil {
			t.Fatal(err)
		}
		if m, ok := audit.ReadMark(path); !ok || m.Seq != 15 || m.Hash != res.LastHash {
			t.Errorf("mark: got %+v %v, want record 15 and its hash", m, ok)
		}
		if res := verifySinceLast(t, path); !res.OK || res.SinceSeq != 15 || res.Records != 0 {
			t.Errorf("again: got OK=%v since=%d records=%d, want OK since=15 records=0", res.OK, res.SinceSeq, res.Records)
		}
	})
	t.Run("epochs before the mark are listed", func(t *testing.T) {
		t.Parallel()
		path := logWith(t, 4)
		// A removed anchor is a mismatch that a new epoch accepts.
		if err := os.Remove(audit.AnchorPath(path)); err != nil {
			t.Fatal(err)
		}
		ep, err := NewEpoch(t.Context(), Options{Path: path}, "on purpose", audit.ActorCLI)
		if err != nil {
			t.Fatal(err)
		}
		res := verify(t, path)
		if err := audit.SaveMark(res); err != nil {
			t.Fatal(err)
		}
		got := verifySinceLast(t, path)
		if !got.OK || got.SinceSeq != res.LastSeq || len(got.Epochs) != 1 || got.Epochs[0].Seq != ep.Seq || got.Epochs[0].Reason != "on purpose" {
			t.Errorf("got OK=%v since=%d epochs=%+v, want the epoch at record %d listed", got.OK, got.SinceSeq, got.Epochs, ep.Seq)
		}
	})
	t.Run("an edit after the mark is found", func(t *testing.T) {
		t.Parallel()
		path := markedLog(t)
		rawExec(t, path, `UPDATE records SET target = 'edited' WHERE seq = 12`)
		if res := verifySinceLast(t, path); res.OK || res.BadSeq != 12 {
			t.Errorf("got OK=%v bad=%d, want record 12 found edited", res.OK, res.BadSeq)
		}
	})
	t.Run("an edit before the mark is found by the full walk", func(t *testing.T) {
		t.Parallel()
		path := markedLog(t)
		rawExec(t, path, `UPDATE records SET target = 'edited' WHERE seq = 3`)
		// Documented: the walk from the mark does not re-read record 3.
		if res := verifySinceLast(t, path); !res.OK {
			t.Errorf("since last: got OK=false (%s), want the walk from the mark to pass", res.Problem)
		}
		if res := verify(t, path); res.OK || res.BadSeq != 3 {
			t.Errorf("full: got OK=%v bad=%d, want record 3 found edited", res.OK, res.BadSeq)
		}
	})
	t.Run("a consistent rewrite before the mark is found from the mark", func(t *testing.T) {
		t.Parallel()
		path := markedLog(t)
		rechain(t, path, 3)
		if res := verifySinceLast(t, path); res.OK || res.BadSeq != 10 {
			t.Errorf("since last: got OK=%v bad=%d (%s), want record 10 found changed since it was verified", res.OK, res.BadSeq, res.Problem)
		}
	})
	t.Run("a truncation to before the mark is found", func(t *testing.T) {
		t.Parallel()
		path := markedLog(t)
		rawExec(t, path, `DELETE FROM records WHERE seq > 8`)
		if res := verifySinceLast(t, path); res.OK || res.BadSeq != 10 {
			t.Errorf("got OK=%v bad=%d (%s), want record 10 found changed", res.OK, res.BadSeq, res.Problem)
		}
	})
	for name, content := range map[string]string{
		"no mark":      "",
		"garbled mark": "ringlet-audit-verified 1\nten abc\n",
		"other format": "something else\n10 " + fmt.Sprintf("%064x", 1) + "\n",
	} {
		t.Run(name+" walks from the first record", func(t *testing.T) {
			t.Parallel()
			path := markedLog(t)
			if err := os.Remove(audit.MarkPath(path)); err != nil {
				t.Fatal(err)
			}
			if content != "" {
				if err := privatefile.WriteAtomic(audit.MarkPath(path), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if res := verifySinceLast(t, path); !res.OK || res.SinceSeq != 0 || res.Records != 15 {
				t.Errorf("got OK=%v since=%d records=%d, want a full walk of 15", res.OK, res.SinceSeq, res.Records)
			}
		})
	}
}

func TestVerifyProgress(t *testing.T) {
	t.Parallel()
	path := markedLog(t)
	var calls [][2]int64
	res, err := audit.VerifyWith(path, audit.VerifyOptions{SinceLast: true, Progress: func(done, total int64) { calls = append(calls, [2]int64{done, total}) }})
	if err != nil || !res.OK {
		t.Fatalf("VerifyWith: %v %+v", err, res)
	}
	if len(calls) < 2 || calls[0] != [2]int64{0, 5} || calls[len(calls)-1] != [2]int64{5, 5} {
		t.Errorf("progress: got %v, want it to start at 0 of 5 and end at 5 of 5", calls)
	}
}
