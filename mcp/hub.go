package mcp

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// toolNamePattern is the MCP 2025-11-25 rule for tool names: 1 to 128
// ASCII letters, digits, '_', '-' and '.'. validToolName checks it without
// a regexp (compiling it took part of every start; FuzzValidToolName
// holds the two equal).
const toolNamePattern = `^[A-Za-z0-9_.-]{1,128}$`

func validToolName(s string) bool {
	if len(s) < 1 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// exposedName is how a session sees an upstream tool: <server>__<tool>.
func exposedName(srv, tool string) (string, error) {
	if !validToolName(tool) {
		return "", fmt.Errorf("the tool name %q breaks MCP's naming rules (1 to 128 letters, digits, '_', '-', '.')", tool)
	}
	name := srv + "__" + tool
	if len(name) > 128 {
		return "", fmt.Errorf("%s is longer than MCP's 128-character limit", name)
	}
	return name, nil
}

// hub is one profile's MCP server: the session tools plus the tools of
// the profile's upstream servers. Every session of the profile shares it;
// no session of another profile reaches it.
type hub struct {
	srv     *Server
	profile string
	ep      *endpoint

	mu     sync.Mutex
	ups    map[string]*upstream
	order  []string
	loaded bool
	report map[string][]mcpserver.ToolStatus
	// hiddenItems are, per server, its prompts, resources and templates
	// hidden until approved, as the last publish found them.
	hiddenItems map[string]map[mcpserver.ItemKey]string
	// items are, per server, its prompts, resources and templates with
	// their state, as the last publish found them.
	items map[string][]mcpserver.ItemStatus
	// catalog is the resources, templates and prompts served; nil until
	// first published.
	catalog *publishedCatalog
	// subs are the sessions' resource subscriptions.
	subs subscriptions
	// search indexes the served upstream tools, for search_tools and
	// call_tool.
	search *searchIndex

	pubMu     sync.Mutex // serialises publish
	published map[string]publishedTool
	searching bool // the published tools are the search meta-tools
	// announced is, per server, the observation whose change was last
	// told to OnToolsChanged: each change is recorded once.
	announced map[string]string
}

// publishedTool is what a served tool's handler is bound to: the tool as
// pinned and the upstream (the run of a definition) it calls. A server
// renewed with the same tools is a new upstream: its handlers must be
// served anew, or calls would go to the stopped one.
type publishedTool struct {
	hash string
	up   *upstream
}

func newHub(s *Server, profile string) *hub {
	h := &hub{srv: s, profile: profile, ups: map[string]*upstream{}}
	hooks := &server.Hooks{}
	hooks.AddBeforeListTools(func(ctx context.Context, _ any, _ *mcpgo.ListToolsRequest) { h.ensureAll(ctx) })
	// What a session is told it may use depends on what the upstreams
	// offer: they are started (as a listing would) before it is told, for
	// a while: a client gives up on a connection that does not
	// initialize, and one slow server must not cost it all the others.
	hooks.AddBeforeInitialize(func(ctx context.Context, _ any, _ *mcpgo.InitializeRequest) {
		ctx, cancel := context.WithTimeout(ctx, min(s.opts.StartTimeout, initWait))
		defer cancel()
		h.ensureAll(ctx)
	})
	hooks.AddAfterInitialize(func(_ context.Context, _ any, _ *mcpgo.InitializeRequest, res *mcpgo.InitializeResult) {
		h.capabilities(res)
	})
	hooks.AddBeforeListResources(func(ctx context.Context, _ any, _ *mcpgo.ListResourcesRequest) { h.ensureAll(ctx) })
	hooks.AddBeforeListResourceTemplates(func(ctx context.Context, _ any, _ *mcpgo.ListResourceTemplatesRequest) { h.ensureAll(ctx) })
	hooks.AddBeforeListPrompts(func(ctx context.Context, _ any, _ *mcpgo.ListPromptsRequest) { h.ensureAll(ctx) })
	hooks.AddBeforeReadResource(func(ctx context.Context, _ any, _ *mcpgo.ReadResourceRequest) { h.ensureOnce(ctx) })
	hooks.AddBeforeGetPrompt(func(ctx context.Context, _ any, _ *mcpgo.GetPromptRequest) { h.ensureOnce(ctx) })
	hooks.AddOnUnregisterSession(func(_ context.Context, cs server.ClientSession) { h.unsubscribeSession(cs.SessionID()) })
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, req *mcpgo.CallToolRequest) {
		// A client may call a tool it remembers without listing first.
		if strings.Contains(req.Params.Name, "__") && h.ep.mcp.GetTool(req.Params.Name) == nil {
			h.ensureAll(ctx)
		}
	})
	m := server.NewMCPServer("ringlet", s.opts.Version,
		server.WithToolCapabilities(true),
		// Told to a session only when an upstream offers them (see
		// capabilities); set here so that mcp-go serves the methods.
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(completer{h}),
		server.WithResourceCompletionProvider(completer{h}),
		server.WithRecovery(),
		server.WithHooks(s.sessionHooks(hooks, func() string { return "profile:" + profile })),
		server.WithInstructions(sessionInstructions),
	)
	m.AddTools(sessionTools()...)
	h.ep = s.newEndpoint(m, "profile:"+profile)
	return h
}

// load reads the profile's servers once.
func (h *hub) load() {
	h.mu.Lock()
	loaded := h.loaded
	h.mu.Unlock()
	if !loaded {
		h.reload()
	}
}

// reload brings the upstreams in line with the store: removed servers are
// stopped, new ones wait idle until used.
func (h *hub) reload() {
	var cfgs []mcpserver.Config
	if h.srv.opts.Store != nil {
		var err error
		if cfgs, err = h.srv.opts.Store.List(h.profile); err != nil {
			h.srv.log.Error("could not read the MCP servers", "profile", h.profile, "err", err)
		}
	}
	var restart []string
	h.mu.Lock()
	old := h.ups
	h.ups, h.order, h.loaded = map[string]*upstream{}, nil, true
	for _, c := range cfgs {
		// An upstream's definition never changes while it runs (pins are
		// read from the store when tools are published).
		u := old[c.Name]
		if u == nil || !u.cfg.Created.Equal(c.Created) || !equalArgv(u.cfg.Command, c.Command) || u.cfg.URL != c.URL || u.cfg.Timeout != c.Timeout ||
			!maps.Equal(u.cfg.Env, c.Env) || !maps.Equal(u.cfg.Secrets, c.Secrets) ||
			!maps.Equal(u.cfg.Headers, c.Headers) || !maps.Equal(u.cfg.HeaderSecrets, c.HeaderSecrets) {
			nu := newUpstream(h, c)
			if u != nil {
				// Its environment changed ('mcp set'): a run with the old
				// one is stopped below, and started again with the new,
				// its tools listed meanwhile as for any restart.
				if state, _, _, tools := u.snapshot(); state == StateRunning || state == StateStarting {
					restart = append(restart, c.Name)
					nu.tools, nu.identity = tools, u.listedBy()
				}
			}
			u = nu
		}
		h.ups[c.Name] = u
		h.order = append(h.order, c.Name)
	}
	var gone []*upstream
	for name, u := range old {
		if h.ups[name] != u {
			gone = append(gone, u)
		}
	}
	h.mu.Unlock()
	stopEach(gone)
	h.publish()
	for _, name := range restart {
		if u := h.upstream(name); u != nil {
			h.srv.spawn(func() {
				ctx, cancel := context.WithTimeout(u.ctx, h.srv.opts.StartTimeout+time.Second)
				defer cancel()
				_ = u.ensure(ctx, false) // its state says how it went
			})
		}
	}
}

// listedBy is the identity of the run that listed u's tools: tools
// carried over to a new upstream keep it, or they would be judged as
// another program's until the new run lists them.
func (u *upstream) listedBy() mcpserver.Identity {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.identity
}

// renew replaces the upstream name with a fresh one of the same
// definition: a run of it is stopped and started again.
func (h *hub) renew(name string) { h.renewStart(name, false) }

// renewStart is renew; with start, the new upstream is started even if
// the old one was not running.
func (h *hub) renewStart(name string, start bool) {
	h.mu.Lock()
	old := h.ups[name]
	if old == nil {
		h.mu.Unlock()
		return
	}
	u := newUpstream(h, old.cfg)
	state, _, _, tools := old.snapshot()
	// Its tools stay listed while it restarts, as for any restart: a call
	// meanwhile waits for the new run, or is told why there is none (it
	// needs authorization).
	u.tools, u.identity = tools, old.listedBy()
	h.ups[name] = u
	h.mu.Unlock()
	old.stop()
	h.publish()
	if start || state == StateRunning || state == StateStarting {
		h.srv.spawn(func() {
			ctx, cancel := context.WithTimeout(u.ctx, h.srv.opts.StartTimeout+time.Second)
			defer cancel()
			_ = u.ensure(ctx, false) // its state says how it went
		})
	}
}

func equalArgv(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func stopEach(ups []*upstream) {
	var wg sync.WaitGroup
	for _, u := range ups {
		wg.Go(u.stop)
	}
	wg.Wait()
}

func (h *hub) upstreams() []*upstream {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*upstream, 0, len(h.order))
	for _, n := range h.order {
		out = append(out, h.ups[n])
	}
	return out
}

func (h *hub) upstream(name string) *upstream {
	h.load()
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ups[name]
}

func (h *hub) stopAll() { stopEach(h.upstreams()) }

// ensureAll starts the upstreams that never ran and waits for them (and
// for those starting), bounded by the start timeout; one that failed is
// retried in the background once its backoff has passed, so a broken
// server does not hold up every listing.
func (h *hub) ensureAll(ctx context.Context) {
	h.load()
	ctx, cancel := context.WithTimeout(ctx, h.srv.opts.StartTimeout+time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, u := range h.upstreams() {
		state, _, _, _ := u.snapshot()
		switch state {
		case StateIdle, StateStarting:
			wg.Go(func() { _ = u.ensure(ctx, false) }) // its state says how it went
		case StateFailed, StateRestarting:
			// Started again once its backoff has passed, but not waited
			// for: a failed server holds up no listing.
			u.kick()
		}
	}
	wg.Wait()
	h.publish()
}

// ensureOnce starts the upstreams, as ensureAll, if nothing was
// published yet: a client may read a resource it remembers without
// listing first.
func (h *hub) ensureOnce(ctx context.Context) {
	h.mu.Lock()
	published := h.catalog != nil
	h.mu.Unlock()
	if !published {
		h.ensureAll(ctx)
	}
}

// publish serves the visible tools of the running upstreams. A tool seen
// for the first time is pinned; one that no longer matches its pin is
// hidden. Sessions are told (tools/list_changed) when the set changes.
func (h *hub) publish() {
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	var tools []server.ServerTool
	published := map[string]publishedTool{}
	report := map[string][]mcpserver.ToolStatus{}
	// The rules of 'mcp tools' as stored now (an upstream keeps the
	// definition it started with); unreadable, every tool is disabled.
	rules := map[string]mcpserver.Config{}
	toolsDefault := h.srv.toolsDefault(context.Background(), h.profile)
	if h.srv.opts.Store != nil {
		cfgs, err := h.srv.opts.Store.List(h.profile)
		if err != nil {
			toolsDefault = mcpserver.ToolsNone
		}
		for _, c := range cfgs {
			rules[c.Name] = c
		}
	}
	cp := &publishedCatalog{servers: map[string]bool{}, promptOf: map[string]promptRef{}}
	hiddenItems := map[string]map[mcpserver.ItemKey]string{}
	items := map[string][]mcpserver.ItemStatus{}
	for _, u := range h.upstreams() {
		// A server that ran keeps its tools listed while it restarts: a
		// call gets told why it cannot be served.
		state, _, _, list := u.snapshot()
		if state == stateStopped {
			continue
		}
		u.mu.Lock()
		cat, listed := u.catalog, u.identity != mcpserver.Identity{}
		u.mu.Unlock()
		if !listed {
			continue // no run listed anything yet: nothing to serve or pin
		}
		// A server of resources and prompts alone is checked as any:
		// its program is pinned, and so is its empty tool set, so that a
		// tool it adds later waits for approval.
		o := u.observation()
		obs := o.pin
		j := &judgement{obs: o, tools: map[string]bool{}, prompts: map[string]bool{}, resources: map[string]bool{}}
		// What is judged here is all a call, read or get may reach of
		// this run (upstream.admit), whatever the outcome: kept once
		// complete, since calls read it.
		diff, err := h.srv.pinDiffOf(h.profile, u.cfg.Name, o)
		if err != nil {
			// Without a pin nothing is served: the check cannot be skipped.
			h.srv.log.Error("could not pin MCP tools; hiding them", "profile", h.profile, "server", u.cfg.Name, "err", err)
			for _, t := range list {
				report[u.cfg.Name] = append(report[u.cfg.Name], mcpserver.ToolStatus{Name: t.Name, State: mcpserver.ToolInvalid, Reason: "its pin could not be stored: " + err.Error()})
			}
			u.judge(j)
			continue
		}
		pending := map[string]string{} // tool -> what changed
		for _, name := range diff.Hidden(obs) {
			pending[name] = mcpserver.ChangeIdentity
		}
		if diff.Identity == nil {
			for _, t := range diff.Tools {
				pending[t.Name] = t.Change
			}
		}
		h.announce(u.cfg.Name, obs, diff)
		cfg, ok := rules[u.cfg.Name]
		if !ok {
			cfg = mcpserver.Config{ToolRules: []mcpserver.ToolRule{{Pattern: "*"}}, Resources: mcpserver.SwitchOn, Prompts: mcpserver.SwitchOn}
		}
		// A server with a tool changed since it was approved is not
		// trusted with the model's context: its resources and prompts
		// are hidden with the tool.
		suspect := false
		for _, t := range list {
			ts := mcpserver.ToolStatus{Name: t.Name, Description: mcpserver.FirstLine(t.Description)}
			ts.Enabled, ts.By, ts.Rule = cfg.ToolEnabled(t.Name, toolsDefault)
			exposed, err := exposedName(u.cfg.Name, t.Name)
			var def mcpgo.Tool
			if err == nil {
				ts.Exposed = exposed
				def, err = t.definition(exposed)
			}
			switch {
			case err != nil:
				ts.State, ts.Reason = mcpserver.ToolInvalid, err.Error()
			case published[exposed].hash != "":
				ts.State, ts.Reason = mcpserver.ToolInvalid, "the server lists this name twice"
			case pending[t.Name] != "":
				suspect = true
				ts.State, ts.Change = mcpserver.ToolChanged, pending[t.Name]
				ts.Reason = pendingReason(h.profile, u.cfg.Name, ts.Change)
			case !ts.Enabled:
				ts.State = mcpserver.ToolDisabled
				ts.Reason = disabledReason(h.profile, u.cfg.Name, t.Name, exposed, ts.By, ts.Rule)
			default:
				ts.State = mcpserver.ToolVisible
				j.tools[t.Name] = true
				published[exposed] = publishedTool{hash: t.hash, up: u}
				tools = append(tools, server.ServerTool{Tool: def, Handler: h.forward(u, t.Name, exposed)})
			}
			report[u.cfg.Name] = append(report[u.cfg.Name], ts)
		}
		// Nor is a program that is not the one approved; of one that is,
		// a prompt or resource changed since it was approved is hidden,
		// and its prompts and resources are served only as enabled.
		if !suspect && diff.Identity == nil {
			view := catalogView{cfg: cfg, def: toolsDefault, hidden: diff.HiddenItems()}
			hiddenItems[u.cfg.Name] = view.hidden
			items[u.cfg.Name] = h.addCatalog(cp, u, cat, view, j)
		} else {
			items[u.cfg.Name] = h.heldItems(u.cfg.Name, cat, mcpserver.ChangeIdentity)
		}
		u.judge(j)
	}
	h.mu.Lock()
	h.report, h.hiddenItems, h.items = report, hiddenItems, items
	h.mu.Unlock()
	h.serveCatalog(cp)
	search := h.srv.toolSearch(h.profile)
	if h.published != nil && maps.Equal(published, h.published) && search == h.searching {
		return
	}
	h.published, h.searching = published, search
	h.mu.Lock()
	h.search = newSearchIndex(tools)
	h.mu.Unlock()
	if search {
		// The upstream tools are reached through call_tool alone.
		h.ep.mcp.SetTools(append(sessionTools(), h.searchTools()...)...)
		return
	}
	h.ep.mcp.SetTools(append(sessionTools(), tools...)...)
}

// pendingReason says why a tool is hidden until approved.
func pendingReason(profile, server, change string) string {
	why := map[string]string{
		mcpserver.ChangeAdded:    "new since the server was approved",
		mcpserver.ChangeChanged:  "changed since it was approved",
		mcpserver.ChangeRenamed:  "looks like an approved tool renamed",
		mcpserver.ChangeIdentity: "the server's program changed since it was approved",
	}[change]
	return fmt.Sprintf("%s; hidden until 'ringlet mcp approve %s %s'", why, profile, server)
}

// announce tells OnToolsChanged of a server's change once (under pubMu).
// One that cannot be recorded is told again at the next publish; its
// tools stay hidden either way.
func (h *hub) announce(server string, obs mcpserver.Pin, diff mcpserver.PinDiff) {
	if diff.Empty() {
		delete(h.announced, server)
		return
	}
	if h.announced[server] == diff.Observed || h.srv.opts.OnToolsChanged == nil {
		return
	}
	err := h.srv.opts.OnToolsChanged(ToolsChanged{Profile: h.profile, Server: server, Diff: diff, Hidden: diff.Hidden(obs)})
	if err != nil {
		h.srv.log.Error("could not record an MCP server's changed tools", "profile", h.profile, "server", server, "err", err)
		return
	}
	if h.announced == nil {
		h.announced = map[string]string{}
	}
	h.announced[server] = diff.Observed
}

// definition is the tool as a session sees it: renamed, with the
// server's own schemas passed through unchanged.
func (t upstreamTool) definition(exposed string) (mcpgo.Tool, error) {
	def := mcpgo.Tool{Name: exposed, Title: t.Title, Description: t.Description}
	def.RawInputSchema = t.InputSchema
	if len(bytes.TrimSpace(def.RawInputSchema)) == 0 {
		def.RawInputSchema = json.RawMessage(`{"type":"object"}`)
	}
	if !isObject(def.RawInputSchema) {
		return mcpgo.Tool{}, errors.New("its inputSchema is not a JSON object")
	}
	if len(t.OutputSchema) > 0 && string(t.OutputSchema) != "null" {
		if !isObject(t.OutputSchema) {
			return mcpgo.Tool{}, errors.New("its outputSchema is not a JSON object")
		}
		def.RawOutputSchema = t.OutputSchema
	}
	if len(t.Annotations) > 0 && string(t.Annotations) != "null" {
		if err := json.Unmarshal(t.Annotations, &def.Annotations); err != nil {
			return mcpgo.Tool{}, fmt.Errorf("its annotations are invalid: %v", err)
		}
	}
	// mcp-go panics on a tool whose x-mcp-header annotations it rejects.
	if err := mcpgo.ValidateParamHeaderAnnotations(&def); err != nil {
		return mcpgo.Tool{}, err
	}
	return def, nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{' && json.Valid(raw)
}

// forward is the handler of one upstream tool. The arguments are put in
// their final form once; the hooks judge those bytes and those bytes are
// what the upstream receives.
func (h *hub) forward(u *upstream, tool, exposed string) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
		c := CallerFrom(ctx)
		if c == nil || c.scope() != h.ep.scope || c.Vet == nil {
			// Unreachable through ServeHTTP, which routes by the same
			// scope: the audience the gateway gave the caller.
			return mcpgo.NewToolResultError("this tool belongs to another profile"), nil
		}
		args, err := finalArgs(req.Params.RawArguments)
		if err != nil {
			return mcpgo.NewToolResultError(err.Error()), nil
		}
		if m := req.Params.Meta; m != nil {
			if id, ok := m.AdditionalFields[ToolUseIDMeta].(string); ok && id != "" && len(id) <= 256 {
				ctx = context.WithValue(ctx, toolUseKey{}, id)
			}
		}
		v := c.Vet(ctx, exposed, args)
		if !v.Allow {
			reason := v.Reason
			if reason == "" {
				reason = "a Ringlet hook refused this tool call"
			}
			if v.Protocol {
				return nil, errors.New(reason)
			}
			return mcpgo.NewToolResultError(reason), nil
		}
		if ctx.Err() != nil {
			// The caller ended while the hooks ran (a kill): nothing is
			// forwarded.
			return nil, context.Cause(ctx)
		}
		// With post-tool-use hooks, nothing of the upstream's own text may
		// reach the client before they judged it: progress goes without
		// its message.
		relay, relayed := progressRelay(ctx, req, v.After == nil)
		began := time.Now()
		res, err := u.call(ctx, tool, args, relay)
		took := time.Since(began)
		if relayed != nil && relayed.Load() {
			// mcp-go's streamable server writes a notification from a
			// goroutine of its own and drops one that goroutine still
			// holds when the answer goes out; a moment lets the last
			// progress out first.
			time.Sleep(5 * time.Millisecond)
		}
		if err == nil {
			// An upstream given a credential may echo it: nothing of it
			// reaches the hooks or the client.
			if res, err = u.redactResult(res); err != nil {
				return mcpgo.NewToolResultError(fmt.Sprintf("%s: its result could not be checked for the server's credential; withheld", exposed)), nil
			}
		}
		var out json.RawMessage // the result as the post-tool-use hooks judge it
		if v.Done != nil {
			o := outcomeOf(res, err, took)
			switch {
			case err != nil:
			case v.After != nil:
				// Encoded once, for its size and for the hooks.
				if b, merr := json.Marshal(res); merr == nil {
					out, o.Bytes = b, len(b)
				}
			default:
				if n, merr := jsonSize(res); merr == nil {
					o.Bytes = n
				}
			}
			if derr := v.Done(ctx, o); derr != nil {
				return mcpgo.NewToolResultError(fmt.Sprintf("%s: its result could not be recorded in the audit log; withheld", exposed)), nil
			}
		}
		if errors.Is(err, ErrNeedsAuth) {
			// Nothing was called: a JSON-RPC error, naming the command
			// that fixes it, rather than a tool's failure.
			return nil, err
		}
		if err != nil {
			failed := mcpgo.NewToolResultError(u.redact(fmt.Sprintf("%s: %v", exposed, err)))
			if v.After == nil {
				return failed, nil
			}
			// The upstream's error text is its output too.
			res = failed
		}
		if v.After != nil {
			if out == nil {
				var merr error
				if out, merr = json.Marshal(res); merr != nil {
					return mcpgo.NewToolResultError(fmt.Sprintf("%s: its result could not be encoded for the post-tool-use hooks; withheld", exposed)), nil
				}
			}
			if after := v.After(ctx, out); !after.Allow {
				reason := after.Reason
				if reason == "" {
					reason = "a Ringlet post-tool-use hook withheld this tool's result"
				}
				return mcpgo.NewToolResultError(reason), nil
			}
		}
		return res, nil
	}
}

// jsonSize is the length of json.Marshal(v) without keeping the
// encoding: the audit record of a result wants only its size, and a
// large result is not copied once more for it.
func jsonSize(v any) (int, error) {
	var n byteCount
	if err := json.NewEncoder(&n).Encode(v); err != nil {
		return 0, err
	}
	return int(n) - 1, nil // Encode ends the value with a newline
}

// byteCount counts what is written to it.
type byteCount int

func (c *byteCount) Write(p []byte) (int, error) {
	*c += byteCount(len(p))
	return len(p), nil
}

// progressRelay returns, for a call whose client asked for progress, what
// sends the upstream's progress to that client under the client's own
// token; nil when it did not ask.
func progressRelay(ctx context.Context, req mcpgo.CallToolRequest, withMessage bool) (func(mcpgo.NotificationParams), *atomic.Bool) {
	if req.Params.Meta == nil || req.Params.Meta.ProgressToken == nil {
		return nil, nil
	}
	theirs := req.Params.Meta.ProgressToken
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil, nil
	}
	relayed := new(atomic.Bool)
	return func(p mcpgo.NotificationParams) {
		relayed.Store(true)
		out := map[string]any{"progressToken": theirs}
		for _, k := range []string{"progress", "total", "message"} {
			if v, ok := p.AdditionalFields[k]; ok && (k != "message" || withMessage) {
				out[k] = v
			}
		}
		// The call may have ended meanwhile; a late notification is
		// dropped.
		_ = srv.SendNotificationToClient(ctx, "notifications/progress", out)
	}, relayed
}

// finalArgs is the one encoding of a call's arguments: compact, with the
// escaping encoding/json applies, so that encoding it again (as mcp-go's
// client does) yields the same bytes.
func finalArgs(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return json.RawMessage("{}"), nil
	}
	if !isObject(raw) {
		return nil, errors.New("tool arguments must be a JSON object")
	}
	b, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		return nil, fmt.Errorf("invalid tool arguments: %v", err)
	}
	return b, nil
}

// status reports the upstreams for 'ringlet mcp list'; cfgs are their
// definitions as stored now.
func (h *hub) status(cfgs []mcpserver.Config) []mcpserver.Status {
	h.load()
	h.mu.Lock()
	report, hidden, items := h.report, h.hiddenItems, h.items
	h.mu.Unlock()
	stored := map[string]mcpserver.Config{}
	for _, c := range cfgs {
		stored[c.Name] = c
	}
	var out []mcpserver.Status
	for _, u := range h.upstreams() {
		state, lastErr, retryAt, _ := u.snapshot()
		cfg, ok := stored[u.cfg.Name]
		if !ok {
			continue
		}
		st := mcpserver.Status{Config: cfg, State: state, Error: lastErr, Tools: report[u.cfg.Name], Failures: u.failuresInARow()}
		st.Config = shown(st.Config)
		if state == StateFailed || state == StateRestarting {
			t := retryAt.UTC().Truncate(time.Second)
			st.RetryAt = &t
		}
		if st.Tools == nil {
			st.Tools = []mcpserver.ToolStatus{}
		}
		st.Items = items[u.cfg.Name]
		for k, change := range hidden[u.cfg.Name] {
			st.PendingItems = append(st.PendingItems, mcpserver.PendingItem{Kind: k.Kind, Name: k.Name, Change: change})
		}
		slices.SortFunc(st.PendingItems, func(a, b mcpserver.PendingItem) int {
			return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name))
		})
		out = append(out, st)
	}
	return out
}
