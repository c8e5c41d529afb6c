package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// pending reports whether exposed (<server>__<tool>) names a tool hidden
// until approved, and why, as the last publish found it.
func (h *hub) pending(exposed string) (reason string, ok bool) {
	server, tool, found := strings.Cut(exposed, "__")
	if !found {
		return "", false
	}
	h.mu.Lock()
	report := h.report[server]
	h.mu.Unlock()
	for _, ts := range report {
		if ts.Name == tool && ts.State == mcpserver.ToolChanged {
			return exposed + " is not served: " + ts.Reason, true
		}
	}
	return "", false
}

// refusePending answers a tools/call of a tool hidden until approved with
// a JSON-RPC error that says how to approve it, audited through the
// caller, and reports whether it did. A client that remembers the tool
// from before the change learns why it is gone, not only that it is.
func (s *Server) refusePending(w http.ResponseWriter, r *http.Request, c *Caller, m *jsonrpc.Message, body []byte) bool {
	// The name as jsonrpc.Check decoded it: on the path of every call,
	// the body is not decoded again unless the call is refused.
	var name string
	if json.Unmarshal(m.Params.Name, &name) != nil || !strings.Contains(name, "__") {
		return false // mcp-go answers what it cannot decode
	}
	h, err := s.hub(c.Profile)
	if err != nil || h.ep.mcp.GetTool(name) != nil {
		return false
	}
	// As the call hook would: a client may call without listing first.
	h.ensureAll(r.Context())
	reason, refused := h.pending(name)
	if !refused {
		return false
	}
	auditRefused(r.Context(), c, name, callArguments(body), reason)
	jsonrpc.WriteError(w, http.StatusOK, jsonrpc.CodeInvalidParams, m.ID, reason)
	return true
}

// refuseAccess answers a resources/read or prompts/get of what a served
// server holds back, audited through the caller like a refused tool
// call, and reports whether it did: its resources or prompts turned off
// ('mcp tools --resources/--prompts', or the profile's default none), or
// the item changed since it was approved. Anything else (an unknown name)
// is mcp-go's to answer.
func (s *Server) refuseAccess(w http.ResponseWriter, r *http.Request, c *Caller, m *jsonrpc.Message, body []byte) bool {
	var req struct {
		Params struct {
			URI  string `json:"uri"`
			Name string `json:"name"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil {
		return false // mcp-go answers what it cannot decode
	}
	h, err := s.hub(c.Profile)
	if err != nil {
		return false
	}
	a := Access{Kind: AccessPrompt, Name: req.Params.Name}
	kind, own := mcpserver.KindPrompt, ""
	if m.Method == string(mcpgo.MethodResourcesRead) {
		a = Access{Kind: AccessResource, Name: req.Params.URI}
		kind = mcpserver.KindResource
		srv, uri, ok := strings.Cut(req.Params.URI, uriSep)
		if !ok {
			return false
		}
		a.Server, own = srv, uri
	} else {
		srv, name, ok := strings.Cut(req.Params.Name, "__")
		if !ok {
			return false
		}
		a.Server, own = srv, name
	}
	reason := h.heldBack(r.Context(), a.Server, kind, own, a.Name)
	if reason == "" {
		return false
	}
	if c.RefusedAccess != nil {
		c.RefusedAccess(r.Context(), a, reason)
	}
	jsonrpc.WriteError(w, http.StatusOK, jsonrpc.CodeInvalidParams, m.ID, reason)
	return true
}

// heldBack says why the item own of kind (a prompt's name, a resource's
// URI) of server srv is not offered, if the server is one of the
// profile's and it is held back; "" otherwise.
func (h *hub) heldBack(ctx context.Context, srv, kind, own, exposed string) string {
	if h.srv.opts.Store == nil {
		return ""
	}
	cfgs, err := h.srv.opts.Store.List(h.profile)
	if err != nil {
		return "the profile's MCP servers could not be read; refused"
	}
	i := slices.IndexFunc(cfgs, func(c mcpserver.Config) bool { return c.Name == srv })
	if i < 0 {
		return ""
	}
	what, flag := "prompts", "--prompts"
	if kind == mcpserver.KindResource {
		what, flag = "resources", "--resources"
	}
	if on, by := cfgs[i].CatalogEnabled(kind, mcpserver.ToolsAll); !on || by == mcpserver.ByDefault {
		if on, by = cfgs[i].CatalogEnabled(kind, h.srv.toolsDefault(h.profile)); !on {
			why := "by the profile's default (mcp tools default none)"
			if by == mcpserver.ByRule {
				why = "with '" + flag + " off'"
			}
			return fmt.Sprintf("%s is not offered: the %s of MCP server %s are disabled %s; the user can enable them with 'ringlet mcp tools %s %s %s on'", exposed, what, srv, why, h.profile, srv, flag)
		}
	}
	// Ensure the last publish saw the server (a client may read what it
	// remembers without listing).
	h.ensureOnce(ctx)
	h.mu.Lock()
	change := h.hiddenItems[srv][mcpserver.ItemKey{Kind: kind, Name: own}]
	h.mu.Unlock()
	if change == "" {
		return ""
	}
	return fmt.Sprintf("%s is not offered: %s; hidden until 'ringlet mcp approve %s %s'", exposed, map[string]string{
		mcpserver.ChangeAdded:   "new since the server was approved",
		mcpserver.ChangeChanged: "changed since it was approved",
	}[change], h.profile, srv)
}
