package auditlog

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/neullabs/ringlet/audit"
)

// dbPath is a database path inside a directory that Open has to create.
func dbPath(t *testing.T) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "audit", "audit.db")
}

// openLog opens a log and closes it when the test ends.
func openLog(t *testing.T, opts Options) *Log {
	t.Helper()
	l, err := Open(opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", opts.Path, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// testRecord is an ordinary tool call, distinct for each i.
func testRecord(i int) audit.Record {
	return audit.Record{
		Kind:     audit.KindToolCall,
		Profile:  "work",
		Session:  "s1",
		Actor:    audit.ActorAdmin,
		Target:   fmt.Sprintf("fs__read_file#%d", i),
		Decision: audit.Allow,
		Status:   200,
		Duration: time.Duration(i) * time.Millisecond,
		BytesIn:  int64(i),
		Detail:   audit.DetailJSON(map[string]any{"i": i}),
	}
}

// appendN appends n test records and returns them as stored.
func appendN(t *testing.T, l *Log, n int) []audit.Record {
	t.Helper()
	out := make([]audit.Record, 0, n)
	for i := range n {
		r, err := l.Append(t.Context(), testRecord(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

// logWith makes a closed log of n records and returns its path.
func logWith(t *testing.T, n int) string {
	t.Helper()
	path := dbPath(t)
	l, err := Open(Options{Path: path})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	appendN(t, l, n)
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return path
}

// verify runs Verify and fails the test if the walk itself failed.
func verify(t *testing.T, path string) audit.VerifyResult {
	t.Helper()
	res, err := audit.Verify(path)
	if err != nil {
		t.Fatalf("Verify(%s): %v", path, err)
	}
	return res
}

// mustVerifyOK fails the test unless the chain of path is intact.
func mustVerifyOK(t *testing.T, path string, records int64) audit.VerifyResult {
	t.Helper()
	res := verify(t, path)
	if !res.OK || res.Records != records {
		t.Fatalf("Verify: got OK=%v Records=%d (bad seq %d: %s), want OK=true Records=%d", res.OK, res.Records, res.BadSeq, res.Problem, records)
	}
	return res
}

// rawConn opens the database directly, as someone tampering with it would,
// and closes it when the test ends.
func rawConn(t testing.TB, path string) *sqlite3.Conn {
	t.Helper()
	db, err := sqlite3.Open(path)
	if err != nil {
		t.Fatalf("open %s directly: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// queryInt is the integer the query sql returns (its first column of its
// first row) on c.
func queryInt(t testing.TB, c *sqlite3.Conn, sql string) int64 {
	t.Helper()
	stmt, _, err := c.Prepare(sql)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if !stmt.Step() {
		t.Fatalf("%s: no row (%v)", sql, stmt.Err())
	}
	return stmt.ColumnInt64(0)
}

// rawInt is queryInt on a direct connection closed before it returns.
func rawInt(t testing.TB, path, sql string) int64 {
	t.Helper()
	c := rawConn(t, path)
	defer c.Close()
	return queryInt(t, c, sql)
}

// rawExec runs sql on a direct connection that is closed before it returns.
func rawExec(t testing.TB, path, sql string) {
	t.Helper()
	db, err := sqlite3.Open(path)
	if err != nil {
		t.Fatalf("open %s directly: %v", path, err)
	}
	defer db.Close()
	if err := db.Exec(sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// allRecords returns every record, newest first.
func allRecords(t *testing.T, path string) []audit.Record {
	t.Helper()
	recs, next, err := audit.Query(t.Context(), path, audit.Filter{Limit: audit.MaxLimit})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if next != 0 {
		t.Fatalf("Query: got cursor %d, want 0 (all records on one page)", next)
	}
	return recs
}

// copyFile copies src to dst with mode 0600; a missing src removes dst.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if os.IsNotExist(err) {
		if err := os.Remove(dst); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// dbFiles are the files SQLite keeps for a database.
var dbFiles = []string{"", "-wal", "-shm"}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// within receives from ch, failing the test if nothing comes within a
// deadline.
func within[T any](t *testing.T, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// metric reads the value of the collector named name among m's.
func metric(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	for _, c := range m.Collectors() {
		descs := make(chan *prometheus.Desc, 16)
		c.Describe(descs)
		close(descs)
		for d := range descs {
			if strings.Contains(d.String(), `fqName: "`+name+`"`) {
				return testutil.ToFloat64(c)
			}
		}
	}
	t.Fatalf("no collector named %s", name)
	return 0
}
