package gateway

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
)

// Auditor is the audit log as the gateway uses it: Append returns once the
// record is committed, or an error when it could not be, in which case the
// action must be refused.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// PublishRecords streams committed records to /api/events subscribers; the
// audit log calls it after each commit.
func (s *Server) PublishRecords(recs []audit.Record) {
	for _, r := range recs {
		s.bus.publish(r)
	}
}

// record writes r to the audit log before the action it describes goes
// ahead. With the log off, the record is only streamed. Records that
// waited (recordLater) are written first.
func (s *Server) record(ctx context.Context, r audit.Record) error {
	if s.opts.Audit == nil {
		if r.Time.IsZero() {
			r.Time = time.Now().UTC()
		}
		s.bus.publish(r)
		return nil
	}
	ctx = context.WithoutCancel(ctx)
	if s.waiting.Load() > 0 {
		s.flushLater(ctx)
	}
	_, err := s.opts.Audit.Append(ctx, r)
	if err != nil {
		s.log.Error("audit record not written; refusing the action", "kind", r.Kind, "err", err)
	}
	return err
}

// maxLater bounds the records that wait for the audit log. Past it, a
// session that ends is still recorded, as lost, by the next daemon start.
const maxLater = 4096

// recordLater keeps r, the record of something that had to happen even
// though the log could not be written (a forced session end), to be
// written before the next record that goes through.
func (s *Server) recordLater(r audit.Record) {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	if len(s.later) >= maxLater {
		s.log.Error("audit record dropped: too many wait for the audit log", "kind", r.Kind, "session", r.Session)
		return
	}
	s.later = append(s.later, r)
	s.waiting.Store(int64(len(s.later)))
	s.log.Warn("audit record waits until the audit log can be written", "kind", r.Kind, "session", r.Session)
}

// flushLater writes the records that waited, in order, until one fails.
func (s *Server) flushLater(ctx context.Context) {
	s.laterMu.Lock()
	defer s.laterMu.Unlock()
	n := 0
	for _, r := range s.later {
		if _, err := s.opts.Audit.Append(ctx, r); err != nil {
			break
		}
		n++
	}
	s.later = append(s.later[:0], s.later[n:]...)
	s.waiting.Store(int64(len(s.later)))
}

// recordOr503 records r and reports whether the action may proceed; when
// it may not, it has answered 503.
func (s *Server) recordOr503(w http.ResponseWriter, req *http.Request, r audit.Record) bool {
	if err := s.record(req.Context(), r); err != nil {
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

func (s *Server) handleAuditQuery(w http.ResponseWriter, r *http.Request) {
	f, err := audit.ParseFilter(r.URL.Query(), time.Now(), time.UTC)
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_filter", err.Error())
		return
	}
	recs, next, err := audit.Query(r.Context(), s.opts.AuditPath, f)
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

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request) {
	res, err := audit.Verify(s.opts.AuditPath)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, res)
}
