package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/neullabs/ringlet/api"
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
// lease. The answer is a line per api.LeaseEvent: held first, then, when
// the session ends, ended, or, when a graceful stop keeps the session for
// the next daemon, restarting with the grace the launcher has to hold it
// again there.
func (ss *sessions) handleSessionLease(w http.ResponseWriter, r *http.Request) {
	sess := ss.find(w, r)
	if sess == nil {
		return
	}
	if sess.ctx.Err() != nil {
		writeError(w, http.StatusNotFound, "not_found", "no live session "+sess.ID)
		return
	}
	if !sess.leased.CompareAndSwap(false, true) {
		writeError(w, http.StatusConflict, "leased", "session "+sess.ID+" is already held by its launcher")
		return
	}
	// Restored after a restart: its launcher is back, its token serves.
	sess.awaiting.Store(false)
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	send := func(ev api.LeaseEvent) error {
		line, _ := json.Marshal(ev) // a struct of bools and an int
		if _, err := w.Write(append(line, '\n')); err != nil {
			return err
		}
		return http.NewResponseController(w).Flush()
	}
	if err := send(api.LeaseEvent{Held: true}); err != nil {
		ss.end(context.WithoutCancel(r.Context()), sess.ID, LeaseReason, audit.ActorDaemon)
		return
	}
	select {
	case <-r.Context().Done():
		// Ends nothing if the launcher ended the session first.
		ss.end(context.WithoutCancel(r.Context()), sess.ID, LeaseReason, audit.ActorDaemon)
	case <-sess.ctx.Done():
		why, killed := sess.endedBecause()
		ev := api.LeaseEvent{Ended: true, Killed: killed, Reason: why}
		if errors.Is(context.Cause(sess.ctx), errDaemonStopping) {
			ev = api.LeaseEvent{Restarting: true, GraceSeconds: int64(ss.o.RestartGrace / time.Second)}
		}
		_ = send(ev) // a launcher gone meanwhile has nothing to hear
	}
}
