package auditlog

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/ncruces/go-sqlite3"
)

// BenchmarkRawCommit is one SQLite transaction per row, as the audit log
// and the proxy benchmarks' durable-record floor commit, without the log
// around it: what each table and index a commit touches costs (every one
// is a page more in the write-ahead log). floor is benchnet.Floor's row;
// records the audit log's record without and with its time index; usage
// adds the usage summary's two rows, as a commit that moves it writes.
func BenchmarkRawCommit(b *testing.B) {
	const floorTable = `CREATE TABLE requests (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, method TEXT NOT NULL,
		path TEXT NOT NULL, status INTEGER NOT NULL, bytes_in INTEGER NOT NULL, duration INTEGER NOT NULL);`
	const usageRows = `INSERT INTO usage_hours VALUES (1, 'p', 's', 'prov', 'model', 1, 1, 1, 1, 1)
		ON CONFLICT DO UPDATE SET requests = requests + 1`
	for _, c := range []struct {
		name string
		ddl  string
		sqls []string
	}{
		{"empty", floorTable, nil},
		{"floor", floorTable, []string{"INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?)"}},
		{"records-no-index", schema + "DROP INDEX records_time;", []string{insertSQL}},
		{"records", schema, []string{insertSQL}},
		{"records+usage", schema + usageSchema, []string{insertSQL, "UPDATE usage_state SET through_seq = ?1 WHERE id = 1", usageRows}},
	} {
		b.Run(c.name, func(b *testing.B) { rawCommits(b, c.ddl, c.sqls) })
	}
}

func rawCommits(b *testing.B, ddl string, sqls []string) {
	db, err := sqlite3.Open(filepath.Join(b.TempDir(), "raw.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if err := db.Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;" + ddl); err != nil {
		b.Fatal(err)
	}
	prep := func(sql string) *sqlite3.Stmt {
		s, _, err := db.Prepare(sql)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	begin, commit := prep("BEGIN IMMEDIATE"), prep("COMMIT")
	var stmts []*sqlite3.Stmt
	for _, s := range sqls {
		stmts = append(stmts, prep(s))
	}
	h := make([]byte, 32)
	exec := func(s *sqlite3.Stmt) {
		err := s.Exec()
		s.Reset()
		if err != nil {
			b.Fatal(err)
		}
	}
	for seq := int64(1); b.Loop(); seq++ {
		exec(begin)
		for _, s := range stmts {
			n := s.BindCount()
			for j := 1; j <= n; j++ {
				switch {
				case j == 1:
					s.BindInt64(j, seq)
				case j == 2:
					s.BindInt64(j, time.Now().UnixNano())
				case n > 7 && j >= 9 && j <= 16, n == 7 && j >= 5:
					s.BindInt64(j, 200)
				case j == 18 || j == 19:
					s.BindBlob(j, h)
				default:
					s.BindText(j, "abcdefgh")
				}
			}
			exec(s)
		}
		exec(commit)
	}
}
