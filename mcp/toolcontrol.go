package mcp

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// toolsDefault is profile's default for tools no rule names; one that
// cannot be read is ToolsNone (fail closed).
func (s *Server) toolsDefault(ctx context.Context, profile string) string {
	if s.opts.ToolsDefault == nil {
		return mcpserver.ToolsAll
	}
	d, err := s.opts.ToolsDefault(ctx, profile)
	if err != nil {
		s.log.Error("could not read the profile's MCP tools default; its tools are disabled", "profile", profile, "err", err)
		return mcpserver.ToolsNone
	}
	switch {
	case d == "":
		return mcpserver.ToolsAll
	case mcpserver.CheckToolsDefault(d) != nil:
		return mcpserver.ToolsNone
	}
	return d
}

// toolSearch is whether profile's sessions get the search meta-tools;
// one that cannot be read is off (every served tool is listed instead).
func (s *Server) toolSearch(profile string) bool {
	if s.opts.ToolSearch == nil {
		return false
	}
	on, err := s.opts.ToolSearch(profile)
	if err != nil {
		s.log.Error("could not read the profile's MCP tool search setting; listing every tool", "profile", profile, "err", err)
		return false
	}
	return on
}

// disabledReason is what a session is told of a disabled tool.
func disabledReason(profile, server, tool, exposed, by, rule string) string {
	why := "by the profile's default (mcp tools default none)"
	if by == mcpserver.ByRule {
		why = fmt.Sprintf("by the rule %q", rule)
	}
	return fmt.Sprintf("%s is disabled %s; the user can enable it with 'ringlet mcp tools %s %s --enable %s'", exposed, why, profile, server, tool)
}

// disabled reports whether exposed (<server>__<tool>) names a tool of one
// of the profile's servers that is disabled, and why. It needs only the
// stored definitions, not a running server.
func (h *hub) disabled(ctx context.Context, exposed string) (reason string, ok bool) {
	server, tool, found := strings.Cut(exposed, "__")
	// A name no server could list is mcp-go's to refuse as unknown: the
	// reason quotes the name in a command the user may copy.
	if !found || !validToolName(tool) || h.srv.opts.Store == nil {
		return "", false
	}
	on, by, rule, found, err := h.srv.opts.Store.toolRules(h.profile, server, tool)
	switch {
	case err != nil:
		return "the profile's MCP servers could not be read; refused", true
	case !found:
		return "", false
	case by == mcpserver.ByDefault:
		// No rule names the tool: the profile's default decides, read
		// only then (it reads the profile, on the path of every call).
		on, rule = mcpserver.DefaultEnables(h.srv.toolsDefault(ctx, h.profile)), ""
	}
	if on {
		return "", false
	}
	return disabledReason(h.profile, server, tool, exposed, by, rule), true
}

// refuseDisabled answers a tools/call of a disabled tool itself, as a
// tool error like a hook's refusal, audited through the caller, and
// reports whether it did. The tool is not served, so mcp-go would only
// say it does not exist.
func (s *Server) refuseDisabled(w http.ResponseWriter, r *http.Request, c *Caller, m *jsonrpc.Message, body []byte) bool {
	// The name as jsonrpc.Check decoded it: on the path of every call,
	// the body is not decoded again unless the call is refused.
	var name string
	if json.Unmarshal(m.Params.Name, &name) != nil || name == "" {
		return false // mcp-go answers what it cannot decode
	}
	h, err := s.hub(c.Profile)
	if err != nil {
		return false
	}
	reason, refused := h.disabled(r.Context(), name)
	if !refused {
		return false
	}
	auditRefused(r.Context(), c, name, callArguments(body), reason, false)
	out, err := json.Marshal(struct {
		JSONRPC string                `json:"jsonrpc"`
		ID      json.RawMessage       `json:"id"`
		Result  *mcpgo.CallToolResult `json:"result"`
	}{"2.0", m.ID, mcpgo.NewToolResultError(reason)})
	if err != nil {
		return false
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(out, '\n')) // the client went away: nothing to do
	return true
}

// Tools reports a server's tools with their state, starting it if it is
// not running so that they are known; a server that cannot start is
// reported with none and its error.
func (s *Server) Tools(ctx context.Context, profile, name string) (mcpserver.Status, error) {
	if s.opts.Store == nil {
		return mcpserver.Status{}, errNoStore
	}
	h, err := s.hub(profile)
	if err != nil {
		return mcpserver.Status{}, err
	}
	u := h.upstream(name)
	if u == nil {
		return mcpserver.Status{}, notFound(profile, name)
	}
	_ = u.ensure(ctx, false) // its state says how it went
	h.publish()
	return s.serverStatus(profile, name)
}

func (s *Server) serverStatus(profile, name string) (mcpserver.Status, error) {
	all, err := s.Servers(profile)
	if err != nil {
		return mcpserver.Status{}, err
	}
	for _, st := range all {
		if st.Name == name {
			return st, nil
		}
	}
	return mcpserver.Status{}, notFound(profile, name)
}

// ToolsDefaultOf is profile's tools default as the gateway applies it.
func (s *Server) ToolsDefaultOf(profile string) string {
	return s.toolsDefault(context.Background(), profile)
}

// SetTools changes a server's tool rules. Sessions see the change at
// once (tools/list_changed); the server is not restarted.
func (s *Server) SetTools(profile, name string, ch mcpserver.ToolChange) (mcpserver.Config, error) {
	if s.opts.Store == nil {
		return mcpserver.Config{}, errNoStore
	}
	changed, err := s.opts.Store.Change(profile, name, ch.Apply)
	if err != nil {
		return mcpserver.Config{}, err
	}
	s.Republish(profile)
	changed = shown(changed)
	return changed, nil
}

// Republish serves a profile's tools again after their rules or the
// profile's default changed.
func (s *Server) Republish(profile string) {
	s.mu.Lock()
	h := s.hubs[profile]
	s.mu.Unlock()
	if h != nil {
		h.reload()
	}
}

// paced reports whether a request of method is paced as a tool call by
// the profile's rate limits: a call, and a read of what a server serves
// besides tools, each of which reaches the server as one.
func paced(method string) bool {
	switch mcpgo.MCPMethod(method) {
	case mcpgo.MethodToolsCall, mcpgo.MethodResourcesRead, mcpgo.MethodPromptsGet, mcpgo.MethodCompletionComplete:
		return true
	}
	return false
}

// refusePaced refuses a tool call (or a request paced as one, see paced)
// that the profile's rate limits do not admit now (Caller.Admit): a JSON-RPC error, CodeRateLimited, whose data
// says when to retry, and Retry-After. It reports whether it answered.
func refusePaced(w http.ResponseWriter, r *http.Request, c *Caller, m *jsonrpc.Message, body []byte) bool {
	if c.Admit == nil {
		return false
	}
	retry, why := c.Admit(r.Context(), m.Method, pacedName(m, body))
	if why == "" {
		return false
	}
	secs := max(1, int64(math.Ceil(retry.Seconds())))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	jsonrpc.WriteErrorData(w, http.StatusOK, jsonrpc.CodeRateLimited, m.ID, why, map[string]any{"retry_after_seconds": secs, "ringlet": map[string]any{"code": "ringlet_rate_limited"}})
	return true
}

// pacedName is what a paced request calls: a tool or prompt by name, a
// resource by URI, a completion by what it completes. A tools/call's
// name is the one jsonrpc.Check decoded already: on the path of every
// call, the body is not decoded again.
func pacedName(m *jsonrpc.Message, body []byte) string {
	if m.Method == string(mcpgo.MethodToolsCall) {
		var name string
		if json.Unmarshal(m.Params.Name, &name) == nil && name != "" {
			return name
		}
	}
	var call struct {
		Params struct {
			Name string `json:"name"`
			URI  string `json:"uri"`
			Ref  struct {
				Name string `json:"name"`
				URI  string `json:"uri"`
			} `json:"ref"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &call) // checked already (jsonrpc.Check); a call with no name is still a call
	p := call.Params
	return cmp.Or(p.Name, p.URI, p.Ref.Name, p.Ref.URI)
}

// auditRefused has the caller audit a call of tool name refused before
// any server saw it, with its arguments as they would have been sent
// (none if they cannot be read).
func auditRefused(ctx context.Context, c *Caller, name string, rawArgs json.RawMessage, reason string, unapproved bool) {
	if c == nil || c.Refused == nil {
		return
	}
	args, err := finalArgs(rawArgs)
	if err != nil {
		args = nil
	}
	c.Refused(ctx, name, args, reason, unapproved)
}

// callArguments is params.arguments of a tools/call body that
// jsonrpc.Check decoded already; nil if absent.
func callArguments(body []byte) json.RawMessage {
	var call struct {
		Params struct {
			Arguments json.RawMessage `json:"arguments"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &call) // jsonrpc.Check decoded the same body
	return call.Params.Arguments
}

// KnownTool reports whether exposed (<server>__<tool>) is a tool one of
// the profile's servers listed when last published, served or not.
func (s *Server) KnownTool(profile, exposed string) bool {
	s.mu.Lock()
	h := s.hubs[profile]
	s.mu.Unlock()
	if h == nil {
		return false
	}
	server, _, ok := strings.Cut(exposed, "__")
	if !ok {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ts := range h.report[server] {
		if ts.Exposed == exposed {
			return true
		}
	}
	return false
}
