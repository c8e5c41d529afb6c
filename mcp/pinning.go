package mcp

import (
	"encoding/json"
	"net/http"
	"strings"

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
