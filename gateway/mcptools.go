package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"path"
	"slices"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
)

// refused audits a call refused before any hook ran as a hook's refusal
// is audited: tool.call, deny, with the reason, and "disabled": true for a
// disabled tool or "unapproved": true for one hidden until approved. The
// call is refused whether or not the record is written.
func (g *mcpGateway) refused(sess *session) func(context.Context, string, json.RawMessage, string, bool) {
	return func(ctx context.Context, tool string, input json.RawMessage, reason string, unapproved bool) {
		g.o.Metrics.security.mcpCall(sess.Profile.Alias, tool, "refused")
		detail := map[string]any{"event": hook.PreToolUse, "hooks": 0, "reason": reason, "via": "mcp", "disabled": true}
		if unapproved {
			delete(detail, "disabled")
			detail["unapproved"] = true
		}
		err := g.o.Rec.record(ctx, audit.Record{Kind: audit.KindToolCall, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
			Target: tool, Decision: audit.Deny, BytesIn: int64(len(input)),
			Detail: audit.DetailJSON(detail)})
		if err != nil {
			g.o.Log.Error("could not record a refused call to a disabled MCP tool", "profile", sess.Profile.Alias, "tool", tool, "err", err)
		}
	}
}

// refusedAccess audits a resources/read or prompts/get refused before
// any hook ran, as refused does a tool call: its server's resources or
// prompts are turned off, it is disabled, or it changed since approved;
// a completion or subscription of it likewise, its method in the detail.
func (g *mcpGateway) refusedAccess(sess *session) func(context.Context, mcp.Access, string) {
	return func(ctx context.Context, a mcp.Access, reason string) {
		kind := audit.KindMCPResourceRead
		if a.Kind == mcp.AccessPrompt {
			kind = audit.KindMCPPromptGet
		}
		detail := map[string]any{"server": a.Server, "hooks": 0, "reason": reason, "via": "mcp", "disabled": true}
		if a.Method != "" {
			detail["method"] = a.Method // completion/complete, resources/subscribe
		}
		err := g.o.Rec.record(ctx, audit.Record{Kind: kind, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
			Target: a.Name, Decision: audit.Deny, Detail: audit.DetailJSON(detail)})
		if err != nil {
			g.o.Log.Error("could not record a refused MCP "+a.Kind, "profile", sess.Profile.Alias, "name", a.Name, "err", err)
		}
	}
}

// toolsView is a server's tools as 'mcp tools' shows them; the server is
// started if it has not run, within the CLI client's deadline.
func (g *mcpGateway) toolsView(ctx context.Context, alias, name string) (api.MCPTools, error) {
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	st, err := g.srv.Tools(ctx, alias, name)
	if err != nil {
		return api.MCPTools{}, err
	}
	def := g.srv.ToolsDefaultOf(alias)
	out := api.MCPTools{Profile: alias, Server: name, Default: def, Rules: st.ToolRules, State: st.State, Error: st.Error, Tools: st.Tools,
		PromptRules: st.PromptRules, ResourceRules: st.ResourceRules, Items: st.Items}
	out.Resources.Enabled, out.Resources.By = st.CatalogEnabled(mcpserver.KindResource, def)
	out.Prompts.Enabled, out.Prompts.By = st.CatalogEnabled(mcpserver.KindPrompt, def)
	for _, r := range []*[]mcpserver.ToolRule{&out.Rules, &out.PromptRules, &out.ResourceRules} {
		if *r == nil {
			*r = []mcpserver.ToolRule{}
		}
	}
	if out.Items == nil {
		out.Items = []mcpserver.ItemStatus{}
	}
	return out, nil
}

// handleMCPTools lists a server's tools with their state.
func (g *mcpGateway) handleMCPTools(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := g.serverParams(w, r)
	if !ok {
		return
	}
	out, err := g.toolsView(r.Context(), alias, name)
	if err != nil {
		mcpError(w, g.o.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// handleMCPToolsSet enables and disables tools of a server. The change is
// audited (mcp.tools) before it is stored; sessions see it at once.
func (g *mcpGateway) handleMCPToolsSet(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := g.serverParams(w, r)
	if !ok {
		return
	}
	var ch api.MCPToolsChange
	if !decodeJSON(w, r, &ch) {
		return
	}
	out, err := g.setTools(r.Context(), alias, name, ch, "")
	if err != nil {
		mcpError(w, g.o.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// setTools is the one path that changes a server's tool rules, for the
// REST API and the dashboard alike: checked, audited (mcp.tools; by names
// who asked when it is not the API, such as "dashboard") before it is
// stored. A refusal is an *mcpFail, or an error of the MCP gateway
// (mcpFailOf).
func (g *mcpGateway) setTools(ctx context.Context, alias, name string, ch api.MCPToolsChange, by string) (api.MCPTools, error) {
	if ch.Empty() {
		return api.MCPTools{}, &mcpFail{http.StatusBadRequest, "invalid_mcp_tools", mcpserver.NothingToChange}
	}
	if err := ch.Check(); err != nil {
		return api.MCPTools{}, &mcpFail{http.StatusBadRequest, "invalid_mcp_tools", err.Error()}
	}
	cfgs, err := g.o.Store.List(alias)
	if err != nil {
		return api.MCPTools{}, err
	}
	i := slices.IndexFunc(cfgs, func(c mcpserver.Config) bool { return c.Name == name })
	if i < 0 {
		return api.MCPTools{}, &mcpFail{http.StatusNotFound, "not_found", "profile " + alias + " has no MCP server " + name + " ('ringlet mcp list " + alias + "' shows them)"}
	}
	c := cfgs[i]
	err = ch.Apply(&c)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		return api.MCPTools{}, &mcpFail{http.StatusBadRequest, "invalid_mcp_tools", err.Error()}
	}
	detail := map[string]any{"enable": ch.Enable, "disable": ch.Disable, "reset": ch.Reset, "resources": ch.Resources, "prompts": ch.Prompts,
		"enable_prompts": ch.EnablePrompts, "disable_prompts": ch.DisablePrompts, "enable_resources": ch.EnableResources, "disable_resources": ch.DisableResources}
	if by != "" {
		detail["by"] = by
	}
	if err := g.o.Rec.record(ctx, audit.Record{Kind: audit.KindMCPTools, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}); err != nil {
		return api.MCPTools{}, auditFail(err)
	}
	if _, err := g.srv.SetTools(alias, name, ch); err != nil {
		failed := map[string]any{"error": err.Error()}
		if by != "" {
			failed["by"] = by
		}
		_ = g.o.Rec.record(ctx, audit.Record{Kind: audit.KindMCPTools, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Error,
			Detail: audit.DetailJSON(failed)}) // the failure is answered either way
		return api.MCPTools{}, err
	}
	g.o.Log.Info("MCP tools changed", "profile", alias, "server", name, "enabled", len(ch.Enable)+len(ch.EnablePrompts)+len(ch.EnableResources),
		"disabled", len(ch.Disable)+len(ch.DisablePrompts)+len(ch.DisableResources), "by", by)
	out, err := g.toolsView(ctx, alias, name)
	if err != nil {
		return api.MCPTools{}, err
	}
	if out.State == mcp.StateRunning || len(out.Tools) > 0 {
		for _, p := range append(slices.Clone(ch.Disable), ch.Enable...) {
			if !slices.ContainsFunc(out.Tools, func(t mcpserver.ToolStatus) bool { m, _ := path.Match(p, t.Name); return m }) {
				out.Unmatched = append(out.Unmatched, p)
			}
		}
	}
	if out.State == mcp.StateRunning || len(out.Items) > 0 {
		for _, p := range append(slices.Clone(ch.DisablePrompts), ch.EnablePrompts...) {
			if !slices.ContainsFunc(out.Items, func(t mcpserver.ItemStatus) bool {
				m, _ := path.Match(p, t.Name)
				return m && t.Kind == mcpserver.KindPrompt
			}) {
				out.Unmatched = append(out.Unmatched, p)
			}
		}
		for _, p := range append(slices.Clone(ch.DisableResources), ch.EnableResources...) {
			if !slices.ContainsFunc(out.Items, func(t mcpserver.ItemStatus) bool {
				return t.Kind != mcpserver.KindPrompt && mcpserver.ResourceMatch(p, t.Name)
			}) {
				out.Unmatched = append(out.Unmatched, p)
			}
		}
	}
	return out, nil
}

// handleMCPToolsDefault sets a profile's default for the tools no rule
// names: all, or none until enabled. Audited (mcp.tools) first.
func (g *mcpGateway) handleMCPToolsDefault(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "profile")
	if !knownProfile(w, g.o.Log, g.o.Profiles, alias) {
		return
	}
	var req api.MCPToolsDefault
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Default == "" && req.Search == "" {
		writeError(w, http.StatusBadRequest, "invalid_mcp_tools", "give default (all or none), search (on or off), or both")
		return
	}
	if err := mcpserver.CheckToolsDefault(req.Default); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_mcp_tools", "invalid MCP tools default "+`"`+req.Default+`"`+"; accepted values: all, none")
		return
	}
	if req.Search != "" && req.Search != api.SearchOn && req.Search != api.SearchOff {
		writeError(w, http.StatusBadRequest, "invalid_mcp_tools", "invalid MCP tool search "+`"`+req.Search+`"`+"; accepted values: on, off")
		return
	}
	if req.Profile != "" && req.Profile != alias {
		writeError(w, http.StatusBadRequest, "invalid_mcp_tools", "the body names profile "+req.Profile+", the path "+alias)
		return
	}
	cat, err := profile.LoadCatalog(g.o.CatalogDir)
	if err != nil {
		profileError(w, g.o.Log, err)
		return
	}
	detail := map[string]any{}
	if req.Default != "" {
		detail["default"] = req.Default
	}
	if req.Search != "" {
		detail["search"] = req.Search
	}
	if !g.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPTools, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}) {
		return
	}
	stored := req.Default
	if stored == mcpserver.ToolsAll {
		stored = ""
	}
	updated, err := g.o.Profiles.Update(cat, alias, func(p *profile.Profile) {
		if req.Default != "" {
			p.MCPToolsDefault = stored
		}
		if req.Search != "" {
			p.MCPToolSearch = req.Search == api.SearchOn
		}
	})
	if err != nil {
		_ = g.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindMCPTools, Profile: alias, Actor: audit.ActorAdmin, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
		profileError(w, g.o.Log, err)
		return
	}
	g.srv.Republish(alias)
	g.o.Log.Info("MCP tools default changed", "profile", alias, "default", req.Default, "search", req.Search)
	out := api.MCPToolsDefault{Profile: alias, Default: updated.MCPToolsDefault, Search: api.SearchOff}
	if out.Default == "" {
		out.Default = mcpserver.ToolsAll
	}
	if updated.MCPToolSearch {
		out.Search = api.SearchOn
	}
	writeJSON(w, http.StatusOK, out)
}
