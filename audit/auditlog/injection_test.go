package auditlog

import (
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/neullabs/ringlet/audit"
)

// TestHostileFieldsAreData stores values crafted to forge lines, recolour
// or reorder a terminal, cut C strings or escape SQL, and checks that they
// come back as the same bytes and did nothing else.
func TestHostileFieldsAreData(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string // as stored: only invalid UTF-8 is changed
		// wantDetail, when set, is the value in the detail: encoding/json
		// replaces each invalid byte, sanitize each run of them.
		wantDetail string
	}{
		{"newlines", "line1\nline2\r\n2026-05-01 tool.call allow forged", "line1\nline2\r\n2026-05-01 tool.call allow forged", ""},
		{"ANSI escapes", "\x1b[31mred\x1b[0m\x1b]0;title\a\x1b[2J", "\x1b[31mred\x1b[0m\x1b]0;title\a\x1b[2J", ""},
		{"NUL", "before\x00after", "before\x00after", ""},
		{"RTL override", "invoice\u202Efdp.exe", "invoice\u202Efdp.exe", ""},
		{"SQL", "'; DROP TABLE records; --", "'; DROP TABLE records; --", ""},
		{"SQL quotes", `x" OR 1=1; DELETE FROM records WHERE '1'='1`, `x" OR 1=1; DELETE FROM records WHERE '1'='1`, ""},
		{"invalid UTF-8", "ok\xff\xfe\xfdend\xc3", "ok\uFFFDend\uFFFD", "ok\uFFFD\uFFFD\uFFFDend\uFFFD"},
	}
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	seqs := make([]int64, len(tests))
	for i, tt := range tests {
		r, err := l.Append(t.Context(), audit.Record{
			Kind: tt.in, Profile: tt.in, Session: tt.in, Actor: tt.in, Target: tt.in, Decision: tt.in,
			Detail: audit.DetailJSON(map[string]any{"v": tt.in}),
		})
		if err != nil {
			t.Fatalf("Append %s: %v", tt.name, err)
		}
		seqs[i] = r.Seq
	}
	l.Close()

	stored := allRecords(t, path)
	if len(stored) != len(tests) {
		t.Fatalf("Query: got %d records, want %d", len(stored), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idx := slices.IndexFunc(stored, func(r audit.Record) bool { return r.Seq == seqs[i] })
			if idx < 0 {
				t.Fatalf("record %d not found", seqs[i])
			}
			r := stored[idx]
			for field, got := range map[string]string{
				"kind": r.Kind, "profile": r.Profile, "session": r.Session,
				"actor": r.Actor, "target": r.Target, "decision": r.Decision,
			} {
				if got != tt.want {
					t.Errorf("%s: got %q, want %q", field, got, tt.want)
				}
			}
			wantDetail := tt.want
			if tt.wantDetail != "" {
				wantDetail = tt.wantDetail
			}
			var detail map[string]string
			if err := json.Unmarshal(r.Detail, &detail); err != nil || detail["v"] != wantDetail {
				t.Errorf("detail: got %q (%v), want v=%q", r.Detail, err, wantDetail)
			}
			out, err := json.Marshal(r)
			if err != nil || !utf8.Valid(out) {
				t.Errorf("json.Marshal: got %q, %v; want valid UTF-8 JSON", out, err)
			}
			// Filters bind values; they are never part of the SQL.
			got, _, err := audit.Query(t.Context(), path, audit.Filter{Profile: tt.want, Session: tt.want})
			if err != nil || len(got) != 1 || got[0].Seq != seqs[i] {
				t.Errorf("Query by profile and session %q: got %d records (%v), want record %d alone", tt.want, len(got), err, seqs[i])
			}
		})
	}

	db := rawConn(t, path)
	stmt, _, err := db.Prepare(`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'records'`)
	if err != nil {
		t.Fatal(err)
	}
	defer stmt.Close()
	if !stmt.Step() || stmt.ColumnInt64(0) != 1 {
		t.Errorf("table records: got %d, want it to exist (%v)", stmt.ColumnInt64(0), stmt.Err())
	}
	mustVerifyOK(t, path, int64(len(tests)))
}

// TestHostileDetail stores raw details that are not what DetailJSON makes.
func TestHostileDetail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"valid JSON kept as is", `{"a": "x\u0000\n", "b": [1, 2]}`, `{"a": "x\u0000\n", "b": [1, 2]}`},
		{"not JSON wrapped", "'); DROP TABLE records; --", `{"invalid_detail":"'); DROP TABLE records; --"}`},
		{"invalid UTF-8 in a JSON string replaced", "{\"a\":\"\xff\"}", "{\"a\":\"\uFFFD\"}"},
		{"invalid UTF-8 and not JSON wrapped", "\xff{", `{"invalid_detail":"` + "\uFFFD" + `{"}`},
	}
	path := dbPath(t)
	l := openLog(t, Options{Path: path})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := l.Append(t.Context(), audit.Record{Kind: audit.KindToolCall, Detail: json.RawMessage(tt.in)})
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if string(r.Detail) != tt.want {
				t.Errorf("Append returned detail %q, want %q", r.Detail, tt.want)
			}
			got := recordAt(t, path, r.Seq)
			if string(got.Detail) != tt.want {
				t.Errorf("stored detail: got %q, want %q", got.Detail, tt.want)
			}
		})
	}
	l.Close()
	mustVerifyOK(t, path, int64(len(tests)))
}
