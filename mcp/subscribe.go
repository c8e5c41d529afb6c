package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// subscriptions are the sessions' resource subscriptions, by exposed URI.
// The upstream is subscribed once for all the sessions of the profile,
// and unsubscribed when the last one goes.
type subscriptions struct {
	mu        sync.Mutex
	bySession map[string]map[string]bool // MCP session id -> exposed URIs
}

// holders returns the sessions subscribed to uri.
func (s *subscriptions) holders(uri string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for sid, uris := range s.bySession {
		if uris[uri] {
			out = append(out, sid)
		}
	}
	return out
}

// maxSubscriptions bounds one session's subscriptions: a template matches
// without end, and each subscription is kept and may reach a server.
const maxSubscriptions = 1000

// add records sid's subscription to uri and reports whether it is the
// first of the profile's sessions to hold it; ok is false when the
// session holds as many as it may.
func (s *subscriptions) add(sid, uri string) (first, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if held := s.bySession[sid]; len(held) >= maxSubscriptions && !held[uri] {
		return false, false
	}
	first = true
	for _, uris := range s.bySession {
		if uris[uri] {
			first = false
		}
	}
	if s.bySession == nil {
		s.bySession = map[string]map[string]bool{}
	}
	if s.bySession[sid] == nil {
		s.bySession[sid] = map[string]bool{}
	}
	s.bySession[sid][uri] = true
	return first, true
}

// remove drops sid's subscriptions to uris (all of them when uris is nil)
// and returns those no session holds any more.
func (s *subscriptions) remove(sid string, uris []string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.bySession[sid]
	if uris == nil {
		for u := range held {
			uris = append(uris, u)
		}
	}
	var last []string
	for _, u := range uris {
		if !held[u] {
			continue
		}
		delete(held, u)
		gone := true
		for _, other := range s.bySession {
			if other[u] {
				gone = false
			}
		}
		if gone {
			last = append(last, u)
		}
	}
	if len(held) == 0 {
		delete(s.bySession, sid)
	}
	return last
}

// resolveResource returns the upstream that serves an exposed URI and its
// own URI: a resource it listed, or one of its templates matches. nil
// when no served server listed it.
func (h *hub) resolveResource(uri string) (*upstream, string) {
	h.mu.Lock()
	p := h.catalog
	h.mu.Unlock()
	if p == nil {
		return nil, ""
	}
	listed := false
	for _, r := range p.resources {
		if r.Resource.URI == uri {
			listed = true
		}
	}
	for _, t := range p.templates {
		if !listed && t.Template.URITemplate != nil && t.Template.URITemplate.Regexp().MatchString(uri) {
			listed = true
		}
	}
	if !listed {
		return nil, ""
	}
	for name := range p.servers {
		if own, ok := upstreamURI(name, uri); ok {
			if u := h.upstream(name); u != nil {
				return u, own
			}
		}
	}
	return nil, ""
}

// subscribe answers resources/subscribe and resources/unsubscribe for a
// session: the URI must be one a served server listed (or one of its
// templates matches) and that server must take subscriptions; the
// upstream is subscribed for the first session and unsubscribed after
// the last.
func (s *Server) subscribe(w http.ResponseWriter, r *http.Request, c *Caller, sid string, m *jsonrpc.Message, body []byte) {
	var req struct {
		Params struct {
			URI string `json:"uri"`
		} `json:"params"`
	}
	p := &req.Params
	if err := json.Unmarshal(body, &req); err != nil || p.URI == "" {
		jsonrpc.WriteError(w, http.StatusOK, jsonrpc.CodeInvalidParams, m.ID, "params.uri is required")
		return
	}
	h, err := s.hub(c.Profile)
	if err != nil {
		jsonrpc.WriteError(w, http.StatusServiceUnavailable, -32603, m.ID, err.Error())
		return
	}
	h.ensureOnce(r.Context())
	if m.Method == string(mcpgo.MethodResourcesUnsubscribe) {
		for _, uri := range h.subs.remove(sid, []string{p.URI}) {
			h.upstreamUnsubscribe(uri)
		}
		writeResult(w, m.ID)
		return
	}
	if s.refuseHeld(w, r, c, m.ID, Access{Kind: AccessResource, Name: p.URI, Method: m.Method}, mcpserver.KindResource) {
		return
	}
	u, own := h.resolveResource(p.URI)
	if u == nil {
		jsonrpc.WriteError(w, http.StatusOK, mcpgo.RESOURCE_NOT_FOUND, m.ID, "no MCP server of this profile lists the resource "+p.URI+"; resources/list shows them")
		return
	}
	h.mu.Lock()
	takes := h.catalog.servers[u.cfg.Name]
	h.mu.Unlock()
	if !takes {
		jsonrpc.WriteError(w, http.StatusOK, codeMethodNotFound, m.ID, "the MCP server "+u.cfg.Name+" does not take resource subscriptions")
		return
	}
	first, ok := h.subs.add(sid, p.URI)
	if !ok {
		jsonrpc.WriteError(w, http.StatusOK, jsonrpc.CodeInvalidParams, m.ID, "this session holds the most resource subscriptions it may ("+strconv.Itoa(maxSubscriptions)+"); unsubscribe from some first")
		return
	}
	if first {
		served := func(j *judgement) bool {
			if r, ok := j.resourceRules.ResourceRuleOf(own); ok && !r.Enabled {
				return false
			}
			return j.resources[own] || len(j.templates) > 0
		}
		if _, err := u.request(r.Context(), string(mcpgo.MethodResourcesSubscribe), map[string]any{"uri": own}, served); err != nil {
			h.subs.remove(sid, []string{p.URI})
			jsonrpc.WriteError(w, http.StatusOK, -32603, m.ID, p.URI+": "+u.redact(err.Error()))
			return
		}
	}
	writeResult(w, m.ID)
}

// upstreamUnsubscribe tells the server of an exposed URI that no session
// holds it any more; done in the background, as nobody waits for it.
func (h *hub) upstreamUnsubscribe(uri string) {
	u, own := h.resolveResource(uri)
	if u == nil {
		return
	}
	h.srv.spawn(func() {
		ctx, cancel := context.WithTimeout(u.ctx, h.srv.opts.StartTimeout)
		defer cancel()
		// An unsubscribe tells the server nothing of the session's.
		always := func(*judgement) bool { return true }
		_, _ = u.request(ctx, string(mcpgo.MethodResourcesUnsubscribe), map[string]any{"uri": own}, always) // its subscription ends with its run otherwise
	})
}

// unsubscribeSession drops the subscriptions of an ended session.
func (h *hub) unsubscribeSession(sid string) {
	for _, uri := range h.subs.remove(sid, nil) {
		h.upstreamUnsubscribe(uri)
	}
}

// resourceUpdated sends notifications/resources/updated from u to the
// sessions subscribed to the resource, under the URI they know it by.
func (h *hub) resourceUpdated(u *upstream, uri string) {
	h.mu.Lock()
	served := h.catalog != nil && h.catalog.servers[u.cfg.Name]
	h.mu.Unlock()
	if !served {
		return
	}
	exposed := u.cfg.Name + uriSep + u.redact(uri)
	for _, sid := range h.subs.holders(exposed) {
		_ = h.ep.mcp.SendNotificationToSpecificClient(sid, string(mcpgo.MethodNotificationResourceUpdated), map[string]any{"uri": exposed}) // a session gone meanwhile
	}
}

const codeMethodNotFound = -32601

// writeResult answers a request with an empty result.
func writeResult(w http.ResponseWriter, id json.RawMessage) {
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Result  struct{}        `json:"result"`
	}{"2.0", id, struct{}{}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(append(body, '\n')) // the client went away: nothing to do
}
