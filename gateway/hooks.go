package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/neullabs/ringlet/agentconfig"
	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/profile"
)

// hooks keeps each profile's hooks and runs them: on every tool call an
// agent or the MCP gateway asks about, with their own HOME and PATH, each
// decision and the call audited, refusing what cannot be.
type hooks struct {
	o hooksOptions
}

// hooksOptions configure the hooks.
type hooksOptions struct {
	Store    *hook.Store
	Profiles *profile.Store
	// Sessions and MCPStore say what else a profile's agents and servers
	// can write: no hook may load from there.
	Sessions *sessions
	MCPStore *mcp.Store
	Rec      *recorder
	Log      *slog.Logger
	// Bodies is the budget of request bodies, which checks carrying a
	// tool's result share with the proxy.
	Bodies *bodyBudget
	// Paces and Budgets count the agent's own tool calls (checks on the
	// hook route) against the tool-call rate limits and budgets; nil in
	// tests that run hooks alone.
	Paces   *rateLimits
	Budgets *budgets
	// Auth holds the admin token, which is taken out of what a hook
	// writes before the agent or the audit log sees it.
	Auth *authenticator
	// MCPRedact takes out of text what the profile's MCP servers were
	// given (mcp.Server.Redact); set once the MCP gateway is built.
	MCPRedact func(profile, text string) string
	// Metrics counts and times every hook run.
	Metrics *securityMetrics
	// AuditPath is the audit log 'hooks test' replays ("" when off);
	// Launch builds the sandbox it runs hooks in.
	AuditPath string
	Launch    *launch.Builder
}

func hookError(w http.ResponseWriter, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, hook.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	default:
		profileError(w, log, err)
	}
}

func knownProfile(w http.ResponseWriter, log *slog.Logger, profiles *profile.Store, alias string) bool {
	if err := names.Check("profile", alias); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_profile", err.Error())
		return false
	}
	if _, err := profiles.Get(alias); err != nil {
		profileError(w, log, err)
		return false
	}
	return true
}

func (hk *hooks) handleHookList(w http.ResponseWriter, r *http.Request) {
	alias := r.URL.Query().Get("profile")
	if !knownProfile(w, hk.o.Log, hk.o.Profiles, alias) {
		return
	}
	hooks, err := hk.o.Store.List(alias)
	if err != nil {
		hookError(w, hk.o.Log, err)
		return
	}
	if hooks == nil {
		hooks = []hook.Hook{}
	}
	writeJSON(w, http.StatusOK, api.HookList{Hooks: hooks})
}

func (hk *hooks) handleHookAdd(w http.ResponseWriter, r *http.Request) {
	var req api.HookRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !knownProfile(w, hk.o.Log, hk.o.Profiles, req.Profile) {
		return
	}
	h := hook.Hook{Profile: req.Profile, Event: req.Event, Shell: req.Shell, Match: req.Match}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil || d <= 0 {
			// An explicit 0 is not the default: say the range.
			writeError(w, http.StatusBadRequest, "invalid_hook", fmt.Sprintf("timeout must be a duration from 100ms to %s, such as 10s", hook.MaxTimeout))
			return
		}
		h.Timeout = d
	}
	if err := h.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_hook", err.Error())
		return
	}
	if !hk.reachable(w, h, "") {
		return
	}
	if !hk.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindHookAdd, Profile: req.Profile, Actor: actorOf(r), Target: h.Event, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"shell": h.Shell, "match": h.Match, "timeout": h.Timeout.String()})}) {
		return
	}
	added, err := hk.o.Store.Add(h)
	if err != nil {
		hookError(w, hk.o.Log, err)
		return
	}
	hk.o.Log.Info("hook added", "profile", added.Profile, "hook", added.ID, "event", added.Event)
	writeJSON(w, http.StatusCreated, added)
}

func (hk *hooks) handleHookRemove(w http.ResponseWriter, r *http.Request) {
	alias, id := chi.URLParam(r, "profile"), chi.URLParam(r, "id")
	if !knownProfile(w, hk.o.Log, hk.o.Profiles, alias) {
		return
	}
	if !hk.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindHookRemove, Profile: alias, Actor: actorOf(r), Target: id, Decision: audit.Allow}) {
		return
	}
	removed, err := hk.o.Store.Remove(alias, id)
	if err != nil {
		// The record above said allow; say it did not happen (as a
		// failed profile create does).
		_ = hk.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindHookRemove, Profile: alias, Actor: actorOf(r), Target: id, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
		hookError(w, hk.o.Log, err)
		return
	}
	hk.o.Log.Info("hook removed", "profile", alias, "hook", id)
	writeJSON(w, http.StatusOK, removed)
}

func (hk *hooks) handleHookImport(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "profile")
	if !knownProfile(w, hk.o.Log, hk.o.Profiles, alias) {
		return
	}
	var in []hook.Hook
	if !decodeJSON(w, r, &in) {
		return
	}
	for i := range in {
		in[i].Profile = alias
		if err := in[i].Validate(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_hook", "hook "+strconv.Itoa(i+1)+": "+err.Error())
			return
		}
		if !hk.reachable(w, in[i], "hook "+strconv.Itoa(i+1)+": ") {
			return
		}
	}
	if !hk.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindHookAdd, Profile: alias, Actor: actorOf(r), Target: "import", Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"count": len(in)})}) {
		return
	}
	added, err := hk.o.Store.Import(alias, in)
	if err != nil {
		hookError(w, hk.o.Log, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.HookList{Hooks: added})
}

func (hk *hooks) handleHookExport(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "profile")
	if !knownProfile(w, hk.o.Log, hk.o.Profiles, alias) {
		return
	}
	hooks, err := hk.o.Store.List(alias)
	if err != nil {
		hookError(w, hk.o.Log, err)
		return
	}
	if hooks == nil {
		hooks = []hook.Hook{}
	}
	writeJSON(w, http.StatusOK, hooks)
}

// maxHookCheckBody bounds a hook check: a post-tool-use check carries the
// tool's result, which hooks are given up to hook.MaxToolOutput.
const maxHookCheckBody = hook.MaxToolOutput + 1<<20

// handleHookCheck evaluates a session's profile's hooks on a tool call.
// Every hook that runs and the outcome are audited; if a record cannot be
// written, the call is refused.
func (hk *hooks) handleHookCheck(w http.ResponseWriter, r *http.Request) {
	sess := sessionOf(r)
	// A check may carry a tool result of many MiB: it shares the proxy's
	// budget for what request bodies may hold at once.
	hold, ok := hk.o.Bodies.hold(w, r, maxHookCheckBody)
	if !ok {
		return
	}
	defer hold.release()
	var req api.HookCheck
	if !decodeJSON(w, r, &req) {
		return
	}
	if req.Event == "" {
		req.Event = hook.PreToolUse
	}
	if req.Event != hook.PreToolUse && req.Event != hook.PostToolUse {
		writeError(w, http.StatusBadRequest, "bad_request", "event must be pre-tool-use or post-tool-use")
		return
	}
	// The hooks run no longer than the session: a kill (or any end)
	// cancels them, and the check is refused, as an MCP call's are.
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(sess.ctx, func() { cancel(context.Cause(sess.ctx)) })
	// A budget this call exhausts (kill action) ends the session once the
	// agent has its answer, which says why.
	ctx, killsAfter := withKillsAfter(ctx)
	defer func() {
		stop()
		cancel(nil)
		// The body's share back before the agent has the answer (it may
		// send its next check at once).
		hold.release()
		// Out before a kill closes the session's socket under it.
		killsAfter.answerThenRun(ctx, w)
	}()
	// Placed (and its tool call marked checked) before a rate limit or a
	// budget can refuse it: the agent still sends the refused call's
	// result back, which is no hook bypass.
	if len(req.ToolUseID) <= 256 {
		ctx = withSpan(ctx, hk.o.Rec.traces.agentCheck(sess, req))
	}
	charge, refusal := hk.admitAgentCall(ctx, sess, req)
	if refusal != "" {
		writeJSON(w, http.StatusOK, hook.Decision{Allow: false, Reason: refusal})
		return
	}
	d, _ := hk.check(ctx, sess, req, "agent", charge != nil)
	if charge != nil {
		charge(d.Allow)
	}
	if !d.Allow && sess.ctx.Err() != nil {
		d.Reason = "refused: " + context.Cause(sess.ctx).Error() + " while its hooks ran"
	}
	writeJSON(w, http.StatusOK, d)
}

// admitAgentCall counts one of the agent's own tool calls, asked about on
// the hook route before it runs, against the session's tool-call rate
// limits and budgets: it takes the call from the buckets and reserves it
// (charge, nil when nothing counts it, settles the reservation once the
// hooks decided), or returns the refusal the agent shows.
//
// A call counts once. A tool of Ringlet's own MCP gateway reaches the
// agent's hook first and the gateway next, which paces, reserves and
// charges it (mcpGateway.vet): the hook route leaves it alone. Every
// other call the agent makes (its shell, its edits, an MCP server it
// reaches directly) passes only here. A post-tool-use check counts
// nothing: the call was counted before it ran.
func (hk *hooks) admitAgentCall(ctx context.Context, sess *session, req api.HookCheck) (charge func(allowed bool), refusal string) {
	if req.Event != hook.PreToolUse || gatewayTool(sess.Profile.Agent, req.ToolName) {
		return nil, ""
	}
	if hk.o.Paces != nil {
		if r := hk.o.Paces.admit(sess, paceToolCalls); r != nil {
			hk.o.Paces.refused(ownedBy(ctx, audit.KindRateLimited), sess, r, req.ToolName)
			return nil, r.message() + " (" + RateLimitErrorCode + ")"
		}
	}
	if hk.o.Budgets == nil {
		return nil, ""
	}
	done, reason, ok := hk.o.Budgets.toolCall(ownedBy(ctx, audit.KindBudgetRefused), sess, req.ToolName)
	if !ok {
		return nil, reason
	}
	return done, ""
}

// gatewayTool reports whether tool, as a session's agent names it in
// its hook event, is a tool of Ringlet's own MCP gateway, which Ringlet
// writes into the agent's config as the server agentconfig.Server:
// Claude Code and Codex name its tools mcp__ringlet__<tool>, OpenCode
// ringlet_<tool>.
func gatewayTool(agent, tool string) bool {
	if agent == "opencode" {
		return strings.HasPrefix(tool, agentconfig.Server+"_")
	}
	return strings.HasPrefix(tool, "mcp__"+agentconfig.Server+"__")
}

// check runs the hooks of sess's profile on a tool call and audits each
// decision and the call. via says who asked: "agent" (its own hook
// adapter, e.g. Claude Code's PreToolUse) or "mcp" (a call through the MCP
// gateway); counted marks an agent's call that its budgets count (the
// tool.call record then says "counted": true, which a restart's reload
// of the spend reads). It also returns the profile's hooks, as it read
// them.
func (hk *hooks) check(ctx context.Context, sess *session, req api.HookCheck, via string, counted bool) (hook.Decision, []hook.Hook) {
	start := time.Now()
	ev := hook.Event{Event: req.Event, Profile: sess.Profile.Alias, Session: sess.ID, ToolName: req.ToolName, ToolInput: req.ToolInput, ToolOutput: req.ToolOutput}
	final, ran, hooks, ok := hk.evaluate(ctx, sess, ev)
	if !ok {
		return final, hooks
	}
	if req.Event == hook.PostToolUse && ran == 0 {
		// The call itself was recorded before it ran; after it, only a
		// hook that judged its result adds anything.
		return final, hooks
	}
	decision := audit.Allow
	if !final.Allow {
		decision = audit.Deny
	}
	detail := toolCallDetail(req.Event, ran, final.Reason, via)
	if useID := req.ToolUseID != "" && len(req.ToolUseID) <= 256; useID || counted {
		m := map[string]any{"event": req.Event, "hooks": ran, "reason": final.Reason, "via": via}
		if useID {
			m["tool_use_id"] = req.ToolUseID
		}
		if counted {
			m["counted"] = true
		}
		detail = audit.DetailJSON(m)
	}
	if err := hk.o.Rec.record(ctx, audit.Record{Kind: audit.KindToolCall, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
		Target: req.ToolName, Decision: decision, Duration: time.Since(start), BytesIn: int64(len(req.ToolInput)),
		Detail: detail}); err != nil {
		return hook.Decision{Allow: false, Reason: "refused: the tool call could not be recorded in the audit log"}, hooks
	}
	if sp, ok := spanOf(ctx); ok && via == "agent" && final.Allow {
		hk.o.Rec.traces.agentAllowed(sess, sp)
	}
	return final, hooks
}

// evaluate runs the hooks of sess's profile that match ev and audits each
// decision. It returns the final decision, how many hooks ran and the
// profile's hooks as it read them; !ok means the decision is a refusal
// that needs no further record (the hooks could not be read, or a
// decision could not be recorded).
func (hk *hooks) evaluate(ctx context.Context, sess *session, ev hook.Event) (final hook.Decision, nran int, hooks []hook.Hook, ok bool) {
	hooks, err := hk.o.Store.List(sess.Profile.Alias)
	if err != nil {
		return hook.Decision{Allow: false, Reason: "ringlet could not read the profile's hooks; refused"}, 0, nil, false
	}
	req := ev
	final = hook.Decision{Allow: true}
	var ran []hook.Decision
	// When no hook runs, nothing needs their HOME nor the list of what the
	// agents can write (which reads the profile and its MCP servers).
	if hook.Runs(hooks, req.Event, req.ToolName) {
		if env, err := hk.env(sess.Profile); err != nil {
			hk.o.Log.Error("hook environment", "profile", sess.Profile.Alias, "err", err)
			final = hook.Decision{Allow: false, ExitCode: -1, Reason: "ringlet could not prepare the hooks' HOME (" + err.Error() + "); refused"}
			ran = []hook.Decision{final}
		} else {
			final, ran = hook.Evaluate(ctx, hooks, ev, env)
		}
	}
	for i, d := range ran {
		if hk.o.Metrics != nil {
			hk.o.Metrics.hookRan(sess.Profile.Alias, d.HookID, req.Event, d.Allow, d.Duration)
		}
		d.Reason = hk.scrub(sess, sess.Profile.Alias, d.Reason)
		ran[i] = d
		decision := audit.Allow
		if !d.Allow {
			decision = audit.Deny
		}
		detail := map[string]any{"hook": d.HookID, "event": req.Event, "reason": d.Reason}
		if !d.Allow {
			// Which hook refused, in words a reader can act on: its
			// command and exit code (the record's status) beside its
			// first line of stderr (reason).
			detail["command"] = hk.commandOf(sess, sess.Profile.Alias, hooks, d.HookID)
		}
		if req.Kind != "" {
			detail["kind"] = req.Kind
		}
		if err := hk.o.Rec.record(ctx, audit.Record{Kind: audit.KindHookDecision, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
			Target: req.ToolName, Decision: decision, Status: int64(d.ExitCode), Duration: d.Duration,
			Detail: audit.DetailJSON(detail)}); err != nil {
			return hook.Decision{Allow: false, Reason: "refused: the hook decision could not be recorded in the audit log"}, len(ran), hooks, false
		}
	}
	if !final.Allow {
		final.Reason = explainDenial(sess.Profile.Alias, hook.Decision{Allow: false, HookID: final.HookID, ExitCode: final.ExitCode, Reason: hk.scrub(sess, sess.Profile.Alias, final.Reason)}, hk.commandOf(sess, sess.Profile.Alias, hooks, final.HookID))
	}
	return final, len(ran), hooks, true
}

// reachable refuses (400) a hook whose command names a path the
// profile's agents can write: what it would load is theirs to choose. The
// same check runs again before every run, since the profile's paths can
// change after the hook is added.
func (hk *hooks) reachable(w http.ResponseWriter, h hook.Hook, prefix string) bool {
	p, err := hk.o.Profiles.Get(h.Profile)
	if err != nil {
		profileError(w, hk.o.Log, err)
		return false
	}
	if tree := hook.NamesAgentWritable(h.Shell, hk.agentWritable(p)); tree != "" {
		writeError(w, http.StatusBadRequest, "invalid_hook", prefix+"the hook names "+tree+", which the agents of profile "+h.Profile+
			" can write: a hook must not load anything an agent can write; move what it uses elsewhere (e.g. ~/.config/ringlet-hooks/) and name that path")
		return false
	}
	return true
}

// env is where the hooks of profile p run: HOME and working directory
// in the profile's hook HOME, which no sandbox may bind, and the trees
// its agents can write, so that a hook loading from one is refused.
func (hk *hooks) env(p profile.Profile) (hook.Env, error) {
	home := hk.o.Profiles.HookHome(p.Alias)
	if err := privatefile.EnsureDir(home); err != nil {
		return hook.Env{}, err
	}
	return hook.Env{Home: home, AgentWritable: hk.agentWritable(p)}, nil
}

// agentWritable lists what the agents and sandboxed MCP servers of
// profile p can write: its HOMEs, its workspace and read-write paths (as
// p has them and as the profile has them now), the workspace and paths of
// each live session (a profile without a workspace runs where it is
// started; a session keeps the settings it started with), and the
// read-write paths of its MCP servers; each also resolved.
func (hk *hooks) agentWritable(p profile.Profile) []string {
	trees := []string{hk.o.Profiles.Home(p.Alias), hk.o.Profiles.UnsandboxedHome(p.Alias), p.Workspace}
	trees = append(trees, p.ReadWrite...)
	if now, err := hk.o.Profiles.Get(p.Alias); err == nil {
		trees = append(append(trees, now.Workspace), now.ReadWrite...)
	}
	for _, sess := range hk.o.Sessions.list() {
		if sess.Profile.Alias == p.Alias {
			trees = append(append(trees, sess.workspace(), sess.Profile.Workspace), sess.Profile.ReadWrite...)
		}
	}
	if servers, err := hk.o.MCPStore.List(p.Alias); err == nil {
		for _, c := range servers {
			trees = append(trees, c.ReadWrite...)
		}
	}
	var out []string
	for _, t := range trees {
		if t == "" || !filepath.IsAbs(t) {
			continue
		}
		out = append(out, filepath.Clean(t))
		if real, err := filepath.EvalSymlinks(t); err == nil && real != filepath.Clean(t) {
			out = append(out, real)
		}
	}
	return out
}

// toolCallDetail is the detail of a tool.call record, as
// audit.DetailJSON writes {"event", "hooks", "reason", "via"}, without
// reflection when its strings are plain (every call through the MCP
// gateway writes one).
func toolCallDetail(event string, hooks int, reason, via string) json.RawMessage {
	if !plainJSON(event) || !plainJSON(reason) || !plainJSON(via) {
		return audit.DetailJSON(map[string]any{"event": event, "hooks": hooks, "reason": reason, "via": via})
	}
	b := make([]byte, 0, 64+len(event)+len(reason))
	b = append(append(append(b, `{"event":"`...), event...), `","hooks":`...)
	b = strconv.AppendInt(b, int64(hooks), 10)
	b = append(append(append(b, `,"reason":"`...), reason...), `","via":"`...)
	return append(append(b, via...), `"}`...)
}
