package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/provider"
)

// Auditor is the audit log as the gateway uses it: Append returns once the
// record is committed, or an error when it could not be, in which case the
// action must be refused.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// RecordExporter sends committed records elsewhere (package otelexport):
// Export must return at once, whatever happens to them.
type RecordExporter interface {
	Export(recs []audit.Record)
}

// PublishRecords streams committed records to /api/events subscribers
// and the exporter; the audit log calls it after each commit.
func (s *Server) PublishRecords(recs []audit.Record) {
	for _, r := range recs {
		s.ui.observe(r)
		s.bus.publish(r)
	}
	if s.rec.export != nil {
		s.rec.export.Export(recs)
	}
}

// recorder writes the audit trail, for every part of the daemon: a
// record is committed before the action it describes goes ahead, and an
// action whose record cannot be written is refused. With the log off
// (--no-audit-log) records are only streamed to /api/events.
type recorder struct {
	audit Auditor // nil: the log is off
	bus   *eventBus
	// observe sees every record before it is streamed (the dashboard's
	// view of sessions), when the log is off; with the log on, the log
	// calls PublishRecords.
	observe func(audit.Record)
	log     *slog.Logger
	// later holds records that wait for the audit log (recordLater);
	// waiting is its length, read without the lock.
	laterMu sync.Mutex
	later   []audit.Record
	waiting atomic.Int64
	// traces gives each record its place in its session's traces; nil:
	// records have none.
	traces *traces
	// export receives the records streamed with the log off (with it
	// on, PublishRecords gives it those committed).
	export RecordExporter
	// noResults leaves out the tool.result records of MCP calls: the
	// benchmarks measure what they cost with it.
	noResults atomic.Bool
}

// record writes r to the audit log before the action it describes goes
// ahead. With the log off, the record is only streamed. Records that
// waited (recordLater) are written first.
func (c *recorder) record(ctx context.Context, r audit.Record) error {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	first := c.traces.stamp(ctx, &r)
	if c.audit == nil {
		for _, f := range first {
			c.bus.publish(f)
		}
		if c.observe != nil {
			c.observe(r)
		}
		c.bus.publish(r)
		if c.export != nil {
			c.export.Export(append(first, r))
		}
		return nil
	}
	if ctx.Done() != nil { // a context that cannot end needs no detaching
		ctx = context.WithoutCancel(ctx)
	}
	if c.waiting.Load() > 0 {
		c.flushLater(ctx)
	}
	for _, f := range first {
		// A finding about tool calls past (hook.bypass at a session's
		// end): its failure does not stop the record it came with; it
		// waits for the log instead.
		if _, err := c.audit.Append(ctx, f); err != nil {
			c.log.Error("audit record not written", "kind", f.Kind, "err", err)
			c.wait(f)
		}
	}
	_, err := c.audit.Append(ctx, r)
	if err != nil {
		c.log.Error("audit record not written; refusing the action", "kind", r.Kind, "err", err)
	}
	return err
}

// maxLater bounds the records that wait for the audit log. Past it, a
// session that ends is still recorded, as lost, by the next daemon start.
const maxLater = 4096

// recordLater keeps r, the record of something that had to happen even
// though the log could not be written (a forced session end), to be
// written before the next record that goes through.
func (c *recorder) recordLater(r audit.Record) {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	// A forced end's findings (hook.bypass) wait before it, as record
	// writes them.
	for _, f := range c.traces.stamp(context.Background(), &r) {
		c.wait(f)
	}
	c.wait(r)
}

// wait queues r for the audit log, within maxLater.
func (c *recorder) wait(r audit.Record) {
	if r.Time.IsZero() {
		r.Time = time.Now().UTC()
	}
	c.laterMu.Lock()
	defer c.laterMu.Unlock()
	if len(c.later) >= maxLater {
		c.log.Error("audit record dropped: too many wait for the audit log", "kind", r.Kind, "session", r.Session)
		return
	}
	c.later = append(c.later, r)
	c.waiting.Store(int64(len(c.later)))
	c.log.Warn("audit record waits until the audit log can be written", "kind", r.Kind, "session", r.Session)
}

// flushLater writes the records that waited, in order, until one fails.
func (c *recorder) flushLater(ctx context.Context) {
	c.laterMu.Lock()
	defer c.laterMu.Unlock()
	n := 0
	for _, r := range c.later {
		if _, err := c.audit.Append(ctx, r); err != nil {
			break
		}
		n++
	}
	c.later = append(c.later[:0], c.later[n:]...)
	c.waiting.Store(int64(len(c.later)))
}

// recordOr503 records r and reports whether the action may proceed; when
// it may not, it has answered 503.
func (c *recorder) recordOr503(w http.ResponseWriter, req *http.Request, r audit.Record) bool {
	if err := c.record(req.Context(), r); err != nil {
		writeAuditError(w, err)
		return false
	}
	return true
}

// writeAuditError answers 503 for an action refused because its record
// could not be written.
func writeAuditError(w http.ResponseWriter, err error) {
	writeError(w, http.StatusServiceUnavailable, "audit_unavailable", "refused: the action could not be recorded in the audit log ("+rootCause(err)+")")
}

// rootCause is the part of a failed record's error that tells the user
// what to do.
func rootCause(err error) string {
	var ue *audit.UnavailableError
	if errors.As(err, &ue) {
		return ue.Reason.Error()
	}
	return err.Error()
}

var auditOff = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "audit_disabled", "the daemon runs with --no-audit-log; there is no audit log to read")
})

// auditReader answers what reads the audit log: /api/audit, its
// verification and /api/usage (priced by prices.toml in catalogDir over
// the imported table in pricesFile over the embedded one).
type auditReader struct {
	path, catalogDir, pricesFile string
	log                          *slog.Logger
}

func (ar *auditReader) handleAuditQuery(w http.ResponseWriter, r *http.Request) {
	f, err := audit.ParseFilter(r.URL.Query(), time.Now(), time.UTC)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	recs, next, err := audit.Query(r.Context(), ar.path, f)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", err.Error())
		return
	}
	if recs == nil {
		recs = []audit.Record{}
	}
	out := api.AuditPage{Records: recs}
	if next > 0 {
		c := strconv.FormatInt(next, 10)
		out.NextCursor = &c
	}
	writeJSON(w, http.StatusOK, out)
}

// handleTrace answers GET /api/audit/traces/{id}: the tree of a trace,
// named by its id or the number of one of its records; a session's own
// route (/audit/traces/{id}) shows only its own records of it.
func (ar *auditReader) handleTrace(w http.ResponseWriter, r *http.Request) {
	ref := chi.URLParam(r, "id")
	session := ""
	if c := callerFrom(r.Context()); c.kind == sessionCaller && c.sess != nil {
		session = c.sess.ID
	}
	prices, err := provider.LoadPrices(ar.catalogDir, ar.pricesFile)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "bad_prices", err.Error())
		return
	}
	t, err := audit.ReadSessionTrace(r.Context(), ar.path, ref, session, prices.Cost)
	switch {
	case errors.Is(err, audit.ErrNoTrace):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil && strings.HasPrefix(err.Error(), "invalid trace"):
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", err.Error())
	default:
		writeJSON(w, http.StatusOK, t)
	}
}

func (ar *auditReader) handleAuditVerify(w http.ResponseWriter, r *http.Request) {
	var opts audit.VerifyOptions
	for k, v := range r.URL.Query() {
		switch {
		case k == "since_last" && len(v) == 1 && (v[0] == "true" || v[0] == "false"):
			opts.SinceLast = v[0] == "true"
		default:
			writeError(w, http.StatusBadRequest, "bad_filter", "unknown parameter "+strconv.Quote(k)+"; accepted: since_last=true|false")
			return
		}
	}
	res, err := audit.VerifyWith(ar.path, opts)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", err.Error())
		return
	}
	if err := audit.SaveMark(res); err != nil {
		// The result stands; the next since_last walk starts further back.
		ar.log.Warn("could not save the audit log's verified mark", "err", err)
	}
	writeJSON(w, http.StatusOK, res)
}

func (ar *auditReader) handleUsage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	by := q.Get("by")
	q.Del("by")
	f, err := audit.ParseFilter(q, time.Now(), time.UTC)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	prices, err := provider.LoadPrices(ar.catalogDir, ar.pricesFile)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "bad_prices", err.Error())
		return
	}
	rows, err := audit.UsageReport(r.Context(), ar.path, f, by, prices.Cost)
	if err != nil {
		if strings.HasPrefix(err.Error(), "invalid by") {
			writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
			return
		}
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.Usage{By: by, Rows: rows})
}
