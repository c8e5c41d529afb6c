package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/version"
)

// The typed calls of the daemon's REST API, one per route the CLI uses;
// the bodies are package api's. Path segments are escaped here.

func seg(s string) string { return url.PathEscape(s) }

// Version is GET /api/version: the daemon's build.
func (c *Client) Version(ctx context.Context) (version.Info, error) {
	var v version.Info
	return v, c.Do(ctx, http.MethodGet, "/api/version", nil, &v)
}

// Status is GET /api/status.
func (c *Client) Status(ctx context.Context) (api.Status, error) {
	var st api.Status
	return st, c.Do(ctx, http.MethodGet, "/api/status", nil, &st)
}

// Health is GET /api/health: the key store's backend and the audit log's
// state, as the daemon sees them.
func (c *Client) Health(ctx context.Context) (api.Health, error) {
	var h api.Health
	return h, c.Do(ctx, http.MethodGet, "/api/health", nil, &h)
}

// StopDaemon is POST /api/daemon/stop: the daemon stops once it has
// answered.
func (c *Client) StopDaemon(ctx context.Context) (api.Stopping, error) {
	var out api.Stopping
	return out, c.Do(ctx, http.MethodPost, "/api/daemon/stop", nil, &out)
}

// RotateToken is POST /api/daemon/rotate-token.
func (c *Client) RotateToken(ctx context.Context) (api.TokenRotated, error) {
	var out api.TokenRotated
	return out, c.Do(ctx, http.MethodPost, "/api/daemon/rotate-token", nil, &out)
}

// Keys is GET /api/keychain: every stored key's entry, never a key.
func (c *Client) Keys(ctx context.Context) ([]credentials.Entry, error) {
	var out api.KeychainList
	return out.Entries, c.Do(ctx, http.MethodGet, "/api/keychain", nil, &out)
}

// SetKey is PUT /api/keychain/{provider}/{alias}.
func (c *Client) SetKey(ctx context.Context, r credentials.Ref, key string) (api.KeychainChange, error) {
	var out api.KeychainChange
	return out, c.Do(ctx, http.MethodPut, "/api/keychain/"+seg(r.Provider)+"/"+seg(r.Alias), api.KeySet{Key: key}, &out)
}

// RemoveKey is DELETE /api/keychain/{provider}/{alias}.
func (c *Client) RemoveKey(ctx context.Context, r credentials.Ref) (api.KeychainChange, error) {
	var out api.KeychainChange
	return out, c.Do(ctx, http.MethodDelete, "/api/keychain/"+seg(r.Provider)+"/"+seg(r.Alias), nil, &out)
}

// MigrateKeys is POST /api/keychain/migrate: every key moves to the
// backend named to.
func (c *Client) MigrateKeys(ctx context.Context, to string) ([]credentials.MigrateResult, error) {
	var out api.KeychainMigrated
	return out.Results, c.Do(ctx, http.MethodPost, "/api/keychain/migrate", api.KeychainMigrate{To: to}, &out)
}

// Profiles is GET /api/profiles.
func (c *Client) Profiles(ctx context.Context) ([]api.ProfileView, error) {
	var out api.ProfileList
	return out.Profiles, c.Do(ctx, http.MethodGet, "/api/profiles", nil, &out)
}

// Profile is GET /api/profiles/{alias}.
func (c *Client) Profile(ctx context.Context, alias string) (api.ProfileView, error) {
	var v api.ProfileView
	return v, c.Do(ctx, http.MethodGet, "/api/profiles/"+seg(alias), nil, &v)
}

// CreateProfile is POST /api/profiles.
func (c *Client) CreateProfile(ctx context.Context, req api.ProfileRequest) (api.ProfileView, error) {
	var v api.ProfileView
	return v, c.Do(ctx, http.MethodPost, "/api/profiles", req, &v)
}

// UpdateProfile is PATCH /api/profiles/{alias}.
func (c *Client) UpdateProfile(ctx context.Context, alias string, u api.ProfileUpdate) (api.ProfileView, error) {
	var v api.ProfileView
	return v, c.Do(ctx, http.MethodPatch, "/api/profiles/"+seg(alias), u, &v)
}

// DeleteProfile is DELETE /api/profiles/{alias}, with its key too when
// purgeKey is set.
func (c *Client) DeleteProfile(ctx context.Context, alias string, purgeKey bool) (api.ProfileDeleted, error) {
	path := "/api/profiles/" + seg(alias)
	if purgeKey {
		path += "?purge_key=true"
	}
	var out api.ProfileDeleted
	return out, c.Do(ctx, http.MethodDelete, path, nil, &out)
}

// Connect is POST /api/profiles/{alias}/connect: Ringlet's MCP server in
// the agent's own configuration.
func (c *Client) Connect(ctx context.Context, alias string, req api.ConnectRequest) (api.Connected, error) {
	var out api.Connected
	return out, c.Do(ctx, http.MethodPost, "/api/profiles/"+seg(alias)+"/connect", req, &out)
}

// ApproveConfig is POST /api/profiles/{alias}/config/approve: the agent's
// code-running config in the sandboxed HOME approved as it is.
func (c *Client) ApproveConfig(ctx context.Context, alias string) (api.ConfigApproved, error) {
	var out api.ConfigApproved
	return out, c.Do(ctx, http.MethodPost, "/api/profiles/"+seg(alias)+"/config/approve", nil, &out)
}

// AddProvider is POST /api/providers.
func (c *Client) AddProvider(ctx context.Context, req api.ProviderRequest) (api.ProviderAdded, error) {
	var p api.ProviderAdded
	return p, c.Do(ctx, http.MethodPost, "/api/providers", req, &p)
}

// Sessions is GET /api/sessions: the live sessions.
func (c *Client) Sessions(ctx context.Context) ([]api.SessionInfo, error) {
	var out api.SessionList
	return out.Sessions, c.Do(ctx, http.MethodGet, "/api/sessions", nil, &out)
}

// Session is GET /api/sessions/{id}.
func (c *Client) Session(ctx context.Context, id string) (api.SessionInfo, error) {
	var s api.SessionInfo
	return s, c.Do(ctx, http.MethodGet, "/api/sessions/"+seg(id), nil, &s)
}

// StartSession is POST /api/sessions: the answer holds the session token.
func (c *Client) StartSession(ctx context.Context, req api.SessionRequest) (api.SessionStarted, error) {
	var st api.SessionStarted
	return st, c.Do(ctx, http.MethodPost, "/api/sessions", req, &st)
}

// RevokeSession is DELETE /api/sessions/{id}: the session ends now.
func (c *Client) RevokeSession(ctx context.Context, id string) (api.SessionInfo, error) {
	var s api.SessionInfo
	return s, c.Do(ctx, http.MethodDelete, "/api/sessions/"+seg(id), nil, &s)
}

// PruneSessions is POST /api/sessions/prune: the sessions that are over
// or left behind end (with DryRun, are only listed).
func (c *Client) PruneSessions(ctx context.Context, req api.SessionPrune) (api.SessionsEnded, error) {
	var out api.SessionsEnded
	return out, c.Do(ctx, http.MethodPost, "/api/sessions/prune", req, &out)
}

// RevokeSessions is POST /api/sessions/revoke: every live session, or
// every one of a profile, ends now.
func (c *Client) RevokeSessions(ctx context.Context, req api.SessionRevokeAll) (api.SessionsEnded, error) {
	var out api.SessionsEnded
	return out, c.Do(ctx, http.MethodPost, "/api/sessions/revoke", req, &out)
}

// EndSession ends a session whose agent exited with exitCode: a fact the
// daemon records even when the audit log refuses a revocation.
func (c *Client) EndSession(ctx context.Context, id string, exitCode int) error {
	path := "/api/sessions/" + seg(id) + "?reason=exited&exit_code=" + strconv.Itoa(exitCode)
	return c.Do(ctx, http.MethodDelete, path, nil, nil)
}

// Plan is POST /api/sessions/{id}/plan: the launch the daemon prepared
// for the session (StartSession with a LaunchRequest), handed out once.
// Its files hold the session token: they go to the program on pipes,
// never on a command line.
func (c *Client) Plan(ctx context.Context, id string) (api.LaunchPlan, error) {
	var p api.LaunchPlan
	return p, c.Do(ctx, http.MethodPost, "/api/sessions/"+seg(id)+"/plan", nil, &p)
}

// Lease is a session held for the process that launched its agent
// (HoldSession).
type Lease struct {
	// Events are what the daemon tells the launcher, in order; closed
	// when its answer ends: the session ended, the daemon restarts
	// (Restarting came first), or it went away (no word at all).
	Events <-chan api.LeaseEvent
	// Release lets go of the session, which then ends unless it already
	// has.
	Release func()
}

// HoldSession is POST /api/sessions/{id}/lease: the session lives as long
// as this process holds it (see Hold).
func (c *Client) HoldSession(ctx context.Context, id string) (*Lease, error) {
	events := make(chan api.LeaseEvent, 8)
	release, ended, err := c.hold(ctx, http.MethodPost, "/api/sessions/"+seg(id)+"/lease", func(line []byte) {
		var ev api.LeaseEvent
		if json.Unmarshal(line, &ev) != nil {
			return // not for this client to know
		}
		select {
		case events <- ev:
		default: // a daemon says a few things per lease; more are dropped
		}
	})
	if err != nil {
		return nil, err
	}
	go func() {
		<-ended
		close(events)
	}()
	return &Lease{Events: events, Release: release}, nil
}

// StartTerminal is POST /api/sessions/{id}/terminal: the daemon runs the
// session's launch plan under a pseudo-terminal.
func (c *Client) StartTerminal(ctx context.Context, id string, req api.TerminalStart) (api.TerminalInfo, error) {
	var ti api.TerminalInfo
	return ti, c.Do(ctx, http.MethodPost, "/api/sessions/"+seg(id)+"/terminal", req, &ti)
}

// Terminals is GET /api/terminals.
func (c *Client) Terminals(ctx context.Context) ([]api.TerminalInfo, error) {
	var out api.TerminalList
	return out.Terminals, c.Do(ctx, http.MethodGet, "/api/terminals", nil, &out)
}

// Terminal is GET /api/sessions/{id}/terminal/info.
func (c *Client) Terminal(ctx context.Context, id string) (api.TerminalInfo, error) {
	var ti api.TerminalInfo
	return ti, c.Do(ctx, http.MethodGet, "/api/sessions/"+seg(id)+"/terminal/info", nil, &ti)
}

// KillTerminal is DELETE /api/sessions/{id}/terminal.
func (c *Client) KillTerminal(ctx context.Context, id string) (api.TerminalInfo, error) {
	var ti api.TerminalInfo
	return ti, c.Do(ctx, http.MethodDelete, "/api/sessions/"+seg(id)+"/terminal", nil, &ti)
}

// AttachTerminal opens the WebSocket of a remote terminal: binary
// messages are its output and keystrokes, text messages are
// api.TerminalControl. The response is returned when the daemon refused.
func (c *Client) AttachTerminal(ctx context.Context, id string) (*websocket.Conn, *http.Response, error) {
	return c.dial(ctx, "/api/sessions/"+seg(id)+"/terminal")
}

// Events opens the /api/events stream: one api.Event per text message,
// of the given kinds (all when none) and profile (any when "").
func (c *Client) Events(ctx context.Context, kinds []string, profile string) (*websocket.Conn, error) {
	q := url.Values{}
	for _, k := range kinds {
		q.Add("kind", k)
	}
	if profile != "" {
		q.Set("profile", profile)
	}
	conn, _, err := c.dial(ctx, "/api/events?"+q.Encode())
	return conn, err
}

// dial opens a WebSocket to path with the token.
func (c *Client) dial(ctx context.Context, path string) (*websocket.Conn, *http.Response, error) {
	u := strings.Replace(c.base, "http", "ws", 1) + path
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.tok.Value())
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
}

// Hooks is GET /api/hooks?profile=P: the profile's hooks in the order
// they run.
func (c *Client) Hooks(ctx context.Context, profile string) ([]hook.Hook, error) {
	var out api.HookList
	return out.Hooks, c.Do(ctx, http.MethodGet, "/api/hooks?"+url.Values{"profile": {profile}}.Encode(), nil, &out)
}

// AddHook is POST /api/hooks.
func (c *Client) AddHook(ctx context.Context, req api.HookRequest) (hook.Hook, error) {
	var h hook.Hook
	return h, c.Do(ctx, http.MethodPost, "/api/hooks", req, &h)
}

// RemoveHook is DELETE /api/hooks/{profile}/{id}.
func (c *Client) RemoveHook(ctx context.Context, profile, id string) (hook.Hook, error) {
	var h hook.Hook
	return h, c.Do(ctx, http.MethodDelete, "/api/hooks/"+seg(profile)+"/"+seg(id), nil, &h)
}

// ImportHooks is POST /api/hooks/{profile}/import: all or none.
func (c *Client) ImportHooks(ctx context.Context, profile string, hooks []hook.Hook) ([]hook.Hook, error) {
	var out api.HookList
	return out.Hooks, c.Do(ctx, http.MethodPost, "/api/hooks/"+seg(profile)+"/import", hooks, &out)
}

// ExportHooks is GET /api/hooks/{profile}/export: the hooks as a JSON
// array, as the daemon wrote it.
func (c *Client) ExportHooks(ctx context.Context, profile string) ([]byte, error) {
	return c.Raw(ctx, http.MethodGet, "/api/hooks/"+seg(profile)+"/export", nil)
}

// CheckHooks is POST /session/hooks/check with a session token: the
// profile's hooks judge a tool call. Hooks may run for minutes, so the
// call is bounded by ctx only.
func (c *Client) CheckHooks(ctx context.Context, check api.HookCheck) (hook.Decision, error) {
	var d hook.Decision
	return d, c.do(ctx, c.patient(), http.MethodPost, "/session/hooks/check", check, &d)
}

// OwnSession is GET /session with a session token: the session it
// belongs to, if it is live. A client that runs for a session checks its
// token so before it acts.
func (c *Client) OwnSession(ctx context.Context) (api.SessionInfo, error) {
	var out api.SessionInfo
	return out, c.Do(ctx, http.MethodGet, "/session", nil, &out)
}

// MCPServers is GET /api/mcp/servers?profile=P.
func (c *Client) MCPServers(ctx context.Context, profile string) ([]mcpserver.Status, error) {
	var out api.MCPServerList
	return out.Servers, c.Do(ctx, http.MethodGet, "/api/mcp/servers?"+url.Values{"profile": {profile}}.Encode(), nil, &out)
}

// AddMCPServer is POST /api/mcp/servers.
func (c *Client) AddMCPServer(ctx context.Context, req api.MCPServerRequest) (api.MCPServerAdded, error) {
	var got api.MCPServerAdded
	return got, c.Do(ctx, http.MethodPost, "/api/mcp/servers", req, &got)
}

// RemoveMCPServer is DELETE /api/mcp/servers/{profile}/{name}.
func (c *Client) RemoveMCPServer(ctx context.Context, profile, name string) (mcpserver.Config, error) {
	var got mcpserver.Config
	return got, c.Do(ctx, http.MethodDelete, "/api/mcp/servers/"+seg(profile)+"/"+seg(name), nil, &got)
}

// SetMCPServer is PATCH /api/mcp/servers/{profile}/{name}: change a
// server's variables.
func (c *Client) SetMCPServer(ctx context.Context, profile, name string, ch api.MCPServerChange) (mcpserver.Config, error) {
	var got mcpserver.Config
	return got, c.Do(ctx, http.MethodPatch, "/api/mcp/servers/"+seg(profile)+"/"+seg(name), ch, &got)
}

// ApproveMCPServer is POST /api/mcp/servers/{profile}/{name}/approve:
// show (req.DryRun) or approve how a server differs from what was
// approved.
func (c *Client) ApproveMCPServer(ctx context.Context, profile, name string, req api.MCPApproveRequest) (api.MCPApproved, error) {
	var out api.MCPApproved
	return out, c.Do(ctx, http.MethodPost, "/api/mcp/servers/"+seg(profile)+"/"+seg(name)+"/approve", req, &out)
}

// MCPTools is GET /api/mcp/servers/{profile}/{name}/tools: the server's
// tools and whether each is enabled (the server is started if needed).
func (c *Client) MCPTools(ctx context.Context, profile, name string) (api.MCPTools, error) {
	var out api.MCPTools
	return out, c.Do(ctx, http.MethodGet, "/api/mcp/servers/"+seg(profile)+"/"+seg(name)+"/tools", nil, &out)
}

// SetMCPTools is PATCH /api/mcp/servers/{profile}/{name}/tools: enable
// and disable tools by name or glob.
func (c *Client) SetMCPTools(ctx context.Context, profile, name string, ch api.MCPToolsChange) (api.MCPTools, error) {
	var out api.MCPTools
	return out, c.Do(ctx, http.MethodPatch, "/api/mcp/servers/"+seg(profile)+"/"+seg(name)+"/tools", ch, &out)
}

// SetMCPToolsDefault is PUT /api/mcp/tools-default/{profile}: all or
// none for the tools no rule names.
func (c *Client) SetMCPToolsDefault(ctx context.Context, profile, def, search string) (api.MCPToolsDefault, error) {
	var out api.MCPToolsDefault
	return out, c.Do(ctx, http.MethodPut, "/api/mcp/tools-default/"+seg(profile), api.MCPToolsDefault{Default: def, Search: search}, &out)
}

// Prices is GET /api/prices: the price table in effect, the entries whose
// model matches glob (path.Match) at provider ("" for any).
func (c *Client) Prices(ctx context.Context, glob, provider string) (api.PriceList, error) {
	q := url.Values{}
	if glob != "" {
		q.Set("model", glob)
	}
	if provider != "" {
		q.Set("provider", provider)
	}
	var out api.PriceList
	return out, c.Do(ctx, http.MethodGet, "/api/prices?"+q.Encode(), nil, &out)
}

// LookupPrice is GET /api/prices/lookup: the price of model at provider
// as usage applies it.
func (c *Client) LookupPrice(ctx context.Context, provider, model string) (api.PriceLookup, error) {
	q := url.Values{"model": {model}}
	if provider != "" {
		q.Set("provider", provider)
	}
	var out api.PriceLookup
	return out, c.Do(ctx, http.MethodGet, "/api/prices/lookup?"+q.Encode(), nil, &out)
}

// ImportPrices is POST /api/prices/import: data is the price file as it
// is, name its file name.
func (c *Client) ImportPrices(ctx context.Context, name string, data []byte, dryRun bool) (api.PricesImported, error) {
	q := url.Values{"name": {name}}
	if dryRun {
		q.Set("dry_run", "true")
	}
	if data == nil {
		data = []byte{}
	}
	var out api.PricesImported
	return out, c.Do(ctx, http.MethodPost, "/api/prices/import?"+q.Encode(), data, &out)
}

// ResetPrices is DELETE /api/prices/import: the embedded table applies
// again.
func (c *Client) ResetPrices(ctx context.Context) (api.PricesReset, error) {
	var out api.PricesReset
	return out, c.Do(ctx, http.MethodDelete, "/api/prices/import", nil, &out)
}

// StartMCPAuth is POST /api/mcp/servers/{profile}/{name}/auth: start an
// OAuth authorization; the answer is the URL for the user's browser.
func (c *Client) StartMCPAuth(ctx context.Context, profile, name string, req api.MCPAuthRequest) (api.MCPAuthFlow, error) {
	var out api.MCPAuthFlow
	return out, c.Do(ctx, http.MethodPost, "/api/mcp/servers/"+seg(profile)+"/"+seg(name)+"/auth", req, &out)
}

// MCPAuthStatus is GET /api/mcp/servers/{profile}/{name}/auth; with wait
// above zero, an authorization waiting for the browser is waited for that
// long (the daemon bounds it) before the answer.
func (c *Client) MCPAuthStatus(ctx context.Context, profile, name string, wait time.Duration) (api.MCPAuthStatus, error) {
	var out api.MCPAuthStatus
	q := ""
	if wait > 0 {
		q = "?" + url.Values{"wait": {wait.String()}}.Encode()
	}
	return out, c.Do(ctx, http.MethodGet, "/api/mcp/servers/"+seg(profile)+"/"+seg(name)+"/auth"+q, nil, &out)
}

// RevokeMCPAuth is DELETE /api/mcp/servers/{profile}/{name}/auth.
func (c *Client) RevokeMCPAuth(ctx context.Context, profile, name string) (api.MCPAuthStatus, error) {
	var out api.MCPAuthStatus
	return out, c.Do(ctx, http.MethodDelete, "/api/mcp/servers/"+seg(profile)+"/"+seg(name)+"/auth", nil, &out)
}

// Budgets is GET /api/budgets/{profile}: the profile's budgets and what
// is left of them.
func (c *Client) Budgets(ctx context.Context, profile string) (api.BudgetView, error) {
	var out api.BudgetView
	return out, c.Do(ctx, http.MethodGet, "/api/budgets/"+url.PathEscape(profile), nil, &out)
}

// SetBudgets is PUT /api/budgets/{profile}.
func (c *Client) SetBudgets(ctx context.Context, profile string, req api.BudgetRequest) (api.BudgetView, error) {
	var out api.BudgetView
	return out, c.Do(ctx, http.MethodPut, "/api/budgets/"+url.PathEscape(profile), req, &out)
}

// ClearBudgets is DELETE /api/budgets/{profile}: the budgets of periods
// (all when none) are removed.
func (c *Client) ClearBudgets(ctx context.Context, profile string, periods []string) (api.BudgetView, error) {
	q := url.Values{"period": periods}
	var out api.BudgetView
	return out, c.Do(ctx, http.MethodDelete, "/api/budgets/"+url.PathEscape(profile)+"?"+q.Encode(), nil, &out)
}

// KillSession is POST /api/sessions/{id}/kill: the session is killed,
// its agent's processes and its profile's stdio MCP servers with it.
func (c *Client) KillSession(ctx context.Context, id string, req api.SessionKill) (api.SessionsKilled, error) {
	var out api.SessionsKilled
	return out, c.Do(ctx, http.MethodPost, "/api/sessions/"+seg(id)+"/kill", req, &out)
}

// KillSessions is POST /api/sessions/kill: every live session of
// req.Profile, or every one with req.All, is killed.
func (c *Client) KillSessions(ctx context.Context, req api.SessionKill) (api.SessionsKilled, error) {
	var out api.SessionsKilled
	return out, c.Do(ctx, http.MethodPost, "/api/sessions/kill", req, &out)
}

// RateLimits is GET /api/profiles/{alias}/ratelimits.
func (c *Client) RateLimits(ctx context.Context, alias string) (api.RateLimits, error) {
	var out api.RateLimits
	return out, c.Do(ctx, http.MethodGet, "/api/profiles/"+seg(alias)+"/ratelimits", nil, &out)
}

// SetRateLimits is PATCH /api/profiles/{alias}/ratelimits.
func (c *Client) SetRateLimits(ctx context.Context, alias string, u api.RateLimitsUpdate) (api.RateLimits, error) {
	var out api.RateLimits
	return out, c.Do(ctx, http.MethodPatch, "/api/profiles/"+seg(alias)+"/ratelimits", u, &out)
}

// ClearRateLimits is DELETE /api/profiles/{alias}/ratelimits.
func (c *Client) ClearRateLimits(ctx context.Context, alias string) (api.RateLimits, error) {
	var out api.RateLimits
	return out, c.Do(ctx, http.MethodDelete, "/api/profiles/"+seg(alias)+"/ratelimits", nil, &out)
}

// TestHooks is POST /api/hooks/{profile}/test.
func (c *Client) TestHooks(ctx context.Context, profile string, req api.HookTest) (api.HookTestResult, error) {
	var out api.HookTestResult
	return out, c.Do(ctx, http.MethodPost, "/api/hooks/"+url.PathEscape(profile)+"/test", req, &out)
}

// UICode is POST /api/ui/code: a one-time code that opens the dashboard.
func (c *Client) UICode(ctx context.Context) (api.UILoginCode, error) {
	var out api.UILoginCode
	return out, c.Do(ctx, http.MethodPost, "/api/ui/code", nil, &out)
}

// UICodeWait is POST /api/ui/code/wait: it returns when code is used
// (true) or expires (false), within a minute (longer than the client's
// usual timeout: ctx bounds it).
func (c *Client) UICodeWait(ctx context.Context, code string) (bool, error) {
	var out api.UICodeWaited
	err := c.do(ctx, c.patient(), http.MethodPost, "/api/ui/code/wait", api.UICodeWait{Code: code}, &out)
	return out.Used, err
}
