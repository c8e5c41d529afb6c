package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/agenthome"
	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// errSessionEnded cancels the streams of a session that was revoked or
// expired.
var errSessionEnded = errors.New("session ended")

// session is the credential scope of one agent run. The key is read from
// the credential store when the session starts and dropped when it ends,
// so the proxy does not ask the keyring on every request.
type session struct {
	ID       string
	Profile  profile.Profile
	Provider profile.Provider
	Agent    profile.Agent
	base     *url.URL
	baseStr  atomic.Pointer[string] // base.String(), once made (baseString)
	key      credentials.Secret
	hash     [32]byte
	Created  time.Time
	// Deadline is when the session ends at the latest; idle, when not 0,
	// ends it sooner after that long with no request (expiresAt).
	Deadline time.Time
	idle     time.Duration
	clock    clock
	lastUsed atomic.Int64 // unix ns: its start, or the end of its last request
	inFlight atomic.Int64 // its requests being answered
	// durable sessions are kept in the store across restarts; saved is
	// the last use the store has (unix ns), keyHMAC the HMAC of the key
	// it started with.
	durable bool
	saved   atomic.Int64
	keyHMAC string
	tokenID string // HMAC of the token: matchable in the audit, not usable
	// configReset tells the user what of the agent's config was put
	// back to what they approved at its start ("" when nothing).
	configReset string
	ctx         context.Context
	cancel      context.CancelCauseFunc
	timerMu     sync.Mutex
	expiry      timer // ends the session when it expires, streams and all
	// runtimeCap fires when the session reaches the runtime cap of its
	// budget (budgets.watchRuntime); nil without one.
	runtimeCap timer
	// runtimeOver is set once the timer found the cap passed.
	runtimeOver atomic.Bool
	requests    atomic.Int64
	// acts is what its records said of it, for the dashboard.
	acts activity
	// Sandboxed sessions run their agent in a sandbox, with Home as
	// their HOME; the others with the profile's unsandboxed HOME.
	Sandboxed bool
	Home      string // the agent's HOME on the host
	// launchedIn is the workspace its agent was launched in, which its
	// hooks must not load from.
	launchedIn atomic.Value // string
	leased     atomic.Bool  // its launcher holds it (lease.go)
	// launch marks a session of 'profiles run': it ends with its agent,
	// and a graceful stop keeps it while its launcher holds it.
	launch bool
	// regrace ends a launch session restored after a restart that its
	// launcher does not hold again in time (awaitLauncher); until it
	// does, the session is awaiting: its requests are answered 503.
	regrace  timer
	awaiting atomic.Bool
	// plan is the launch prepared for its agent ('profiles run'), handed
	// out or started once (taken); its lease on the sandbox's trees is
	// held until the session ends (released).
	planMu                 sync.Mutex
	plan                   *launch.Plan
	planTaken, planGivenUp bool
	// endMu orders the ends of the session: it is ended (and its
	// session.end recorded) once, for endWhy; killed when it was killed
	// (kill.go), which its launcher hears.
	endMu  sync.Mutex
	ended  bool
	endWhy string
	killed bool
	// storeMu orders the session's writes to the store (put, forget,
	// stopAll's keep), so that none lands after a later one. It is never
	// taken under endMu: an end must not wait for the disk before it
	// cuts the session.
	storeMu sync.Mutex
	// tree is its sandbox's process tree, once its forwarder has
	// connected to its socket (sandbox.PeerTree); the kill switch ends it.
	tree atomic.Pointer[sandbox.Tree]
	// budget is the session's own budget, set at its start (tightening
	// its profile's per-session budget; budgets.go).
	budget budget.Limits
}

// wasKilled reports whether the session was killed (kill.go).
func (s *session) wasKilled() bool {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	return s.killed
}

// endedBecause says why the session ended and whether it was killed.
func (s *session) endedBecause() (string, bool) {
	s.endMu.Lock()
	defer s.endMu.Unlock()
	return s.endWhy, s.killed
}

func (s *session) workspace() string {
	w, _ := s.launchedIn.Load().(string)
	return w
}

// takePlan hands out the session's launch plan, once, while the session
// lives; nil when there is none (any more).
func (s *session) takePlan() *launch.Plan {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	if s.plan == nil || s.planTaken || s.planGivenUp {
		return nil
	}
	s.planTaken = true
	return s.plan
}

// returnPlan gives back a plan taken for a launch that did not happen
// (its record could not be written), for the launcher to try again.
func (s *session) returnPlan() {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	s.planTaken = false
}

// planHeld reports whether the plan still holds its lease: a runner that
// took its own share of the trees after this said yes keeps the
// placeholders in place until it lets go.
func (s *session) planHeld() bool {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	return s.plan != nil && !s.planGivenUp
}

// releasePlan gives back the plan's lease when the session ends.
func (s *session) releasePlan() {
	s.planMu.Lock()
	defer s.planMu.Unlock()
	if s.plan != nil && !s.planGivenUp {
		s.planGivenUp = true
		s.plan.Release()
	}
}

func (s *session) info() api.SessionInfo {
	info := api.SessionInfo{ID: s.ID, Profile: s.Profile.Alias, Provider: s.Provider.ID, Agent: s.Profile.Agent, Created: s.Created,
		Expires: s.expiresAt(s.clock.Now()), Deadline: s.Deadline, LastUsed: time.Unix(0, s.lastUsed.Load()).UTC(), Requests: s.requests.Load(),
		Sandboxed: s.Sandboxed, Durable: s.durable}
	if s.idle > 0 {
		info.Idle = s.idle.String()
	}
	return info
}

type sessionTable struct {
	mu     sync.RWMutex
	byID   map[string]*session
	byHash map[[32]byte]*session
}

func newSessionTable() *sessionTable {
	return &sessionTable{byID: map[string]*session{}, byHash: map[[32]byte]*session{}}
}

func (t *sessionTable) count() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.byID)
}

// baseString is s.base.String(), made once: the proxy joins every
// request's path to it.
func (s *session) baseString() string {
	if p := s.baseStr.Load(); p != nil {
		return *p
	}
	v := s.base.String()
	s.baseStr.Store(&v)
	return v
}

// lookup finds the live session of a token. The map is keyed by the
// token's SHA-256, so a lookup reveals nothing about other tokens.
func (t *sessionTable) lookup(tok string) *session {
	// A token of the usual size is copied to the stack, not the heap.
	var buf [128]byte
	h := sha256.Sum256(append(buf[:0], tok...))
	t.mu.RLock()
	s := t.byHash[h]
	t.mu.RUnlock()
	return s
}

func (t *sessionTable) add(s *session) {
	t.mu.Lock()
	t.byID[s.ID] = s
	t.byHash[s.hash] = s
	t.mu.Unlock()
}

// remove takes a session out; the caller ends it. It reports whether the
// session was still there (so it is ended once).
func (t *sessionTable) remove(id string) (*session, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if ok {
		delete(t.byID, id)
		delete(t.byHash, s.hash)
	}
	return s, ok
}

func (t *sessionTable) list() []*session {
	t.mu.RLock()
	out := make([]*session, 0, len(t.byID))
	for _, s := range t.byID {
		out = append(out, s)
	}
	t.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// sessions starts, finds and ends the daemon's sessions: the credential
// scope of one agent run, each with its token, its key read once, its
// socket when its sandbox has no network, and the launch prepared for its
// agent.
type sessions struct {
	*sessionTable
	o     sessionsOptions
	clock clock
	// keyGen counts key changes per credential (see startOf).
	keyGenMu sync.Mutex
	keyGen   map[credentials.Ref]uint64
	sockMu   sync.Mutex
	sockets  map[string]*sessionSocket
	// keptSockets says a graceful stop kept a session whose sandbox is
	// bound to a socket directory, which must outlive this daemon.
	keptSockets atomic.Bool
	// budgetEnded drops the budget account of a session that ended;
	// budgetState is a session's budget as 'sessions inspect' shows it
	// (budgets.go). Nil in tests that run sessions alone.
	budgetEnded func(*session)
	budgetState func(context.Context, *session) *budget.State
	// rateState is the state of the rate limits that pace a session
	// (ratelimit.go); budgetStarted watches a session's runtime cap
	// (budgets.go). Nil in tests that run sessions alone.
	rateState     func(*session) []api.RateLimitState
	budgetStarted func(*session)
	// renewals writes the renewals of durable sessions to the store.
	renewals renewals
}

// sessionsOptions configure the sessions.
type sessionsOptions struct {
	Profiles *profile.Store
	Keys     KeyStore
	// CatalogDir holds the provider and agent catalogs.
	CatalogDir string
	// Executable is the ringlet binary the Claude Code hook runs.
	Executable string
	// HMAC makes the session tokens matchable in the audit log.
	HMAC *audit.HMAC
	// Launch checks and builds the launches of 'profiles run'.
	Launch *launch.Builder
	// SocketDir is where session sockets are made (default: the temp dir).
	SocketDir string
	Rec       *recorder
	Metrics   *metrics
	Life      *life
	Log       *slog.Logger
	// Socket serves a session's socket: its routes of the route table.
	Socket func(*session) http.Handler
	// Touch marks activity, for the idle exit.
	Touch func()
	// RestartGrace is how long after a restart the launcher of a
	// 'profiles run' session kept by a graceful stop has to hold it
	// again; 0: such sessions end when the daemon stops.
	RestartGrace time.Duration
	// Store keeps the durable sessions across restarts.
	Store SessionStore
	// TTL is the deadline of a session that asks for none; Idle ends one
	// that no launcher holds after that long with no request (0: never).
	TTL, Idle time.Duration
	// Clock is the real time unless a test drives its own.
	Clock clock
}

func newSessions(o sessionsOptions) *sessions {
	ss := &sessions{sessionTable: newSessionTable(), o: o, clock: o.Clock, sockets: map[string]*sessionSocket{}}
	if ss.clock == nil {
		ss.clock = realClock{}
	}
	return ss
}

func randomString(n int, enc func([]byte) string) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return enc(b), nil
}

// start creates a session for an agent of a profile that runs
// without a sandbox, with no idle timeout: the key must be stored.
func (ss *sessions) start(ctx context.Context, alias string, ttl time.Duration, actor string) (*session, string, error) {
	return ss.startFor(ctx, alias, terms{ttl: ttl}, actor)
}

// startFor creates a session for an agent of a profile, sandboxed
// or not, which decides the HOME it gets: a sandboxed agent can write its
// HOME, so an unsandboxed one never shares it (Store.UnsandboxedHome).
func (ss *sessions) startFor(ctx context.Context, alias string, t terms, actor string) (*session, string, error) {
	parts, err := ss.parts(alias)
	if err != nil {
		return nil, "", err
	}
	return ss.startOf(ctx, parts, t, actor)
}

// profileParts is a profile with its provider and agent from the catalog.
type profileParts struct {
	p     profile.Profile
	prov  profile.Provider
	agent profile.Agent
}

func (ss *sessions) parts(alias string) (profileParts, error) {
	p, err := ss.o.Profiles.Get(alias)
	if err != nil {
		return profileParts{}, err
	}
	cat, err := profile.LoadCatalog(ss.o.CatalogDir)
	if err != nil {
		return profileParts{}, err
	}
	prov, err := cat.Provider(p.Provider)
	if err != nil {
		return profileParts{}, err
	}
	agent, err := cat.Agent(p.Agent)
	if err != nil {
		return profileParts{}, err
	}
	return profileParts{p: p, prov: prov, agent: agent}, nil
}

// startOf creates a session for an agent of the profile of parts.
func (ss *sessions) startOf(ctx context.Context, parts profileParts, t terms, actor string) (*session, string, error) {
	p, prov, agent, alias, sandboxed := parts.p, parts.prov, parts.agent, parts.p.Alias, t.sandboxed
	home := ss.o.Profiles.UnsandboxedHome(alias)
	if sandboxed {
		home = ss.o.Profiles.Home(alias)
	}
	if err := ss.o.Profiles.EnsureHomeDirs(home, agent.HomeDirs); err != nil {
		return nil, "", err
	}
	var resetNote string
	if sandboxed {
		// The agent could write this HOME in an earlier session: what
		// of its config runs code is put back to what the user approved,
		// and recorded, before Ringlet writes its own parts and before
		// the agent starts.
		var err error
		if resetNote, err = resetAgentConfig(ctx, ss.o.Rec, ss.o.Profiles, p, home, actor); err != nil {
			return nil, "", fmt.Errorf("profile %s: %w", alias, err)
		}
	}
	if p.Agent == "claude" {
		// Kept current at every session: a profile created before the
		// ringlet binary moved, or before Ringlet wrote the hook, still
		// has its Claude Code tools checked. Without it they would not
		// be, so the session is refused.
		if err := hook.InstallClaude(filepath.Join(home, ".claude"), ss.o.Executable); err != nil {
			return nil, "", fmt.Errorf("the Claude Code hook of profile %s could not be written: %w", alias, err)
		}
	}
	// The agent's own config, rewritten whatever the agent left there:
	// its first run settled, the workspace trusted only if the user said
	// so, and for Codex, Ringlet's hook adapter as its own hook. Without
	// them the session is refused.
	if err := agenthome.Prepare(agenthome.Home{Dir: home, Seen: t.seenHome, Ringlet: ss.o.Executable}, p); err != nil {
		return nil, "", fmt.Errorf("the %s config in the HOME of profile %s could not be prepared: %w", agent.Name, alias, err)
	}
	base, err := profile.ParseBaseURL(baseURLOf(p, prov))
	if err != nil {
		return nil, "", err
	}
	gen := ss.keyGeneration(p.CredentialRef())
	key, err := ss.o.Keys.Get(p.CredentialRef())
	if errors.Is(err, credentials.ErrNotFound) {
		return nil, "", fmt.Errorf("%w: no key is stored for profile %s; store it with 'ringlet keychain set %s %s'", errNoKey, alias, p.Provider, alias)
	}
	if err != nil {
		return nil, "", err
	}
	id, err := randomString(8, hex.EncodeToString)
	if err != nil {
		return nil, "", err
	}
	secret, err := randomString(32, base64.RawURLEncoding.EncodeToString)
	if err != nil {
		return nil, "", err
	}
	tok := api.SessionTokenPrefix + secret
	ttl := t.ttl
	if ttl <= 0 {
		ttl = ss.o.TTL
	}
	now := ss.clock.Now().UTC()
	sess := &session{ID: "s_" + id, Profile: p, Provider: prov, Agent: agent, base: base, key: key, hash: sha256.Sum256([]byte(tok)), Created: now,
		Deadline: now.Add(ttl), idle: max(t.idle, 0), clock: ss.clock, durable: t.durable, launch: t.launch, Sandboxed: sandboxed, Home: home,
		tokenID: ss.o.HMAC.Sum(tok), keyHMAC: ss.o.HMAC.Sum(key.Reveal()), configReset: resetNote, budget: t.budget}
	sess.lastUsed.Store(now.UnixNano())
	sess.saved.Store(now.UnixNano())
	sess.ctx, sess.cancel = context.WithCancelCause(context.Background())
	detail := map[string]any{"agent": p.Agent, "provider": prov.ID, "base_url": base.String(), "expires": sess.expiresAt(now).Format(time.RFC3339),
		"deadline": sess.Deadline.Format(time.RFC3339), "token": sess.tokenID, "sandboxed": sandboxed, "durable": t.durable}
	if sess.idle > 0 {
		detail["idle"] = sess.idle.String()
	}
	err = ss.o.Rec.record(ctx, audit.Record{Kind: audit.KindSessionStart, Profile: alias, Session: sess.ID, Actor: actor, Target: prov.ID, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)})
	if err != nil {
		return nil, "", err
	}
	// Armed before the session is shared; should it fire first, end
	// finds nothing and liveSession still refuses the expired token.
	ss.arm(sess)
	ss.add(sess)
	ss.watch(sess)
	ss.o.Metrics.sessions.Set(float64(ss.count()))
	if ss.keyGeneration(p.CredentialRef()) != gen {
		// The key was replaced or removed while this session started,
		// maybe after it was read and before endUsing could see
		// this session: it must not live on with the old key.
		ss.end(ctx, sess.ID, "key replaced", audit.ActorDaemon)
		return nil, "", fmt.Errorf("the key of profile %s changed while the session started; start it again", alias)
	}
	if sess.durable {
		ss.keep(sess)
	}
	return sess, tok, nil
}

// warnings are the launch's warnings and the session's own.
func (sess *session) warnings(launch []string) []string {
	if sess.configReset != "" {
		return append(slices.Clone(launch), sess.configReset)
	}
	return launch
}

// keyGeneration counts the changes of a stored key that this daemon made.
func (ss *sessions) keyGeneration(ref credentials.Ref) uint64 {
	ss.keyGenMu.Lock()
	defer ss.keyGenMu.Unlock()
	return ss.keyGen[ref]
}

// keyChanged marks a change of the key ref: sessions starting meanwhile
// see it (start) and those already live are ended by the caller.
func (ss *sessions) keyChanged(ref credentials.Ref) {
	ss.keyGenMu.Lock()
	defer ss.keyGenMu.Unlock()
	if ss.keyGen == nil {
		ss.keyGen = map[credentials.Ref]uint64{}
	}
	ss.keyGen[ref]++
}

var errNoKey = errors.New("missing key")

// end ends a session that must end whatever the audit log says:
// its TTL is over, its key was replaced or removed, its profile deleted,
// its agent exited, or the daemon stops. Its token stops working and its
// open streams are cut at once; a session.end record that cannot be
// written now waits until the log can be written (see recordLater).
func (ss *sessions) end(ctx context.Context, id, reason, actor string) (*session, bool) {
	sess := ss.get(id)
	if sess == nil {
		return nil, false
	}
	sess.endMu.Lock()
	if sess.ended {
		sess.endMu.Unlock()
		return nil, false
	}
	sess.ended, sess.endWhy = true, reason
	sess.endMu.Unlock()
	ss.finish(sess)
	rec := sessionEnd(sess, reason, actor)
	if err := ss.o.Rec.record(ctx, rec); err != nil {
		ss.o.Rec.recordLater(rec)
	}
	return sess, true
}

// revoke ends a session because someone asked to: like every
// action, only once its session.end record is committed. When it cannot
// be, the session stays live and the error says why.
func (ss *sessions) revoke(ctx context.Context, id, reason, actor string) (*session, error) {
	sess := ss.get(id)
	if sess == nil {
		return nil, nil
	}
	sess.endMu.Lock()
	if sess.ended {
		sess.endMu.Unlock()
		return nil, nil
	}
	if err := ss.o.Rec.record(ctx, sessionEnd(sess, reason, actor)); err != nil {
		sess.endMu.Unlock()
		return sess, err
	}
	sess.ended, sess.endWhy = true, reason
	sess.endMu.Unlock()
	ss.finish(sess)
	return sess, nil
}

func (ss *sessions) get(id string) *session {
	ss.mu.RLock()
	defer ss.mu.RUnlock()
	return ss.sessionTable.byID[id]
}

// watch arms what watches a session that joined the table: its runtime
// cap's timer.
func (ss *sessions) watch(sess *session) {
	if ss.budgetStarted != nil {
		ss.budgetStarted(sess)
	}
}

// finish takes an ended session out: its token stops working and
// its streams and socket close.
func (ss *sessions) finish(sess *session) {
	ss.remove(sess.ID)
	sess.cancel(errSessionEnded)
	ss.closeSocket(sess, false)
	ss.release(sess)
}

// release is the rest of every end, a kill's too, once the session has
// left the table and its streams and socket are cut: its timers, the
// store, its budget account, the plan's lease, its sandbox's pidfd and
// the gauge.
func (ss *sessions) release(sess *session) {
	sess.stopTimer()
	ss.forget(sess)
	if ss.budgetEnded != nil {
		ss.budgetEnded(sess)
	}
	sess.releasePlan()
	if t := sess.tree.Swap(nil); t != nil {
		t.Close()
	}
	ss.o.Metrics.sessions.Set(float64(ss.count()))
	ss.o.Touch()
}

// sessionEnd is the session.end record of sess, timed now.
func sessionEnd(sess *session, reason, actor string) audit.Record {
	return audit.Record{Time: time.Now().UTC(), Kind: audit.KindSessionEnd, Profile: sess.Profile.Alias, Session: sess.ID, Actor: actor, Decision: audit.Allow,
		Duration: time.Since(sess.Created), Detail: audit.DetailJSON(map[string]any{"reason": reason, "requests": sess.requests.Load()})}
}

// handleSessionPlan hands out the launch the daemon prepared for the
// session's agent (POST /api/sessions with a launch), once, to the
// launcher that runs it ('profiles run'). The launch is recorded, with
// the summary of its sandbox, before the plan leaves the daemon.
func (ss *sessions) handleSessionPlan(w http.ResponseWriter, r *http.Request) {
	sess := ss.find(w, r)
	if sess == nil {
		return
	}
	plan := sess.takePlan()
	if plan == nil {
		writeError(w, http.StatusConflict, "no_plan", "session "+sess.ID+" has no launch plan, or it was handed out already: start an agent with 'ringlet profiles run'")
		return
	}
	if !plan.Sandboxed {
		ss.o.Log.Warn("agent launched WITHOUT a sandbox", "profile", sess.Profile.Alias, "session", sess.ID)
	}
	if !ss.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindProfileLaunch, Profile: sess.Profile.Alias, Session: sess.ID, Actor: audit.ActorAdmin,
		Target: sess.Profile.Agent, Decision: audit.Allow, Detail: audit.DetailJSON(plan.Summary)}) {
		sess.returnPlan()
		return
	}
	writeJSON(w, http.StatusOK, api.LaunchPlan{Argv: plan.Argv, Env: plan.Env, Dir: plan.Dir, Files: plan.Files, Sandbox: plan.Sandboxed, Trees: plan.Trees})
}

// startLaunch starts a session for a launch of the profile's agent and
// prepares that launch (launch.Builder): what the sandbox would refuse is
// refused before the session starts.
func (ss *sessions) startLaunch(w http.ResponseWriter, r *http.Request, alias string, ttl time.Duration, req api.LaunchRequest, own budget.Limits) {
	parts, err := ss.parts(alias)
	if err != nil {
		profileError(w, ss.o.Log, err)
		return
	}
	a, err := ss.o.Launch.Agent(parts.p, parts.agent, ss.o.Profiles.Home(alias), launch.Request{
		Dir: req.Dir, Args: req.Args, Path: req.Path, Home: req.Home, Term: req.Term, Lang: req.Lang, NoSandbox: req.NoSandbox, Shims: req.Shims})
	if err != nil {
		writeError(w, http.StatusBadRequest, "launch_refused", err.Error())
		return
	}
	// Its launcher holds it, or the daemon's terminal: no idle timeout,
	// and it ends with its agent, or with the daemon.
	sess, tok, err := ss.startOf(r.Context(), parts, terms{ttl: ttl, sandboxed: a.Sandboxed(), launch: true, seenHome: a.HomePath(), budget: own}, audit.ActorAdmin)
	if err != nil {
		profileError(w, ss.o.Log, err)
		return
	}
	var socket string
	if a.Socket() {
		if socket, err = ss.openSocket(sess); err != nil {
			ss.end(r.Context(), sess.ID, "socket failed", audit.ActorDaemon)
			ss.o.Log.Error("session socket", "session", sess.ID, "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "could not open the session socket: "+err.Error())
			return
		}
	}
	baseURL := a.BaseURL()
	if baseURL == "" {
		baseURL = "http://" + r.Host + "/proxy"
	}
	home := a.HomePath()
	if home == "" {
		home = sess.Home
	}
	l := sess.Agent.LaunchFor(sess.Profile, sess.Provider, baseURL, tok, home, sess.Sandboxed).WithSession(sessionVars(sess, baseURL, tok))
	plan, err := ss.o.Launch.Plan(a, launch.Session{Home: sess.Home, Socket: socket, Launch: l})
	if err != nil {
		ss.end(r.Context(), sess.ID, "launch refused", audit.ActorDaemon)
		writeError(w, http.StatusBadRequest, "launch_refused", err.Error())
		return
	}
	sess.planMu.Lock()
	sess.plan = plan
	sess.planMu.Unlock()
	if sess.ctx.Err() != nil {
		// Ended meanwhile (revoked, its key replaced): finish ran
		// before the plan was there to release.
		sess.releasePlan()
	}
	sess.launchedIn.Store(plan.Workspace)
	w.Header().Set("Location", "/api/sessions/"+sess.ID)
	writeJSON(w, http.StatusCreated, api.SessionStarted{SessionInfo: sess.info(), Token: tok, BaseURL: baseURL, Launch: l, Socket: socket, Home: sess.Home, Warnings: sess.warnings(a.Warnings)})
}

func (ss *sessions) handleSessionStart(w http.ResponseWriter, r *http.Request) {
	var body api.SessionRequest
	if !decodeJSON(w, r, &body) {
		return
	}
	var ttl time.Duration
	if body.TTL != "" {
		d, err := time.ParseDuration(body.TTL)
		if err != nil || d < time.Minute || d > 30*24*time.Hour {
			writeError(w, http.StatusBadRequest, "bad_request", "ttl must be a duration from 1m to 720h")
			return
		}
		ttl = d
	}
	idle := ss.o.Idle
	if body.Idle != "" {
		d, err := parseIdleFlag(body.Idle)
		if err != nil || (d > 0 && d < time.Minute) {
			writeError(w, http.StatusBadRequest, "bad_request", "idle must be a duration from 1m to 720h, or 0 for none")
			return
		}
		idle = d
	}
	if body.Budget != nil {
		if err := body.Budget.Validate(); err != nil || body.Budget.IsZero() {
			writeError(w, http.StatusBadRequest, "invalid_budget", "budget: every cap must be a positive number, and one at least set")
			return
		}
	}
	if body.Launch != nil {
		if body.Sandbox || body.Socket || body.Home != "" || body.BaseURL != "" || body.Idle != "" {
			writeError(w, http.StatusBadRequest, "bad_request", "a launch decides its session's sandbox, socket, HOME, base URL and idle timeout; send none of them with it")
			return
		}
		var own budget.Limits
		if body.Budget != nil {
			own = *body.Budget
		}
		ss.startLaunch(w, r, body.Profile, ttl, *body.Launch, own)
		return
	}
	// No launcher holds it: it idles out, and unless the daemon serves
	// a socket for it, it is kept across restarts.
	t := terms{ttl: ttl, idle: idle, sandboxed: body.Sandbox || body.Socket || body.Home != "", durable: !body.Socket, seenHome: body.Home}
	if body.Budget != nil {
		t.budget = *body.Budget
	}
	sess, tok, err := ss.startFor(r.Context(), body.Profile, t, audit.ActorAdmin)
	if err != nil {
		profileError(w, ss.o.Log, err)
		return
	}
	baseURL := "http://" + r.Host + "/proxy"
	if body.BaseURL != "" {
		baseURL = body.BaseURL
	}
	home := sess.Home
	if body.Home != "" {
		home = body.Home
	}
	var socket string
	if body.Socket {
		socket, err = ss.openSocket(sess)
		if err != nil {
			ss.end(r.Context(), sess.ID, "socket failed", audit.ActorDaemon)
			ss.o.Log.Error("session socket", "session", sess.ID, "err", err)
			writeError(w, http.StatusInternalServerError, "internal", "could not open the session socket: "+err.Error())
			return
		}
	}
	launch := sess.Agent.LaunchFor(sess.Profile, sess.Provider, baseURL, tok, home, sess.Sandboxed).WithSession(sessionVars(sess, baseURL, tok))
	w.Header().Set("Location", "/api/sessions/"+sess.ID)
	writeJSON(w, http.StatusCreated, api.SessionStarted{SessionInfo: sess.info(), Token: tok, BaseURL: baseURL, Launch: launch, Socket: socket, Home: sess.Home, Warnings: sess.warnings(nil)})
}

// sessionVars are the variables that tell Ringlet's own commands, run by
// the agent, which session they act for (profile.SessionEnv): its id, its
// token, and the daemon's address as the agent reaches it, which is the
// proxy's base URL without /proxy.
func sessionVars(sess *session, baseURL, tok string) []profile.EnvVar {
	return profile.SessionEnv(sess.ID, strings.TrimSuffix(strings.TrimSuffix(baseURL, "/"), "/proxy"), tok)
}

func (ss *sessions) handleSessionList(w http.ResponseWriter, r *http.Request) {
	out := []api.SessionInfo{}
	for _, sess := range ss.list() {
		if !ss.live(r.Context(), sess) {
			continue
		}
		if p := r.URL.Query().Get("profile"); p != "" && p != sess.Profile.Alias {
			continue
		}
		out = append(out, sess.info())
	}
	writeJSON(w, http.StatusOK, api.SessionList{Sessions: out})
}

func (ss *sessions) find(w http.ResponseWriter, r *http.Request) *session {
	id := chi.URLParam(r, "id")
	sess := ss.get(id)
	if sess == nil {
		writeError(w, http.StatusNotFound, "not_found", "no live session "+id+" ('ringlet sessions list' shows them)")
	}
	return sess
}

func (ss *sessions) handleSessionGet(w http.ResponseWriter, r *http.Request) {
	if sess := ss.find(w, r); sess != nil {
		info := sess.info()
		if ss.budgetState != nil {
			info.Budget = ss.budgetState(r.Context(), sess)
		}
		if ss.rateState != nil {
			info.RateLimits = ss.rateState(sess)
		}
		writeJSON(w, http.StatusOK, info)
	}
}

func (ss *sessions) handleSessionRevoke(w http.ResponseWriter, r *http.Request) {
	sess := ss.find(w, r)
	if sess == nil {
		return
	}
	if q := r.URL.Query(); q.Get("reason") == "exited" {
		// The CLI ends a 'profiles run' session when its agent exits: a
		// fact, not a request that may be refused. A session whose agent
		// is gone must not outlive it because the log cannot be written.
		reason := "agent exited"
		if code, err := strconv.Atoi(q.Get("exit_code")); err == nil {
			reason = "agent exited with code " + strconv.Itoa(code)
		}
		if _, ok := ss.end(r.Context(), sess.ID, reason, audit.ActorAdmin); !ok {
			writeError(w, http.StatusNotFound, "not_found", "no live session "+sess.ID)
			return
		}
		writeJSON(w, http.StatusOK, sess.info())
		return
	}
	ended, err := ss.revoke(r.Context(), sess.ID, "revoked", audit.ActorAdmin)
	if err != nil {
		writeAuditError(w, err)
		return
	}
	if ended == nil {
		writeError(w, http.StatusNotFound, "not_found", "no live session "+sess.ID)
		return
	}
	writeJSON(w, http.StatusOK, ended.info())
}

// liveSession returns the live session of a session token, ending an
// expired one. It is the only lookup of a session by its token.
func (ss *sessions) liveSession(ctx context.Context, tok string) *session {
	sess := ss.lookup(tok)
	if sess == nil || !ss.live(ctx, sess) {
		return nil
	}
	return sess
}

// live reports whether sess has not expired, ending it if it has. Its
// timer ends it when it expires too; this covers the moments before it
// fires.
func (ss *sessions) live(ctx context.Context, sess *session) bool {
	if why, over := sess.expired(ss.clock.Now()); over {
		ss.end(ctx, sess.ID, why, audit.ActorDaemon)
		return false
	}
	return true
}

// endUsing ends the live sessions whose profile uses the key ref:
// a replaced or removed key must stop working at once, not when those
// sessions expire.
func (ss *sessions) endUsing(ctx context.Context, ref credentials.Ref, reason string) int {
	ss.keyChanged(ref)
	n := 0
	for _, sess := range ss.list() {
		if sess.Profile.CredentialRef() == ref {
			if _, ok := ss.end(ctx, sess.ID, reason, audit.ActorAdmin); ok {
				n++
			}
		}
	}
	if n > 0 {
		ss.o.Log.Info("sessions ended", "credential", ref.String(), "reason", reason, "sessions", n)
	}
	return n
}
