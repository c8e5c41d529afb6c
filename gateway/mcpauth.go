package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/internal/outbound"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/mcp/oauth"
)

// Limits of 'mcp auth'.
const (
	maxAuthTimeout = 30 * time.Minute
	maxAuthWait    = 25 * time.Second // within the CLI client's 30s
)

// authFlows are the OAuth authorizations waiting for the user's
// browser ('mcp auth'), at most one per server, and how the last one of
// each ended when it failed.
type authFlows struct {
	mu     sync.Mutex
	flows  map[string]*oauth.Flow
	failed map[string]string
	wg     sync.WaitGroup
}

func authKey(profile, server string) string { return profile + "\x00" + server }

// cancelAll ends the flows waiting, and waits for them, as the daemon
// stops.
func (a *authFlows) cancelAll() {
	a.mu.Lock()
	flows := make([]*oauth.Flow, 0, len(a.flows))
	for _, f := range a.flows {
		flows = append(flows, f)
	}
	a.mu.Unlock()
	for _, f := range flows {
		f.Cancel()
	}
	a.wg.Wait()
}

// authServer is the HTTP server of an 'mcp auth' route, checked: one of
// the profile's, remote, not sent an Authorization of the user's own.
// When not ok it has answered.
func (g *mcpGateway) authServer(w http.ResponseWriter, r *http.Request) (alias string, c mcpserver.Config, ok bool) {
	alias, name, ok := g.serverParams(w, r)
	if !ok {
		return "", c, false
	}
	cfgs, err := g.o.Store.List(alias)
	if err != nil {
		mcpError(w, g.o.Log, err)
		return "", c, false
	}
	i := slices.IndexFunc(cfgs, func(c mcpserver.Config) bool { return c.Name == name })
	if i < 0 {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("profile %s has no MCP server %s ('ringlet mcp list %s' shows them)", alias, name, alias))
		return "", c, false
	}
	c = cfgs[i]
	if c.URL == "" {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", fmt.Sprintf("MCP server %s runs as a command; OAuth is for servers added with --url", name))
		return "", c, false
	}
	return alias, c, true
}

// handleMCPAuthStart starts an OAuth authorization of an HTTP server:
// discovery and client registration now, then a loopback listener that
// waits for the user's browser. Audited before it starts.
func (g *mcpGateway) handleMCPAuthStart(w http.ResponseWriter, r *http.Request) {
	alias, c, ok := g.authServer(w, r)
	if !ok {
		return
	}
	var req api.MCPAuthRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if c.SendsAuthorization() {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", fmt.Sprintf("MCP server %s is sent an Authorization header of yours (--credential, --header or --header-secret); remove it first with 'ringlet mcp set %s %s --unset-header-secret Authorization' (or add the server again without --credential)", c.Name, alias, c.Name))
		return
	}
	timeout := 5 * time.Minute
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d < time.Second || d > maxAuthTimeout {
			writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("--timeout must be a duration from 1s to %s, such as 5m", maxAuthTimeout))
			return
		}
		timeout = d
	}
	if req.Port < 0 || req.Port > 65535 {
		writeError(w, http.StatusBadRequest, "invalid_request", "--port must be a number from 1 to 65535 (0 for any free port)")
		return
	}
	for _, s := range req.Scopes {
		if s == "" || len(s) > 256 || !printableScope(s) {
			writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("invalid scope %q: a scope is printable ASCII without spaces or quotes", s))
			return
		}
	}
	var secret string
	if req.ClientSecret != "" {
		if req.ClientID == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "--client-secret needs --client-id")
			return
		}
		ref, err := credentials.ParseRef(req.ClientSecret)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "--client-secret: "+err.Error())
			return
		}
		s, err := g.o.Keys.Get(ref)
		if errors.Is(err, credentials.ErrNotFound) {
			writeError(w, http.StatusBadRequest, "invalid_request", fmt.Sprintf("--client-secret: no key %s in the credential store; store it first with 'ringlet keychain set %s %s'", ref, ref.Provider, ref.Alias))
			return
		}
		if err != nil {
			keychainError(w, g.o.Log, err)
			return
		}
		secret = s.Reveal()
	}
	detail := map[string]any{"step": "start", "url": c.URL, "client": "registered dynamically", "scopes": req.Scopes}
	if req.ClientID != "" {
		detail["client"] = req.ClientID
	}
	if !g.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPAuth, Profile: alias, Actor: audit.ActorAdmin, Target: c.Name, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}) {
		return
	}
	key := authKey(alias, c.Name)
	a := &g.auth
	var flow *oauth.Flow
	opts := oauth.FlowOptions{Profile: alias, Server: c.Name, URL: c.URL, ClientID: req.ClientID, ClientSecret: secret, Scopes: req.Scopes,
		Timeout: timeout, Port: req.Port, Transport: outbound.Transport(), Keys: g.o.Keys,
		OnDone: func(rec *oauth.Record, err error) { g.authDone(key, alias, c.Name, flow, rec, err) }}
	a.mu.Lock()
	if old := a.flows[key]; old != nil {
		a.mu.Unlock()
		old.Cancel()
		a.mu.Lock()
	}
	a.mu.Unlock()
	f, err := oauth.Start(g.o.Life.closing, opts)
	if err != nil {
		_ = g.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindMCPAuth, Profile: alias, Actor: audit.ActorAdmin, Target: c.Name, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"step": "discover", "error": err.Error()})})
		writeError(w, http.StatusBadGateway, "oauth", err.Error())
		return
	}
	a.mu.Lock()
	flow = f
	if a.flows == nil {
		a.flows, a.failed = map[string]*oauth.Flow{}, map[string]string{}
	}
	a.flows[key] = f
	delete(a.failed, key)
	a.wg.Add(1)
	a.mu.Unlock()
	go func() {
		defer a.wg.Done()
		<-f.Done()
		f.Wait()
	}()
	g.o.Log.Info("MCP server authorization started", "profile", alias, "server", c.Name, "redirect", f.Redirect)
	writeJSON(w, http.StatusCreated, api.MCPAuthFlow{Profile: alias, Server: c.Name, AuthorizationURL: f.AuthURL, RedirectURI: f.Redirect, Expires: f.Expires.UTC()})
}

// authDone records how a flow ended and, authorized, connects the
// server again with its new token.
func (g *mcpGateway) authDone(key, alias, server string, f *oauth.Flow, rec *oauth.Record, err error) {
	a := &g.auth
	a.mu.Lock()
	// A flow replaced by another leaves the other's place alone; f is nil
	// only when the flow ended before Start returned, which it cannot.
	if f == nil || a.flows[key] == f {
		delete(a.flows, key)
		if err != nil && !errors.Is(err, oauth.ErrCanceled) {
			if a.failed == nil {
				a.failed = map[string]string{}
			}
			a.failed[key] = err.Error()
		}
	}
	a.mu.Unlock()
	if err != nil {
		_ = g.o.Rec.record(context.Background(), audit.Record{Kind: audit.KindMCPAuth, Profile: alias, Actor: audit.ActorDaemon, Target: server, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"step": "end", "error": err.Error()})})
		g.o.Log.Warn("MCP server authorization failed", "profile", alias, "server", server, "err", err)
		return
	}
	_ = g.o.Rec.record(context.Background(), audit.Record{Kind: audit.KindMCPAuth, Profile: alias, Actor: audit.ActorDaemon, Target: server, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"step": "authorized", "issuer": rec.Issuer, "client_registered": rec.Registered, "scopes": rec.Scopes,
			"refreshable": rec.Token.RefreshToken != ""})})
	g.o.Log.Info("MCP server authorized", "profile", alias, "server", server, "issuer", rec.Issuer)
	if err := g.srv.Reconnect(alias, server); err != nil {
		g.o.Log.Warn("MCP server could not be connected again after its authorization", "profile", alias, "server", server, "err", err)
	}
}

// handleMCPAuthStatus answers whether a server is authorized; with
// ?wait=DURATION and an authorization waiting for the browser, it waits
// for that to end first (at most maxAuthWait).
func (g *mcpGateway) handleMCPAuthStatus(w http.ResponseWriter, r *http.Request) {
	alias, c, ok := g.authServer(w, r)
	if !ok {
		return
	}
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, "invalid_request", "wait must be a duration such as 20s")
			return
		}
		g.auth.mu.Lock()
		f := g.auth.flows[authKey(alias, c.Name)]
		g.auth.mu.Unlock()
		if f != nil {
			t := time.NewTimer(min(d, maxAuthWait))
			select {
			case <-f.Done():
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
		}
	}
	st, err := g.authStatus(alias, c)
	if err != nil {
		keychainError(w, g.o.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// authStatus is what the credential store and the gateway know of a
// server's authorization.
func (g *mcpGateway) authStatus(alias string, c mcpserver.Config) (api.MCPAuthStatus, error) {
	st := api.MCPAuthStatus{Profile: alias, Server: c.Name, URL: c.URL, State: "idle"}
	if all, err := g.srv.Servers(alias); err == nil {
		if i := slices.IndexFunc(all, func(s mcpserver.Status) bool { return s.Name == c.Name }); i >= 0 {
			st.State = all[i].State
		}
	}
	key := authKey(alias, c.Name)
	g.auth.mu.Lock()
	st.Pending = g.auth.flows[key] != nil
	st.Error = g.auth.failed[key]
	g.auth.mu.Unlock()
	rec, err := oauth.Load(g.o.Keys, alias, c.Name)
	switch {
	case errors.Is(err, credentials.ErrNotFound):
		return st, nil
	case err != nil:
		return st, err
	case rec.URL != c.URL:
		// Made for the server's former URL: never sent to this one.
		return st, nil
	}
	at := rec.Authorized
	st.Authorized, st.Issuer, st.ClientID, st.Registered, st.Scopes, st.AuthorizedAt = true, rec.Issuer, rec.ClientID, rec.Registered, rec.Scopes, &at
	st.Refreshable = rec.Token.RefreshToken != ""
	if !rec.Token.ExpiresAt.IsZero() {
		exp := rec.Token.ExpiresAt.UTC().Truncate(time.Second)
		st.Expires = &exp
	}
	return st, nil
}

// handleMCPAuthRevoke deletes a server's tokens and client registration
// from the credential store, after asking the authorization server to
// revoke the tokens when it has a revocation endpoint. Audited first.
func (g *mcpGateway) handleMCPAuthRevoke(w http.ResponseWriter, r *http.Request) {
	alias, c, ok := g.authServer(w, r)
	if !ok {
		return
	}
	rec, err := oauth.Load(g.o.Keys, alias, c.Name)
	if errors.Is(err, credentials.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("MCP server %s of profile %s is not authorized; nothing to revoke", c.Name, alias))
		return
	}
	if err != nil && !errors.Is(err, credentials.ErrNotFound) {
		// A damaged record is deleted all the same.
		rec = nil
	}
	if !g.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPAuth, Profile: alias, Actor: audit.ActorAdmin, Target: c.Name, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"step": "revoke"})}) {
		return
	}
	var revokeErr error
	revoked := false
	if rec != nil && rec.RevocationEndpoint != "" {
		ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
		revokeErr = oauth.Revoke(ctx, oauth.HTTPClient(outbound.Transport()), rec)
		cancel()
		revoked = revokeErr == nil
	}
	if err := oauth.Delete(g.o.Keys, alias, c.Name); err != nil {
		keychainError(w, g.o.Log, err)
		return
	}
	if err := g.srv.Reconnect(alias, c.Name); err != nil {
		g.o.Log.Warn("MCP server could not be connected again after its authorization was revoked", "profile", alias, "server", c.Name, "err", err)
	}
	st, _ := g.authStatus(alias, c) // the record is gone: what is left cannot fail to read
	st.Revoked = revoked
	if revokeErr != nil {
		st.RevokeError = revokeErr.Error()
	}
	g.o.Log.Info("MCP server authorization revoked", "profile", alias, "server", c.Name, "at_server", strconv.FormatBool(revoked))
	writeJSON(w, http.StatusOK, st)
}

// forgetAuth deletes a removed server's authorization; a flow waiting
// for it is ended.
func (g *mcpGateway) forgetAuth(alias, server string) {
	g.auth.mu.Lock()
	f := g.auth.flows[authKey(alias, server)]
	delete(g.auth.failed, authKey(alias, server))
	g.auth.mu.Unlock()
	if f != nil {
		f.Cancel()
	}
	if err := oauth.Delete(g.o.Keys, alias, server); err != nil {
		g.o.Log.Warn("the removed MCP server's authorization could not be deleted from the credential store", "profile", alias, "server", server, "err", err)
	}
}

// printableScope: RFC 6749 §3.3's scope-token characters.
func printableScope(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}
