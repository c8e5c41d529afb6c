package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

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
	"github.com/neullabs/ringlet/version"
)

// mcpGateway is the daemon's side of the MCP gateway: /mcp for the admin
// token and session tokens, and /api/mcp/servers for the upstream servers.
type mcpGateway struct {
	srv *mcp.Server

	apiOnce sync.Once
	api     http.Handler // the daemon's own routes, for admin tools

	toolsOnce sync.Once
	tools     http.Handler // the session tools' routes (onTools)
}

// newMCP builds the MCP gateway.
func (s *Server) newMCP() *mcpGateway {
	srv := mcp.New(mcp.Options{
		Store:  s.opts.MCPStore,
		Launch: s.mcpLaunch,
		Credential: func(ref string) (string, error) {
			r, err := credentials.ParseRef(ref)
			if err != nil {
				return "", err
			}
			k, err := s.opts.Keys.Get(r)
			if err != nil {
				return "", err
			}
			return k.Reveal(), nil
		},
		Path:    s.opts.MCPPath,
		Version: version.Get().Version,
		Logger:  s.log.With("component", "mcp"),
		OnFault: s.mcpFault,
	})
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ringlet_mcp_sessions", Help: "Live MCP sessions on /mcp, every token.",
	}, func() float64 { return float64(srv.Sessions()) }))
	return &mcpGateway{srv: srv}
}

// mcpFault audits an upstream server's failure and its restart. Nothing
// waits on the record, so one that cannot be written is only logged.
func (s *Server) mcpFault(f mcp.Fault) {
	detail := map[string]any{"reason": f.Reason, "error": f.Error, "failures": f.Failures, "retry_in": f.RetryIn.String()}
	if f.Tool != "" {
		detail["tool"] = f.Tool
	}
	_ = s.rec.record(context.Background(), audit.Record{Kind: audit.KindMCPServerRestart, Profile: f.Profile, Actor: audit.ActorDaemon,
		Target: f.Server, Decision: audit.Error, Detail: audit.DetailJSON(detail)})
}

// mcpLaunch is where a profile's upstream servers run: HOME is the
// profile's sandboxed HOME, or its unsandboxed one for --no-sandbox
// servers; the working directory is its workspace (else that HOME).
func (s *Server) mcpLaunch(alias string) (mcp.Launch, error) {
	p, err := s.opts.Profiles.Get(alias)
	if err != nil {
		return mcp.Launch{}, err
	}
	l := mcp.Launch{Home: s.opts.Profiles.Home(alias), UnsandboxedHome: s.opts.Profiles.UnsandboxedHome(alias)}
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
		return s.opts.Launch.MCPServer(launch.MCPServer{Profile: p, Home: l.Home, Dir: l.Dir, Config: cfg, Argv: argv, Env: env}, s.mcpLease)
	}
	return l, nil
}

// RunMCP runs the MCP gateway until ctx ends, then stops the upstream
// servers it started and waits for them.
func (s *Server) RunMCP(ctx context.Context) error {
	defer s.mcpLease.Release()
	return s.mcp.srv.Run(ctx)
}

// forgetMCPProfile stops a deleted profile's upstream servers and removes
// their definitions.
func (s *Server) forgetMCPProfile(alias string) {
	if err := s.mcp.srv.ForgetProfile(alias); err != nil {
		s.log.Error("could not remove the profile's MCP servers", "profile", alias, "err", err)
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
func (s *Server) handleMCP(w http.ResponseWriter, r *http.Request) {
	c := callerFrom(r.Context())
	caller := &mcp.Caller{Binding: mcpBinding(c.tok)}
	switch c.kind {
	case admin:
		caller.API, caller.Valid = s.adminAPI(r), c.gen.ctx
	case sessionCaller:
		caller.Profile, caller.Session = c.sess.Profile.Alias, c.sess.ID
		caller.API, caller.Vet, caller.Valid = s.sessionTools(c), s.mcpVet(c.sess), c.sess.ctx
	default:
		panic("gateway: /mcp was reached by " + c.kind.String())
	}
	// Streams end when the token stops working or the daemon stops, and
	// its MCP sessions are freed then.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	stop := context.AfterFunc(caller.Valid, func() { cancel(context.Cause(caller.Valid)) })
	defer stop()
	stopClosing := context.AfterFunc(s.life.closing, func() { cancel(errors.New("daemon stopping")) })
	defer stopClosing()
	s.mcp.srv.ServeHTTP(w, r.WithContext(mcp.WithCaller(ctx, caller)))
}

// adminAPI runs admin tools through the daemon's own routes, with the
// token, Host and peer of the MCP request, so they are validated, audited
// and refused exactly like the same REST call.
func (s *Server) adminAPI(outer *http.Request) http.Handler {
	authz, host, remote := outer.Header.Get("Authorization"), outer.Host, outer.RemoteAddr
	s.mcp.apiOnce.Do(func() { s.mcp.api = s.Handler() })
	api := s.mcp.api
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host, r.RemoteAddr = host, remote
		r.Header.Set("Authorization", authz)
		// The context still holds chi's routing state of the /mcp request;
		// the router would take this request for a sub-route of it.
		api.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, nil)))
	})
}

// mcpVet runs the profile's pre-tool-use hooks on an upstream tool call.
// checkHooks audits every hook decision and the call, and refuses the
// call when a record cannot be written.
func (s *Server) mcpVet(sess *session) func(context.Context, string, json.RawMessage) mcp.Verdict {
	return func(ctx context.Context, tool string, input json.RawMessage) mcp.Verdict {
		d, hooks := s.hooks.check(ctx, sess, api.HookCheck{Event: hook.PreToolUse, ToolName: tool, ToolInput: input}, "mcp")
		v := mcp.Verdict{Allow: d.Allow, Reason: d.Reason}
		if d.Allow && slices.ContainsFunc(hooks, func(h hook.Hook) bool { return h.Event == hook.PostToolUse && h.Matches(hook.PostToolUse, tool) }) {
			v.After = func(ctx context.Context, output json.RawMessage) mcp.Verdict {
				d, _ := s.hooks.check(ctx, sess, api.HookCheck{Event: hook.PostToolUse, ToolName: tool, ToolInput: input, ToolOutput: output}, "mcp")
				return mcp.Verdict{Allow: d.Allow, Reason: d.Reason}
			}
		}
		return v
	}
}

func mcpError(w http.ResponseWriter, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, mcp.ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, mcp.ErrExists):
		writeError(w, http.StatusConflict, "exists", err.Error())
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		writeError(w, http.StatusGatewayTimeout, "timeout", err.Error())
	default:
		log.Error("MCP server operation failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (s *Server) handleMCPList(w http.ResponseWriter, r *http.Request) {
	alias := r.URL.Query().Get("profile")
	if !knownProfile(w, s.log, s.opts.Profiles, alias) {
		return
	}
	out, err := s.mcp.srv.Servers(alias)
	if err != nil {
		mcpError(w, s.log, err)
		return
	}
	writeJSON(w, http.StatusOK, api.MCPServerList{Servers: out})
}

func (s *Server) handleMCPAdd(w http.ResponseWriter, r *http.Request) {
	var req api.MCPServerRequest
	if !decodeJSON(w, r, &req) {
		return
	}
	if !knownProfile(w, s.log, s.opts.Profiles, req.Profile) {
		return
	}
	c := mcpserver.Config{Name: req.Name, Command: req.Command, URL: req.URL, Credential: req.Credential,
		ReadOnly: req.ReadOnly, ReadWrite: req.ReadWrite, Network: req.Network, NoSandbox: req.NoSandbox}
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
	if err := s.exposesOwn(req.Profile, append(append([]string{}, c.ReadOnly...), c.ReadWrite...)...); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
		return
	}
	detail := map[string]any{"command": c.Command, "url": c.URL, "credential": c.Credential, "timeout": c.Timeout.String()}
	if c.URL == "" {
		detail["sandbox"] = !c.NoSandbox
		detail["ro"], detail["rw"], detail["network"] = c.ReadOnly, c.ReadWrite, c.Network
	}
	if !s.rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPAdd, Profile: req.Profile, Actor: audit.ActorAdmin, Target: c.Name, Decision: audit.Allow,
		Detail: audit.DetailJSON(detail)}) {
		return
	}
	if c.NoSandbox {
		s.log.Warn("MCP server added without a sandbox: it runs with the daemon's privileges", "profile", req.Profile, "server", c.Name)
	}
	added, err := s.mcp.srv.AddServer(req.Profile, c)
	if err != nil {
		mcpError(w, s.log, err)
		return
	}
	s.log.Info("MCP server added", "profile", req.Profile, "server", added.Name)
	writeJSON(w, http.StatusCreated, added)
}

// mcpServerParams are the profile and server of a /api/mcp/servers/{profile}/{name}
// route, checked; when not ok it has answered.
func (s *Server) mcpServerParams(w http.ResponseWriter, r *http.Request) (alias, name string, ok bool) {
	alias, name = chi.URLParam(r, "profile"), chi.URLParam(r, "name")
	if !knownProfile(w, s.log, s.opts.Profiles, alias) {
		return "", "", false
	}
	if err := mcpserver.ValidateName(name); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_mcp_server", err.Error())
		return "", "", false
	}
	return alias, name, true
}

func (s *Server) handleMCPRemove(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := s.mcpServerParams(w, r)
	if !ok {
		return
	}
	if !s.rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPRemove, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Allow}) {
		return
	}
	removed, err := s.mcp.srv.RemoveServer(alias, name)
	if err != nil {
		// The record above said allow; say it did not happen.
		_ = s.rec.record(r.Context(), audit.Record{Kind: audit.KindMCPRemove, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Error,
			Detail: audit.DetailJSON(map[string]any{"error": err.Error()})})
		mcpError(w, s.log, err)
		return
	}
	s.log.Info("MCP server removed", "profile", alias, "server", name)
	writeJSON(w, http.StatusOK, removed)
}

// handleMCPApprove re-pins a server's current tools, showing again those
// hidden because they changed. What is approved is audited first.
func (s *Server) handleMCPApprove(w http.ResponseWriter, r *http.Request) {
	alias, name, ok := s.mcpServerParams(w, r)
	if !ok {
		return
	}
	// Within the CLI client's 30s: a server that is slower to start
	// answers 504 and can be approved once it runs.
	ctx, cancel := context.WithTimeout(r.Context(), 25*time.Second)
	defer cancel()
	current, changed, err := s.mcp.srv.Pending(ctx, alias, name)
	if err != nil {
		mcpError(w, s.log, err)
		return
	}
	if changed == nil {
		changed = []string{}
	}
	hashes := map[string]string{}
	for _, t := range changed {
		hashes[t] = current[t]
	}
	if !s.rec.recordOr503(w, r, audit.Record{Kind: audit.KindMCPApprove, Profile: alias, Actor: audit.ActorAdmin, Target: name, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"changed": changed, "hashes": hashes, "tools": len(current)})}) {
		return
	}
	if err := s.mcp.srv.Approve(alias, name, current); err != nil {
		mcpError(w, s.log, err)
		return
	}
	s.log.Info("MCP server tools approved", "profile", alias, "server", name, "changed", len(changed))
	writeJSON(w, http.StatusOK, api.MCPApproved{Approved: changed, Profile: alias, Server: name, Tools: len(current)})
}
