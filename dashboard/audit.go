package dashboard

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/neullabs/ringlet/audit"
)

// AuditRow is one record of the Audit page. Its strings come from the
// audit log, where agents choose model names, tool names and arguments:
// the templates render every one as text.
type AuditRow struct {
	audit.Record
	// Fields is the whole record, one field a line (indented JSON), for
	// its expanded view.
	Fields string
}

// AuditView is a page of the Audit page's table.
type AuditView struct {
	Rows []AuditRow
	// From and To are the records looked at; Next is the cursor of the
	// next, older page (0: none).
	From, To, Next int64
	// Head: the page is the newest records with no filter, which new
	// records join live.
	Head bool
}

// NewAuditView makes the Audit page's view of a window of the log.
func NewAuditView(w audit.Window, head bool) AuditView {
	v := AuditView{From: w.From, To: w.To, Next: w.Next, Head: head, Rows: make([]AuditRow, 0, len(w.Records))}
	for _, r := range w.Records {
		// Not escaped for HTML here: the template escapes it, and the
		// page shows the record's own characters.
		var b strings.Builder
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		// The detail decoded, so that what a writer escaped in it (the
		// proxy writes < as \u003c) shows as itself.
		shown := struct {
			audit.Record
			Detail any `json:"detail,omitempty"`
		}{Record: r}
		dec := json.NewDecoder(bytes.NewReader(r.Detail))
		dec.UseNumber()
		if err := dec.Decode(&shown.Detail); err != nil && len(r.Detail) > 0 {
			shown.Detail = r.Detail
		}
		if err := enc.Encode(shown); err != nil {
			b.WriteString(err.Error())
		}
		v.Rows = append(v.Rows, AuditRow{Record: r, Fields: strings.TrimSpace(b.String())})
	}
	return v
}

// RenderAudit writes the Audit page's shell, with the kinds its filter
// offers.
func RenderAudit(w http.ResponseWriter) {
	render(w, http.StatusOK, "audit", page{Title: "Audit", Nav: "audit", Body: audit.Kinds})
}

// RenderAuditRows writes a page of the Audit page's table: its rows and
// the pager after them.
func RenderAuditRows(w http.ResponseWriter, v AuditView) {
	render(w, http.StatusOK, "auditrows", v)
}

// TraceItem is one span of a trace as the Audit page shows it, with
// the spans under it.
type TraceItem struct {
	Text     string
	Seq      int64
	Deny     bool
	Children []TraceItem
}

// TraceView is a trace's tree.
type TraceView struct {
	ID      string
	Records int
	CostUSD float64
	Roots   []TraceItem
}

// NewTraceView makes the Audit page's view of a trace.
func NewTraceView(t audit.Trace) TraceView {
	var items func(nodes []*audit.TraceNode) []TraceItem
	items = func(nodes []*audit.TraceNode) []TraceItem {
		out := make([]TraceItem, 0, len(nodes))
		for _, n := range nodes {
			it := TraceItem{Text: n.Describe(), Children: items(n.Children)}
			if n.Record != nil {
				it.Seq, it.Deny = n.Record.Seq, n.Record.Decision == audit.Deny
			}
			out = append(out, it)
		}
		return out
	}
	return TraceView{ID: t.TraceID, Records: t.Records, CostUSD: t.CostUSD, Roots: items(t.Roots)}
}

// RenderTrace writes a trace's tree.
func RenderTrace(w http.ResponseWriter, v TraceView) {
	render(w, http.StatusOK, "trace", v)
}

// VerifyView is the audit log's integrity as the Audit page shows it.
type VerifyView struct {
	audit.VerifyResult
	// Checked is when; Full: the walk started at the first record (not
	// at the last verified one).
	Checked time.Time
	Full    bool
	// Err: the log could not be read to check it.
	Err string
}

// RenderVerify writes the audit log's integrity status.
func RenderVerify(w http.ResponseWriter, v VerifyView) {
	render(w, http.StatusOK, "verify", v)
}

// RenderAuditError writes a refusal of the Audit page (a filter that
// does not parse, a log that cannot be read) as text.
func RenderAuditError(w http.ResponseWriter, status int, msg string) {
	render(w, status, "auditerror", msg)
}
