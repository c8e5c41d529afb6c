package auditlog

import (
	"path/filepath"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// TestQueryTextCase: the free text ignores the case of ASCII letters
// only, as SQLite's lower() does on the other side: a capital beyond
// ASCII is found as written, and % and _ are plain characters.
func TestQueryTextCase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.db")
	l, err := Open(Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for _, tgt := range []string{"Ärger-Tool", "Café_Server", "100%_done", "plain"} {
		if _, err := l.Append(t.Context(), audit.Record{Kind: audit.KindToolCall, Target: tgt, Decision: audit.Allow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]int{"Ärger": 1, "äRGER-tool": 0, "ÄRGER-TOOL": 1, "CAFé_server": 1, "CAFÉ_server": 0, "100%": 1, "%": 1, "_": 2, "PLAIN": 1} {
		w, err := audit.QueryWindow(t.Context(), path, audit.Filter{Text: q}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(w.Records) != want {
			t.Errorf("text %q: %d records, want %d", q, len(w.Records), want)
		}
	}
}
