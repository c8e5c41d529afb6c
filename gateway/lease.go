package gateway

import (
	"context"
	"net/http"

	"github.com/neullabs/ringlet/audit"
)

// LeaseReason is the session.end reason when a session's launcher goes
// away without ending it (killed, crashed).
const LeaseReason = "launcher exited"

// handleSessionLease holds a session for the process that launched its
// agent ('profiles run'): the request stays open while the launcher lives.
// When it drops without the session having ended (the launcher was
// killed: the kernel closes its connection), the session ends at once, so
// its token stops working long before its TTL. A session has at most one
// lease.
func (ss *sessions) handleSessionLease(w http.ResponseWriter, r *http.Request) {
	sess := ss.find(w, r)
	if sess == nil {
		return
	}
	if !sess.leased.CompareAndSwap(false, true) {
		writeError(w, http.StatusConflict, "leased", "session "+sess.ID+" is already held by its launcher")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(`{"held":true}` + "\n"))
	if err := http.NewResponseController(w).Flush(); err != nil {
		ss.end(context.WithoutCancel(r.Context()), sess.ID, LeaseReason, audit.ActorDaemon)
		return
	}
	select {
	case <-r.Context().Done():
		// Ends nothing if the launcher ended the session first.
		ss.end(context.WithoutCancel(r.Context()), sess.ID, LeaseReason, audit.ActorDaemon)
	case <-sess.ctx.Done():
	}
}
