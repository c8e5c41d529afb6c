package auditlog

import (
	"math/rand/v2"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// TestUsageSummaryAfterTruncatedTailEpoch: records cut from the log's tail
// (after the summary had counted them), then accepted with a new epoch,
// must leave reports equal to a scan of what the log now holds, both
// right after the epoch and once the log has grown past where the
// summary once stood.
func TestUsageSummaryAfterTruncatedTailEpoch(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	l.usageLag = 37
	rng := rand.New(rand.NewPCG(21, 22))
	usageRecords(t, l, rng, 300)
	l.Close()
	openLog(t, Options{Path: path}).Close() // the summary catches up to 300
	if through := usageThroughSeq(t, path); through != 300 {
		t.Fatalf("through_seq %d after reopen, want 300", through)
	}
	rawExec(t, path, `DELETE FROM records WHERE seq > 200`)
	if _, err := Open(Options{Path: path}); err == nil {
		t.Fatal("Open of a log whose tail was cut: got no error")
	}
	if _, err := NewEpoch(t.Context(), Options{Path: path}, "tail lost on purpose", audit.ActorCLI); err != nil {
		t.Fatalf("NewEpoch: %v", err)
	}
	checkUsage(t, path)
	l = openLog(t, Options{Path: path})
	l.usageLag = 37
	checkUsage(t, path)
	usageRecords(t, l, rng, 250) // past the old through_seq
	checkUsage(t, path)
	l.Close()
	openLog(t, Options{Path: path})
	checkUsage(t, path)
	mustVerifyOK(t, path, 201+250)
}

// TestUsageSummaryAfterEmptiedLogEpoch: every record deleted (the file
// kept), then accepted with a new epoch: nothing the summary held is
// reported.
func TestUsageSummaryAfterEmptiedLogEpoch(t *testing.T) {
	t.Parallel()
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	usageRecords(t, l, rand.New(rand.NewPCG(23, 24)), 100)
	l.Close()
	openLog(t, Options{Path: path}).Close()
	rawExec(t, path, `DELETE FROM records`)
	if _, err := NewEpoch(t.Context(), Options{Path: path}, "emptied on purpose", audit.ActorCLI); err != nil {
		t.Fatalf("NewEpoch: %v", err)
	}
	checkUsage(t, path)
	rows, err := audit.UsageReport(t.Context(), path, audit.Filter{}, "model", usageCost)
	if err != nil || len(rows) != 0 {
		t.Errorf("UsageReport after every record was deleted: got %d rows, %v; want none", len(rows), err)
	}
}
