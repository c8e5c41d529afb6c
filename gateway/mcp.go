package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
	"github.com/neullabs/ringlet/version"
)

// mcpGateway is the daemon's side of the MCP gateway: /mcp for the admin
// token and session tokens, and /api/mcp/servers for the upstream servers.
type mcpGateway struct {
	o   mcpOptions
	srv *mcp.Server
	// lease is held on the trees of sandboxed servers until the gateway
	// stops.
	lease *sandbox.Lease

	apiOnce sync.Once
	api     http.Handler // the daemon's own routes, for admin tools

	toolsOnce sync.Once
	tools     http.Handler // the session tools' routes (onTools)

	auth authFlows // 'mcp auth' waiting for the browser
}

// mcpOptions configure the MCP gateway.
type mcpOptions struct {
	// Budgets counts a session's upstream tool calls against its tool-call
	// budgets; nil: none.
	Budgets *budgets
	// Paces are the profiles' rate limits; nil: none.
	Paces    *rateLimits
	Store    *mcp.Store
	Profiles *profile.Store
	// CatalogDir holds the catalogs a profile is validated against when
	// its MCP tools default changes.
	CatalogDir string
	// Keys are where HTTP upstreams' credentials come from.
	Keys KeyStore
	// Launch builds the sandboxes of stdio upstreams; StateDir holds the
	// lease on their trees.
	Launch   *launch.Builder
	StateDir string
	// Path is the PATH upstream servers run with.
	Path string
	// Hooks vets every tool call.
	Hooks   *hooks
	Rec     *recorder
	Metrics *metrics
	Life    *life
	Log     *slog.Logger
	// API is the daemon's routes, which admin tools call as the REST API;
	// Tools the routes of a session's own tools (built once, on first use).
	API, Tools func() http.Handler
}

// newMCPGateway builds the MCP gateway.
func newMCPGateway(o mcpOptions) *mcpGateway {
	g := &mcpGateway{o: o, lease: sandbox.NewLease(o.StateDir)}
	g.srv = mcp.New(mcp.Options{
		Store:  o.Store,
		Launch: g.launchFor,
		Credential: func(ref string) (string, error) {
			r, err := credentials.ParseRef(ref)
			if err != nil {
				return "", err
			}
			k, err := o.Keys.Get(r)
			if err != nil {
				return "", err
			}
			return k.Reveal(), nil
		},
		Path:      o.Path,
		OAuthKeys: o.Keys,
		Version:   version.Get().Version,
		Logger:    o.Log.With("component", "mcp"),
		OnFault:   g.fault,
		ToolsDefault: func(ctx context.Context, alias string) (string, error) {
			p, err := profileNow(ctx, o.Profiles, alias)
			return p.MCPToolsDefault, err
		},
		ToolSearch: func(alias string) (bool, error) {
			p, err := o.Profiles.Get(alias)
			return p.MCPToolSearch, err
		},
		OnSecrets: func(profile, server string, secrets map[string]string) error {
			return g.o.Rec.record(context.Background(), audit.Record{Kind: audit.KindMCPSecrets, Profile: profile, Actor: audit.ActorDaemon,
				Target: server, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"secrets": secrets})})
		},
		OnPin:          g.pinned,
		OnToolsChanged: g.toolsChanged,
		OnHeaderSecrets: func(profile, server string, headers map[string]string) error {
			return g.o.Rec.record(context.Background(), audit.Record{Kind: audit.KindMCPSecrets, Profile: profile, Actor: audit.ActorDaemon,
				Target: server, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"headers": headers})})
		},
	})
	o.Metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ringlet_mcp_sessions", Help: "Live MCP sessions on /mcp, every token.",
	}, func() float64 { return float64(g.srv.Sessions()) }))
	return g
}

// fault audits an upstream server's failure and its restart. Nothing
// waits on the record, so one that cannot be written is only logged.
func (g *mcpGateway) fault(f mcp.Fault) {
	detail := map[string]any{"reason": f.Reason, "error": f.Error, "failures": f.Failures, "retry_in": f.RetryIn.String()}
	if f.Tool != "" {
		detail["tool"] = f.Tool
	}
	_ = g.o.Rec.record(context.Background(), audit.Record{Kind: audit.KindMCPServerRestart, Profile: f.Profile, Actor: audit.ActorDaemon,
		Target: f.Server, Decision: audit.Error, Detail: audit.DetailJSON(detail)})
}

// pinned audits a server pinned without an approval; the pin is not
// stored without its record.
func (g *mcpGateway) pinned(e mcp.PinEvent) error {
	g.o.Metrics.security.pinChange(e.Profile, e.Server, "pinned")
	return g.o.Rec.record(context.Background(), audit.Record{Kind: audit.KindMCPPin, Profile: e.Profile, Actor: audit.ActorDaemon,
		Target: e.Server, Decision: audit.Allow, Detail: audit.DetailJSON(map[string]any{"reason": e.Reason, "identity": e.Identity, "tools": e.Tools,
			"prompts": e.Prompts, "resources": e.Resources, "templates": e.Templates})})
}

// toolsChanged audits a server serving what was not approved: by name
// and identity (its program's path and digest), never its variables.
func (g *mcpGateway) toolsChanged(c mcp.ToolsChanged) error {
	g.o.Metrics.security.pinChange(c.Profile, c.Server, "changed")
	return g.o.Rec.record(context.Background(), audit.Record{Kind: audit.KindMCPToolsChanged, Profile: c.Profile, Actor: audit.ActorDaemon,
		Target: c.Server, Decision: audit.Deny, Detail: audit.DetailJSON(pinSummary(c.Diff, map[string]any{"hidden": c.Hidden}))})
}

// pinSummary is what the audit log keeps of a diff: what changed, by
// name, without the definitions.
func pinSummary(d mcpserver.PinDiff, into map[string]any) map[string]any {
	added, changed, renamed := []string{}, []string{}, []string{}
	for _, t := range d.Tools {
		switch t.Change {
		case mcpserver.ChangeAdded:
			added = append(added, t.Name)
		case mcpserver.ChangeRenamed:
			renamed = append(renamed, t.From+" -> "+t.Name)
		default:
			changed = append(changed, t.Name)
		}
	}
	into["added"], into["changed"], into["renamed"], into["removed"], into["observed"] = added, changed, renamed, d.Removed, d.Observed
	if d.Identity != nil {
		into["identity"] = d.Identity
	}
	if len(d.Items) > 0 {
		// Prompts, resources and templates by kind and name, without
		// their text.
		items := make([]map[string]string, 0, len(d.Items))
		for _, i := range d.Items {
			items = append(items, map[string]string{"kind": i.Kind, "name": i.Name, "change": i.Change})
		}
		into["items"] = items
	}
	return into
}

// launchFor is where a profile's upstream servers run: HOME is the
// profile's sandboxed HOME, or its unsandboxed one for --no-sandbox
// servers; the working directory is its workspace (else that HOME).
func (g *mcpGateway) launchFor(alias string) (mcp.Launch, error) {
	p, err := g.o.Profiles.Get(alias)
	if err != nil {
		return mcp.Launch{}, err
	}
	l := mcp.Launch{Home: g.o.Profiles.Home(alias), UnsandboxedHome: g.o.Profiles.UnsandboxedHome(alias)}
	l.Dir, l.UnsandboxedDir = l.Home, l.UnsandboxedHome
	if fi, err := os.Stat(p.Workspace); p.Workspace != "" && err == nil && fi.IsDir() {
		l.Dir, l.UnsandboxedDir = p.Workspace, p.Workspace
	}
	if err := privatefile.EnsureDir(l.UnsandboxedHome); err != nil {
		return mcp.Launch{}, err
	}
	l.Sandbox = func(cfg mcpserver.Config, argv, env []string) ([]string, [][]byte, error) {
		// Servers run as long as the daemon does: it holds the lease on
		// their trees until the gateway stops (RunMCP).
		return g.o.Launch.MCPServer(launch.MCPServer{Profile: p, Home: l.Home, Dir: l.Dir, Config: cfg, Argv: argv, Env: env}, g.lease)
	}
	return l, nil
}

// run runs the MCP gateway until ctx ends, then stops the upstream
// servers it started and waits for them.
func (g *mcpGateway) run(ctx context.Context) error {
	defer g.lease.Release()
	defer g.auth.cancelAll()
	return g.srv.Run(ctx)
}

// forgetProfile stops a deleted profile's upstream servers and removes
// their definitions.
func (g *mcpGateway) forgetProfile(alias string) {
	var cfgs []mcpserver.Config
	if g.o.Store != nil {
		cfgs, _ = g.o.Store.List(alias) // none listed: none to forget
	}
	{
		for _, c := range cfgs {
			if c.URL != "" {
				g.forgetAuth(alias, c.Name)
			}
		}
	}
	if err := g.srv.ForgetProfile(alias); err != nil {
		g.o.Log.Error("could not remove the profile's MCP servers", "profile", alias, "err", err)
	}
}

// mcpBinding is what an MCP session id is bound to: a hash of the token
// that created it, so the id is worthless with any other token.
func mcpBinding(tok string) string {
	h := sha256.Sum256([]byte("ringlet-mcp-session\x00" + tok))
	return hex.EncodeToString(h[:])
}

// handleMCP hands a /mcp request to the gateway with its caller. The
// gate admitted the admin token or a live session token, from
// Authorization only (an MCP session id never authenticates); which one
// decides what the caller sees: Ringlet's controls, or the profile's
// tools and the session's own.
func (g *mcpGateway) handleMCP(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	caller := &mcp.Caller{Binding: mcpBinding(c.tok)}
	switch c.kind {
	case admin:
		caller.API, caller.Valid = g.adminAPI(r), c.gen.ctx
	case sessionCaller:
		caller.Profile, caller.Session = c.sess.Profile.Alias, c.sess.ID
		caller.API, caller.Vet, caller.Valid = g.sessionTools(c), g.vet(c.sess), c.sess.ctx
		caller.Refused = g.refused(c.sess)
		caller.RefusedAccess = g.refusedAccess(c.sess)
		caller.Access = g.access(c.sess)
		caller.Admit = g.admit(c.sess)
		// The tool control and the budgets of a call read the profile
		// once between them.
		r = r.WithContext(withProfileSnap(r.Context(), c.sess.Profile.Alias))
	default:
		panic("gateway: /mcp was reached by " + c.kind.String())
	}
	// Streams end when the token stops working or the daemon stops, and
	// its MCP sessions are freed then.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	stop := context.AfterFunc(caller.Valid, func() { cancel(context.Cause(caller.Valid)) })
	defer stop()
	stopClosing := context.AfterFunc(g.o.Life.closing, func() { cancel(errors.New("daemon stopping")) })
	defer stopClosing()
	// A budget that a tool call exhausts ends the session once the call
	// ran and its answer went out, not under it (which would cut the
	// call that fits the cap).
	ctx, killsAfter := withKillsAfter(ctx)
	defer killsAfter.answerThenRun(ctx, w)
	g.srv.ServeHTTP(killsAfter.writer(w), r.WithContext(mcp.WithCaller(ctx, caller)))
}

// admit paces a session's MCP tool calls by its profile's rate limits.
func (g *mcpGateway) admit(sess *session) func(context.Context, string, string) (time.Duration, string) {
	if g.o.Paces == nil {
		return nil
	}
	return func(ctx context.Context, method, tool string) (time.Duration, string) {
		r := g.o.Paces.admit(sess, paceToolCalls)
		if r == nil {
			return 0, ""
		}
		g.o.Paces.refused(ctx, sess, r, tool)
		if method == "tools/call" {
			g.o.Metrics.security.mcpCall(sess.Profile.Alias, tool, "rate_limited")
		}
		return r.retry, r.message()
	}
}

// killServers kills the running stdio servers of a profile whose session
// was killed; they start again at the next use.
func (g *mcpGateway) killServers(profile string) int { return g.srv.KillServers(profile) }

// adminAPI runs admin tools through the daemon's own routes, with the
// token, Host and peer of the MCP request, so they are validated, audited
// and refused exactly like the same REST call.
func (g *mcpGateway) adminAPI(outer *http.Request) http.Handler {
	authz, host, remote := outer.Header.Get("Authorization"), outer.Host, outer.RemoteAddr
	g.apiOnce.Do(func() { g.api = g.o.API() })
	api := g.api
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host, r.RemoteAddr = host, remote
		r.Header.Set("Authorization", authz)
		// The context still holds chi's routing state of the /mcp request;
		// the router would take this request for a sub-route of it. A kill
		// is recorded as the MCP tool's.
		ctx := context.WithValue(context.WithValue(r.Context(), chi.RouteCtxKey, nil), viaMCPKey{}, true)
		api.ServeHTTP(w, r.WithContext(ctx))
	})
}

// vet runs the profile's pre-tool-use hooks on an upstream tool call.
// hooks.check audits every hook decision and the call, and refuses the
// call when a record cannot be written.
func (g *mcpGateway) vet(sess *session) func(context.Context, string, json.RawMessage) mcp.Verdict {
	return func(ctx context.Context, tool string, input json.RawMessage) mcp.Verdict {
		charge := func(bool) {}
		if g.o.Budgets != nil {
			done, reason, ok := g.o.Budgets.toolCall(ctx, sess, tool)
			if !ok {
				g.o.Metrics.security.mcpCall(sess.Profile.Alias, tool, "budget")
				return mcp.Verdict{Allow: false, Reason: reason}
			}
			charge = done
		}
		link := g.o.Rec.traces.mcpCall(sess, mcp.ToolUseID(ctx), tool, input)
		ctx = withSpan(ctx, link.sp)
		if v, refused := g.bypassed(ctx, sess, tool, link); refused {
			charge(false)
			decision := "strict"
			if !v.Protocol {
				decision = "refused" // its record could not be written
			}
			g.o.Metrics.security.mcpCall(sess.Profile.Alias, tool, decision)
			return v
		}
		d, hooks := g.o.Hooks.check(ctx, sess, api.HookCheck{Event: hook.PreToolUse, ToolName: tool, ToolInput: input}, "mcp", false)
		charge(d.Allow)
		decision := "allow"
		if !d.Allow {
			decision = "deny"
		}
		g.o.Metrics.security.mcpCall(sess.Profile.Alias, tool, decision)
		v := mcp.Verdict{Allow: d.Allow, Reason: d.Reason}
		if d.Allow {
			v.Done = g.resulted(sess, tool, link.sp)
		}
		if d.Allow && slices.ContainsFunc(hooks, func(h hook.Hook) bool { return h.Event == hook.PostToolUse && h.Matches(hook.PostToolUse, tool) }) {
			v.After = func(ctx context.Context, output json.RawMessage) mcp.Verdict {
				d, _ := g.o.Hooks.check(ctx, sess, api.HookCheck{Event: hook.PostToolUse, ToolName: tool, ToolInput: input, ToolOutput: output}, "mcp", false)
				return mcp.Verdict{Allow: d.Allow, Reason: d.Reason}
			}
		}
		return v
	}
}

// resulted records what the upstream answered to an allowed tool call
// (tool.result): a child of the call's span, with the answer's size and
// status, never its content. It is written before the answer goes on,
// as every record is before what it describes; one that cannot be
// written withholds the answer.
func (g *mcpGateway) resulted(sess *session, tool string, sp spanCtx) func(context.Context, mcp.Outcome) error {
	if g.o.Rec.noResults.Load() {
		return nil
	}
	return func(ctx context.Context, o mcp.Outcome) error {
		decision := audit.Allow
		if o.Status != mcp.ResultOK {
			decision = audit.Error
		}
		detail := map[string]any{"via": "mcp", "status": o.Status}
		if o.Code != 0 {
			detail["code"] = o.Code
		}
		return g.o.Rec.record(withSpan(ctx, sp), audit.Record{Kind: audit.KindToolResult, Profile: sess.Profile.Alias, Session: sess.ID,
			Actor: sess.tokenID, Target: tool, Decision: decision, Duration: o.Duration, BytesOut: int64(o.Bytes), Detail: audit.DetailJSON(detail)})
	}
}

// bypassed checks that an MCP call of a Claude Code session was allowed
// by the PreToolUse check of its tool_use (Claude Code asks Ringlet's
// hooks before each tool call, MCP tools too; some paths, such as
// subagents, are known to skip it). A call with none is recorded
// (hook.bypass) and counted; under the profile's strict hooks it is
// refused with a JSON-RPC error, and refused is true.
func (g *mcpGateway) bypassed(ctx context.Context, sess *session, tool string, link mcpLink) (v mcp.Verdict, refused bool) {
	t := g.o.Rec.traces
	if t == nil || t.off.Load() || sess.Agent.ID != "claude" || link.allowed {
		return mcp.Verdict{}, false
	}
	strict := t.strict(sess.Profile.Alias)
	why := "no tool_use of the model's answers matches this call"
	detail := map[string]any{"seen_by": "mcp", "strict": strict}
	if link.use != nil {
		why = "the model's tool_use " + link.use.ID + " for it never passed Claude Code's PreToolUse check"
		detail["tool_use_id"] = link.use.ID
	}
	detail["reason"] = why
	decision := audit.Allow
	if strict {
		decision = audit.Deny
		// The refusal is the call's record: it takes the call's place
		// under its tool_use.
		sp := link.sp
		sp.owner = audit.KindHookBypass
		ctx = withSpan(ctx, sp)
	}
	t.count("mcp", decision)
	err := g.o.Rec.record(ctx, audit.Record{Kind: audit.KindHookBypass, Profile: sess.Profile.Alias, Session: sess.ID, Actor: sess.tokenID,
		Target: tool, Decision: decision, Detail: audit.DetailJSON(detail)})
	if !strict {
		if err != nil {
			return mcp.Verdict{Allow: false, Reason: "refused: the tool call could not be recorded in the audit log"}, true
		}
		return mcp.Verdict{}, false
	}
	return mcp.Verdict{Allow: false, Protocol: true, Reason: "ringlet: refused: profile " + sess.Profile.Alias + " has strict hooks and this MCP call of " + tool +
		" was not allowed by a PreToolUse check (" + why + "). Run the tool from the agent so its hook sees it, or turn strict hooks off: ringlet profiles set " +
		sess.Profile.Alias + " --strict-hooks=false"}, true
}

func mcpError(w http.ResponseWriter, log *slog.Logger, err error) {
	f := mcpFailOf(log, err)
	writeError(w, f.status, f.code, f.msg)
}

// mcpFail is a refusal of an MCP operation as the REST API answers it:
// its status, code and message.
type mcpFail struct {
	status    int
	code, msg string
}

func (e *mcpFail) Error() string { return e.msg }

// mcpFailOf is err as the REST API answers it: an *mcpFail as itself,
// an error of the MCP gateway by what it is.
func mcpFailOf(log *slog.Logger, err error) *mcpFail {
	var f *mcpFail
	switch {
	case errors.As(err, &f):
		return f
	case errors.Is(err, mcp.ErrNotFound):
		return &mcpFail{http.StatusNotFound, "not_found", err.Error()}
	case errors.Is(err, mcp.ErrExists):
		return &mcpFail{http.StatusConflict, "exists", err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &mcpFail{http.StatusGatewayTimeout, "timeout", err.Error()}
	default:
		log.Error("MCP server operation failed", "err", err)
		return &mcpFail{http.StatusInternalServerError, "internal", err.Error()}
	}
}

// auditFail is an action refused because its record could not be
// written, as writeAuditError answers it.
func auditFail(err error) *mcpFail {
	return &mcpFail{http.StatusServiceUnavailable, "audit_unavailable", "refused: the action could not be recorded in the audit log (" + rootCause(err) + ")"}
}

func (g *mcpGateway) handleMCPList(w http.ResponseWriter, r *http.Request) {
	alias := r.URL.Query().Get("profile")
	if !knownProfile(w, g.o.Log, g.o.Profiles, alias) {
		return
	}
	out, err := g.srv.Servers(alias)
	if err != nil {
		mcpError(w, g.o.Log, err)
		return
	}
	for i, s := range out {
		if s.URL != "" {
			continue
		}
		// As a start now would find it: installs change.
		res, err := g.o.Launch.MCPRuntime(s.Config, s.Command[0], s.SearchPath(g.o.Path))
		var nf *toolchain.NotFoundError
		switch {
		case err == nil:
			out[i].Runtime = res
		case s.Error == "" && s.State != mcp.StateRunning && (!s.NoSandbox || errors.As(err, &nf)):
			// What its next start would say. Unconfined, a shim without
			// an answer still runs, as in the user's shell.
			out[i].Error = s.ShimFix(err, alias, false).Error()
		}
	}
	writeJSON(w, http.StatusOK, api.MCPServerList{Servers: out})
}

func (g *mcpGateway) handleMCPAdd(w http.ResponseWriter, r *http.Request) {
	var req api.MCPServerRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !knownProfile(w, g.o.Log, g.o.Profiles, req.Profile) {
		return
	}
	c := mcpserver.Config{Name: req.Name, Command: req.Command, URL: req.URL, Credential: req.Credential, Env: req.Env, Secrets: req.Secrets,
		Headers: req.Headers, HeaderSecrets: req.HeaderSecrets, ReadOnly: req.ReadOnly, ReadWrite: req.ReadWrite, Network: req.Network, NoSandbox: req.NoSandbox, Path: req.Path, Shims: req.Shims}
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_mcp_server", "timeout must be a duration such as 60s")
			return
		}
		c.Timeout = d
	}
	if err := c.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
		return
	}
	for _, p := range append(append([]string{}, c.ReadOnly...), c.ReadWrite...) {
		if _, err := os.Stat(p); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_mcp_server", "--ro/--rw path "+p+" does not exist here")
			return
		}
	}
	if err := g.o.Launch.CheckOwn(g.o.Profiles.Home(req.Profile), append(append([]string{}, c.ReadOnly...), c.ReadWrite...)...); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
		return
	}
	if !g.secretsResolve(w, "--secret", c.Secrets) || !g.secretsResolve(w, "--header-secret", headerRefs(c.HeaderSecrets)) {
		return
	}
	var runtime *toolchain.Resolution
	if c.URL == "" {
		// Refused now rather than failing at every start: a program that
		// is not there, a shim without the program it stands for, what
		// would show Ringlet's own files.
		res, err := g.o.Launch.MCPRuntime(c, c.Command[0], c.SearchPath(g.o.Path))
		var nf *toolchain.NotFoundError
		switch {
		case err == nil:
			// Only the answers the command needs are kept.
			c.Shims, runtime = res.Shims, res
		case !c.NoSandbox || errors.As(err, &nf):
			writeError(w, http.StatusBadRequest, "invalid_mcp_server", c.ShimFix(err, req.Profile, true).Error())
			return
		default:
			// Unconfined, a shim runs as it would in the user's shell.
			g.o.Log.Warn("MCP server added without a sandbox; its program is not resolved", "profile", req.Profile, "server", c.Name, "err", err)
		}
		if c.NoSandbox || req.Imported {
			if err := g.unconfinedRuns(req.Profile, c, runtime); err != nil {
				writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
				return
			}
		}
	}
	detail := map[string]any{"command": c.Command, "url": c.URL, "credential": c.Credential, "timeout": c.Timeout.String()}
	if req.Imported {
		detail["imported"] = true
	}
	if c.URL != "" {
		// Names and references only, as for a stdio server's variables.
		detail["headers"], detail["header_secrets"] = c.HeaderNames(), c.HeaderSecrets
	}
	if c.URL == "" {
		detail["sandbox"] = !c.NoSandbox
		detail["ro"], detail["rw"], detail["network"] = c.ReadOnly, c.ReadWrite, c.Network
		// Names and references only: a value is never recorded.
		detail["env"], detail["secrets"] = slices.Sorted(maps.Keys(c.Env)), c.Secrets
		if runtime != nil {
			detail["program"], detail["runtime"], detail["shims"] = runtime.Program, runtime.Binds, runtime.Shims
		}
	}
	if !g.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPAdd, Profile: req.Profile, Actor: audit.ActorAdmin, Target: c.Name, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}) {
		return
	}
	if c.NoSandbox {
		g.o.Log.Warn("MCP server added without a sandbox: it runs with the daemon's privileges", "profile", req.Profile, "server", c.Name)
	}
	added, err := g.srv.AddServer(req.Profile, c)
	if err != nil {
		mcpError(w, g.o.Log, err)
		return
	}
	g.o.Log.Info("MCP server added", "profile", req.Profile, "server", added.Name)
	writeJSON(w, http.StatusCreated, api.MCPServerAdded{Config: added, Runtime: runtime})
}

// unconfinedRuns refuses a server without a sandbox whose command, its
// program or an interpreter on the way names a path the profile's agents
// can write (its HOMEs, workspace, read-write paths): the agent would
// choose what runs with the user's privileges. The rule of hooks.
func (g *mcpGateway) unconfinedRuns(alias string, c mcpserver.Config, res *toolchain.Resolution) error {
	p, err := g.o.Profiles.Get(alias)
	if err != nil {
		return err
	}
	words := append([]string{}, c.Command...)
	// A variable can run what it names too (LD_PRELOAD, NODE_OPTIONS,
	// PYTHONPATH).
	for _, name := range slices.Sorted(maps.Keys(c.Env)) {
		words = append(words, c.Env[name])
	}
	if res != nil {
		for _, s := range res.Steps {
			words = append(words, s.Path)
		}
	}
	if tree := hook.NamesAgentWritable(strings.Join(words, " "), g.o.Hooks.agentWritable(p)); tree != "" {
		if !c.NoSandbox {
			return fmt.Errorf("MCP server %s would run or read what lies in %s (its command or a variable names it), which the agents of profile %s can write: an imported server must not run what an agent can change (an agent may have written its configuration); install it elsewhere, or add it yourself with ringlet mcp add", c.Name, tree, alias)
		}
		return fmt.Errorf("MCP server %s would run or read what lies in %s (its command or a variable names it), which the agents of profile %s can write: a server without a sandbox must not run what an agent can change; install it elsewhere, or add it without --no-sandbox", c.Name, tree, alias)
	}
	return nil
}

// secretsResolve checks that each secret names a key in the credential
// store, so that a server is not stored to fail at every start; when not,
// it has answered with the command that stores it.
func (g *mcpGateway) secretsResolve(w http.ResponseWriter, flag string, secrets map[string]string) bool {
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		ref, err := credentials.ParseRef(secrets[name])
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_mcp_server", fmt.Sprintf("%s %s: %v", flag, name, err))
			return false
		}
		_, err = g.o.Keys.Get(ref)
		switch {
		case errors.Is(err, credentials.ErrNotFound):
			writeError(w, http.StatusBadRequest, "invalid_mcp_server", fmt.Sprintf("%s %s: no key %s in the credential store; store it first with 'ringlet keychain set %s %s'", flag, name, ref, ref.Provider, ref.Alias))
			return false
		case err != nil:
			keychainError(w, g.o.Log, fmt.Errorf("%s %s: %w", flag, name, err))
			return false
		}
	}
	return true
}

// headerRefs are the references of header secrets ("[SCHEME ]REF"),
// by header; Validate has checked them.
func headerRefs(secrets map[string]string) map[string]string {
	out := make(map[string]string, len(secrets))
	for name, v := range secrets {
		_, ref, _ := mcpserver.HeaderSecretRef(v) // checked by Validate
		out[name] = ref
	}
	return out
}

// handleMCPSet changes a server's variables ('mcp set'); a run of it is
// restarted with the new ones. The change is audited first, by names and
// references only.
func (g *mcpGateway) handleMCPSet(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := g.serverParams(w, r)
	if !ok {
		return
	}
	var ch api.MCPServerChange
	if !decodeJSON(w, r, &ch) {
		return
	}
	if ch.Empty() {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", "nothing to change: give --env, --unset-env, --secret or --unset-secret (a stdio server), --header, --unset-header, --header-secret or --unset-header-secret (an HTTP server)")
		return
	}
	cfgs, err := g.o.Store.List(alias)
	if err != nil {
		mcpError(w, g.o.Log, err)
		return
	}
	i := slices.IndexFunc(cfgs, func(c mcpserver.Config) bool { return c.Name == name })
	if i < 0 {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("profile %s has no MCP server %s ('ringlet mcp list %s' shows them)", alias, name, alias))
		return
	}
	// What the change makes of the server, checked as an add would be.
	c := cfgs[i]
	c.Env, c.Secrets = maps.Clone(c.Env), maps.Clone(c.Secrets)
	err = ch.Apply(&c)
	if err == nil {
		err = c.Validate()
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
		return
	}
	if !g.secretsResolve(w, "--secret", c.Secrets) || !g.secretsResolve(w, "--header-secret", headerRefs(c.HeaderSecrets)) {
		return
	}
	if c.NoSandbox {
		var runtime *toolchain.Resolution
		if res, err := g.o.Launch.MCPRuntime(c, c.Command[0], c.SearchPath(g.o.Path)); err == nil {
			runtime = res
		}
		if err := g.unconfinedRuns(alias, c, runtime); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
			return
		}
	}
	detail := map[string]any{"set_env": slices.Sorted(maps.Keys(ch.Env)), "unset_env": ch.UnsetEnv, "set_secrets": ch.Secrets, "unset_secrets": ch.UnsetSecrets}
	if ch.Secrets != nil {
		// As stored: the references in their full form.
		full := map[string]string{}
		for n := range ch.Secrets {
			full[n] = c.Secrets[n]
		}
		detail["set_secrets"] = full
	}
	if len(ch.Headers)+len(ch.UnsetHeaders)+len(ch.HeaderSecrets)+len(ch.UnsetHeaderSecrets) > 0 {
		// Plain header values may be keys given by mistake: names only.
		set := []string{}
		for n := range ch.Headers {
			set = append(set, http.CanonicalHeaderKey(n))
		}
		slices.Sort(set)
		full := map[string]string{}
		for n := range ch.HeaderSecrets {
			n = http.CanonicalHeaderKey(n)
			full[n] = c.HeaderSecrets[n]
		}
		detail["set_headers"], detail["unset_headers"], detail["set_header_secrets"], detail["unset_header_secrets"] = set, ch.UnsetHeaders, full, ch.UnsetHeaderSecrets
	}
	if !g.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPUpdate, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}) {
		return
	}
	changed, err := g.srv.ChangeServer(alias, name, ch.Apply)
	if err != nil {
		// The record above said allow; say it did not happen.
		_ = g.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindMCPUpdate, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
		if errors.Is(err, mcp.ErrNotFound) {
			mcpError(w, g.o.Log, err)
		} else {
			writeError(w, http.StatusConflict, "conflict", err.Error())
		}
		return
	}
	g.o.Log.Info("MCP server changed", "profile", alias, "server", name, "variables", changed.EnvNames(), "headers", changed.HeaderNames())
	writeJSON(w, http.StatusOK, changed)
}

// serverParams are the profile and server of a /api/mcp/servers/{profile}/{name}
// route, checked; when not ok it has answered.
func (g *mcpGateway) serverParams(w http.ResponseWriter, r *http.Request) (alias, name string, ok bool) {
	alias, name = chi.URLParam(r, "profile"), chi.URLParam(r, "name")
	if !knownProfile(w, g.o.Log, g.o.Profiles, alias) {
		return "", "", false
	}
	if err := mcpserver.ValidateName(name); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
		return "", "", false
	}
	return alias, name, true
}

func (g *mcpGateway) handleMCPRemove(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := g.serverParams(w, r)
	if !ok {
		return
	}
	if !g.o.Rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPRemove, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Allow}) {
		return
	}
	removed, err := g.srv.RemoveServer(alias, name)
	if err != nil {
		// The record above said allow; say it did not happen.
		_ = g.o.Rec.record(r.Context(), audit.Record{Kind: audit.KindMCPRemove, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
		mcpError(w, g.o.Log, err)
		return
	}
	g.forgetAuth(alias, name)
	g.o.Log.Info("MCP server removed", "profile", alias, "server", name)
	writeJSON(w, http.StatusOK, removed)
}

// handleMCPApprove shows how a server differs from what was approved
// and approves it: all of it, or the named tools. With dry_run it only
// shows; with observed, it approves only if the server serves exactly
// what was shown then. What is approved is audited first.
func (g *mcpGateway) handleMCPApprove(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := g.serverParams(w, r)
	if !ok {
		return
	}
	var req api.MCPApproveRequest
	if r.ContentLength != 0 && !decodeJSON(w, r, &req) {
		return
	}
	out, err := g.approve(r.Context(), alias, name, req, "")
	if err != nil {
		mcpError(w, g.o.Log, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// approve is the one path that shows and approves a server's changes,
// for the REST API and the dashboard alike (handleMCPApprove); by names
// who asked in its audit record when it is not the API ("dashboard").
// A refusal is an *mcpFail, or an error of the MCP gateway (mcpFailOf).
func (g *mcpGateway) approve(ctx context.Context, alias, name string, req api.MCPApproveRequest, by string) (api.MCPApproved, error) {
	for _, t := range append(slices.Clone(req.Tools), req.Prompts...) {
		if !validToolName(t) {
			return api.MCPApproved{}, &mcpFail{http.StatusBadRequest, "bad_request", fmt.Sprintf("invalid tool or prompt name %q: 1 to 128 letters, digits, '_', '-', '.'", t)}
		}
	}
	for _, u := range req.Resources {
		if u == "" || len(u) > 8192 || strings.ContainsFunc(u, unicode.IsControl) {
			return api.MCPApproved{}, &mcpFail{http.StatusBadRequest, "bad_request", fmt.Sprintf("invalid resource URI %q", u)}
		}
	}
	sel := req.Selection()
	// Within the CLI client's 30s: a server that is slower to start
	// answers 504 and can be approved once it runs.
	ctx, cancel := context.WithTimeout(ctx, 25*time.Second)
	defer cancel()
	observed, diff, err := g.srv.Pending(ctx, alias, name)
	if err != nil {
		return api.MCPApproved{}, err
	}
	out := api.MCPApproved{Profile: alias, Server: name, Tools: len(observed.Tools), Diff: diff, DryRun: req.DryRun, Approved: []string{}}
	if req.DryRun {
		return out, nil
	}
	if req.Observed != "" && req.Observed != diff.Observed {
		return api.MCPApproved{}, &mcpFail{http.StatusConflict, "changed",
			fmt.Sprintf("MCP server %s changed again since its diff was shown; run 'ringlet mcp approve %s %s' again", name, alias, name)}
	}
	// What the approval takes: the named tools, else every change.
	approved := sel
	if len(approved) == 0 {
		approved = approvedNames(diff)
	}
	if err := diff.CheckApprove(sel); err != nil {
		return api.MCPApproved{}, &mcpFail{http.StatusBadRequest, "bad_request", err.Error()}
	}
	detail := pinSummary(diff, map[string]any{"approved": approved, "tools": len(observed.Tools)})
	if by != "" {
		detail["by"] = by
	}
	if err := g.o.Rec.record(ctx, audit.Record{Kind: audit.KindMCPApprove, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}); err != nil {
		return api.MCPApproved{}, auditFail(err)
	}
	if err := g.srv.Approve(alias, name, observed, sel); err != nil {
		failed := map[string]any{"error": err.Error()}
		if by != "" {
			failed["by"] = by
		}
		_ = g.o.Rec.record(ctx, audit.Record{Kind: audit.KindMCPApprove, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Error,
			Detail: audit.DetailJSON(failed)}) // the refusal is answered either way
		var ae *mcpserver.ApproveError
		if errors.As(err, &ae) {
			return api.MCPApproved{}, &mcpFail{http.StatusBadRequest, "bad_request", err.Error()}
		}
		return api.MCPApproved{}, err
	}
	g.o.Log.Info("MCP server approved", "profile", alias, "server", name, "approved", len(approved), "by", by)
	out.Approved = approved
	return out, nil
}

// approvedNames are the tools an approval of the whole diff takes.
func approvedNames(d mcpserver.PinDiff) []string {
	out := []string{}
	for _, t := range d.Tools {
		out = append(out, t.Name)
	}
	out = append(out, d.Removed...)
	for _, i := range d.Items {
		out = append(out, i.Ref())
	}
	return out
}

func validToolName(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// sessionTools answers the session tools of c, a session caller of /mcp,
// from the onTools routes.
func (g *mcpGateway) sessionTools(c caller) http.Handler {
	g.toolsOnce.Do(func() { g.tools = g.o.Tools() })
	tools := g.tools
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The context still holds chi's routing state of the /mcp
		// request; the router would take this request for a sub-route.
		ctx := context.WithValue(r.Context(), chi.RouteCtxKey, nil)
		tools.ServeHTTP(w, r.WithContext(withCaller(ctx, c)))
	})
}
