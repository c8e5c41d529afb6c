package gateway

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/provider"
)

// auditScan is how many records a page of the dashboard's Audit page
// looks at, at most (audit.QueryWindow): a rare filter's page may hold
// few records, and the next goes on below.
const auditScan = 20_000

// auditPageMost bounds a page of the Audit page.
const auditPageMost = 500

// uiAudit answers the dashboard's Audit page: pages of the audit log,
// traces and the log's integrity.
type uiAudit struct {
	reader *auditReader

	// mu serialises the integrity walks; verified is the last one's
	// result. The first walk a daemon makes for the page is a full one;
	// later ones start at the last verified record (the mark 'ringlet
	// audit verify --since-last' uses), so a page load costs the records
	// written since, not the log's size. A walk that finds the log not
	// intact stands until a full walk (the page's button) finds it
	// intact: a walk after the mark does not see an edit before it.
	mu       sync.Mutex
	verified *dashboard.VerifyView
}

func (u *uiAudit) handlePage(w http.ResponseWriter, _ *http.Request) {
	dashboard.RenderAudit(w)
}

// handleRecords answers a page of the Audit page's table: the filters of
// /api/audit (audit.ParseFilter) and q, free text.
func (u *uiAudit) handleRecords(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	text := strings.TrimSpace(q.Get("q"))
	q.Del("q")
	head := len(q) == 0 && text == ""
	f, err := audit.ParseFilter(q, time.Now(), time.UTC)
	if err == nil && len(text) > 200 {
		err = errors.New("the text to look for is at most 200 bytes")
	}
	if err != nil {
		dashboard.RenderAuditError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Text, f.Limit = text, min(f.Limit, auditPageMost)
	win, err := audit.QueryWindow(r.Context(), u.reader.path, f, auditScan)
	if err != nil {
		dashboard.RenderAuditError(w, http.StatusServiceUnavailable, "the audit log could not be read: "+err.Error())
		return
	}
	dashboard.RenderAuditRows(w, dashboard.NewAuditView(win, head))
}

// handleTrace answers the tree of a trace, by its id.
func (u *uiAudit) handleTrace(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if !audit.ValidTraceID(id) {
		dashboard.RenderAuditError(w, http.StatusBadRequest, "not a trace id")
		return
	}
	prices, err := provider.LoadPrices(u.reader.catalogDir, u.reader.pricesFile)
	if err != nil {
		dashboard.RenderAuditError(w, http.StatusInternalServerError, "the price table could not be read: "+err.Error())
		return
	}
	t, err := audit.ReadTrace(r.Context(), u.reader.path, id, prices.Cost)
	switch {
	case errors.Is(err, audit.ErrNoTrace):
		dashboard.RenderAuditError(w, http.StatusNotFound, err.Error())
	case err != nil:
		dashboard.RenderAuditError(w, http.StatusServiceUnavailable, "the audit log could not be read: "+err.Error())
	default:
		dashboard.RenderTrace(w, dashboard.NewTraceView(t))
	}
}

// handleVerify answers the log's integrity: GET checks what was written
// since the last check, POST walks the whole chain.
func (u *uiAudit) handleVerify(w http.ResponseWriter, r *http.Request) {
	dashboard.RenderVerify(w, u.verify(r.Context(), r.Method == http.MethodPost))
}

func (u *uiAudit) verify(ctx context.Context, full bool) dashboard.VerifyView {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ctx.Err() != nil {
		// The page went away while another walk ran.
		return dashboard.VerifyView{Err: "the check was cancelled"}
	}
	last := u.verified
	switch {
	case last == nil:
		full = true
	case !last.OK && last.Err == "" && !full:
		return *last
	}
	res, err := audit.VerifyWith(u.reader.path, audit.VerifyOptions{SinceLast: !full})
	v := dashboard.VerifyView{VerifyResult: res, Checked: time.Now(), Full: full}
	if err != nil {
		v.Err = err.Error()
		// Not kept: the next load tries again, from the start.
		return v
	}
	if err := audit.SaveMark(res); err != nil {
		// The result stands; the next walk starts further back.
		u.reader.log.Warn("could not save the audit log's verified mark", "err", err)
	}
	u.verified = &v
	return v
}

// auditOffPage answers the Audit page's data with a daemon that keeps no
// audit log.
var auditOffPage = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	dashboard.RenderAuditError(w, http.StatusNotFound, "the daemon runs with --no-audit-log; there is no audit log to show")
})
