package gateway

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/sandbox"
)

// who is the set of callers a route admits.
type who uint8

const (
	// byAdmin admits the admin token.
	byAdmin who = 1 << iota
	// bySession admits a live session token of any profile; on a session
	// socket, only that socket's session.
	bySession
	// bySocket admits whatever reaches a session socket, token or not:
	// the socket is bound into one session's sandbox, so the connection
	// is the credential. Only CONNECT, whose clients send no token.
	bySocket
	// byAnonymous admits a request that carries no credential at all (a
	// wrong one is still refused, and recorded): only the proxy's
	// preflight, which answers everyone alike and reveals nothing, and
	// the dashboard's login page, its login and its static files.
	byAnonymous
	// byBrowser admits a live dashboard login cookie sent with its page
	// key (dashboard.KeyHeader), and nothing else: what the dashboard's
	// pages fetch (rendered rows, the event stream) and every change.
	// Never beside another caller.
	byBrowser
	// byPage admits a live dashboard login cookie, key or not: the
	// shells of the dashboard's pages, which carry no data (their
	// script fetches it with the key). The cookie reaches every server
	// of 127.0.0.1 the browser visits, whatever its port; the key does
	// not. Never beside another caller.
	byPage
)

func (w who) admits(c caller) bool {
	switch c.kind {
	case admin:
		return w&byAdmin != 0
	case sessionCaller:
		return w&bySession != 0
	case browser:
		return w&byPage != 0 || w&byBrowser != 0 && c.keyed
	}
	return w&byAnonymous != 0 && c.reason == "missing"
}

// carriers are where a route reads a token from: the places every kind of
// caller it admits may use. Admin-only routes read Authorization and the
// WebSocket subprotocol pair, session-only routes Authorization and
// X-Api-Key, and a route both reach (/mcp) Authorization alone. The
// dashboard's pages read the login cookie alone, and a route only the
// anonymous reach reads nothing.
func (w who) carriers() carrier {
	switch {
	case w&(byBrowser|byPage) != 0:
		return fromCookie
	case w == byAnonymous:
		return 0
	}
	c := fromAuthorization | fromAPIKey | fromSubprotocol
	if w&byAdmin != 0 {
		c &= fromAuthorization | fromSubprotocol
	}
	if w&bySession != 0 {
		c &= fromAuthorization | fromAPIKey
	}
	return c
}

// surface is where a route is served.
type surface uint8

const (
	// onTCP is the daemon's listener.
	onTCP surface = 1 << iota
	// onSocket is a session's socket, bound into its sandbox: it serves
	// that one session and never the admin token.
	onSocket
	// onTools is a session's own MCP tools (session_info, ...), answered
	// in process for the caller /mcp admitted.
	onTools
)

// Patterns that stand for what is not a path.
const (
	// unrouted is every request no other route of its surface takes: the
	// 404 of an unknown path and the 405 of a known one.
	unrouted = "(unrouted)"
	// tunnel is the target of CONNECT (host:port), which names no path.
	tunnel = "(host:port)"
)

// route is one entry of the route table: a method and chi pattern, who
// may call it, where it is served, how a refused caller is answered and
// the handler. A pattern ending in "/" is a collection and answers
// without the slash too. An empty method is every method.
type route struct {
	method  string
	pattern string
	who     who
	on      surface
	deny    refusal
	h       http.Handler
}

// refusal is how a route answers a caller it does not admit: 401 with a
// Bearer challenge in realm (none when empty), message msg (when empty,
// the one of the reason) and the reason counted in
// ringlet_auth_failures_total and the audit log (when empty, the
// caller's own).
type refusal struct {
	realm  string
	reason string
	msg    string
	// page answers with the dashboard's sign-in page (still a 401).
	page bool
}

var (
	refuseAdmin = refusal{realm: "ringlet"}
	refuseProxy = refusal{realm: "ringlet-proxy", reason: "invalid_session",
		msg: "the proxy needs a live session token (x-api-key or Authorization: Bearer); start a session with 'ringlet profiles env <profile>'"}
	refuseHookCheck = refusal{reason: "invalid_session", msg: "hook checks need a live session token"}
	refuseSession   = refusal{reason: "invalid_session", msg: "this session token is not valid (revoked or expired); start the agent again with 'ringlet profiles run', or a new session with 'ringlet profiles env'"}
	// A session socket answers every caller it does not admit alike.
	refuseSocket = refusal{reason: "invalid_session", msg: "this socket serves one session; its token is required"}
	refuseTool   = refusal{reason: "invalid_session", msg: "a session's tools serve only that session"}
	// A dashboard page without a login: a page that says how to get one.
	refuseBrowser = refusal{page: true}
)

// routes is the route table: every route of every surface, with who may
// call it. The TCP listener, each session socket and the session tools are
// built from it (router), and TestRoutesByCaller walks them against it,
// so a route cannot be served without deciding who may call it.
//
// A daemon without an audit log (--no-audit-log) answers its routes
// that read the log with 404 audit_disabled.
func (s *Server) routes() []route {
	const (
		get, post, put, patch, del = http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete
		every                      = "" // every method
	)
	// limited is a JSON API handler behind the body limit and read deadline.
	limited := func(h http.HandlerFunc) http.Handler { return limitBody(s.opts.MaxBodyBytes, 30*time.Second)(h) }
	hookCheck := limitBody(maxHookCheckBody, 30*time.Second)(http.HandlerFunc(s.hooks.handleHookCheck))

	rs := []route{
		{every, unrouted, byAdmin, onTCP, refuseAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path)
		})},
		{every, unrouted, bySession, onSocket, refuseSocket, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "a session socket serves only /proxy, /mcp and /session")
		})},
		{every, unrouted, bySession, onTools, refuseTool, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "no such session endpoint")
		})},

		// The daemon itself.
		{get, "/metrics", byAdmin, onTCP, refuseAdmin, s.metrics.handler()},
		{get, "/api/version", byAdmin, onTCP, refuseAdmin, limited(s.handleVersion)},
		{get, "/api/status", byAdmin, onTCP, refuseAdmin, limited(s.handleStatus)},
		{get, "/api/health", byAdmin, onTCP, refuseAdmin, limited(s.handleHealth)},
		{post, "/api/daemon/stop", byAdmin, onTCP, refuseAdmin, limited(s.handleStop)},
		{post, "/api/daemon/rotate-token", byAdmin, onTCP, refuseAdmin, limited(s.handleRotate)},
		{get, "/api/events", byAdmin, onTCP, refuseAdmin, limited(s.handleEvents)},

		// The provider proxy: a session's requests to its profile's
		// provider, with the key. Never the admin token.
		{every, "/proxy", byAdmin, onTCP, refuseAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "the provider proxy is under /proxy/ (the provider's API path follows), called with a session token")
		})},
		{every, "/proxy/*", bySession, onTCP | onSocket, refuseProxy, http.HandlerFunc(s.proxy.handleProxy)},
		// The preflight: agents HEAD their base URL (Claude Code
		// <base>/api/hello) without a key when they start, to warm the
		// connection. It is answered the same, empty, whoever asks and
		// whatever exists, and is no authentication failure; a wrong
		// token is. After the routes above: it takes their HEAD.
		{http.MethodHead, "/proxy/", byAnonymous | bySession, onTCP | onSocket, refuseProxy, http.HandlerFunc(preflight)},
		{http.MethodHead, "/proxy/api/hello", byAnonymous | bySession, onTCP | onSocket, refuseProxy, http.HandlerFunc(preflight)},
		// Egress to the profile's --allow-host hosts, from its sandbox.
		{http.MethodConnect, tunnel, bySocket, onSocket, refuseSocket, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.egress.handleConnect(w, r, sessionOf(r))
		})},

		// Sessions, their launches and remote terminals.
		{get, "/api/sessions/", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionList)},
		{post, "/api/sessions/", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionStart)},
		{get, "/api/sessions/{id}", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionGet)},
		{del, "/api/sessions/{id}", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionRevoke)},
		{post, "/api/sessions/prune", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionPrune)},
		{post, "/api/sessions/revoke", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionRevokeAll)},
		{post, "/api/sessions/kill", byAdmin, onTCP, refuseAdmin, limited(s.handleSessionKillAll)},
		{post, "/api/sessions/{id}/kill", byAdmin, onTCP, refuseAdmin, limited(s.handleSessionKill)},
		{post, "/api/sessions/{id}/plan", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionPlan)},
		{post, "/api/sessions/{id}/lease", byAdmin, onTCP, refuseAdmin, limited(s.sessions.handleSessionLease)},
		{post, "/api/sessions/{id}/terminal", byAdmin, onTCP, refuseAdmin, limited(s.terminals.handleTerminalStart)},
		{get, "/api/sessions/{id}/terminal", byAdmin, onTCP, refuseAdmin, limited(s.terminals.handleTerminalAttach)},
		{get, "/api/sessions/{id}/terminal/info", byAdmin, onTCP, refuseAdmin, limited(s.terminals.handleTerminalInfo)},
		{del, "/api/sessions/{id}/terminal", byAdmin, onTCP, refuseAdmin, limited(s.terminals.handleTerminalKill)},
		{get, "/api/terminals", byAdmin, onTCP, refuseAdmin, limited(s.terminals.handleTerminalList)},
		{get, "/info", bySession, onTools, refuseTool, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, sessionOf(r).info())
		})},

		// Profiles, the catalogs and the keys.
		{get, "/api/profiles/", byAdmin, onTCP, refuseAdmin, limited(s.profiles.handleProfileList)},
		{post, "/api/profiles/", byAdmin, onTCP, refuseAdmin, limited(s.profiles.handleProfileCreate)},
		{get, "/api/profiles/{alias}", byAdmin, onTCP, refuseAdmin, limited(s.profiles.handleProfileGet)},
		{del, "/api/profiles/{alias}", byAdmin, onTCP, refuseAdmin, limited(s.profiles.handleProfileDelete)},
		{patch, "/api/profiles/{alias}", byAdmin, onTCP, refuseAdmin, limited(s.profiles.handleProfileUpdate)},
		{post, "/api/profiles/{alias}/connect", byAdmin, onTCP, refuseAdmin, limited(s.profiles.handleProfileConnect)},
		{post, "/api/profiles/{alias}/config/approve", byAdmin, onTCP, refuseAdmin, limited(s.profiles.handleConfigApprove)},
		{get, "/api/profiles/{alias}/ratelimits", byAdmin, onTCP, refuseAdmin, limited(s.handleRateLimitsGet)},
		{patch, "/api/profiles/{alias}/ratelimits", byAdmin, onTCP, refuseAdmin, limited(s.handleRateLimitsChange)},
		{del, "/api/profiles/{alias}/ratelimits", byAdmin, onTCP, refuseAdmin, limited(s.handleRateLimitsChange)},
		{get, "/api/providers/", byAdmin, onTCP, refuseAdmin, limited(s.catalogs.handleProviderList)},
		{post, "/api/providers/", byAdmin, onTCP, refuseAdmin, limited(s.catalogs.handleProviderAdd)},
		{get, "/api/providers/{id}", byAdmin, onTCP, refuseAdmin, limited(s.catalogs.handleProviderGet)},
		{get, "/api/agents", byAdmin, onTCP, refuseAdmin, limited(s.catalogs.handleAgents)},
		{get, "/api/keychain/", byAdmin, onTCP, refuseAdmin, limited(s.keychain.handleKeychainList)},
		{put, "/api/keychain/{provider}/{alias}", byAdmin, onTCP, refuseAdmin, limited(s.keychain.handleKeychainSet)},
		{del, "/api/keychain/{provider}/{alias}", byAdmin, onTCP, refuseAdmin, limited(s.keychain.handleKeychainRemove)},
		{post, "/api/keychain/migrate", byAdmin, onTCP, refuseAdmin, limited(s.keychain.handleKeychainMigrate)},

		// Prices: the table usage is priced with, and the imported one.
		{get, "/api/prices", byAdmin, onTCP, refuseAdmin, limited(s.prices.handleList)},
		{get, "/api/prices/lookup", byAdmin, onTCP, refuseAdmin, limited(s.prices.handleLookup)},
		// A price file is larger than a JSON request: its own limit.
		{post, "/api/prices/import", byAdmin, onTCP, refuseAdmin, limitBody(maxPriceImport, 60*time.Second)(http.HandlerFunc(s.prices.handleImport))},
		{del, "/api/prices/import", byAdmin, onTCP, refuseAdmin, limited(s.prices.handleReset)},

		// Budgets: a profile's caps and what is left of them.
		{get, "/api/budgets/{profile}", byAdmin, onTCP, refuseAdmin, limited(s.budgets.handleGet)},
		{put, "/api/budgets/{profile}", byAdmin, onTCP, refuseAdmin, limited(s.budgets.handleSet)},
		{del, "/api/budgets/{profile}", byAdmin, onTCP, refuseAdmin, limited(s.budgets.handleClear)},

		// A session's own view of itself: what a client that runs for a
		// session ('ringlet mcp --stdio') checks its token with.
		{get, "/session", bySession, onTCP | onSocket, refuseSession, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, sessionOf(r).info())
		})},

		// Hooks. A session's agent asks whether a tool call may run.
		{post, "/session/hooks/check", bySession, onTCP | onSocket, refuseHookCheck, hookCheck},
		{get, "/api/hooks/", byAdmin, onTCP, refuseAdmin, limited(s.hooks.handleHookList)},
		{post, "/api/hooks/", byAdmin, onTCP, refuseAdmin, limited(s.hooks.handleHookAdd)},
		{del, "/api/hooks/{profile}/{id}", byAdmin, onTCP, refuseAdmin, limited(s.hooks.handleHookRemove)},
		{post, "/api/hooks/{profile}/import", byAdmin, onTCP, refuseAdmin, limited(s.hooks.handleHookImport)},
		{get, "/api/hooks/{profile}/export", byAdmin, onTCP, refuseAdmin, limited(s.hooks.handleHookExport)},
		{post, "/api/hooks/{profile}/test", byAdmin, onTCP, refuseAdmin, limited(s.hooks.handleHookTest)},

		// The MCP gateway: the admin token sees Ringlet's controls, a
		// session token its profile's tools (handleMCP).
		{every, "/mcp", byAdmin | bySession, onTCP | onSocket, refuseAdmin, http.HandlerFunc(s.mcp.handleMCP)},
		{every, "/mcp/*", byAdmin, onTCP, refuseAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "not_found", "the MCP endpoint is /mcp")
		})},
		{get, "/api/mcp/servers/", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPList)},
		{post, "/api/mcp/servers/", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPAdd)},
		{del, "/api/mcp/servers/{profile}/{name}", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPRemove)},
		{patch, "/api/mcp/servers/{profile}/{name}", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPSet)},
		{post, "/api/mcp/servers/{profile}/{name}/approve", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPApprove)},
		{post, "/api/mcp/servers/{profile}/{name}/auth", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPAuthStart)},
		{get, "/api/mcp/servers/{profile}/{name}/auth", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPAuthStatus)},
		{del, "/api/mcp/servers/{profile}/{name}/auth", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPAuthRevoke)},
		{get, "/api/mcp/servers/{profile}/{name}/tools", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPTools)},
		{patch, "/api/mcp/servers/{profile}/{name}/tools", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPToolsSet)},
		{put, "/api/mcp/tools-default/{profile}", byAdmin, onTCP, refuseAdmin, limited(s.mcp.handleMCPToolsDefault)},

		// The dashboard (dashboard.go): pages for a browser signed in with
		// a login cookie, which 'ringlet ui' gets a one-time code for.
		// Changes take a same-origin request (sameOrigin) besides.
		{post, "/api/ui/code", byAdmin, onTCP, refuseAdmin, limited(s.ui.handleCode)},
		{post, "/api/ui/code/wait", byAdmin, onTCP, refuseAdmin, http.HandlerFunc(s.ui.handleCodeWait)},
		{get, "/", byAnonymous, onTCP, refuseAdmin, http.RedirectHandler("/ui/", http.StatusSeeOther)},
		{get, "/ui/login", byAnonymous, onTCP, refuseAdmin, http.HandlerFunc(s.ui.handleLoginPage)},
		{post, "/ui/login", byAnonymous, onTCP, refuseAdmin, sameOrigin(limited(s.ui.handleLogin))},
		{get, "/ui/assets/*", byAnonymous, onTCP, refuseAdmin, dashboard.Assets("/ui/assets/")},
		{get, "/ui/", byPage, onTCP, refuseBrowser, http.HandlerFunc(s.ui.handleNow)},
		{get, "/ui/now/sessions", byBrowser, onTCP, refuseBrowser, http.HandlerFunc(s.ui.handleSessionRows)},
		{get, "/ui/events", byBrowser, onTCP, refuseBrowser, http.HandlerFunc(s.ui.handleEvents)},
		{get, "/ui/spend", byPage, onTCP, refuseBrowser, http.HandlerFunc(s.ui.handleSpend)},
		{get, "/ui/spend/plot", byBrowser, onTCP, refuseBrowser, limited(s.ui.handleSpendPlot)},
		{get, "/ui/spend/table", byBrowser, onTCP, refuseBrowser, limited(s.ui.handleSpendTable)},
		{get, "/ui/spend/csv", byBrowser, onTCP, refuseBrowser, limited(s.ui.handleSpendCSV)},
		{post, "/ui/sessions/{id}/kill", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.ui.handleKill))},
		{post, "/ui/logout", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.ui.handleLogout))},
		// The terminal page of a remote agent (dashterm.go): its socket is
		// the API's viewer, with the page key in the subprotocol.
		{get, "/ui/terminal/{id}", byPage, onTCP, refuseBrowser, http.HandlerFunc(handleTerminalPage)},
		{get, "/ui/terminal/{id}/attach", byBrowser, onTCP, refuseBrowser, http.HandlerFunc(s.terminals.handleUIAttach)},
		// The Hooks and keys page: its changes are the API's handlers
		// (hooks.go, keychain.go), which record the dashboard as actor.
		{get, "/ui/hooks", byPage, onTCP, refuseBrowser, http.HandlerFunc(handleHooksPage)},
		{get, "/ui/hooks/list", byBrowser, onTCP, refuseBrowser, limited(s.hooks.handleUIHookList)},
		{post, "/ui/hooks/add", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.hooks.handleHookAdd))},
		{del, "/ui/hooks/{profile}/{id}", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.hooks.handleHookRemove))},
		{post, "/ui/hooks/{profile}/test", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.hooks.handleHookTest))},
		{get, "/ui/keys/list", byBrowser, onTCP, refuseBrowser, limited(s.keychain.handleUIKeyList)},
		{post, "/ui/keys/{provider}/{alias}", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.keychain.handleKeychainSet))},
		{del, "/ui/keys/{provider}/{alias}", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.keychain.handleKeychainRemove))},
		// The Audit page (dashaudit.go); its data with the reads below.
		{get, "/ui/audit", byPage, onTCP, refuseBrowser, http.HandlerFunc(s.uiAudit.handlePage)},
		// The MCP page (dashmcp.go): its changes take the REST API's path.
		{get, "/ui/mcp", byPage, onTCP, refuseBrowser, http.HandlerFunc(s.mcp.handleUIPage)},
		{get, "/ui/mcp/servers", byBrowser, onTCP, refuseBrowser, limited(s.mcp.handleUIServers)},
		{post, "/ui/mcp/servers/{profile}/{name}/tools", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.mcp.handleUITool))},
		{post, "/ui/mcp/servers/{profile}/{name}/approve", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.mcp.handleUIApprove))},
	}

	// The reads of the audit log. A session's tools read its own records
	// only.
	if s.opts.AuditPath == "" {
		return append(rs,
			route{every, "/api/audit", byAdmin, onTCP, refuseAdmin, limited(auditOff)},
			route{every, "/api/audit/*", byAdmin, onTCP, refuseAdmin, limited(auditOff)},
			route{every, "/api/usage", byAdmin, onTCP, refuseAdmin, limited(auditOff)},
			route{get, "/audit", bySession, onTools, refuseTool, auditOff},
			route{get, "/audit/traces/{id}", bySession, onTools, refuseTool, auditOff},
			route{get, "/usage", bySession, onTools, refuseTool, auditOff},
			route{every, "/ui/audit/*", byBrowser, onTCP, refuseBrowser, auditOffPage})
	}
	return append(rs,
		route{get, "/api/audit", byAdmin, onTCP, refuseAdmin, limited(s.audit.handleAuditQuery)},
		route{get, "/api/audit/verify", byAdmin, onTCP, refuseAdmin, limited(s.audit.handleAuditVerify)},
		route{get, "/api/audit/traces/{id}", byAdmin, onTCP, refuseAdmin, limited(s.audit.handleTrace)},
		route{get, "/api/usage", byAdmin, onTCP, refuseAdmin, limited(s.audit.handleUsage)},
		route{get, "/audit", bySession, onTools, refuseTool, ownSession(http.HandlerFunc(s.audit.handleAuditQuery))},
		// A session's view of a trace holds only its own records.
		route{get, "/audit/traces/{id}", bySession, onTools, refuseTool, http.HandlerFunc(s.audit.handleTrace)},
		route{get, "/usage", bySession, onTools, refuseTool, ownSession(http.HandlerFunc(s.audit.handleUsage))},
		route{get, "/ui/audit/records", byBrowser, onTCP, refuseBrowser, http.HandlerFunc(s.uiAudit.handleRecords)},
		route{get, "/ui/audit/traces/{id}", byBrowser, onTCP, refuseBrowser, http.HandlerFunc(s.uiAudit.handleTrace)},
		route{get, "/ui/audit/verify", byBrowser, onTCP, refuseBrowser, http.HandlerFunc(s.uiAudit.handleVerify)},
		route{post, "/ui/audit/verify", byBrowser, onTCP, refuseBrowser, sameOrigin(limited(s.uiAudit.handleVerify))})
}

// preflight answers an agent's HEAD of its base URL: 200, no body, the
// same for every caller the route admits.
func preflight(w http.ResponseWriter, _ *http.Request) {
	w.WriteHeader(http.StatusOK)
}

// ownSession fixes the session of an audit or usage query to the
// caller's own, whatever the query asked.
func ownSession(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		q.Del("profile")
		q.Set("session", sessionOf(r).ID)
		r.URL.RawQuery = q.Encode()
		next.ServeHTTP(w, r)
	})
}

// router builds the routes of surface on from the table, each behind its
// gate, after the middleware mw. sock is the session of a session socket.
// CONNECT is not routed here: it names no path (see socketHandler).
func (s *Server) router(on surface, sock *session, mw ...func(http.Handler) http.Handler) *chi.Mux {
	r := chi.NewRouter()
	r.Use(mw...)
	for _, rt := range s.routes() {
		if rt.on&on == 0 || rt.pattern == tunnel {
			continue
		}
		h := s.gate(rt, on, sock, rt.h)
		if rt.pattern == unrouted {
			r.NotFound(h.ServeHTTP)
			r.MethodNotAllowed(s.gate(rt, on, sock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", r.Method+" is not allowed on "+r.URL.Path)
			})).ServeHTTP)
			continue
		}
		patterns := []string{rt.pattern}
		if p := strings.TrimSuffix(rt.pattern, "/"); p != rt.pattern && p != "" {
			patterns = append(patterns, p)
		}
		for _, p := range patterns {
			if rt.method == "" {
				r.Handle(p, h)
			} else {
				r.Method(rt.method, p, h)
			}
		}
	}
	return r
}

// gate admits to next only the callers rt admits on surface on, and
// hands next the caller in the request's context. It is where every
// request of every surface is authenticated.
func (s *Server) gate(rt route, on surface, sock *session, next http.Handler) http.Handler {
	allowed, deny := rt.who, rt.deny
	switch on {
	case onSocket:
		// One session's socket: never the admin token, whatever the
		// route takes elsewhere.
		allowed &^= byAdmin
		deny = refuseSocket
	default:
		allowed &^= bySocket
	}
	from := rt.who.carriers()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowed&bySocket != 0 {
			// The connection is the credential: it comes from sock's
			// sandbox.
			if sock.awaiting.Load() {
				awaitingLauncher(w)
				return
			}
			next.ServeHTTP(w, r.WithContext(withCaller(r.Context(), caller{kind: sessionCaller, sess: sock})))
			return
		}
		var c caller
		if on == onTools {
			// /mcp's gate decided; the tools answer in process.
			c = callerFrom(r.Context())
		} else {
			c = s.callerOf(r, from)
		}
		if on == onSocket && c.kind == sessionCaller && c.sess != sock {
			// Valid elsewhere, not on this socket.
			c = caller{tok: c.tok, reason: "invalid_session"}
		}
		if c.reason == "missing" && allowed&byAnonymous != 0 {
			// Anonymous is no credential anywhere, not one in a place
			// this route does not read.
			if _, reason, _ := credential(r, fromAuthorization|fromAPIKey|fromSubprotocol); reason != "missing" {
				c.reason = "malformed"
			}
		}
		if !allowed.admits(c) {
			s.refuse(w, r, c, allowed, from, deny)
			return
		}
		if c.kind == sessionCaller && c.sess.awaiting.Load() {
			awaitingLauncher(w)
			return
		}
		r = r.WithContext(withCaller(r.Context(), c))
		if c.kind == admin {
			c.gen.serve(next, w, r)
			return
		}
		if c.kind == sessionCaller && on != onTools {
			// A use of the session, which renews it (the tools'
			// requests are part of the /mcp request that began). An
			// anonymous caller (the preflight) has none.
			s.sessions.begin(c.sess)
			defer s.sessions.finished(c.sess)
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers a caller that allowed does not admit, and counts and
// records the refusal. from are the carriers the route read.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, c caller, allowed who, from carrier, d refusal) {
	reason := c.reason
	if c.kind != nobody || (reason == "invalid_session" && allowed&bySession == 0) {
		// A token that is valid elsewhere, or a session token where
		// sessions never are: not a valid token here.
		reason = "invalid"
	}
	if d.reason != "" {
		reason = d.reason
	}
	s.authFailed(reason, r, c.tok)
	if d.realm == refuseProxy.realm && c.tok != "" {
		// A session a budget ended: its agent is told why, in its
		// provider's error shape, and stops rather than retrying.
		if k, ok := s.budgets.endedBy(c.tok); ok {
			writeBudgetError(w, k.format, k.ref)
			return
		}
	}
	if d.page {
		dashboard.RenderRefused(w, http.StatusUnauthorized)
		return
	}
	if d.realm != "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+d.realm+`"`)
	}
	msg := d.msg
	if msg == "" {
		msg = authMessages[reason]
	}
	if from&fromAPIKey != 0 {
		// Say which header was read where two could carry the token.
		switch key := r.Header.Values("X-Api-Key"); {
		case c.reason == "malformed":
			msg += "; send the token once, in one X-Api-Key or one Authorization: Bearer header"
		case len(key) == 1 && key[0] != "" && len(r.Header.Values("Authorization")) > 0:
			msg += "; the token in X-Api-Key was read, and Authorization was not (X-Api-Key decides when both are sent)"
		}
	}
	writeError(w, http.StatusUnauthorized, "unauthorized", msg)
}

// Handler returns the daemon's routes behind its middleware chain: the
// Host/Origin guard, then each route's gate, so every endpoint, /metrics
// and unknown paths included, needs a token.
func (s *Server) Handler() http.Handler {
	// metrics wraps recoverer so a panic is counted as the 500 it answers.
	return s.router(onTCP, nil, dashboardHeaders, s.metrics.middleware, s.recoverer, s.activity,
		newHostGuard(int(s.port.Load()), s.opts.ListenHost, s.guardDenied).middleware)
}

// forwarderHost reports whether host is the forwarder's own address in
// the sandbox.
func forwarderHost(host string) bool {
	port := strconv.Itoa(sandbox.ForwarderPort)
	return host == "127.0.0.1:"+port || strings.EqualFold(host, "localhost:"+port)
}

// socketHandler serves the session socket of sess: its routes of the
// table, for its token only, behind the Host guard for the forwarder's
// address. CONNECT goes first, before the guard and any route: its Host
// is the target, by definition not this daemon, and it names no path.
func (s *Server) socketHandler(sess *session) *chi.Mux {
	var connect, plain http.Handler
	for _, rt := range s.routes() {
		if rt.on&onSocket != 0 && rt.pattern == tunnel {
			connect = s.gate(rt, onSocket, sess, rt.h)
			// A plain-HTTP proxy request is the same caller asking for
			// the same thing, without TLS: it is refused and recorded.
			plain = s.gate(rt, onSocket, sess, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				s.egress.handlePlain(w, r, sessionOf(r))
			}))
		}
	}
	tunnels := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodConnect && connect != nil {
				connect.ServeHTTP(w, r)
				return
			}
			if r.URL.IsAbs() && plain != nil && !forwarderHost(r.URL.Host) {
				// A proxy request for another host (the sandbox's
				// HTTP_PROXY points here): refused and recorded. One for
				// the forwarder itself (a client that sends even its
				// NO_PROXY requests to the proxy) is served as any.
				plain.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
	return s.router(onSocket, sess, tunnels, s.metrics.middleware, s.recoverer, s.activity,
		newHostGuard(sandbox.ForwarderPort, "", s.guardDenied).middleware)
}
