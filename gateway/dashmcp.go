package gateway

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/names"
)

// ChangedByDashboard is who changed a server's tools or approved its
// changes from the dashboard's MCP page, as the mcp.tools and
// mcp.approve records say (by).
const ChangedByDashboard = "dashboard"

// mcpDiffWait bounds the reading of one server's pending diff for the
// MCP page (the server is running, or was: its diff is known).
const mcpDiffWait = 10 * time.Second

// handleUIPage is the MCP page's shell: no data.
func (g *mcpGateway) handleUIPage(w http.ResponseWriter, _ *http.Request) {
	dashboard.RenderMCP(w)
}

// handleUIServers answers the MCP page's servers: every profile's, with
// their tools and, for a server serving what was not approved, the diff
// 'ringlet mcp approve --dry-run' shows (the same call: approve).
func (g *mcpGateway) handleUIServers(w http.ResponseWriter, r *http.Request) {
	profiles, err := g.o.Profiles.List()
	if err != nil {
		dashboard.RenderMCPError(w, http.StatusInternalServerError, "the profiles could not be read: "+err.Error())
		return
	}
	v := dashboard.MCPView{Profiles: make([]dashboard.MCPProfile, 0, len(profiles))}
	for _, p := range profiles {
		v.Profiles = append(v.Profiles, g.uiProfile(r.Context(), p.Alias))
	}
	dashboard.RenderMCPServers(w, v)
}

func (g *mcpGateway) uiProfile(ctx context.Context, alias string) dashboard.MCPProfile {
	out := dashboard.MCPProfile{Name: alias}
	servers, err := g.srv.Servers(alias)
	if err != nil {
		out.Err = "its MCP servers could not be listed: " + err.Error()
		return out
	}
	for _, s := range servers {
		row := dashboard.MCPServer{Status: s, Profile: alias, Where: s.URL}
		if s.URL == "" {
			row.Where = strings.Join(quoteArgs(s.Command), " ")
		}
		for _, t := range s.Tools {
			if t.State == mcpserver.ToolChanged {
				row.Pending = true
			}
		}
		row.Pending = row.Pending || len(s.PendingItems) > 0
		if row.Pending {
			dctx, cancel := context.WithTimeout(ctx, mcpDiffWait)
			shown, err := g.approve(dctx, alias, s.Name, api.MCPApproveRequest{DryRun: true}, ChangedByDashboard)
			cancel()
			switch {
			case err != nil:
				row.DiffErr = "its changes could not be read: " + mcpFailOf(g.o.Log, err).msg
			case shown.Diff.Empty():
				// Approved meanwhile.
				row.Pending = false
			default:
				row.Diff = &shown.Diff
				row.Changes = dashboard.NewMCPChanges(shown.Diff)
			}
		}
		out.Servers = append(out.Servers, row)
	}
	return out
}

// quoteArgs quotes the arguments of a command line that need it to be
// read back as they are.
func quoteArgs(argv []string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' || strings.ContainsRune(`"'\$`+"`", r) }) {
			a = strconv.Quote(a)
		}
		out[i] = a
	}
	return out
}

// uiServer reads and checks the profile and server of an MCP page's
// change; when not ok it has answered.
func (g *mcpGateway) uiServer(w http.ResponseWriter, r *http.Request) (alias, name string, ok bool) {
	alias, name = chi.URLParam(r, "profile"), chi.URLParam(r, "name")
	if err := names.Check("profile", alias); err != nil {
		dashboard.RenderMCPError(w, http.StatusBadRequest, err.Error())
		return "", "", false
	}
	if _, err := g.o.Profiles.Get(alias); err != nil {
		dashboard.RenderMCPError(w, http.StatusNotFound, err.Error())
		return "", "", false
	}
	if err := mcpserver.ValidateName(name); err != nil {
		dashboard.RenderMCPError(w, http.StatusBadRequest, err.Error())
		return "", "", false
	}
	return alias, name, true
}

// handleUITool enables or disables one tool (query: tool, the tool's
// name as the server lists it; enable, true or false; kind, tool (the
// default), prompt, resource or template: a prompt's name, a resource's
// URI or a template's URI template in tool) through the path
// 'ringlet mcp tools' and PATCH /api/mcp/servers/.../tools take
// (setTools), audited with by: dashboard. The name is a rule's pattern
// with its glob characters escaped: it names that tool alone.
func (g *mcpGateway) handleUITool(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := g.uiServer(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	tool, enable := q.Get("tool"), q.Get("enable")
	if tool == "" || enable != "true" && enable != "false" {
		dashboard.RenderMCPError(w, http.StatusBadRequest, "give tool (its name) and enable (true or false)")
		return
	}
	var ch api.MCPToolsChange
	rule := []string{globQuote(tool)}
	on := enable == "true"
	switch q.Get("kind") {
	case "", "tool":
		if on {
			ch.Enable = rule
		} else {
			ch.Disable = rule
		}
	case mcpserver.KindPrompt:
		if on {
			ch.EnablePrompts = rule
		} else {
			ch.DisablePrompts = rule
		}
	case mcpserver.KindResource, mcpserver.KindTemplate:
		if on {
			ch.EnableResources = rule
		} else {
			ch.DisableResources = rule
		}
	default:
		dashboard.RenderMCPError(w, http.StatusBadRequest, "kind is tool, prompt, resource or template")
		return
	}
	if _, err := g.setTools(r.Context(), alias, name, ch, ChangedByDashboard); err != nil {
		f := mcpFailOf(g.o.Log, err)
		dashboard.RenderMCPError(w, f.status, f.msg)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// globQuote escapes the characters path.Match reads as a pattern.
func globQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// handleUIApprove approves a server's changes as the page showed them
// (query: observed, the diff's Observed): the path 'ringlet mcp approve'
// and POST /api/mcp/servers/.../approve take (approve), audited with by:
// dashboard. A server that changed again since is refused (409): the
// page shows the new diff.
func (g *mcpGateway) handleUIApprove(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := g.uiServer(w, r)
	if !ok {
		return
	}
	observed := r.URL.Query().Get("observed")
	if observed == "" {
		dashboard.RenderMCPError(w, http.StatusBadRequest, "give observed: the diff the page showed")
		return
	}
	if _, err := g.approve(r.Context(), alias, name, api.MCPApproveRequest{Observed: observed}, ChangedByDashboard); err != nil {
		f := mcpFailOf(g.o.Log, err)
		dashboard.RenderMCPError(w, f.status, f.msg)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
