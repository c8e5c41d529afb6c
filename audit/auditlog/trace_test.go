package auditlog

import (
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// TestTraceColumnsMigrate: a log written before the trace columns existed
// is read and verified as it is, gets the columns when the daemon opens
// it, and then holds traced records in the same chain; editing a trace
// field breaks the chain.
func TestTraceColumnsMigrate(t *testing.T) {
	t.Parallel()
	path := logWith(t, 3)
	// The schema of a log from before traces.
	rawExec(t, path, `ALTER TABLE records DROP COLUMN trace_id; ALTER TABLE records DROP COLUMN span_id;
		ALTER TABLE records DROP COLUMN parent_span_id; ALTER TABLE records DROP COLUMN link;`)
	db, err := audit.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	old := audit.HasTraceColumns(db)
	db.Close()
	if old {
		t.Fatal("the old schema still has trace columns")
	}
	mustVerifyOK(t, path, 3)
	if got := len(allRecords(t, path)); got != 3 {
		t.Fatalf("query of the old log: %d records, want 3", got)
	}

	l := openLog(t, Options{Path: path})
	trace, span := audit.NewTraceID(), audit.NewSpanID()
	rec := testRecord(9)
	rec.TraceID, rec.SpanID, rec.ParentSpanID, rec.Link = trace, span, audit.NewSpanID(), audit.LinkInferred
	if _, err := l.Append(t.Context(), rec); err != nil {
		t.Fatal(err)
	}
	mustVerifyOK(t, path, 4)
	var got []audit.Record
	got, _, err = audit.Query(t.Context(), path, audit.Filter{Trace: trace})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].SpanID != span || got[0].Link != audit.LinkInferred || got[0].ParentSpanID != rec.ParentSpanID {
		t.Fatalf("query by trace: got %+v, want the traced record", got)
	}
	l.Close()

	rawExec(t, path, `UPDATE records SET parent_span_id = '00000000000000aa' WHERE seq = 4`)
	if res := verify(t, path); res.OK || res.BadSeq != 4 {
		t.Fatalf("a record's parent span edited: verify got OK=%v bad seq %d, want record 4 found edited", res.OK, res.BadSeq)
	}
}
