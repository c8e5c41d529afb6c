package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/dashboard"
)

// KilledByDashboard is who killed a session from the dashboard's Now
// page, as session.killed records it.
const KilledByDashboard = "dashboard"

// ui answers the dashboard's routes: its login, its pages and their
// event stream. Who may reach each is the route table's to say; ui only
// reads the browser's login from the caller the gate admitted.
type ui struct {
	logins   *dashboard.Logins
	sessions *sessions
	budgets  *budgets
	bus      *eventBus
	life     *life
	rec      *recorder
	log      *slog.Logger
	// kill is the kill switch (Server.kill); refused records a login
	// code that did not work as an authentication failure.
	kill    func(ctx context.Context, id, who, why string) (api.KilledSession, error)
	refused func(reason string, r *http.Request, tok string)
	// cookie is the login cookie's name (dashboard.CookieName of the
	// daemon's port).
	cookie func() string
	// hasTerminal reports whether a session has a remote terminal
	// (terminals.has): its row links to the terminal page.
	hasTerminal func(id string) bool
}

// dashboardHeaders puts the dashboard's security headers on every answer
// a browser asks for: under /ui, / and /favicon.ico, refusals by the Host
// guard and the gate included.
func dashboardHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/" || p == "/favicon.ico" || p == "/ui" || strings.HasPrefix(p, "/ui/") {
			dashboard.Headers(w.Header())
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin admits a request that changes something only when the
// browser says it comes from the daemon's own pages: Sec-Fetch-Site
// same-origin, or, from a browser that does not send it, an Origin (the
// Host guard has checked that it is the daemon's). The login cookie is
// SameSite=Strict, but a page on another port of localhost is same-site:
// this is what refuses it.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			site, origin := r.Header.Get("Sec-Fetch-Site"), r.Header.Get("Origin")
			if site != "same-origin" && (site != "" || origin == "") {
				writeError(w, http.StatusForbidden, "forbidden_origin", "the dashboard takes changes only from its own pages")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// handleCode gives the admin a one-time login code (POST /api/ui/code).
func (u *ui) handleCode(w http.ResponseWriter, _ *http.Request) {
	code, exp := u.logins.NewCode()
	writeJSON(w, http.StatusOK, api.UILoginCode{Code: code, Expires: exp.UTC(), Path: "/ui/login#code=" + code})
}

// handleCodeWait answers when a login code is used or expires (POST
// /api/ui/code/wait): 'ringlet ui' then removes the file that carried it
// to the browser.
func (u *ui) handleCodeWait(w http.ResponseWriter, r *http.Request) {
	var req api.UICodeWait
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096)).Decode(&req); err != nil || req.Code == "" {
		writeError(w, http.StatusBadRequest, "bad_request", `the body is {"code": "rlc_..."}, a code of POST /api/ui/code`)
		return
	}
	writeJSON(w, http.StatusOK, api.UICodeWaited{Used: u.logins.Wait(r.Context(), req.Code)})
}

func (u *ui) handleLoginPage(w http.ResponseWriter, _ *http.Request) {
	dashboard.RenderLogin(w)
}

// handleLogin exchanges a one-time code (form field code) for a login: a
// cookie (HttpOnly, SameSite=Strict, Path=/, no Domain: host-only, for
// the login's absolute lifetime) and, in the answer's body
// (api.UILogin), the page key the login's script keeps in sessionStorage
// and sends in dashboard.KeyHeader. The daemon holds the login's state.
func (u *ui) handleLogin(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "the login takes a form with one field, code")
		return
	}
	code := r.PostForm.Get("code")
	cookie, key, end, err := u.logins.Exchange(code)
	if err != nil {
		u.refused("login_code", r, code)
		writeError(w, http.StatusUnauthorized, "bad_code", err.Error())
		return
	}
	if err := u.rec.record(r.Context(), audit.Record{Kind: audit.KindDashboardLogin, Actor: audit.ActorAdmin, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"remote": r.RemoteAddr})}); err != nil {
		writeError(w, http.StatusServiceUnavailable, "audit_unavailable", "the login could not be recorded in the audit log, so it was refused")
		return
	}
	// Not Secure: the dashboard is plain HTTP on loopback, where a Secure
	// cookie would never be sent back.
	//nolint:gosec // G124: see above
	http.SetCookie(w, &http.Cookie{Name: u.cookie(), Value: cookie, Path: "/", Expires: end, MaxAge: int(time.Until(end).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, api.UILogin{Key: key, Expires: end.UTC()})
}

// handleLogout ends the browser's login and drops its cookie.
func (u *ui) handleLogout(w http.ResponseWriter, r *http.Request) {
	u.logins.End(callerFrom(r.Context()).tok)
	// The login is over whether or not this is written.
	_ = u.rec.record(r.Context(), audit.Record{Kind: audit.KindDashboardLogout, Actor: audit.ActorAdmin, Decision: audit.Allow})
	//nolint:gosec // G124: not Secure on plain-HTTP loopback (handleLogin)
	http.SetCookie(w, &http.Cookie{Name: u.cookie(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// handleNow is the Now page's shell: no data (its script fetches the
// rows with the page key), so the cookie alone opens it.
func (u *ui) handleNow(w http.ResponseWriter, _ *http.Request) {
	dashboard.RenderNow(w)
}

// handleSessionRows answers a page of the Now page's table (nowQuery:
// profile, state, q, after or before, limit) with the summary of every
// live session.
func (u *ui) handleSessionRows(w http.ResponseWriter, r *http.Request) {
	q, err := parseNowQuery(r.URL.Query())
	if err != nil {
		dashboard.RenderNowError(w, http.StatusBadRequest, err.Error())
		return
	}
	dashboard.RenderSessionRows(w, u.now(r.Context(), q))
}

// handleKill is the kill switch of the Now page's Kill button.
func (u *ui) handleKill(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	_, err := u.kill(r.Context(), id, KilledByDashboard, "from the dashboard")
	switch {
	case errors.Is(err, ErrNoSession):
		// Ended meanwhile: the page shows it gone.
	case err != nil:
		http.Error(w, "the session could not be killed: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// handleEvents tells a page when a session changed, as server-sent
// events (event "sessions", no data: the page fetches its rows again;
// event "usage" when a provider request was recorded: the Spend page's),
// when records were written (event "audit") and when an MCP server's
// record was (event "mcp": the MCP page's),
// from the daemon's event stream. It ends with an "end" event when the
// login ends (logout, rotate-token, expiry), and when the daemon stops or
// the reader falls behind (the page reconnects).
func (u *ui) handleEvents(w http.ResponseWriter, r *http.Request) {
	login := callerFrom(r.Context()).login
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	send := func(s string) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second)) // not every writer has deadlines
		if _, err := fmt.Fprint(w, s); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !send("retry: 2000\n\n") {
		return
	}
	u.life.streams.Add(1)
	defer u.life.streams.Done()
	sub := u.bus.subscribe(nil, "")
	defer u.bus.unsubscribe(sub)
	for {
		select {
		case data := <-sub.ch:
			changed, spent := aboutEvent(data)
			mcpChanged := aboutMCP(data)
			// Many records at once (a busy agent) make one event of each.
			for drained := false; !drained; {
				select {
				case more := <-sub.ch:
					c, sp := aboutEvent(more)
					changed, spent = changed || c, spent || sp
					mcpChanged = mcpChanged || aboutMCP(more)
				default:
					drained = true
				}
			}
			if changed && !send("event: sessions\ndata:\n\n") {
				return
			}
			if spent && !send("event: usage\ndata:\n\n") {
				return
			}

			// Records were written: the Audit page's newest page.
			if !send("event: audit\ndata:\n\n") {
				return
			}
			if mcpChanged && !send("event: mcp\ndata:\n\n") {
				return
			}
		case <-sub.slow:
			return
		case <-login.Context().Done():
			send("event: end\ndata:\n\n")
			return
		case <-u.life.closing.Done():
			return
		case <-r.Context().Done():
			return
		}
	}
}

// aboutEvent reports whether an event (an audit record as JSON) is
// about a session, and whether it is a provider request (usage changed:
// the Spend page's event).
func aboutEvent(data []byte) (session, usage bool) {
	var e struct {
		Session string `json:"session"`
		Kind    string `json:"kind"`
	}
	if json.Unmarshal(data, &e) != nil {
		return false, false
	}
	return e.Session != "", e.Kind == audit.KindProviderRequest
}

// aboutMCP reports whether an event is an MCP server's record (mcp.*:
// pinned, changed, approved, its tools set, restarted...): the MCP
// page's event "mcp".
func aboutMCP(data []byte) bool {
	var e struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(data, &e) == nil && strings.HasPrefix(e.Kind, "mcp.")
}

// now is a page of the Now page: the live sessions q keeps, newest
// first (nowSelect), and the summary of all. Only the page's rows read
// their budgets.
func (u *ui) now(ctx context.Context, q nowQuery) dashboard.NowPage {
	picked, page := u.nowSelect(q, time.Now())
	profileLeft := map[string][]string{}
	for _, sess := range picked {
		info := sess.info()
		row := dashboard.SessionRow{ID: info.ID, Profile: info.Profile, Agent: info.Agent, Provider: info.Provider, Started: info.Created,
			Sandboxed: info.Sandboxed, Requests: info.Requests}
		sess.acts.fill(&row)
		row.Terminal = u.hasTerminal(info.ID)
		if st, ok, err := u.budgets.sessionState(ctx, sess); err == nil && ok {
			row.BudgetLeft = append(row.BudgetLeft, budgetLeft(st)...)
		}
		left, ok := profileLeft[info.Profile]
		if !ok {
			if sts, err := u.budgets.profileStates(ctx, info.Profile); err == nil {
				for _, st := range sts {
					left = append(left, budgetLeft(st)...)
				}
			}
			profileLeft[info.Profile] = left
		}
		row.BudgetLeft = append(row.BudgetLeft, left...)
		page.Sessions = append(page.Sessions, row)
	}
	return page
}

// budgetLeft says what is left of each cap of an account, one line each.
func budgetLeft(st budget.State) []string {
	var out []string
	l, r := st.Limits, st.Remaining
	add := func(capped bool, format string, left, limit any) {
		if capped {
			out = append(out, fmt.Sprintf(format, left, limit)+" ("+st.Period+")")
		}
	}
	add(l.USD > 0, "$%.4f of $%.2f", r.USD, l.USD)
	add(l.InputTokens > 0, "%d of %d input tokens", r.InputTokens, l.InputTokens)
	add(l.OutputTokens > 0, "%d of %d output tokens", r.OutputTokens, l.OutputTokens)
	add(l.Requests > 0, "%d of %d requests", r.Requests, l.Requests)
	add(l.ToolCalls > 0, "%d of %d tool calls", r.ToolCalls, l.ToolCalls)
	return out
}

// observe keeps what the Now page shows of a session from its records:
// its spend and its last action. It runs for every record, before it is
// streamed.
func (u *ui) observe(r audit.Record) {
	if r.Session == "" {
		return
	}
	sess := u.sessions.get(r.Session)
	if sess == nil {
		return
	}
	model := audit.DetailModel(r.Detail) // a detail of another shape names no model
	var usd float64
	priced := false
	if r.Kind == audit.KindProviderRequest && r.TokensIn+r.TokensOut+r.TokensCacheRead+r.TokensCacheWrite > 0 {
		if prices, err := u.budgets.prices.recent(); err == nil {
			usd, priced = prices.Cost(sess.Provider.ID, model, r.TokensIn, r.TokensOut, r.TokensCacheRead, r.TokensCacheWrite)
		}
	}
	sess.acts.add(r, model, usd, priced)
}

// activity is what a session's records said of it: its spend and its
// last action.
type activity struct {
	mu                  sync.Mutex
	tokensIn, tokensOut int64
	usd                 float64
	priced              bool
	// last is the last action's parts; its line is made when a page
	// shows it (line), not for every record.
	last     lastAction
	lastTime time.Time
}

type lastAction struct{ kind, target, model, decision string }

// line is the line the Now page shows for an action.
func (l lastAction) line() string {
	line := l.kind
	if l.target != "" {
		line += " " + l.target
	}
	if l.model != "" {
		line += " model=" + strconv.Quote(l.model)
	}
	if l.decision != "" && l.decision != audit.Allow {
		line += " (" + l.decision + ")"
	}
	return clipAction(line)
}

func (a *activity) add(r audit.Record, model string, usd float64, priced bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tokensIn += r.TokensIn + r.TokensCacheRead + r.TokensCacheWrite
	a.tokensOut += r.TokensOut
	if priced {
		a.usd += usd
		a.priced = true
	}
	a.last, a.lastTime = lastAction{r.Kind, r.Target, model, r.Decision}, r.Time
}

func (a *activity) fill(row *dashboard.SessionRow) {
	a.mu.Lock()
	defer a.mu.Unlock()
	row.TokensIn, row.TokensOut, row.USD, row.Priced = a.tokensIn, a.tokensOut, a.usd, a.priced
	row.LastAction, row.LastActionTime = a.last.line(), a.lastTime
}

// clipAction bounds a last action (agents choose model and tool names).
func clipAction(s string) string {
	const most = 300
	if len(s) <= most {
		return s
	}
	return strings.ToValidUTF8(s[:most], "") + "…"
}
