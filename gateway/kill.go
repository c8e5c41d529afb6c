package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/names"
)

// Who killed a session, as session.killed records it.
const (
	KilledByCLI    = "cli"    // 'ringlet sessions kill', with the admin token
	KilledByAPI    = "api"    // POST /api/sessions/.../kill with the admin token
	KilledByMCP    = "mcp"    // the admin MCP tool sessions_kill
	KilledByBudget = "budget" // an exhausted budget whose action is kill
)

// errSessionKilled cuts the streams and MCP calls of a killed session.
var errSessionKilled = fmt.Errorf("%w: killed", errSessionEnded)

// ErrNoSession is KillSession's answer for a session that is not live.
var ErrNoSession = errors.New("no live session")

// killWait bounds how long a kill waits for a sandbox's processes to go
// after SIGKILL (one in uninterruptible sleep may take a moment).
const killWait = 5 * time.Second

// viaMCPKey marks a request that an admin MCP tool runs in process.
type viaMCPKey struct{}

// KillSession kills a live session: the kill switch, for a budget that is
// exhausted (who KilledByBudget) and every other caller. See kill.
func (s *Server) KillSession(ctx context.Context, id, who, why string) error {
	_, err := s.kill(ctx, id, who, why)
	return err
}

// kill ends a session at once and everything it runs, in this order:
//
//  1. its token is refused (it leaves the session table), its streams
//     and MCP calls are cut (its context, cause errSessionKilled) and its
//     socket, a sandbox's only way out, closes with every connection on
//     it: from here no byte of its agent leaves the sandbox;
//  2. its sandbox's process tree gets SIGKILL through the pidfd of its PID
//     namespace's init (sandbox.Tree), which the kernel named when the
//     forwarder connected: the launcher's cooperation is not needed, and
//     kill waits until the processes are gone;
//  3. a remote terminal's process group gets SIGKILL too, and the
//     launcher of a 'profiles run' hears Killed and stops its agent (the
//     only way for an agent run with --no-sandbox);
//  4. its profile's running stdio MCP servers are killed (they start
//     again at the next use by another session of the profile);
//  5. one session.killed record says who, why and what was ended, and a
//     session.end the session's end. A kill is not refused when the audit
//     log cannot be written: the records wait for it (recordLater).
func (s *Server) kill(ctx context.Context, id, who, why string) (api.KilledSession, error) {
	ss := s.sessions
	start := time.Now()
	sess := ss.get(id)
	if sess == nil {
		return api.KilledSession{}, fmt.Errorf("%w %s", ErrNoSession, id)
	}
	sess.endMu.Lock()
	if sess.ended {
		sess.endMu.Unlock()
		return api.KilledSession{}, fmt.Errorf("%w %s", ErrNoSession, id)
	}
	reason := "killed"
	if why != "" {
		reason = "killed: " + why
	}
	sess.ended, sess.endWhy, sess.killed = true, reason, true
	sess.endMu.Unlock()
	info := sess.info()

	ss.remove(sess.ID)
	sess.cancel(errSessionKilled)
	ss.closeSocket(sess, false)
	cut := time.Since(start)

	out := api.KilledSession{SessionInfo: info, Reason: why, By: who, Sandbox: "none"}
	if t := sess.tree.Swap(nil); t != nil {
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killWait)
		err := t.Kill(kctx)
		cancel()
		t.Close()
		out.Sandbox = "killed"
		if err != nil {
			out.Sandbox = err.Error()
			s.log.Error("kill switch: the sandbox did not end", "session", sess.ID, "err", err)
		}
	}
	out.Terminal = s.terminals.kill(sess.ID)
	out.MCPServers = s.mcp.killServers(sess.Profile.Alias)
	// The rest of an end, as for every other (its sandbox's tree was
	// taken above).
	ss.release(sess)
	took := time.Since(start)
	out.Took = took.String()
	s.metrics.sessionsKilled.WithLabelValues(who).Inc()

	actor := audit.ActorAdmin
	if who == KilledByBudget {
		actor = audit.ActorDaemon
	}
	detail := map[string]any{"by": who, "reason": why, "sandbox": out.Sandbox, "terminal": out.Terminal, "mcp_servers": out.MCPServers,
		"cut_ms": float64(cut.Microseconds()) / 1000, "took_ms": float64(took.Microseconds()) / 1000, "requests": sess.requests.Load()}
	for _, rec := range []audit.Record{
		{Kind: audit.KindSessionKilled, Profile: sess.Profile.Alias, Session: sess.ID, Actor: actor, Target: sess.Profile.Agent, Decision: audit.Allow,
			Detail: audit.DetailJSON(detail)},
		sessionEnd(sess, reason, actor),
	} {
		if rec.Time.IsZero() {
			rec.Time = time.Now().UTC()
		}
		if err := s.rec.record(ctx, rec); err != nil {
			s.rec.recordLater(rec)
		}
	}
	s.log.Warn("session killed", "session", sess.ID, "profile", sess.Profile.Alias, "by", who, "reason", why, "sandbox", out.Sandbox, "took", took)
	return out, nil
}

// killRequest reads the body of a kill and who sent it.
func killRequest(w http.ResponseWriter, r *http.Request) (api.SessionKill, string, bool) {
	var body api.SessionKill
	if r.ContentLength != 0 && !decodeJSON(w, r, &body) {
		return body, "", false
	}
	if len(body.Reason) > api.MaxKillReason || !utf8.ValidString(body.Reason) || strings.ContainsAny(body.Reason, "\x00\r\n") {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("reason must be one line of at most %d bytes", api.MaxKillReason))
		return body, "", false
	}
	who := KilledByAPI
	switch {
	case r.Context().Value(viaMCPKey{}) != nil:
		who = KilledByMCP
	case body.Via == KilledByCLI:
		who = KilledByCLI
	case body.Via != "":
		writeError(w, http.StatusBadRequest, "bad_request", `via must be "cli" or absent`)
		return body, "", false
	}
	return body, who, true
}

// handleSessionKill kills one session (POST /api/sessions/{id}/kill).
func (s *Server) handleSessionKill(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	body, who, ok := killRequest(w, r)
	if !ok {
		return
	}
	if body.Profile != "" || body.All {
		writeError(w, http.StatusBadRequest, "bad_request", "profile and all go to POST /api/sessions/kill, not to one session's kill")
		return
	}
	k, err := s.kill(r.Context(), id, who, body.Reason)
	if errors.Is(err, ErrNoSession) {
		writeError(w, http.StatusNotFound, "not_found", "no live session "+id+" ('ringlet sessions list' shows them)")
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, api.SessionsKilled{Sessions: []api.KilledSession{k}})
}

// handleSessionKillAll kills every live session of a profile, or every
// one (POST /api/sessions/kill with profile or all).
func (s *Server) handleSessionKillAll(w http.ResponseWriter, r *http.Request) {
	body, who, ok := killRequest(w, r)
	if !ok {
		return
	}
	switch {
	case body.Profile == "" && !body.All:
		writeError(w, http.StatusBadRequest, "bad_request", "say which sessions to kill: profile, or all: true")
		return
	case body.Profile != "" && body.All:
		writeError(w, http.StatusBadRequest, "bad_request", "pass profile or all, not both")
		return
	case body.Profile != "":
		if err := names.Check("profile", body.Profile); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
	}
	out := api.SessionsKilled{Sessions: []api.KilledSession{}}
	for _, sess := range s.sessions.list() {
		if body.Profile != "" && sess.Profile.Alias != body.Profile {
			continue
		}
		k, err := s.kill(r.Context(), sess.ID, who, body.Reason)
		if errors.Is(err, ErrNoSession) {
			continue // ended meanwhile
		}
		if err != nil {
			writeError(w, http.StatusInternalServerError, "internal", err.Error())
			return
		}
		out.Sessions = append(out.Sessions, k)
	}
	writeJSON(w, http.StatusOK, out)
}
