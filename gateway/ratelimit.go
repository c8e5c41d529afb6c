package gateway

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/time/rate"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/profile"
)

// The paces a profile may set (profile.RateLimits), each per minute.
type paceKind int

const (
	paceRequests paceKind = iota
	paceTokens
	paceToolCalls
	paceKinds
)

func (k paceKind) String() string {
	return [...]string{"requests", "tokens", "tool_calls"}[k]
}

// pacer is one scope's token buckets (a session's, or a profile's), one
// per kind with a limit: golang.org/x/time/rate, refilled continuously at
// the limit a minute, with a minute's worth as the burst.
type pacer struct {
	lim [paceKinds]*rate.Limiter
	// throttled counts the refusals by each bucket ('sessions inspect').
	throttled [paceKinds]atomic.Int64
}

func newPacer(limits [paceKinds]int64) *pacer {
	p := &pacer{}
	for k, n := range limits {
		if n > 0 {
			// Full at its start: a new limiter's bucket fills from the
			// zero time at its first use.
			p.lim[k] = rate.NewLimiter(rate.Limit(float64(n)/60), int(min(n, math.MaxInt32)))
		}
	}
	return p
}

// rateLimits enforces the profiles' rate limits (profile.RateLimits)
// before a provider request is forwarded or an MCP tool call reaches its
// server. Buckets are made at a scope's first use from the profile's
// limits as they are then, and dropped when its limits change (forget)
// or the session ends.
type rateLimits struct {
	clock   clock
	limits  func(alias string) *profile.RateLimits // the profile's limits now
	rec     *recorder
	metrics *metrics

	mu       sync.Mutex
	sessions map[string]*pacer // by session id
	profiles map[string]*pacer // by alias
	// noted paces the audit records of refusals: one per session, kind
	// and second, with the count of those not recorded since.
	noted map[string]*[paceKinds]refusalNote
}

type refusalNote struct {
	last    time.Time
	skipped int64
}

func newRateLimits(c clock, limits func(string) *profile.RateLimits, rec *recorder, m *metrics) *rateLimits {
	return &rateLimits{clock: c, limits: limits, rec: rec, metrics: m,
		sessions: map[string]*pacer{}, profiles: map[string]*pacer{}, noted: map[string]*[paceKinds]refusalNote{}}
}

// pacers returns the session's and its profile's buckets, made on first
// use (with no bucket for a kind without a limit, so a profile without
// limits costs a map lookup a request).
func (rl *rateLimits) pacers(sess *session) (*pacer, *pacer) {
	rl.mu.Lock()
	sp, pp := rl.sessions[sess.ID], rl.profiles[sess.Profile.Alias]
	rl.mu.Unlock()
	if sp != nil && pp != nil {
		return sp, pp
	}
	var l profile.RateLimits
	if got := rl.limits(sess.Profile.Alias); got != nil {
		l = *got
	}
	rl.mu.Lock()
	defer rl.mu.Unlock()
	if sp = rl.sessions[sess.ID]; sp == nil {
		sp = newPacer([paceKinds]int64{l.SessionRequests, l.SessionTokens, l.SessionToolCalls})
		rl.sessions[sess.ID] = sp
		context.AfterFunc(sess.ctx, func() { rl.dropSession(sess.ID) })
	}
	if pp = rl.profiles[sess.Profile.Alias]; pp == nil {
		pp = newPacer([paceKinds]int64{l.ProfileRequests, l.ProfileTokens, l.ProfileToolCalls})
		rl.profiles[sess.Profile.Alias] = pp
	}
	return sp, pp
}

func (rl *rateLimits) dropSession(id string) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	delete(rl.sessions, id)
	delete(rl.noted, id)
}

// forget drops the buckets of a profile whose limits changed: they are
// made again from the new limits at the next use.
func (rl *rateLimits) forget(alias string, sessionIDs []string) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	delete(rl.profiles, alias)
	for _, id := range sessionIDs {
		delete(rl.sessions, id)
	}
}

// paceRefusal is a request or call a limit refused: which, and when the
// bucket has room again.
type paceRefusal struct {
	kind  paceKind
	scope string // "session" or "profile"
	limit int64  // a minute
	retry time.Duration
}

func (r *paceRefusal) message() string {
	what := map[paceKind]string{paceRequests: "requests", paceTokens: "tokens", paceToolCalls: "tool calls"}[r.kind]
	return fmt.Sprintf("Ringlet rate limit: this %s may use %d %s a minute; retry in %s", r.scope, r.limit, what, retryText(r.retry))
}

// retryAfter is the Retry-After value: whole seconds, at least 1.
func (r *paceRefusal) retryAfter() int64 { return max(1, int64(math.Ceil(r.retry.Seconds()))) }

func retryText(d time.Duration) string {
	if d < time.Second {
		return "1s"
	}
	return d.Round(time.Second).String()
}

// admit takes one request (or tool call) of kind from the session's and
// its profile's buckets, both or neither; for requests, the tokens
// buckets must not be in debt either. It returns nil when admitted.
func (rl *rateLimits) admit(sess *session, kind paceKind) *paceRefusal {
	now := rl.clock.Now()
	sp, pp := rl.pacers(sess)
	scopes := [2]struct {
		p    *pacer
		name string
	}{{sp, "session"}, {pp, "profile"}}
	if kind == paceRequests {
		for _, s := range scopes {
			if l := s.p.lim[paceTokens]; l != nil {
				if tokens := l.TokensAt(now); tokens < 1 {
					wait := time.Duration((1 - tokens) / float64(l.Limit()) * float64(time.Second))
					return &paceRefusal{kind: paceTokens, scope: s.name, limit: int64(l.Burst()), retry: wait}
				}
			}
		}
	}
	var taken []*rate.Reservation
	for _, s := range scopes {
		l := s.p.lim[kind]
		if l == nil {
			continue
		}
		r := l.ReserveN(now, 1)
		if wait := r.DelayFrom(now); wait > 0 {
			r.CancelAt(now)
			for _, t := range taken {
				t.CancelAt(now)
			}
			return &paceRefusal{kind: kind, scope: s.name, limit: int64(l.Burst()), retry: wait}
		}
		taken = append(taken, r)
	}
	return nil
}

// spend counts the tokens an answer used against the session's and its
// profile's tokens buckets, which may go into debt: the next request
// waits until it is paid off. An answer larger than a minute's worth
// counts as a minute's worth.
func (rl *rateLimits) spend(sess *session, tokens int64) {
	if tokens <= 0 {
		return
	}
	now := rl.clock.Now()
	sp, pp := rl.pacers(sess)
	for _, p := range []*pacer{sp, pp} {
		if l := p.lim[paceTokens]; l != nil {
			l.ReserveN(now, int(min(tokens, int64(l.Burst()))))
		}
	}
}

// refused counts and records a refusal, the record paced per session
// and kind.
func (rl *rateLimits) refused(ctx context.Context, sess *session, r *paceRefusal, target string) {
	rl.metrics.rateLimited.WithLabelValues(sess.Profile.Alias, r.scope, r.kind.String()).Inc()
	sp, pp := rl.pacers(sess)
	if r.scope == "profile" {
		sp = pp
	}
	sp.throttled[r.kind].Add(1)
	now := rl.clock.Now()
	rl.mu.Lock()
	notes := rl.noted[sess.ID]
	if notes == nil {
		notes = &[paceKinds]refusalNote{}
		rl.noted[sess.ID] = notes
	}
	n := &notes[r.kind]
	if !n.last.IsZero() && now.Sub(n.last) < time.Second {
		n.skipped++
		rl.mu.Unlock()
		return
	}
	skipped := n.skipped
	n.last, n.skipped = now, 0
	rl.mu.Unlock()
	detail := map[string]any{"limit": r.kind.String(), "scope": r.scope, "per_minute": r.limit, "retry_after_seconds": r.retryAfter()}
	if skipped > 0 {
		detail["unrecorded_before"] = skipped
	}
	_ = rl.rec.record(ctx, audit.Record{Kind: audit.KindRateLimited, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID, Target: target,
		Decision: audit.Deny, Status: http.StatusTooManyRequests, Detail: audit.DetailJSON(detail)}) // refused either way
}

// state is every rate limit that paces sess, with what its bucket holds
// now and how often it refused ('sessions inspect').
func (rl *rateLimits) state(sess *session) []api.RateLimitState {
	now := rl.clock.Now()
	sp, pp := rl.pacers(sess)
	var out []api.RateLimitState
	for _, s := range []struct {
		p    *pacer
		name string
	}{{sp, "session"}, {pp, "profile"}} {
		for k := range paceKinds {
			l := s.p.lim[k]
			if l == nil {
				continue
			}
			out = append(out, api.RateLimitState{Scope: s.name, Limit: k.String(), PerMinute: int64(l.Burst()),
				Available: math.Floor(l.TokensAt(now)*100) / 100, Throttled: s.p.throttled[k].Load()})
		}
	}
	return out
}

// RateLimitErrorCode is the Ringlet error code of a provider request a
// rate limit refused, in every wire format.
const RateLimitErrorCode = "ringlet_rate_limited"

// writeRateLimited answers a provider request a limit refused as its
// provider would (429, Retry-After, the provider's rate-limit error), with
// Ringlet's code in it, so that the agent waits and retries.
func writeRateLimited(w http.ResponseWriter, format string, r *paceRefusal) {
	retry := r.retryAfter()
	writeWireRefusal(w, format, wireRefusal{code: RateLimitErrorCode,
		ringlet:         map[string]any{"limit": r.kind.String(), "scope": r.scope, "retry_after_seconds": retry},
		message:         r.message(),
		header:          map[string]string{"Retry-After": strconv.FormatInt(retry, 10)},
		anthropicStatus: http.StatusTooManyRequests, anthropicType: "rate_limit_error",
		openAIStatus: http.StatusTooManyRequests, openAIType: r.kind.String(), openAICode: "rate_limit_exceeded"})
}

// handleRateLimitsGet shows a profile's rate limits.
func (s *Server) handleRateLimitsGet(w http.ResponseWriter, r *http.Request) {
	p, err := s.opts.Profiles.Get(chi.URLParam(r, "alias"))
	if err != nil {
		profileError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, rateLimitsView(p))
}

func rateLimitsView(p profile.Profile) api.RateLimits {
	out := api.RateLimits{Profile: p.Alias}
	if p.RateLimits != nil {
		out.RateLimits = *p.RateLimits
	}
	return out
}

// handleRateLimitsChange sets (PATCH) or clears (DELETE) a profile's rate
// limits, audited as a profile.update; they apply from the next request
// of its sessions, live ones included.
func (s *Server) handleRateLimitsChange(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	var u api.RateLimitsUpdate
	if r.Method == http.MethodPatch {
		if !decodeJSON(w, r, &u) {
			return
		}
		if u.IsZero() {
			writeError(w, http.StatusBadRequest, "bad_request", "nothing to change: give at least one limit")
			return
		}
	}
	cat, err := profile.LoadCatalog(s.opts.CatalogDir)
	if err != nil {
		profileError(w, s.log, err)
		return
	}
	change := func(p *profile.Profile) {
		if r.Method == http.MethodDelete {
			p.RateLimits = nil
			return
		}
		var l profile.RateLimits
		if p.RateLimits != nil {
			l = *p.RateLimits
		}
		u.Apply(&l)
		p.RateLimits = &l
		if l.IsZero() {
			p.RateLimits = nil
		}
	}
	cur, err := s.opts.Profiles.Get(alias)
	if err != nil {
		profileError(w, s.log, err)
		return
	}
	change(&cur)
	if cur.RateLimits != nil {
		if err := cur.RateLimits.Validate(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_profile", err.Error())
			return
		}
	}
	detail := map[string]any{"rate_limits": rateLimitsView(cur).RateLimits}
	if !s.rec.recordOr503(w, r, audit.Record{Kind: audit.KindProfileUpdate, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Allow, Detail: audit.DetailJSON(detail)}) {
		return
	}
	p, err := s.opts.Profiles.Update(cat, alias, change)
	if err != nil {
		_ = s.rec.record(r.Context(), audit.Record{Kind: audit.KindProfileUpdate, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"error": err.Error()})}) // the answer says it failed either way
		profileError(w, s.log, err)
		return
	}
	var ids []string
	for _, sess := range s.sessions.list() {
		if sess.Profile.Alias == alias {
			ids = append(ids, sess.ID)
		}
	}
	s.paces.forget(alias, ids)
	writeJSON(w, http.StatusOK, rateLimitsView(p))
}
