// Package mcp is Ringlet's MCP gateway, built on github.com/mark3labs/mcp-go:
// one Streamable HTTP endpoint with two audiences that never meet. The
// admin token sees Ringlet's own controls as tools; a session token sees
// read-only tools about its own session and the tools of its profile's
// upstream MCP servers, which this package runs as children of the daemon
// and aggregates as <server>__<tool>. Every upstream call is vetted (the
// profile's pre-tool-use hooks) before a byte reaches the upstream.
//
// The gateway authenticates every request and says who the caller is
// (WithCaller); this package never sees or checks a token.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/mcp/jsonrpc"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/mcp/oauth"
)

// Launch is where a profile's upstream servers run.
type Launch struct {
	Home string // the HOME of sandboxed servers: the profile's
	Dir  string // their working directory
	// UnsandboxedHome and UnsandboxedDir are the HOME and working
	// directory of servers added with --no-sandbox: the profile's
	// unsandboxed HOME, never one a sandbox can write, and the workspace
	// (else that HOME).
	UnsandboxedHome, UnsandboxedDir string
	// Sandbox returns the command line that runs argv (with env, in Dir)
	// inside the profile's sandbox for cfg, and what to pass on file
	// descriptors 3, 4, ... (none for nothing). Nil means servers cannot
	// be sandboxed here: only those added with --no-sandbox start.
	Sandbox func(cfg mcpserver.Config, argv, env []string) (cmd []string, files [][]byte, err error)
}

// Options configure a Server. Zero values take the documented defaults.
type Options struct {
	// Store holds each profile's upstream servers; nil means none.
	Store *Store
	// Launch says where a profile's upstream servers run. Required with
	// Store.
	Launch func(profile string) (Launch, error)
	// Path is the PATH of upstream servers. Default /usr/local/bin:/usr/bin:/bin.
	Path string
	// Credential returns the key stored under provider/alias, for HTTP
	// servers added with --credential. Nil means none can be used.
	Credential func(ref string) (string, error)
	// OAuthKeys is where the OAuth authorizations of HTTP servers are
	// kept ('mcp auth'): the token of one is sent to it and refreshed.
	// Nil means none is sent.
	OAuthKeys oauth.Keys
	// Version is the server version reported to clients.
	Version string
	// MaxBody bounds one posted message. Default jsonrpc.DefaultMaxBody.
	MaxBody int64
	// StartTimeout bounds starting an upstream and listing its tools.
	// Default 30s.
	StartTimeout time.Duration
	// SessionIdleTTL ends MCP sessions idle this long. Default 1h.
	SessionIdleTTL time.Duration
	// Logger receives the gateway's log. Default: discard.
	Logger *slog.Logger
	// OnFault is told of every upstream server fault (a crash, a call
	// timeout, a failed start), for the audit log. Nil: none.
	OnFault func(Fault)
	// OnSecrets is told, before a stdio server starts, which secrets it
	// is given (variable name to provider/alias, never a value), for the
	// audit log. An error refuses the start: a secret is never given
	// without its record. Nil: servers with secrets do not start.
	OnSecrets func(profile, server string, secrets map[string]string) error
	// OnHeaderSecrets is told, before the gateway connects to an HTTP
	// server, which keys it sends in which headers (header name to
	// "[SCHEME ]provider/alias", never a value), for the audit log. An
	// error refuses the connection. Nil: servers with header secrets are
	// not connected.
	OnHeaderSecrets func(profile, server string, headers map[string]string) error
	// ToolsDefault returns a profile's default for tools no 'mcp tools'
	// rule names (mcpserver.ToolsAll or ToolsNone). An error disables
	// them: the setting cannot be skipped. Nil: ToolsAll. ctx is the
	// request's when a request asks.
	ToolsDefault func(ctx context.Context, profile string) (string, error)
	// ToolSearch returns whether a profile's sessions are served the
	// search_tools and call_tool meta-tools instead of every upstream
	// tool. An error, or nil: not.
	ToolSearch func(profile string) (bool, error)
	// OnPin is told of each pin taken without an approval (a server's
	// first start, or pins of an older version moved), for the audit log,
	// before it is stored; an error stores nothing and the tools stay
	// hidden. Nil: not recorded.
	OnPin func(PinEvent) error
	// OnToolsChanged is told once of each change a server made to what
	// was approved (its tools hidden until 'ringlet mcp approve'), for
	// the audit log. Nil: not recorded.
	OnToolsChanged func(ToolsChanged) error
}

// Reasons of a PinEvent.
const (
	PinFirst    = "first_start" // trust on first use
	PinMigrated = "migrated"    // pins of an older version, by tool name
	// PinCatalog: the prompts and resources of a server whose pin (of a
	// version that pinned tools alone) had none.
	PinCatalog = "catalog_first_seen"
)

// PinEvent is a server pinned without an approval.
type PinEvent struct {
	Profile, Server string
	Reason          string
	Identity        mcpserver.Identity
	// Tools are the names pinned (none when only the identity was).
	Tools []string
	// Prompts (names), Resources (URIs) and Templates (URI templates)
	// pinned with them, or alone (PinCatalog).
	Prompts, Resources, Templates []string
}

// ToolsChanged is a server serving what was not approved.
type ToolsChanged struct {
	Profile, Server string
	Diff            mcpserver.PinDiff
	// Hidden are the tools hidden until approved.
	Hidden []string
}

// ProtocolVersions are the MCP revisions Ringlet serves, newest first.
// 2026-07-28 (stateless, no sessions), which mcp-go v1.2.1 also
// implements, is not offered: Ringlet binds MCP sessions to tokens.
// initialize negotiates: a client asking for one of these gets it, any
// other version (older or newer) is answered with 2025-11-25.
var ProtocolVersions = mcpgo.LegacyProtocolVersions()

// endpoint is one MCP server with its HTTP transport.
type endpoint struct {
	mcp   *server.MCPServer
	http  *server.StreamableHTTPServer
	scope string
}

// Server is the MCP gateway.
type Server struct {
	opts  Options
	log   *slog.Logger
	ids   *boundSessions
	admin *endpoint

	ctx    context.Context // ends on Close; upstream children live in it
	cancel context.CancelFunc
	wg     sync.WaitGroup // upstream watchers and background starts

	mu     sync.Mutex
	hubs   map[string]*hub
	closed bool

	held atomic.Int64 // sessions registered in mcp-go, every endpoint

	digests digests // of the programs upstream servers run
}

// New returns a Server; Run or Close ends it.
func New(opts Options) *Server {
	if opts.MaxBody <= 0 {
		opts.MaxBody = jsonrpc.DefaultMaxBody
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if opts.SessionIdleTTL <= 0 {
		opts.SessionIdleTTL = time.Hour
	}
	if opts.Path == "" {
		opts.Path = "/usr/local/bin:/usr/bin:/bin"
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: opts.Logger, hubs: map[string]*hub{}}
	s.ids = newBoundSessions(s.sessionEnded)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	adm := server.NewMCPServer("ringlet", opts.Version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithInstructions(adminInstructions),
		server.WithHooks(s.sessionHooks(&server.Hooks{}, func() string { return scopeAdmin })),
	)
	adm.AddTools(validated(adminTools())...)
	s.admin = s.newEndpoint(adm, scopeAdmin)
	return s
}

func (s *Server) newEndpoint(m *server.MCPServer, scope string) *endpoint {
	return &endpoint{mcp: m, scope: scope, http: server.NewStreamableHTTPServer(m,
		server.WithSessionIdManagerResolver(resolver{t: s.ids, scope: scope}),
		server.WithStreamableHTTPProtocolVersions(ProtocolVersions...),
		server.WithSessionIdleTTL(s.opts.SessionIdleTTL),
		server.WithStreamableHTTPLogger(s.log),
	)}
}

// Run serves until ctx ends, then stops every upstream server.
func (s *Server) Run(ctx context.Context) error {
	<-ctx.Done()
	s.Close()
	return nil
}

// Close stops every upstream server and ends every MCP session. It waits
// for the children to exit.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	hubs := make([]*hub, 0, len(s.hubs))
	for _, h := range s.hubs {
		hubs = append(hubs, h)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, h := range hubs {
		h.stopAll()
		_ = h.ep.http.Shutdown(ctx) // in-process endpoint: nothing is left to wait for
	}
	_ = s.admin.http.Shutdown(ctx)
	s.cancel()
	s.wg.Wait()
}

// hub returns the profile's hub, creating it on first use.
func (s *Server) hub(profile string) (*hub, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	h := s.hubs[profile]
	if h == nil {
		h = newHub(s, profile)
		s.hubs[profile] = h
	}
	return h, nil
}

var errClosed = errors.New("the MCP gateway is shutting down")

// ServeHTTP is the /mcp endpoint. The caller must be in the request
// context (WithCaller). Messages are vetted here, before mcp-go decodes
// them, and an Mcp-Session-Id must belong to the caller's credential.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := CallerFrom(r.Context())
	if c == nil || c.Binding == "" || c.API == nil {
		jsonrpc.WriteError(w, http.StatusInternalServerError, -32603, nil, "the request reached the MCP gateway without an authenticated caller")
		return
	}
	ep := s.admin
	if !c.Admin() {
		h, err := s.hub(c.Profile)
		if err != nil {
			jsonrpc.WriteError(w, http.StatusServiceUnavailable, -32603, nil, err.Error())
			return
		}
		ep = h.ep
	}
	sid := r.Header.Get(server.HeaderKeySessionID)
	switch r.Method {
	case http.MethodPost:
		// A deadline while the body is read, none after: a tool call may
		// stream its answer for a long time.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Now().Add(30 * time.Second))
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBody))
		_ = rc.SetReadDeadline(time.Time{})
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				jsonrpc.WriteError(w, http.StatusRequestEntityTooLarge, jsonrpc.CodeInvalidRequest, nil, "the message is larger than the "+strconv.FormatInt(s.opts.MaxBody, 10)+"-byte limit")
				return
			}
			jsonrpc.WriteError(w, http.StatusBadRequest, jsonrpc.CodeParseError, nil, "could not read the body")
			return
		}
		m, werr := jsonrpc.Check(body)
		if werr != nil {
			jsonrpc.WriteError(w, werr.Status, werr.Code, werr.ID, werr.Message)
			return
		}
		if v := modernVersion(m, r.Header); v != "" {
			writeUnsupportedVersion(w, m.ID, v)
			return
		}
		if v := r.Header.Get(mcpgo.HeaderProtocolVersion); v != "" && !slices.Contains(ProtocolVersions, v) {
			jsonrpc.WriteError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, m.ID, "unsupported MCP-Protocol-Version "+strconv.Quote(v))
			return
		}
		if m.Method != string(mcpgo.MethodInitialize) && !s.sessionOK(w, m.ID, sid, c, ep.scope) {
			return
		}
		if !c.Admin() && m.Method == string(mcpgo.MethodToolsCall) && m.IsRequest() && (s.refuseDisabled(w, r, c, m, body) || s.refusePending(w, r, c, m, body)) {
			return
		}
		if !c.Admin() && m.IsRequest() && (m.Method == string(mcpgo.MethodResourcesRead) || m.Method == string(mcpgo.MethodPromptsGet) || m.Method == string(mcpgo.MethodCompletionComplete)) && s.refuseAccess(w, r, c, m, body) {
			return
		}
		if !c.Admin() && m.IsRequest() && (m.Method == string(mcpgo.MethodResourcesSubscribe) || m.Method == string(mcpgo.MethodResourcesUnsubscribe)) {
			s.subscribe(w, r, c, sid, m, body)
			return
		}
		if !c.Admin() && m.IsRequest() && paced(m.Method) && refusePaced(w, r, c, m, body) {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		// An answer of nothing but the response goes as one JSON body,
		// even in a session mcp-go would stream to (answerWriter).
		aw := &answerWriter{ResponseWriter: w}
		defer aw.finish()
		w = aw
	case http.MethodGet, http.MethodDelete:
		if !s.sessionOK(w, nil, sid, c, ep.scope) {
			return
		}
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		jsonrpc.WriteError(w, http.StatusMethodNotAllowed, jsonrpc.CodeInvalidRequest, nil, r.Method+" is not allowed on /mcp")
		return
	}
	ep.http.ServeHTTP(w, r)
}

// sessionEnded is told of each session the table ended on its own
// (evicted at the limit, or its credential stopped working); mcp-go's
// state of it is dropped in the background.
func (s *Server) sessionEnded(scope, id, why string) {
	if why == endedEvicted {
		s.log.Info("ended the least recently used MCP session of a token at its limit", "limit", maxSessionsPerBinding)
	}
	s.spawn(func() { s.forget(scope, id) })
}

// forget drops mcp-go's state of a session the table no longer holds, as a
// DELETE from its client would; its client's next request gets 404 and
// initializes again, as after an idle timeout. The DELETE carries no
// caller (so the table lets it end any session) and no connection (so
// mcp-go's DNS-rebinding check, which looks at the connection's address,
// does not refuse it).
func (s *Server) forget(scope, id string) {
	ep := s.endpoint(scope)
	if ep == nil {
		return // its profile's hub is gone, and its sessions with it
	}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodDelete, "/mcp", nil)
	if err != nil {
		return
	}
	req.Header.Set(server.HeaderKeySessionID, id)
	rec := &discard{h: http.Header{}, status: http.StatusOK}
	ep.http.ServeHTTP(rec, req)
	if rec.status != http.StatusOK {
		s.log.Error("could not drop the state of an ended MCP session", "status", rec.status)
	}
}

// endpoint is the MCP server of scope, nil if there is none.
func (s *Server) endpoint(scope string) *endpoint {
	if scope == scopeAdmin {
		return s.admin
	}
	profile, ok := strings.CutPrefix(scope, "profile:")
	if !ok {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hubs[profile]; h != nil {
		return h.ep
	}
	return nil
}

// discard is a ResponseWriter that keeps only the status.
type discard struct {
	h      http.Header
	status int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(status int)      { d.status = status }

// sessionOK checks that sid is a live MCP session of c on scope.
func (s *Server) sessionOK(w http.ResponseWriter, id json.RawMessage, sid string, c *Caller, scope string) bool {
	if sid == "" {
		jsonrpc.WriteError(w, http.StatusBadRequest, jsonrpc.CodeInvalidRequest, id, "Mcp-Session-Id header required: send initialize first and use the session id it returns")
		return false
	}
	if !s.ids.check(sid, c, scope) {
		// The same answer whether the id never existed, ended, or belongs
		// to another credential.
		jsonrpc.WriteError(w, http.StatusNotFound, jsonrpc.CodeInvalidRequest, id, "no such MCP session for this token; send initialize to start a new one")
		return false
	}
	return true
}

// modernVersion returns the protocol version of a message that uses the
// stateless protocol core (2026-07-28 or later), which has no sessions.
func modernVersion(m *jsonrpc.Message, h http.Header) string {
	if v := h.Get(mcpgo.HeaderProtocolVersion); mcpgo.IsModernProtocol(v) {
		return v
	}
	var v string
	if raw, ok := m.Params.Meta[mcpgo.MetaKeyProtocolVersion]; ok && json.Unmarshal(raw, &v) == nil && mcpgo.IsModernProtocol(v) {
		return v
	}
	return ""
}

func writeUnsupportedVersion(w http.ResponseWriter, id json.RawMessage, v string) {
	e := mcpgo.UnsupportedProtocolVersionError{Version: v, Supported: ProtocolVersions}.JSONRPCError()
	if len(id) == 0 {
		id = json.RawMessage("null")
	}
	body, _ := json.Marshal(struct {
		JSONRPC string          `json:"jsonrpc"`
		ID      json.RawMessage `json:"id"`
		Error   any             `json:"error"`
	}{"2.0", id, e.Error})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadRequest)
	w.Write(append(body, '\n'))
}

// Sessions is the number of live MCP sessions.
func (s *Server) Sessions() int { return s.ids.count() }

// sessionHooks adds to h what keeps count of the sessions mcp-go holds. A
// session mcp-go registers after the table ended it (evicted while its
// initialize was still being answered) is dropped at once.
func (s *Server) sessionHooks(h *server.Hooks, scope func() string) *server.Hooks {
	h.AddOnRegisterSession(func(_ context.Context, cs server.ClientSession) {
		s.held.Add(1)
		if id := cs.SessionID(); !s.ids.live(id) {
			s.spawn(func() { s.forget(scope(), id) })
		}
	})
	h.AddOnUnregisterSession(func(context.Context, server.ClientSession) { s.held.Add(-1) })
	return h
}

// heldSessions is the number of sessions whose state mcp-go holds.
func (s *Server) heldSessions() int { return int(s.held.Load()) }

// spawn runs f in a goroutine that Close waits for. Once the server is
// closed it runs nothing and reports false.
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}
