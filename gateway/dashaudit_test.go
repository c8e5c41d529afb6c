package gateway

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/ncruces/go-sqlite3"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/audit/auditlog"
)

// newUIAudit is the Audit page's handlers over a log of n tool calls.
func newUIAudit(t *testing.T, n int) (*uiAudit, *auditlog.Log) {
	t.Helper()
	log, err := auditlog.Open(auditlog.Options{Path: filepath.Join(t.TempDir(), "audit.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	for i := range n {
		r := audit.Record{Kind: audit.KindToolCall, Profile: "work", Target: "fs__read", Decision: audit.Allow}
		if i%2 == 1 {
			r.Profile, r.Target = "other", `<b>x</b>`
		}
		if _, err := log.Append(t.Context(), r); err != nil {
			t.Fatal(err)
		}
	}
	return &uiAudit{reader: &auditReader{path: log.Path(), log: slog.New(slog.DiscardHandler)}}, log
}

func call(t *testing.T, h http.HandlerFunc, method, target string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if id, ok := strings.CutPrefix(req.URL.Path, "/ui/audit/traces/"); ok {
		rc := chi.NewRouteContext()
		rc.URLParams.Add("id", id)
		req = req.WithContext(context.WithValue(req.Context(), chi.RouteCtxKey, rc))
	}
	rec := httptest.NewRecorder()
	h(rec, req)
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

// TestAuditPageVerify: the first check walks the whole chain, later ones
// from the verified mark; an edit before the mark is for the whole walk
// (the page's button) to find, and once found it stands until a whole
// walk finds the log intact again.
func TestAuditPageVerify(t *testing.T) {
	t.Parallel()
	u, log := newUIAudit(t, 4)
	check := func(method, want string) {
		t.Helper()
		if code, body := call(t, u.handleVerify, method, "/ui/audit/verify"); code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("%s: got %d %s, want %q", method, code, body, want)
		}
	}
	check("GET", "whole chain")
	if _, err := log.Append(t.Context(), audit.Record{Kind: audit.KindToolCall, Decision: audit.Allow}); err != nil {
		t.Fatal(err)
	}
	check("GET", "1 records after record 4")
	edit := func(target string) {
		t.Helper()
		db, err := sqlite3.Open(log.Path())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Exec(`UPDATE records SET target = '` + target + `' WHERE seq = 2`); err != nil || db.Changes() != 1 {
			t.Fatalf("edit: %v", err)
		}
	}
	edit("forged")
	check("GET", "since the last full check") // before the mark: not walked
	check("POST", "record 2 was edited")
	check("GET", "The audit log is not intact")
	edit("<b>x</b>")
	check("GET", "The audit log is not intact") // stands until a whole walk
	check("POST", "Audit log intact")
}

// TestAuditPageRecords: filters of /api/audit and free text, refusals as
// text, the newest page marked as the head, a trace id checked.
func TestAuditPageRecords(t *testing.T) {
	t.Parallel()
	u, _ := newUIAudit(t, 6)
	for _, c := range []struct {
		target string
		code   int
		want   []string
		not    []string
	}{
		{"/ui/audit/records", 200, []string{`data-head="true"`, `data-seq="6"`, `data-seq="1"`, "&lt;b&gt;x&lt;/b&gt;", "No older records"}, []string{"<b>x"}},
		{"/ui/audit/records?profile=other", 200, []string{`data-head="false"`, `data-seq="6"`, `data-seq="2"`}, []string{`data-seq="5"`}},
		{"/ui/audit/records?q=FS__READ&limit=2", 200, []string{`data-seq="5"`, `data-seq="3"`, `data-cursor="3"`}, []string{`data-seq="6"`, `data-seq="1"`}},
		{"/ui/audit/records?kind=<script>", 400, []string{"unknown kind &#34;&lt;script&gt;&#34;"}, []string{"<script>"}},
		{"/ui/audit/records?q=" + strings.Repeat("x", 201), 400, []string{"at most 200 bytes"}, nil},
		{"/ui/audit/records?limit=100000", 400, []string{"limit must be from 1"}, nil},
	} {
		code, body := call(t, u.handleRecords, "GET", c.target)
		if code != c.code {
			t.Errorf("%s: got %d, want %d: %s", c.target, code, c.code, body)
		}
		for _, w := range c.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in %s", c.target, w, body)
			}
		}
		for _, w := range c.not {
			if strings.Contains(body, w) {
				t.Errorf("%s: %q in %s", c.target, w, body)
			}
		}
	}
	if code, _ := call(t, u.handleTrace, "GET", "/ui/audit/traces/nope"); code != http.StatusBadRequest {
		t.Errorf("a trace id that is not one: got %d, want 400", code)
	}
	if code, _ := call(t, u.handleTrace, "GET", "/ui/audit/traces/"+audit.NewTraceID()); code != http.StatusNotFound {
		t.Errorf("a trace no record has: got %d, want 404", code)
	}
}
