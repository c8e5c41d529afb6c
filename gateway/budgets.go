package gateway

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/provider"
)

// sessionKiller ends a session at once because a budget that covers it is
// exhausted: the kill switch (Server.KillSession, kill.go). who is who
// asked (KilledByBudget), why the reason.
type sessionKiller interface {
	KillSession(ctx context.Context, id, who, why string) error
}

// budgets enforces the budgets of profiles and sessions: it reserves a
// request's worst case before the proxy forwards it, settles the
// reservation with the usage of the answer, and answers /api/budgets.
type budgets struct {
	o      budgetsOptions
	ledger *budget.Ledger
	prices priceCache
	// killed remembers the sessions a budget ended, by their token's
	// SHA-256, so the proxy answers their agent's next requests with the
	// budget's refusal (which agents show and stop at) rather than a 401
	// (which Claude Code retries). At most maxKilled are kept.
	killedMu sync.Mutex
	killed   map[[32]byte]killedSession
	killedQ  [][32]byte
}

// killedSession is what the proxy answers a session a budget ended with.
type killedSession struct {
	ref    *budget.Refusal
	format string
}

const maxKilled = 1024

// endedBy returns the refusal of the budget that ended the session of
// tok, if one did.
func (b *budgets) endedBy(tok string) (killedSession, bool) {
	h := sha256.Sum256([]byte(tok))
	b.killedMu.Lock()
	defer b.killedMu.Unlock()
	k, ok := b.killed[h]
	return k, ok
}

type budgetsOptions struct {
	Profiles   *profile.Store
	Sessions   *sessions
	Rec        *recorder
	Log        *slog.Logger
	AuditPath  string // "" with the audit log off: spend starts at 0 after a restart
	CatalogDir string
	PricesFile string
	// Killer ends sessions whose budget is exhausted when its action is
	// kill.
	Killer sessionKiller
}

func newBudgets(o budgetsOptions) *budgets {
	b := &budgets{o: o}
	b.prices = priceCache{catalogDir: o.CatalogDir, file: o.PricesFile}
	b.ledger = budget.NewLedger(b.load)
	return b
}

// load is the ledger's truth: what a scope spent so far, from the audit
// log's usage (its hourly summary and the records since), priced with the
// table in effect now.
func (b *budgets) load(ctx context.Context, s budget.Scope) (budget.Amount, error) {
	if b.o.AuditPath == "" {
		return budget.Amount{}, nil
	}
	f := audit.Filter{Profile: s.Profile, Session: s.Session, Since: s.Since}
	prices, err := b.prices.get()
	if err != nil {
		return budget.Amount{}, err
	}
	rows, err := audit.UsageReport(ctx, b.o.AuditPath, f, "profile", prices.Cost)
	if err != nil {
		return budget.Amount{}, err
	}
	var a budget.Amount
	for _, r := range rows {
		a.Requests += r.Requests
		a.InputTokens += r.Input + r.CacheRead + r.CacheWrite
		a.OutputTokens += r.Output
		if r.CostUSD != nil {
			a.USD += *r.CostUSD
		}
	}
	if a.ToolCalls, err = audit.ToolCalls(ctx, b.o.AuditPath, f); err != nil {
		return budget.Amount{}, err
	}
	return a, nil
}

// profileBudget is the budgets of alias as its file says now (the
// store re-reads a file only when it changed). A file that cannot be
// read is an error, not the absence of a budget.
func (b *budgets) profileBudget(ctx context.Context, alias string) (budget.Budget, error) {
	p, err := profileNow(ctx, b.o.Profiles, alias)
	if err != nil {
		return budget.Budget{}, err
	}
	return p.Budget, nil
}

// sessionLimits are the caps of one session: the profile's per-session
// budget, tightened by the session's own (set at its start).
func sessionLimits(pb budget.Limits, own budget.Limits) budget.Limits {
	tight := func(a, b int64) int64 {
		if a == 0 || b != 0 && b < a {
			return b
		}
		return a
	}
	l := pb
	if own.USD > 0 && (l.USD == 0 || own.USD < l.USD) {
		l.USD = own.USD
	}
	l.InputTokens = tight(l.InputTokens, own.InputTokens)
	l.OutputTokens = tight(l.OutputTokens, own.OutputTokens)
	l.Requests = tight(l.Requests, own.Requests)
	l.ToolCalls = tight(l.ToolCalls, own.ToolCalls)
	l.Runtime = budget.Duration(tight(int64(l.Runtime), int64(own.Runtime)))
	return l
}

// covering returns the accounts of every budget that covers a request of
// sess now, and the profile's budget; none when no budget covers it.
func (b *budgets) covering(ctx context.Context, sess *session, now time.Time) ([]*budget.Account, budget.Budget, budget.Limits, error) {
	pb, err := b.profileBudget(ctx, sess.Profile.Alias)
	if err != nil {
		return nil, pb, budget.Limits{}, err
	}
	sl := sessionLimits(pb.Session, sess.budget)
	if pb.IsZero() && sl.IsZero() {
		return nil, pb, sl, nil
	}
	var accts []*budget.Account
	if !sl.IsZero() {
		a, err := b.ledger.Account(ctx, budget.Scope{Profile: sess.Profile.Alias, Session: sess.ID, Period: budget.PeriodSession}, sl)
		if err != nil {
			return nil, pb, sl, err
		}
		accts = append(accts, a)
	}
	for _, period := range budget.Periods[1:] {
		l := *pb.Of(period)
		if l.IsZero() {
			continue
		}
		a, err := b.ledger.Account(ctx, budget.Scope{Profile: sess.Profile.Alias, Period: period, Since: budget.PeriodStart(period, now)}, l)
		if err != nil {
			return nil, pb, sl, err
		}
		accts = append(accts, a)
	}
	return accts, pb, sl, nil
}

// now is the time by the sessions' clock, which their start and runtime
// are read on.
func (b *budgets) now() time.Time { return b.clock().Now() }

func (b *budgets) clock() clock {
	if b.o.Sessions != nil && b.o.Sessions.clock != nil {
		return b.o.Sessions.clock
	}
	return realClock{}
}

// runtimeRefusal is the refusal of sess's runtime cap in sl, if it has
// passed at now.
func runtimeRefusal(sess *session, sl budget.Limits, now time.Time) *budget.Refusal {
	if sl.Runtime <= 0 || now.Sub(sess.Created) < time.Duration(sl.Runtime) {
		return nil
	}
	return &budget.Refusal{Scope: budget.Scope{Profile: sess.Profile.Alias, Session: sess.ID, Period: budget.PeriodSession}, Cap: "runtime",
		Limit: time.Duration(sl.Runtime).Seconds(), Spent: now.Sub(sess.Created).Seconds()}
}

// watchRuntime arms the timer that acts when sess reaches its runtime
// cap (its profile's per-session budget, tightened by its own), so an
// idle session over its runtime ends then, not at its next request. It
// runs when a session joins the table (started or restored) and again
// for each live session of a profile whose budgets change. A cap
// written into the profile's file by hand is seen at the session's next
// request (as before) or when the timer fires.
func (b *budgets) watchRuntime(sess *session) {
	c := b.clock()
	var limit time.Duration
	if pb, err := b.profileBudget(context.Background(), sess.Profile.Alias); err != nil {
		// Its requests are refused (503) while the file cannot be read;
		// the session's own cap still holds.
		b.o.Log.Warn("budget: could not read the profile's runtime cap", "profile", sess.Profile.Alias, "session", sess.ID, "err", err)
		limit = time.Duration(sess.budget.Runtime)
	} else {
		limit = time.Duration(sessionLimits(pb.Session, sess.budget).Runtime)
	}
	sess.timerMu.Lock()
	defer sess.timerMu.Unlock()
	if sess.runtimeCap != nil {
		sess.runtimeCap.Stop()
		sess.runtimeCap = nil
	}
	if limit <= 0 || sess.ctx.Err() != nil {
		return
	}
	left := sess.Created.Add(limit).Sub(c.Now())
	if left > 0 {
		sess.runtimeOver.Store(false)
	} else if sess.runtimeOver.Load() {
		return // acted on already
	}
	sess.runtimeCap = c.AfterFunc(max(left, 0), func() { b.runtimeReached(sess) })
}

// runtimeReached acts on a session whose runtime cap's timer fired: when
// the cap (as the profile has it now) has passed, one budget.exhausted
// record, and with the kill action the kill switch; with refuse, every
// request and tool call of the session is refused from then on (they
// check the cap too). A cap raised meanwhile arms the timer again.
func (b *budgets) runtimeReached(sess *session) {
	if sess.ctx.Err() != nil {
		return
	}
	pb, err := b.profileBudget(context.Background(), sess.Profile.Alias)
	if err != nil {
		b.o.Log.Warn("budget: could not read the profile's runtime cap", "profile", sess.Profile.Alias, "session", sess.ID, "err", err)
	}
	ref := runtimeRefusal(sess, sessionLimits(pb.Session, sess.budget), b.now())
	if ref == nil {
		b.watchRuntime(sess)
		return
	}
	if !sess.runtimeOver.CompareAndSwap(false, true) {
		return
	}
	b.record(context.Background(), sess, audit.KindBudgetExhausted, ref, "runtime timer", pb.Action())
	if pb.Action() == budget.ActionKill {
		b.killNow(sess, ref)
	}
}

// budgetHold is a proxied request's reservation.
type budgetHold struct {
	res    *budget.Reservation
	est    provider.Estimate
	prices *provider.Prices
	policy string // the stream policy
	action string
	grown  *budget.Refusal // set when a streamed answer passed a cap
}

// amount is what usage costs at the session's provider.
func (h *budgetHold) amount(prov, model string, u provider.Usage) budget.Amount {
	a := budget.Amount{Requests: 1, InputTokens: u.Input + u.CacheRead + u.CacheWrite, OutputTokens: u.Output}
	if usd, ok := h.prices.Cost(prov, model, u.Input, u.Output, u.CacheRead, u.CacheWrite); ok {
		a.USD = usd
	}
	return a
}

// admit reserves the worst case of a request of sess with body against
// every budget that covers it. A request no budget covers gets a nil
// hold. A refused one is answered here, in the wire format of the
// session's provider, and false returned.
func (b *budgets) admit(w http.ResponseWriter, r *http.Request, sess *session, body []byte) (*budgetHold, bool) {
	now := b.now()
	accts, pb, sl, err := b.covering(r.Context(), sess, now)
	if err != nil {
		b.o.Log.Error("budget: could not read the spend so far", "profile", sess.Profile.Alias, "session", sess.ID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "budget_unavailable", "refused: the spend of this session's budgets could not be read ("+rootCause(err)+")")
		return nil, false
	}
	if accts == nil && sl.Runtime == 0 {
		return nil, true
	}
	if ref := runtimeRefusal(sess, sl, now); ref != nil {
		b.refuse(w, r, sess, pb, ref, "provider.request")
		return nil, false
	}
	prices, err := b.prices.get()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "bad_prices", "refused: the price table could not be read, so the request cannot be priced against its budget ("+err.Error()+")")
		return nil, false
	}
	h := &budgetHold{est: provider.EstimateRequest(body), prices: prices, policy: pb.StreamPolicy(), action: pb.Action()}
	if h.est.Model == "" {
		h.est.Model = sess.Profile.Model
	}
	if _, priced := prices.Lookup(sess.Provider.ID, h.est.Model); !priced {
		// An agent chooses the model of each request: one the table does
		// not price would pass a USD cap uncounted.
		for _, a := range accts {
			if st := b.ledger.State(a); st.Limits.USD > 0 {
				b.refuse(w, r, sess, pb, &budget.Refusal{Scope: a.Scope, Cap: "usd",
					Why: "model " + strconv.Quote(h.est.Model) + " has no price, so a request for it cannot be counted against this USD cap; add its price ('ringlet prices import FILE', or prices.toml)"}, "provider.request")
				return nil, false
			}
		}
	}
	want := h.amount(sess.Provider.ID, h.est.Model, provider.Usage{Input: h.est.Input, Output: h.est.Output})
	res, ref := b.ledger.Reserve(accts, want)
	if ref != nil {
		b.refuse(w, r, sess, pb, ref, "provider.request")
		return nil, false
	}
	h.res = res
	return h, true
}

// settle replaces a request's reservation with what it spent. An answer
// that did not end cleanly is charged conservatively: its input as
// estimated when the provider reported none, and at least as many output
// tokens as a third of the bytes it sent.
func (b *budgets) settle(h *budgetHold, st *proxyState, model string) {
	if h == nil {
		return
	}
	u := st.usage
	switch {
	case st.status >= 400 && u.Input+u.Output == 0:
		// The provider refused the request: no tokens.
	case !u.Complete && (st.err != nil || h.grown != nil):
		if u.Input+u.CacheRead+u.CacheWrite == 0 {
			u.Input = h.est.Input
		}
		u.Output = max(u.Output, st.bytesOut/3)
	}
	if model == "" {
		model = h.est.Model
	}
	spent := h.amount(st.sess.Provider.ID, model, u)
	for _, a := range h.res.Settle(spent) {
		b.exhausted(context.Background(), st.sess, a, h.action)
	}
}

// grow raises the hold to the usage an answer reported so far while it
// streams; it reports the refusal once the usage passes a cap.
func (b *budgets) grow(h *budgetHold, st *proxyState, u provider.Usage) *budget.Refusal {
	model := u.Model
	if model == "" {
		model = h.est.Model
	}
	to := h.amount(st.sess.Provider.ID, model, u)
	// Never below what was reserved for the answer as a whole.
	held := h.amount(st.sess.Provider.ID, h.est.Model, provider.Usage{Input: h.est.Input, Output: h.est.Output})
	to.USD, to.InputTokens, to.OutputTokens = max(to.USD, held.USD), max(to.InputTokens, held.InputTokens), max(to.OutputTokens, held.OutputTokens)
	ref := h.res.Grow(to)
	if ref != nil && h.grown == nil {
		h.grown = ref
	}
	return ref
}

// refuse answers a request a budget refused, in the provider's own error
// shape, records the refusal and, when the budget's action is kill,
// ends the session.
func (b *budgets) refuse(w http.ResponseWriter, r *http.Request, sess *session, pb budget.Budget, ref *budget.Refusal, what string) {
	if w != nil {
		writeBudgetError(w, sess.Provider.Format, ref)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
	}
	b.record(r.Context(), sess, audit.KindBudgetRefused, ref, what, pb.Action())
	if pb.Action() == budget.ActionKill {
		b.kill(r.Context(), sess, ref)
	}
}

// record writes a budget.refused or budget.exhausted record (which the
// event stream carries too).
func (b *budgets) record(ctx context.Context, sess *session, kind string, ref *budget.Refusal, what, action string) {
	err := b.o.Rec.record(ctx, audit.Record{Kind: kind, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
		Target: ref.Scope.Key(), Decision: audit.Deny,
		Detail: audit.DetailJSON(map[string]any{"budget": ref.Scope.Key(), "period": ref.Scope.Period, "cap": ref.Cap, "limit": ref.Limit,
			"spent": ref.Spent, "reserved": ref.Reserved, "want": ref.Want, "request": what, "action": action,
			// What the refused side was told, and what changes it.
			"reason": ref.Error(), "change": budgetChange(sess.Profile.Alias)})})
	if err != nil {
		b.o.Log.Error("could not record a budget refusal", "budget", ref.Scope.Key(), "err", err)
	}
}

// budgetChange says how a user lifts a budget's refusal.
func budgetChange(alias string) string {
	return "Raise it with 'ringlet budgets set " + alias + "' (see 'ringlet budgets show " + alias + "'), or wait for the period to end"
}

// exhausted acts on an account whose cap was reached: recorded, and with
// the kill action every session it covers is ended (after the request of
// ctx answered, when it holds killsAfter).
func (b *budgets) exhausted(ctx context.Context, sess *session, a *budget.Account, action string) {
	st := b.ledger.State(a)
	ref := &budget.Refusal{Scope: a.Scope, Cap: exhaustedCap(st)}
	ref.Limit, ref.Spent = capValues(st, ref.Cap)
	b.record(context.Background(), sess, audit.KindBudgetExhausted, ref, "settle", action)
	if action != budget.ActionKill {
		return
	}
	if a.Scope.Period == budget.PeriodSession {
		b.kill(ctx, sess, ref)
		return
	}
	for _, s := range b.o.Sessions.list() {
		if s.Profile.Alias == a.Scope.Profile {
			b.kill(ctx, s, ref)
		}
	}
}

// kill ends sess for the budget of ref: at once, or, when ctx holds
// killsAfter, once the request of ctx answered.
func (b *budgets) kill(ctx context.Context, sess *session, ref *budget.Refusal) {
	if k, ok := ctx.Value(killsAfterKey{}).(*killsAfter); ok && k.add(func() { b.killNow(sess, ref) }) {
		return
	}
	b.killNow(sess, ref)
}

// killsAfter holds the kills that a request's budget asked for while it
// was served, to run once it answered: the MCP tool call that reaches a
// tool-call cap runs, and its answer reaches the agent, before the kill
// cancels the session's requests and closes its socket.
type killsAfter struct {
	mu    sync.Mutex
	fns   []func()
	done  bool
	timer *time.Timer
	// waits is set once a kill waits: from then on each write of the
	// answer has a deadline (bound).
	waits atomic.Bool
}

type killsAfterKey struct{}

// answerWait bounds how long a kill waits, once its request's handler
// returned, for the answer to be written to its end, and how long each
// write of the answer may take once a kill waits: an agent that does not
// read its answer does not hold its kill off.
const answerWait = 5 * time.Second

// withKillsAfter returns ctx holding a killsAfter, and what runs its
// kills (any added later run at once).
func withKillsAfter(ctx context.Context) (context.Context, *killsAfter) {
	k := &killsAfter{}
	return context.WithValue(ctx, killsAfterKey{}, k), k
}

// add keeps fn for run; false once run has run.
func (k *killsAfter) add(fn func()) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.done {
		return false
	}
	k.fns = append(k.fns, fn)
	k.waits.Store(true)
	return true
}

// bound gives the write to w about to be made at most answerWait from
// now once a kill waits for the answer, so that an agent that does not
// read the answer of the call that reached its cap does not hold its
// kill off: the write fails, the handler returns and the kill runs. The
// deadline is set again at each write, not once: the kill is queued when
// the call is let through, before the upstream runs, and a call that
// streams its progress may take longer than answerWait to its result,
// which an agent that reads must have whole. net/http clears the deadline
// when the request is done, so a connection that lives on is not
// affected.
func (k *killsAfter) bound(w http.ResponseWriter) {
	if !k.waits.Load() {
		return
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(answerWait))
}

// writer is w, its writes bounded (bound) once a kill waits for them.
func (k *killsAfter) writer(w http.ResponseWriter) http.ResponseWriter {
	return &killBoundWriter{ResponseWriter: w, k: k}
}

// killBoundWriter is killsAfter.writer's ResponseWriter.
type killBoundWriter struct {
	http.ResponseWriter
	k *killsAfter
}

func (b *killBoundWriter) WriteHeader(code int) {
	b.k.bound(b.ResponseWriter)
	b.ResponseWriter.WriteHeader(code)
}

func (b *killBoundWriter) Write(p []byte) (int, error) {
	b.k.bound(b.ResponseWriter)
	return b.ResponseWriter.Write(p)
}

func (b *killBoundWriter) Flush() {
	b.k.bound(b.ResponseWriter)
	if f, ok := b.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap is for http.ResponseController.
func (b *killBoundWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

// fire runs the kills that wait, once; any added later run at once.
func (k *killsAfter) fire() {
	k.mu.Lock()
	fns := k.fns
	k.fns, k.done = nil, true
	if k.timer != nil {
		k.timer.Stop()
	}
	k.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// answerThenRun runs the kills once the handler's answer w is out; with
// none waiting it only marks the request done (a kill added later runs at
// once). Over TCP it flushes the answer first, and only then: flushing
// every answer would make net/http send each one chunked, its end in a
// write of its own, and an MCP client that closes the body at the JSON's
// end before that write arrives cannot reuse its connection. On a
// session's socket, whose connections a kill closes at once, a flush is
// not enough: an answer net/http sends chunked ends in a write made only
// after the handler returns, and a client that misses it has lost the
// answer (fetch's res.json() fails). There the kills wait until the
// connection's answer is written to its end (afterAnswer), or answerWait.
func (k *killsAfter) answerThenRun(ctx context.Context, w http.ResponseWriter) {
	k.bound(w)
	a, onSocket := ctx.Value(afterAnswerKey{}).(*afterAnswer)
	k.mu.Lock()
	waits := len(k.fns) > 0
	switch {
	case !waits:
		k.done = true
	case onSocket:
		k.timer = time.AfterFunc(answerWait, k.fire)
	}
	k.mu.Unlock()
	switch {
	case !waits:
	case onSocket:
		a.later(k.fire)
	default:
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		k.fire()
		// The kills ran here, before net/http writes the answer's last
		// chunk; they may have taken longer than the deadline set above
		// (a sandbox slow to die, every session of a profile). That
		// write has its own.
		k.bound(w)
	}
}

func (b *budgets) killNow(sess *session, ref *budget.Refusal) {
	why := ref.Error()
	b.killedMu.Lock()
	if b.killed == nil {
		b.killed = map[[32]byte]killedSession{}
	}
	if _, ok := b.killed[sess.hash]; !ok {
		if len(b.killedQ) >= maxKilled {
			delete(b.killed, b.killedQ[0])
			b.killedQ = b.killedQ[1:]
		}
		b.killedQ = append(b.killedQ, sess.hash)
	}
	b.killed[sess.hash] = killedSession{ref: ref, format: sess.Provider.Format}
	b.killedMu.Unlock()
	if err := b.o.Killer.KillSession(context.Background(), sess.ID, KilledByBudget, why); err != nil {
		b.o.Log.Warn("budget: could not end the session", "session", sess.ID, "err", err)
	}
}

func exhaustedCap(st budget.State) string {
	l, s := st.Limits, st.Spent
	switch {
	case l.USD > 0 && s.USD >= l.USD:
		return "usd"
	case l.InputTokens > 0 && s.InputTokens >= l.InputTokens:
		return "input_tokens"
	case l.OutputTokens > 0 && s.OutputTokens >= l.OutputTokens:
		return "output_tokens"
	case l.Requests > 0 && s.Requests >= l.Requests:
		return "requests"
	}
	return "tool_calls"
}

func capValues(st budget.State, c string) (float64, float64) {
	switch c {
	case "usd":
		return st.Limits.USD, st.Spent.USD
	case "input_tokens":
		return float64(st.Limits.InputTokens), float64(st.Spent.InputTokens)
	case "output_tokens":
		return float64(st.Limits.OutputTokens), float64(st.Spent.OutputTokens)
	case "requests":
		return float64(st.Limits.Requests), float64(st.Spent.Requests)
	}
	return float64(st.Limits.ToolCalls), float64(st.Spent.ToolCalls)
}

// BudgetErrorCode is the Ringlet error code of a request a budget
// refused, in every wire format.
const BudgetErrorCode = "budget_exhausted"

// writeBudgetError answers a refused request as its provider answers a
// request it will not serve, so the agent shows the message and does not
// retry: 400 invalid_request_error in both formats (Anthropic's answer
// when the credit balance is too low). Codex stops at a 400 and prints
// its body, the message with it; at OpenAI's 429 insufficient_quota it
// stopped too but printed only its own "Quota exceeded", and the OpenAI
// SDKs retry a 429. x-should-retry: false tells the Anthropic and OpenAI
// SDKs not to retry whatever the status.
func writeBudgetError(w http.ResponseWriter, format string, ref *budget.Refusal) {
	writeWireRefusal(w, format, wireRefusal{code: BudgetErrorCode,
		ringlet:         map[string]any{"budget": ref.Scope.Key(), "cap": ref.Cap},
		message:         "Ringlet refused the request: " + ref.Error() + ". Raise it with 'ringlet budgets set', or wait for the period to end.",
		header:          map[string]string{"X-Ringlet-Budget": ref.Scope.Key(), "X-Should-Retry": "false"},
		anthropicStatus: http.StatusBadRequest, anthropicType: "invalid_request_error",
		openAIStatus: http.StatusBadRequest, openAIType: "invalid_request_error", openAICode: BudgetErrorCode})
}

// budgetCutEvent is the SSE event that ends a streamed answer cut at a
// cap, in the wire format's error event.
func budgetCutEvent(format string, ref *budget.Refusal) []byte {
	msg := strconv.Quote("Ringlet cut the answer: " + ref.Error() + ". Raise it with 'ringlet budgets set'.")
	ringlet := `{"code":"` + BudgetErrorCode + `","budget":` + strconv.Quote(ref.Scope.Key()) + `,"cap":"` + ref.Cap + `"}`
	if format == provider.FormatAnthropic {
		return []byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":" + msg + ",\"ringlet\":" + ringlet + "}}\n\n")
	}
	return []byte("event: error\ndata: {\"type\":\"error\",\"error\":{\"message\":" + msg + ",\"type\":\"invalid_request_error\",\"code\":\"" + BudgetErrorCode + "\",\"ringlet\":" + ringlet + "}}\n\n")
}

// budgetCut is why a streamed answer was cut.
type budgetCut struct{ ref *budget.Refusal }

func (e budgetCut) Error() string { return "cut at a budget's cap: " + e.ref.Error() }

// toolCall reserves one tool call of sess against its budgets; the call
// is charged by done(true) once it is let through (done(false) gives the
// reservation back). Refused, it returns the reason for the agent.
func (b *budgets) toolCall(ctx context.Context, sess *session, tool string) (done func(allowed bool), reason string, ok bool) {
	now := b.now()
	accts, pb, sl, err := b.covering(ctx, sess, now)
	if err != nil {
		return nil, "refused: the spend of this session's budgets could not be read", false
	}
	var ref *budget.Refusal
	switch ref = runtimeRefusal(sess, sl, now); {
	case ref != nil:
	case accts == nil:
		return func(bool) {}, "", true
	default:
		var res *budget.Reservation
		res, ref = b.ledger.Reserve(accts, budget.Amount{ToolCalls: 1})
		if ref == nil {
			return func(allowed bool) {
				var spent budget.Amount
				if allowed {
					spent.ToolCalls = 1
				}
				for _, a := range res.Settle(spent) {
					b.exhausted(ctx, sess, a, pb.Action())
				}
			}, "", true
		}
	}
	b.record(ctx, sess, audit.KindBudgetRefused, ref, "tool.call "+tool, pb.Action())
	if pb.Action() == budget.ActionKill {
		b.kill(ctx, sess, ref)
	}
	return nil, "Ringlet refused the tool call: " + ref.Error() + ". " + budgetChange(sess.Profile.Alias) + " (" + BudgetErrorCode + ")", false
}

// states are the accounts of the budgets of alias (and of its live
// sessions), loaded if need be.
func (b *budgets) states(ctx context.Context, alias string) ([]budget.State, error) {
	out, err := b.profileStates(ctx, alias)
	if err != nil {
		return nil, err
	}
	for _, s := range b.o.Sessions.list() {
		if s.Profile.Alias != alias {
			continue
		}
		st, ok, err := b.sessionState(ctx, s)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, st)
		}
	}
	return out, nil
}

// profileStates are the accounts of the budgets of alias by period (its
// sessions' own are not among them), loaded if need be.
func (b *budgets) profileStates(ctx context.Context, alias string) ([]budget.State, error) {
	pb, err := b.profileBudget(ctx, alias)
	if err != nil {
		return nil, err
	}
	out := []budget.State{}
	now := time.Now()
	for _, period := range budget.Periods[1:] {
		if l := *pb.Of(period); !l.IsZero() {
			a, err := b.ledger.Account(ctx, budget.Scope{Profile: alias, Period: period, Since: budget.PeriodStart(period, now)}, l)
			if err != nil {
				return nil, err
			}
			out = append(out, b.ledger.State(a))
		}
	}
	return out, nil
}

// sessionState is the account of sess's own budget, if it has one.
func (b *budgets) sessionState(ctx context.Context, sess *session) (budget.State, bool, error) {
	pb, err := b.profileBudget(ctx, sess.Profile.Alias)
	if err != nil {
		return budget.State{}, false, err
	}
	sl := sessionLimits(pb.Session, sess.budget)
	if sl.IsZero() {
		return budget.State{}, false, nil
	}
	a, err := b.ledger.Account(ctx, budget.Scope{Profile: sess.Profile.Alias, Session: sess.ID, Period: budget.PeriodSession}, sl)
	if err != nil {
		return budget.State{}, false, err
	}
	return b.ledger.State(a), true, nil
}

// forget drops the account of a session that ended.
func (b *budgets) forget(sess *session) {
	b.ledger.Forget(budget.Scope{Session: sess.ID, Period: budget.PeriodSession})
}

// checkPrices refuses a USD budget on a profile whose model has no price:
// its requests would be counted against token budgets only.
func (b *budgets) checkPrices(p profile.Profile, bud budget.Budget) error {
	usd := false
	for _, period := range budget.Periods {
		usd = usd || bud.Of(period).USD > 0
	}
	if !usd {
		return nil
	}
	if p.Model == "" {
		return fmt.Errorf("a USD budget needs the profile's model to price its requests; set one with 'ringlet profiles set %s --model MODEL', or cap tokens instead (input=, output=)", p.Alias)
	}
	prices, err := b.prices.get()
	if err != nil {
		return err
	}
	if _, ok := prices.Lookup(p.Provider, p.Model); !ok {
		return fmt.Errorf("model %s of provider %s has no price, so a USD budget cannot count its requests; add its price ('ringlet prices import FILE', or a [models] entry in prices.toml) or cap tokens instead (input=, output=)", p.Model, p.Provider)
	}
	return nil
}

// handleGet answers GET /api/budgets/{profile}: the budgets and their
// state.
func (b *budgets) handleGet(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "profile")
	if !knownProfile(w, b.o.Log, b.o.Profiles, alias) {
		return
	}
	b.answer(w, r, alias, http.StatusOK)
}

func (b *budgets) answer(w http.ResponseWriter, r *http.Request, alias string, status int) {
	states, err := b.states(r.Context(), alias)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "budget_unavailable", "the spend could not be read: "+rootCause(err))
		return
	}
	pb, _ := b.profileBudget(r.Context(), alias) // read by states just now
	writeJSON(w, status, api.BudgetView{Profile: alias, Budget: pb, OnExhaust: pb.Action(), Stream: pb.StreamPolicy(), States: states})
}

// handleSet answers PUT /api/budgets/{profile}: sets the caps of the
// periods the request names (the others stay) and the actions.
func (b *budgets) handleSet(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "profile")
	var req api.BudgetRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	p, err := b.o.Profiles.Get(alias)
	if err != nil {
		profileError(w, b.o.Log, err)
		return
	}
	nb, err := req.Apply(p.Budget)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_budget", err.Error())
		return
	}
	if err := b.checkPrices(p, nb); err != nil {
		writeError(w, http.StatusBadRequest, "unpriced_model", err.Error())
		return
	}
	b.store(w, r, p, nb)
}

// handleClear answers DELETE /api/budgets/{profile}: removes the budgets
// of the periods named by ?period= (all when none).
func (b *budgets) handleClear(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "profile")
	p, err := b.o.Profiles.Get(alias)
	if err != nil {
		profileError(w, b.o.Log, err)
		return
	}
	nb := p.Budget
	periods := r.URL.Query()["period"]
	if len(periods) == 0 {
		nb = budget.Budget{}
	}
	for _, period := range periods {
		l := nb.Of(period)
		if l == nil {
			writeError(w, http.StatusBadRequest, "invalid_budget", "period "+strconv.Quote(period)+": want session, day, week or month")
			return
		}
		*l = budget.Limits{}
	}
	b.store(w, r, p, nb)
}

func (b *budgets) store(w http.ResponseWriter, r *http.Request, p profile.Profile, nb budget.Budget) {
	if !b.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindBudgetSet, Profile: p.Alias, Actor: audit.ActorAdmin, Decision: audit.Allow,
		Detail: audit.DetailJSON(nb)}) {
		return
	}
	cat, err := profile.LoadCatalog(b.o.CatalogDir)
	if err == nil {
		_, err = b.o.Profiles.Update(cat, p.Alias, func(p *profile.Profile) { p.Budget = nb })
	}
	if err != nil {
		profileError(w, b.o.Log, err)
		return
	}
	// A runtime cap set, changed or removed applies to the live sessions'
	// timers at once.
	for _, s := range b.o.Sessions.list() {
		if s.Profile.Alias == p.Alias {
			b.watchRuntime(s)
		}
	}
	b.answer(w, r, p.Alias, http.StatusOK)
}

// priceCache is the price table, read again when one of its files
// changes (prices.toml, the imported table).
type priceCache struct {
	catalogDir, file string
	mu               sync.Mutex
	stamp            [2]fileStamp
	p                *provider.Prices
	checked          time.Time // when get last looked at the files
}

type fileStamp struct {
	mod  time.Time
	size int64
	ok   bool
}

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size(), true}
}

// get is the price table as its files are now: budgets price every
// request, and refuse one whose price cannot be read, with it.
func (c *priceCache) get() (*provider.Prices, error) {
	now := time.Now()
	st := [2]fileStamp{stampOf(filepath.Join(c.catalogDir, "prices.toml")), stampOf(c.file)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checked = now
	if c.p != nil && st == c.stamp {
		return c.p, nil
	}
	p, err := provider.LoadPrices(c.catalogDir, c.file)
	if err != nil {
		return nil, fmt.Errorf("read the price table: %w", err)
	}
	c.p, c.stamp = p, st
	return p, nil
}

// displayRecheck is how long a table read for display only (recent) is
// used before its files are looked at again.
const displayRecheck = time.Second

// recent is the price table for display only (the Now page's spend of
// each session, which prices every committed provider record): the table
// get last read, if it looked at the files less than displayRecheck ago;
// else get's. Two stat calls per record cost more than the rest of what
// the dashboard does with it. Budgets keep pricing with get.
func (c *priceCache) recent() (*provider.Prices, error) {
	c.mu.Lock()
	p, fresh := c.p, time.Since(c.checked) < displayRecheck
	c.mu.Unlock()
	if p != nil && fresh {
		return p, nil
	}
	return c.get()
}

// budgetCollector reports what is left of every budget the ledger holds,
// per cap, read at each scrape.
type budgetCollector struct{ b *budgets }

var budgetRemainingDesc = prometheus.NewDesc("ringlet_budget_remaining",
	"What is left of a budget's cap (spent and reserved taken off), per budget and cap; USD for usd, else a count.",
	[]string{"budget", "profile", "cap"}, nil)

func (c budgetCollector) Describe(ch chan<- *prometheus.Desc) { ch <- budgetRemainingDesc }

func (c budgetCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.b.ledger.States() {
		for _, v := range []struct {
			name     string
			lim, rem float64
		}{
			{"usd", st.Limits.USD, st.Remaining.USD},
			{"input_tokens", float64(st.Limits.InputTokens), float64(st.Remaining.InputTokens)},
			{"output_tokens", float64(st.Limits.OutputTokens), float64(st.Remaining.OutputTokens)},
			{"requests", float64(st.Limits.Requests), float64(st.Remaining.Requests)},
			{"tool_calls", float64(st.Limits.ToolCalls), float64(st.Remaining.ToolCalls)},
		} {
			if v.lim > 0 {
				ch <- prometheus.MustNewConstMetric(budgetRemainingDesc, prometheus.GaugeValue, v.rem, st.Key, st.Profile, v.name)
			}
		}
	}
}
