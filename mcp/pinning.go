package mcp

import (
	"context"
	"encoding/json"
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
	auditRefused(r.Context(), c, name, callArguments(body), reason, true)
	jsonrpc.WriteError(w, http.StatusOK, jsonrpc.CodeInvalidParams, m.ID, reason)
	return true
}

// refuseAccess answers a resources/read, prompts/get or
// completion/complete of what a served server holds back, audited
// through the caller like a refused tool call, and reports whether it
// did: the item disabled ('mcp tools --disable-prompt/--disable-resource',
// its server's --resources/--prompts off, or the profile's default none),
// or changed since it was approved; a URI matched only by such
// templates likewise. Anything else (an unknown name) is mcp-go's to
// answer.
func (s *Server) refuseAccess(w http.ResponseWriter, r *http.Request, c *Caller, m *jsonrpc.Message, body []byte) bool {
	var req struct {
		Params struct {
			URI  string `json:"uri"`
			Name string `json:"name"`
			Ref  struct {
				Type string `json:"type"`
				URI  string `json:"uri"`
				Name string `json:"name"`
			} `json:"ref"`
		} `json:"params"`
	}
	if json.Unmarshal(body, &req) != nil {
		return false // mcp-go answers what it cannot decode
	}
	a := Access{Kind: AccessPrompt, Name: req.Params.Name}
	kind := mcpserver.KindPrompt
	switch {
	case m.Method == string(mcpgo.MethodResourcesRead):
		a, kind = Access{Kind: AccessResource, Name: req.Params.URI}, mcpserver.KindResource
	case m.Method == string(mcpgo.MethodCompletionComplete) && req.Params.Ref.Type == "ref/resource":
		a, kind = Access{Kind: AccessResource, Name: req.Params.Ref.URI, Method: m.Method}, mcpserver.KindTemplate
	case m.Method == string(mcpgo.MethodCompletionComplete):
		a = Access{Kind: AccessPrompt, Name: req.Params.Ref.Name, Method: m.Method}
	}
	return s.refuseHeld(w, r, c, m.ID, a, kind)
}

// refuseHeld refuses a of kind (its Name as the session gave it) when
// its server holds it back, audited through the caller, and reports
// whether it did.
func (s *Server) refuseHeld(w http.ResponseWriter, r *http.Request, c *Caller, id json.RawMessage, a Access, kind string) bool {
	h, err := s.hub(c.Profile)
	if err != nil {
		return false
	}
	sep := "__"
	if a.Kind == AccessResource {
		sep = uriSep
	}
	srv, own, ok := strings.Cut(a.Name, sep)
	if !ok {
		return false
	}
	a.Server = srv
	reason := h.heldBack(r.Context(), srv, kind, own, a.Name)
	if reason == "" {
		return false
	}
	if c.RefusedAccess != nil {
		c.RefusedAccess(r.Context(), a, reason)
	}
	jsonrpc.WriteError(w, http.StatusOK, jsonrpc.CodeInvalidParams, id, reason)
	return true
}

// heldBack says why the item own of kind (a prompt's name, a resource's
// URI) of server srv is not offered, if the server is one of the
// profile's and it is held back; "" otherwise. A URI the server does not
// list as a resource is judged by the templates that match it: held back
// when none of those is served. A resource rule that names the URI
// itself decides before any template.
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
	cfg := cfgs[i]
	if kind == mcpserver.KindResource {
		if r, ok := cfg.ResourceRuleOf(own); ok && !r.Enabled {
			return itemDisabledReason(h.profile, srv, kind, own, exposed, mcpserver.ByRule, r.Pattern)
		}
	}
	// Ensure the last publish saw the server (a client may read what it
	// remembers without listing).
	h.ensureOnce(ctx)
	h.mu.Lock()
	items := h.items[srv]
	h.mu.Unlock()
	templates := ""
	for _, it := range items {
		switch {
		case it.Kind == kind && it.Name == own:
			return heldReason(it, exposed)
		case kind == mcpserver.KindResource && it.Kind == mcpserver.KindTemplate && templateMatches(it.Name, own):
			if it.State == mcpserver.ToolVisible {
				return ""
			}
			if templates == "" {
				templates = heldReason(it, exposed)
			}
		}
	}
	if templates != "" {
		return templates
	}
	// Nothing the server listed names it: its switch (or the profile's
	// default) may still hold back all of its kind; else it is unknown.
	if on, by := cfg.CatalogEnabled(kind, mcpserver.ToolsAll); !on || by == mcpserver.ByDefault {
		if on, by = cfg.CatalogEnabled(kind, h.srv.toolsDefault(context.Background(), h.profile)); !on {
			if by == mcpserver.ByRule {
				by = mcpserver.BySwitch
			}
			return itemDisabledReason(h.profile, srv, kind, own, exposed, by, "")
		}
	}
	return ""
}

// heldReason is what a session is told of a listed item it asked for
// that is not served, as exposed; "" for one that is.
func heldReason(it mcpserver.ItemStatus, exposed string) string {
	if it.State == mcpserver.ToolVisible {
		return ""
	}
	if it.Kind == mcpserver.KindTemplate && it.Exposed != exposed {
		// The reason names the template; say what was asked too.
		return exposed + " matches no served resource template: " + it.Reason
	}
	return it.Reason
}

// templateMatches reports whether the URI template raw (as its server
// lists it) matches the URI uri.
func templateMatches(raw, uri string) bool {
	t := &mcpgo.URITemplate{}
	quoted, _ := json.Marshal(raw)
	return t.UnmarshalJSON(quoted) == nil && t.Template != nil && t.Regexp().MatchString(uri)
}
