package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sessionstore"
)

// How long sessions live. A session ends at its deadline (its TTL after it
// started) at the latest. One that no launcher holds ('profiles env', an
// API client) also ends once it has served no request for its idle
// timeout: each request renews it, up to the deadline. A 'profiles run'
// session ends with its agent (its launcher's lease, its remote terminal),
// so it has no idle timeout: an agent waiting for its user is not idle.
const (
	// DefaultSessionTTL is the deadline of a session nobody ends.
	DefaultSessionTTL = 12 * time.Hour
	// DefaultSessionIdle ends a session no launcher holds after that long
	// with no request.
	DefaultSessionIdle = 2 * time.Hour
	// DefaultRestartGrace is how long after a restart the launcher of a
	// 'profiles run' session kept by a graceful stop has to hold it again.
	DefaultRestartGrace = 2 * time.Minute
)

// orphanGrace is how long a launch may take to hold its session before
// 'sessions prune' takes the session for one its launcher left.
const orphanGrace = time.Minute

// errDaemonStopping cuts the streams of a session the daemon keeps for
// its next start.
var errDaemonStopping = errors.New("daemon stopping")

// clock is the time the sessions live by; tests drive their own.
type clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) timer
}

// timer is what the sessions do with a clock's timers (a *time.Timer).
type timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) timer { return time.AfterFunc(d, f) }

// SessionStore keeps the sessions that outlive the daemon's process: those
// the daemon holds nothing for but their token ('profiles env'), told of
// each when it starts and ends and of its renewals coarsely (used), and
// the 'profiles run' sessions a graceful stop keeps for the next daemon
// (stopAll). The daemon reads it once, when it starts.
type SessionStore interface {
	Load(ctx context.Context) ([]sessionstore.Session, error)
	Put(ctx context.Context, sessions ...sessionstore.Session) error
	Delete(ctx context.Context, ids ...string) error
}

// terms are how long a session may live and how it runs.
type terms struct {
	// ttl is the time to its deadline (0: the daemon's default);
	// idle, when not 0, ends it sooner after that long with no request.
	ttl, idle time.Duration
	sandboxed bool
	// seenHome is its HOME as the agent sees it (in its sandbox); ""
	// for the HOME on the host.
	seenHome string
	// durable sessions are kept in the store, across restarts.
	durable bool
	// launch: a session of 'profiles run' (see session.launch).
	launch bool
	// budget is the session's own budget.
	budget budget.Limits
}

// expiresAt is when the session ends unless it is used first: its
// deadline, or idle after its last request, whichever comes first. A
// request in flight is a use that has not ended.
func (s *session) expiresAt(now time.Time) time.Time {
	if s.idle <= 0 {
		return s.Deadline
	}
	last := time.Unix(0, s.lastUsed.Load())
	if s.inFlight.Load() > 0 {
		last = now
	}
	if at := last.Add(s.idle); at.Before(s.Deadline) {
		return at
	}
	return s.Deadline
}

// expired reports whether the session is over at now, and why.
func (s *session) expired(now time.Time) (string, bool) {
	if now.Before(s.expiresAt(now)) {
		return "", false
	}
	if !now.Before(s.Deadline) {
		return "expired", true
	}
	return "expired: no request for " + s.idle.String(), true
}

// arm starts the timer that ends the session when it expires; fired
// early (the session was used meanwhile), it waits again.
func (ss *sessions) arm(sess *session) {
	now := ss.clock.Now()
	sess.timerMu.Lock()
	defer sess.timerMu.Unlock()
	sess.expiry = ss.clock.AfterFunc(sess.expiresAt(now).Sub(now), func() { ss.expire(sess) })
}

func (ss *sessions) expire(sess *session) {
	now := ss.clock.Now()
	if why, over := sess.expired(now); over {
		ss.end(context.Background(), sess.ID, why, audit.ActorDaemon)
		return
	}
	sess.timerMu.Lock()
	defer sess.timerMu.Unlock()
	sess.expiry.Reset(sess.expiresAt(now).Sub(now))
}

func (s *session) stopTimer() {
	s.timerMu.Lock()
	defer s.timerMu.Unlock()
	if s.expiry != nil {
		s.expiry.Stop()
	}
	if s.regrace != nil {
		s.regrace.Stop()
	}
	if s.runtimeCap != nil {
		s.runtimeCap.Stop()
	}
}

// begin marks a request of the session that the gate admitted: it
// renews the session, which does not idle out while the request runs.
// finished marks its end, the session's last use (a method rather than a
// returned closure: it runs on every request).
func (ss *sessions) begin(sess *session) {
	sess.inFlight.Add(1)
	ss.used(sess)
}

// finished marks the end of a request that begin marked.
func (ss *sessions) finished(sess *session) {
	sess.lastUsed.Store(ss.clock.Now().UnixNano())
	sess.inFlight.Add(-1)
}

// used renews the session at each authenticated request. The store hears
// of it coarsely, at most every saveGrain, and off the request's path
// (renewals): a daemon killed (kill -9) loses that much of the renewal,
// and the write not yet made, so the session may end that much early
// after the restart, never later; one that stops gracefully saves every
// session's last use (stopAll).
func (ss *sessions) used(sess *session) {
	now := ss.clock.Now()
	sess.lastUsed.Store(now.UnixNano())
	if !sess.durable || sess.idle <= 0 {
		return
	}
	saved := sess.saved.Load()
	if now.UnixNano()-saved < int64(saveGrain(sess.idle)) || !sess.saved.CompareAndSwap(saved, now.UnixNano()) {
		return
	}
	ss.renewals.mark(sess, ss.writeRenewals)
}

// renewals are the durable sessions whose renewal the store has yet to
// hear of. A request only marks its session; one writer, started when
// the first is marked and gone once none is, writes each marked session
// once with its last use at the time of the write, so renewals that pile
// up while the disk syncs cost one write per session. The sessions own
// the writer: a graceful stop waits for it (stopAll).
type renewals struct {
	mu      sync.Mutex
	pending map[*session]struct{}
	// done is closed when the writer running now returns; nil while
	// none runs.
	done chan struct{}
	// stopped: the daemon stops, and saves every session itself.
	stopped bool
	// spawn runs the writer: in its own goroutine (nil). The benchmark's
	// baseline runs it on the request's path, as renewals were written
	// before.
	spawn func(func())
}

// mark has sess written by the writer, which it starts unless one runs.
func (r *renewals) mark(sess *session, write func(done chan struct{})) {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return
	}
	if r.pending == nil {
		r.pending = map[*session]struct{}{}
	}
	r.pending[sess] = struct{}{}
	if r.done != nil {
		r.mu.Unlock()
		return
	}
	done := make(chan struct{})
	r.done = done
	spawn := r.spawn
	r.mu.Unlock()
	if spawn == nil {
		go write(done)
		return
	}
	spawn(func() { write(done) })
}

// next hands the writer the sessions marked since it last asked; when
// there are none it is done.
func (r *renewals) next(done chan struct{}) map[*session]struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	batch := r.pending
	r.pending = nil
	if len(batch) == 0 {
		r.done = nil
		close(done)
	}
	return batch
}

// wait returns once no writer runs: every renewal marked before it was
// called is written (or refused: its session ended).
func (r *renewals) wait() {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// stop drops the pending renewals and starts no writer any more: the
// daemon stops and saves every session itself (stopAll). A writer still
// running leaves out the sessions ended meanwhile (put); wait for it.
func (r *renewals) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.pending = nil
}

// writeRenewals is the writer: it writes the marked sessions until none
// is left. A failed write is logged, once per failure.
func (ss *sessions) writeRenewals(done chan struct{}) {
	for {
		batch := ss.renewals.next(done)
		if len(batch) == 0 {
			return
		}
		for sess := range batch {
			if err := ss.put(sess); err != nil {
				ss.o.Log.Warn("could not save a session's renewal; after a restart it may end early", "session", sess.ID, "err", err)
			}
		}
	}
}

// put writes sess to the store while it lives. Under its storeMu, so
// that a session that ends meanwhile is taken out after this write, never
// put back by it (forget runs once ended is set, and waits for the
// write). Not under endMu: a kill, revoke or end that waited for a store
// write (a disk that hangs) would not cut the session at once.
func (ss *sessions) put(sess *session) error {
	sess.storeMu.Lock()
	defer sess.storeMu.Unlock()
	sess.endMu.Lock()
	ended := sess.ended
	sess.endMu.Unlock()
	if ended {
		return nil
	}
	return ss.o.Store.Put(context.Background(), sess.stored())
}

// saveGrain is how much of a renewal the store may miss: a minute, less
// for a short idle timeout.
func saveGrain(idle time.Duration) time.Duration { return min(time.Minute, idle/4) }

// stored is the store's record of sess.
func (s *session) stored() sessionstore.Session {
	return sessionstore.Session{ID: s.ID, TokenSHA256: hex.EncodeToString(s.hash[:]), TokenID: s.tokenID, Profile: s.Profile.Alias,
		ProfileCreated: s.Profile.Created, Provider: s.Provider.ID, BaseURL: s.base.String(), KeyRef: s.Profile.CredentialRef().String(),
		KeyHMAC: s.keyHMAC, Sandboxed: s.Sandboxed, Created: s.Created, Deadline: s.Deadline, IdleSeconds: int64(s.idle / time.Second), Budget: s.budget,
		LastUsed: time.Unix(0, s.lastUsed.Load()).UTC(), Requests: s.requests.Load()}
}

// keep stores a durable session that has just started.
func (ss *sessions) keep(sess *session) {
	if err := ss.put(sess); err != nil {
		ss.o.Log.Warn("could not keep a session across restarts; it ends when the daemon stops", "session", sess.ID, "err", err)
	}
}

// forget takes an ended durable session out of the store. Should that
// fail, the next start still does not admit it: the audit log has its
// session.end (RestoreSessions).
func (ss *sessions) forget(sess *session) {
	if !sess.durable {
		return
	}
	sess.storeMu.Lock()
	defer sess.storeMu.Unlock()
	if err := ss.o.Store.Delete(context.Background(), sess.ID); err != nil {
		ss.o.Log.Error("could not take an ended session out of the store; the next start refuses it by the audit log", "session", sess.ID, "err", err)
	}
}

// stopAll ends the sessions when the daemon stops, but for the durable
// ones and the 'profiles run' sessions whose launcher holds them
// (keepsLaunch): those are saved, with their last use, and admitted again
// by the next daemon (RestoreSessions). Their streams are cut all the
// same; a kept launch's socket stops being served, its directory stays
// (adoptSocket), and its launcher hears that the daemon restarts
// (handleSessionLease). It returns how many were kept.
func (ss *sessions) stopAll(reason string) int {
	// Each durable session's last use is saved below, with the rest of
	// it; the writer of renewals, ended sessions left out, is waited for.
	ss.renewals.stop()
	defer ss.renewals.wait()
	var kept []sessionstore.Session
	for _, sess := range ss.list() {
		launch := ss.keepsLaunch(sess)
		if !sess.durable && !launch {
			ss.end(context.Background(), sess.ID, reason, audit.ActorDaemon)
			continue
		}
		// A write of its renewal in progress lands before the one below.
		sess.storeMu.Lock()
		sess.endMu.Lock()
		if sess.ended {
			sess.endMu.Unlock()
			sess.storeMu.Unlock()
			continue
		}
		sess.ended = true
		sess.endMu.Unlock()
		sess.storeMu.Unlock()
		ss.remove(sess.ID)
		st := sess.stored()
		if launch {
			st.Launch, st.Workspace, st.SocketDir = true, sess.workspace(), ss.socketDir(sess)
			if st.SocketDir != "" {
				ss.keptSockets.Store(true)
			}
		}
		sess.cancel(errDaemonStopping)
		sess.stopTimer()
		if launch {
			ss.closeSocket(sess, true)
			sess.releasePlan()
		}
		kept = append(kept, st)
	}
	ss.o.Metrics.sessions.Set(float64(ss.count()))
	if len(kept) == 0 {
		return 0
	}
	if err := ss.o.Store.Put(context.Background(), kept...); err != nil {
		ss.o.Log.Error("could not keep the sessions for the next start; they end with this daemon", "err", err)
	}
	ss.o.Log.Info("sessions kept for the next start", "count", len(kept))
	return len(kept)
}

// awaitingLauncher answers a request of a restored session its launcher
// has not held again yet: 503, which agents retry, as they retry the
// connections refused while no daemon ran.
func awaitingLauncher(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "session_restoring",
		"the daemon restarted and this session waits for its launcher ('ringlet profiles run') to hold it again; retry")
}

// keepsLaunch reports whether a graceful stop keeps sess: a session of
// 'profiles run' whose agent its launcher started (the plan was handed
// out, or it was restored: it has none) and still holds. A remote
// terminal's agent is the daemon's child and ends with it, and so does its
// session.
func (ss *sessions) keepsLaunch(sess *session) bool {
	if ss.o.RestartGrace <= 0 || !sess.launch || !sess.leased.Load() {
		return false
	}
	sess.planMu.Lock()
	defer sess.planMu.Unlock()
	return sess.plan == nil || sess.planTaken
}

// awaitLauncher ends a restored launch session unless its launcher holds
// it again within the grace: one whose launcher died meanwhile is over,
// as if it had died while the daemon ran. Until its launcher holds it, its
// token is not served (awaitingLauncher): an agent that outlived its
// launcher (one run with --no-sandbox) gains nothing from the restart.
func (ss *sessions) awaitLauncher(sess *session) {
	grace := ss.o.RestartGrace
	sess.timerMu.Lock()
	defer sess.timerMu.Unlock()
	sess.regrace = ss.clock.AfterFunc(grace, func() {
		if !sess.leased.Load() {
			ss.end(context.Background(), sess.ID, "launcher did not hold it again within "+grace.String()+" of the restart", audit.ActorDaemon)
		}
	})
}

// restore admits again the sessions a previous daemon kept
// (Server.RestoreSessions).
func (ss *sessions) restore(ctx context.Context, open map[string]bool) []string {
	stored, err := ss.o.Store.Load(ctx)
	if err != nil {
		ss.o.Log.Error("refusing the stored sessions: none is restored, their agents need new ones", "err", err)
		return nil
	}
	now := ss.clock.Now()
	keys := map[credentials.Ref]keyRead{}
	var handled, drop []string
	for _, st := range stored {
		if open != nil && !open[st.ID] {
			// Revoked or ended, and its removal from the store lost
			// (or the audit log is not the one it started in).
			ss.o.Log.Warn("not restoring a stored session that the audit log does not show live", "session", st.ID)
			drop = append(drop, st.ID)
			continue
		}
		handled = append(handled, st.ID)
		sess, why := ss.revive(st, now, keys)
		if why == "" && st.Launch {
			why = ss.reviveLaunch(sess, st)
		}
		if why == "" {
			detail := map[string]any{"expires": sess.expiresAt(now).UTC().Format(time.RFC3339), "deadline": st.Deadline.UTC().Format(time.RFC3339),
				"idle": sess.idle.String(), "last_used": st.LastUsed.UTC().Format(time.RFC3339), "token": st.TokenID, "sandboxed": st.Sandboxed}
			if st.Launch {
				detail["launch"] = true
				detail["grace"] = ss.o.RestartGrace.String()
			}
			rec := audit.Record{Kind: audit.KindSessionRestore, Profile: st.Profile, Session: st.ID, Actor: audit.ActorDaemon, Target: st.Provider, Decision: audit.Allow,
				Detail: audit.DetailJSON(detail)}
			if err := ss.o.Rec.record(ctx, rec); err == nil {
				sess.awaiting.Store(st.Launch)
				ss.arm(sess)
				ss.add(sess)
				ss.watch(sess)
				if st.Launch {
					// Kept for this restart only: it ends with its
					// agent, or with this daemon unless it is kept again.
					ss.awaitLauncher(sess)
					drop = append(drop, st.ID)
				}
				continue
			}
			ss.closeSocket(sess, false)
			why = "not restored: the audit log could not be written"
		}
		drop = append(drop, st.ID)
		rec := audit.Record{Time: now.UTC(), Kind: audit.KindSessionEnd, Profile: st.Profile, Session: st.ID, Actor: audit.ActorDaemon, Decision: audit.Allow,
			Duration: now.Sub(st.Created), Detail: audit.DetailJSON(map[string]any{"reason": why, "requests": st.Requests})}
		if err := ss.o.Rec.record(ctx, rec); err != nil {
			ss.o.Rec.recordLater(rec)
		}
		ss.o.Log.Info("stored session ended", "session", st.ID, "profile", st.Profile, "reason", why)
	}
	if err := ss.o.Store.Delete(ctx, drop...); err != nil {
		ss.o.Log.Error("could not take ended sessions out of the store", "err", err)
	}
	ss.o.Metrics.sessions.Set(float64(ss.count()))
	if n := ss.count(); n > 0 {
		ss.o.Log.Info("sessions restored", "count", n)
	}
	return handled
}

// keyRead is a key read once for every stored session that uses it.
type keyRead struct {
	key  credentials.Secret
	hmac string
	err  error
}

// revive rebuilds a stored session as it was, or says why it cannot
// live on: it expired, or its profile or key is not the one it started
// with.
func (ss *sessions) revive(st sessionstore.Session, now time.Time, keys map[credentials.Ref]keyRead) (*session, string) {
	sess := &session{ID: st.ID, Created: st.Created, Deadline: st.Deadline, idle: time.Duration(st.IdleSeconds) * time.Second, budget: st.Budget,
		clock: ss.clock, tokenID: st.TokenID, Sandboxed: st.Sandboxed, durable: !st.Launch, launch: st.Launch, keyHMAC: st.KeyHMAC}
	sess.lastUsed.Store(st.LastUsed.UnixNano())
	sess.saved.Store(st.LastUsed.UnixNano())
	sess.requests.Store(st.Requests)
	if why, over := sess.expired(now); over {
		return nil, why + " while the daemon was stopped"
	}
	parts, err := ss.parts(st.Profile)
	if errors.Is(err, profile.ErrNotFound) {
		return nil, "profile deleted while the daemon was stopped"
	}
	if err != nil {
		return nil, "not restored: its profile could not be read"
	}
	p := parts.p
	base, err := profile.ParseBaseURL(baseURLOf(p, parts.prov))
	if !p.Created.Equal(st.ProfileCreated) || p.Provider != st.Provider || p.CredentialRef().String() != st.KeyRef || err != nil || base.String() != st.BaseURL {
		return nil, "profile changed while the daemon was stopped"
	}
	ref := p.CredentialRef()
	k, ok := keys[ref]
	if !ok {
		k.key, k.err = ss.o.Keys.Get(ref)
		if k.err == nil {
			k.hmac = ss.o.HMAC.Sum(k.key.Reveal())
		}
		keys[ref] = k
	}
	switch {
	case errors.Is(k.err, credentials.ErrNotFound):
		return nil, "key removed while the daemon was stopped"
	case k.err != nil:
		return nil, "not restored: its key could not be read"
	case k.hmac != st.KeyHMAC:
		return nil, "key replaced while the daemon was stopped"
	}
	hash, err := hex.DecodeString(st.TokenSHA256)
	if err != nil || len(hash) != sha256.Size {
		return nil, "not restored: its record is damaged"
	}
	copy(sess.hash[:], hash)
	sess.Profile, sess.Provider, sess.Agent, sess.base, sess.key = p, parts.prov, parts.agent, base, k.key
	sess.Home = ss.o.Profiles.UnsandboxedHome(p.Alias)
	if sess.Sandboxed {
		sess.Home = ss.o.Profiles.Home(p.Alias)
	}
	sess.ctx, sess.cancel = context.WithCancelCause(context.Background())
	return sess, ""
}

// reviveLaunch gives a restored session of 'profiles run' back what the
// gateway holds for it: the workspace its agent was launched in (which
// its hooks must not load from) and its socket, served again in the
// directory its sandbox has bound. It says why the session cannot live
// on, if it cannot.
func (ss *sessions) reviveLaunch(sess *session, st sessionstore.Session) string {
	if ss.o.RestartGrace <= 0 {
		return "not restored: sessions.restart_grace is 0"
	}
	sess.launchedIn.Store(st.Workspace)
	if st.SocketDir == "" {
		return ""
	}
	if err := ss.adoptSocket(sess, st.SocketDir); err != nil {
		ss.o.Log.Warn("not serving a restored session's socket", "session", sess.ID, "dir", st.SocketDir, "err", err)
		return "not restored: its socket could not be served again"
	}
	return ""
}

// baseURLOf is the provider URL of a profile's sessions.
func baseURLOf(p profile.Profile, prov profile.Provider) string {
	if p.Endpoint != "" {
		return prov.Endpoints[p.Endpoint]
	}
	return prov.BaseURL
}

// pruneReason says why 'sessions prune' ends sess at now, if it does.
// idle > 0 ends the sessions no launcher holds that have served no
// request for that long.
func (ss *sessions) pruneReason(sess *session, now time.Time, idle time.Duration) string {
	if why, over := sess.expired(now); over {
		return why
	}
	if _, err := ss.o.Profiles.Get(sess.Profile.Alias); errors.Is(err, profile.ErrNotFound) {
		return "its profile is gone"
	}
	sess.planMu.Lock()
	plan, taken := sess.plan != nil, sess.planTaken
	sess.planMu.Unlock()
	if sess.launch {
		// One restored after a restart has no plan: awaitLauncher ends
		// it if its launcher does not come back.
		if plan && !sess.leased.Load() && !taken && now.Sub(sess.Created) >= orphanGrace {
			return "orphaned: its launcher never took it up"
		}
		return ""
	}
	if unused := now.Sub(time.Unix(0, sess.lastUsed.Load())); idle > 0 && sess.inFlight.Load() == 0 && unused >= idle {
		return "unused for " + unused.Truncate(time.Second).String()
	}
	return ""
}

// handleSessionPrune ends the sessions that are over or left behind
// (pruneReason), each audited as a revoke is; with dry_run it only says
// which.
func (ss *sessions) handleSessionPrune(w http.ResponseWriter, r *http.Request) {
	var body api.SessionPrune
	if !decodeJSON(w, r, &body) {
		return
	}
	idle := DefaultPruneIdle
	if body.Idle != "" {
		d, err := parseIdleFlag(body.Idle)
		if err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "idle: "+err.Error())
			return
		}
		idle = d
	}
	out := api.SessionsEnded{Sessions: []api.EndedSession{}, DryRun: body.DryRun}
	now := ss.clock.Now()
	for _, sess := range ss.list() {
		why := ss.pruneReason(sess, now, idle)
		if why == "" {
			continue
		}
		if !body.DryRun {
			ended, err := ss.revoke(r.Context(), sess.ID, "pruned: "+why, audit.ActorAdmin)
			if err != nil {
				writeAuditError(w, err)
				return
			}
			if ended == nil {
				continue // ended meanwhile
			}
		}
		out.Sessions = append(out.Sessions, api.EndedSession{SessionInfo: sess.info(), Reason: why})
	}
	writeJSON(w, http.StatusOK, out)
}

// DefaultPruneIdle is the idle time after which 'sessions prune' ends a
// session no launcher holds.
const DefaultPruneIdle = time.Hour

// parseIdleFlag reads an idle duration: 0 (none), or from 1s to 720h.
func parseIdleFlag(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Second || d > 720*time.Hour {
		return 0, errors.New("want a duration from 1s to 720h, or 0")
	}
	return d, nil
}

// handleSessionRevokeAll revokes every live session, or every one of a
// profile: each audited as one revoke is, and refused (the session stays
// live) when its record cannot be written.
func (ss *sessions) handleSessionRevokeAll(w http.ResponseWriter, r *http.Request) {
	var body api.SessionRevokeAll
	if !decodeJSON(w, r, &body) {
		return
	}
	if body.Profile != "" {
		if err := names.Check("profile", body.Profile); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", err.Error())
			return
		}
	}
	out := api.SessionsEnded{Sessions: []api.EndedSession{}}
	for _, sess := range ss.list() {
		if body.Profile != "" && sess.Profile.Alias != body.Profile {
			continue
		}
		ended, err := ss.revoke(r.Context(), sess.ID, "revoked", audit.ActorAdmin)
		if err != nil {
			writeError(w, http.StatusServiceUnavailable, "audit_unavailable",
				"revoked "+itoaInt(len(out.Sessions))+" sessions, then refused: the next revoke could not be recorded in the audit log ("+rootCause(err)+")")
			return
		}
		if ended != nil {
			out.Sessions = append(out.Sessions, api.EndedSession{SessionInfo: ended.info(), Reason: "revoked"})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
