// Package gateway is the daemon's HTTP face: the loopback listener, the
// Host/Origin guard and bearer-token authentication in front of every
// route, the REST API, the event stream and the metrics endpoint, and the
// parts that answer the routes (sessions, the provider proxy, egress,
// remote terminals, hooks, the MCP gateway, profiles, catalogs, keys, the
// audit trail), each a type of its own that New wires together.
//
// Who is calling is decided once per request, at the edge (callerOf in
// caller.go), and whom each route admits is one table (routes in
// routes.go), from which the TCP listener, every session socket and the
// session tools of /mcp are built.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/profile"

	"github.com/neullabs/ringlet/token"
	"github.com/neullabs/ringlet/version"
)

// Options is what the daemon's wiring (cmd/ringlet/daemon) gives the
// gateway; New hands each part what its job needs. The stores, the
// sandbox builder, the keyer and the paths are required: a daemon has
// every part (New says which is missing). Durations and sizes at zero
// take the documented defaults.
type Options struct {
	// The HTTP face.

	// Token is the admin bearer token; TokenFile is where it lives, so
	// rotation can replace it.
	Token     token.Token
	TokenFile string
	// ListenHost is the host of an explicit --listen that is not a
	// loopback name; requests may then name it in Host. Empty otherwise.
	ListenHost string
	// StayAlive disables the idle exit.
	StayAlive bool
	// IdleTimeout is how long the daemon runs with no request and nothing
	// open before it exits, unless StayAlive. 0 means never.
	IdleTimeout time.Duration
	// MaxBodyBytes bounds JSON API request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// ShutdownTimeout bounds the graceful shutdown. Default 10s.
	ShutdownTimeout time.Duration
	// Collectors are extra metrics to serve on /metrics.
	Collectors []prometheus.Collector
	// Export receives every committed record (OpenTelemetry export,
	// docs/telemetry.md); it must not block. Nil: none.
	Export RecordExporter
	// Logger receives the daemon's log. Default: discard.
	Logger *slog.Logger

	// The audit log.

	// Audit receives a record of every action before it is acknowledged;
	// nil means the audit log is off (records still go to /api/events).
	Audit Auditor
	// AuditWritable reports, from memory, whether the audit log can be
	// written now (nil) or why not; provider requests are refused before
	// they are forwarded while it cannot. Nil with the log off.
	AuditWritable func() error
	// AuditState is what the log last found, for /api/health: like
	// AuditWritable, but checking nothing and counting no refusal. Nil
	// with the log off.
	AuditState func() error
	// AuditPath is the database that /api/audit reads; "" with the log
	// off.
	AuditPath string
	// HMAC makes secret-looking values matchable but not readable.
	HMAC *audit.HMAC

	// The stores.

	// Profiles stores profiles; CatalogDir holds providers.toml,
	// agents.toml and prices.toml.
	Profiles   *profile.Store
	CatalogDir string
	// PricesFile is where 'ringlet prices import' stores the imported
	// price table.
	PricesFile string
	// Keys is the credential store.
	Keys KeyStore
	// Hooks stores each profile's hooks.
	Hooks *hook.Store
	// MCPStore holds each profile's upstream MCP servers.
	MCPStore *mcp.Store

	// Sandboxes, sessions and what runs in them.

	// Launch builds every sandbox: agents', MCP servers' and the probes'.
	// Its own-files check guards the paths of profiles and MCP servers.
	Launch *launch.Builder
	// StateDir is Ringlet's state directory, where sandbox leases keep
	// their lock files (sandbox.Lease).
	StateDir string
	// SocketDir is where per-session socket directories are made
	// (default: the temp dir).
	SocketDir string
	// Executable is the ringlet binary, for hooks that agents run.
	Executable string
	// SessionStore keeps the sessions that outlive a restart of the
	// daemon ('profiles env'); RestoreSessions reads it.
	SessionStore SessionStore
	// SessionTTL is the deadline of a session that asks for none.
	// Default DefaultSessionTTL.
	SessionTTL time.Duration
	// SessionIdle ends a session no launcher holds after that long with
	// no request; each request renews it, up to its deadline. 0 takes
	// DefaultSessionIdle; a negative value turns the idle timeout off.
	SessionIdle time.Duration
	// SessionRestartGrace is how long after a restart the launcher of a
	// 'profiles run' session that a graceful stop kept has to hold it
	// again; 0 means DefaultRestartGrace, a negative value ends such
	// sessions at the stop instead.
	SessionRestartGrace time.Duration
	// NoTraces turns correlation off: records get no trace ids (the
	// benchmarks' baseline).
	NoTraces bool
	// MCPPath is the PATH upstream MCP servers run with.
	MCPPath string

	// The provider proxy.

	// ProxyIdleTimeout ends a provider answer that sends nothing for this
	// long. 0 means no limit. There is never an overall limit on streams.
	ProxyIdleTimeout time.Duration
	// ProxyResponseHeaderTimeout ends a provider request whose answer
	// has not begun (no response headers) this long after it was
	// forwarded, with 504. 0 means no limit.
	ProxyResponseHeaderTimeout time.Duration
}

// Server is the daemon's HTTP face: the listener and its shutdown, the
// Host/Origin guard, who is calling (callerOf) and what each caller may
// reach (the route table), refusals counted and recorded, the daemon's own
// routes (version, status, stop, token rotation, events, metrics). What
// the routes do is the parts' job, each a type of its own that New wires
// together: sessions, proxy, egress, terminals, hooks, mcp, profiles,
// catalogs, keychain and the audit log's reads, with rec writing the
// audit trail for all of them.
type Server struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	auth    *authenticator
	bus     *eventBus
	life    *life
	// guardDenials paces the records of refused cross-site requests,
	// authDenials those of bad tokens, per source.
	guardDenials denialLimiter
	authDenials  sourceLimiter
	started      time.Time

	listenAddr atomic.Value // string, set by Serve
	port       atomic.Int64

	inFlight     atomic.Int64
	lastActivity atomic.Int64 // unix nanoseconds

	stopOnce sync.Once
	stopCh   chan string // carries the reason of the first stop request

	// The parts.
	rec       *recorder
	sessions  *sessions
	proxy     *proxy
	egress    *egress
	terminals *terminals
	hooks     *hooks
	mcp       *mcpGateway
	profiles  *profiles
	catalogs  *catalogs
	keychain  *keychain
	audit     *auditReader
	uiAudit   *uiAudit
	prices    *prices
	budgets   *budgets
	// bodies is what the request bodies the proxy and hook checks hold
	// may take at once.
	bodies *bodyBudget
	// paces are the profiles' rate limits, on the proxy and MCP paths.
	paces *rateLimits
	// logins are the dashboard's browser logins, which ui answers.
	logins *dashboard.Logins
	ui     *ui
}

// life is what the parts of the daemon share of its lifetime: closing
// ends when the shutdown starts, and streams counts the long-lived
// connections (WebSockets, tunnels, session sockets, remote terminals)
// that the shutdown waits for, up to its deadline.
type life struct {
	closing context.Context
	stop    context.CancelFunc
	streams sync.WaitGroup
}

func newLife() *life {
	l := &life{}
	l.closing, l.stop = context.WithCancel(context.Background())
	return l
}

// New returns a Server; Serve starts it.
func New(opts Options) (*Server, error) {
	if opts.Token.IsZero() {
		return nil, errors.New("gateway: no admin token")
	}
	for _, need := range []struct {
		name string
		ok   bool
	}{
		{"TokenFile", opts.TokenFile != ""}, {"Profiles", opts.Profiles != nil}, {"CatalogDir", opts.CatalogDir != ""}, {"PricesFile", opts.PricesFile != ""},
		{"Keys", opts.Keys != nil}, {"HMAC", opts.HMAC != nil}, {"Hooks", opts.Hooks != nil}, {"MCPStore", opts.MCPStore != nil},
		{"Launch", opts.Launch != nil}, {"StateDir", opts.StateDir != ""}, {"Executable", opts.Executable != ""}, {"SessionStore", opts.SessionStore != nil},
	} {
		if !need.ok {
			return nil, fmt.Errorf("gateway: Options.%s is required", need.name)
		}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = DefaultSessionTTL
	}
	switch {
	case opts.SessionIdle == 0:
		opts.SessionIdle = DefaultSessionIdle
	case opts.SessionIdle < 0:
		opts.SessionIdle = 0
	}
	switch {
	case opts.SessionRestartGrace == 0:
		opts.SessionRestartGrace = DefaultRestartGrace
	case opts.SessionRestartGrace < 0:
		opts.SessionRestartGrace = 0
	}
	s := &Server{
		opts:    opts,
		log:     opts.Logger,
		metrics: newMetrics(),
		bus:     newEventBus(),
		life:    newLife(),
		started: time.Now(),
		stopCh:  make(chan string, 1),
		bodies:  &bodyBudget{},
		auth:    newAuthenticator(opts.Token),
	}
	// The one place the parts are wired together, each with what its
	// job needs.
	s.rec = &recorder{audit: opts.Audit, bus: s.bus, log: s.log, traces: newTraces(s.metrics.hookBypass), export: opts.Export}
	s.rec.traces.off.Store(opts.NoTraces)
	s.rec.traces.strict = func(alias string) bool {
		if opts.Profiles == nil {
			return false
		}
		p, err := opts.Profiles.Get(alias)
		return err == nil && p.StrictHooks
	}
	s.rec.traces.hooked = func(alias, agent string) bool {
		if agent != "claude" || opts.Hooks == nil {
			return false
		}
		hs, err := opts.Hooks.List(alias)
		return err == nil && slices.ContainsFunc(hs, func(h hook.Hook) bool { return h.Event == hook.PreToolUse })
	}
	s.sessions = newSessions(sessionsOptions{Profiles: opts.Profiles, Keys: opts.Keys, CatalogDir: opts.CatalogDir, Executable: opts.Executable,
		HMAC: opts.HMAC, Launch: opts.Launch, SocketDir: opts.SocketDir, Rec: s.rec, Metrics: s.metrics, Life: s.life, Log: s.log,
		// A session socket serves that session's routes of the table.
		Socket: func(sess *session) http.Handler { return s.socketHandler(sess) },
		Touch:  func() { s.lastActivity.Store(time.Now().UnixNano()) },
		Store:  opts.SessionStore, TTL: opts.SessionTTL, Idle: opts.SessionIdle, RestartGrace: opts.SessionRestartGrace})
	s.paces = newRateLimits(s.sessions.clock, func(alias string) *profile.RateLimits {
		p, err := opts.Profiles.Get(alias)
		if err != nil {
			return nil
		}
		return p.RateLimits
	}, s.rec, s.metrics)
	s.budgets = newBudgets(budgetsOptions{Profiles: opts.Profiles, Sessions: s.sessions, Rec: s.rec, Log: s.log, AuditPath: opts.AuditPath,
		CatalogDir: opts.CatalogDir, PricesFile: opts.PricesFile, Killer: s})
	s.sessions.budgetEnded = s.budgets.forget
	s.sessions.budgetState = func(ctx context.Context, sess *session) *budget.State {
		st, ok, err := s.budgets.sessionState(ctx, sess)
		if err != nil || !ok {
			return nil
		}
		return &st
	}
	s.sessions.rateState = s.paces.state
	s.sessions.budgetStarted = s.budgets.watchRuntime
	s.metrics.reg.MustRegister(budgetCollector{s.budgets})
	s.proxy = newProxy(proxyOptions{Rec: s.rec, Metrics: s.metrics, Log: s.log, Bodies: s.bodies, Budgets: s.budgets,
		IdleTimeout: opts.ProxyIdleTimeout, HeaderTimeout: opts.ProxyResponseHeaderTimeout, Writable: opts.AuditWritable,
		Paces: s.paces})
	s.egress = &egress{rec: s.rec, life: s.life, metrics: s.metrics.security}
	s.logins = dashboard.NewLogins(nil)
	s.terminals = newTerminals(terminalsOptions{Sessions: s.sessions, StateDir: opts.StateDir, Rec: s.rec, Life: s.life, Log: s.log,
		ShutdownTimeout: opts.ShutdownTimeout, Logins: s.logins})
	s.hooks = &hooks{o: hooksOptions{Store: opts.Hooks, Profiles: opts.Profiles, Sessions: s.sessions, MCPStore: opts.MCPStore,
		Rec: s.rec, Log: s.log, Bodies: s.bodies, Paces: s.paces, Budgets: s.budgets, Auth: s.auth, Metrics: s.metrics.security,
		AuditPath: opts.AuditPath, Launch: opts.Launch}}
	s.mcp = newMCPGateway(mcpOptions{Budgets: s.budgets, Store: opts.MCPStore, Profiles: opts.Profiles, CatalogDir: opts.CatalogDir, Keys: opts.Keys, Launch: opts.Launch, StateDir: opts.StateDir,
		Path: opts.MCPPath, Hooks: s.hooks, Rec: s.rec, Paces: s.paces, Metrics: s.metrics, Life: s.life, Log: s.log,
		// Admin tools call the daemon's routes; a session's tools are its
		// routes of the table.
		API: s.Handler, Tools: func() http.Handler { return s.router(onTools, nil) }})
	s.hooks.o.MCPRedact = s.mcp.srv.Redact
	s.metrics.security.known = s.mcp.srv.KnownTool
	s.profiles = &profiles{o: profilesOptions{Profiles: opts.Profiles, Keys: opts.Keys, CatalogDir: opts.CatalogDir, Executable: opts.Executable,
		Launch: opts.Launch, Sessions: s.sessions, Hooks: opts.Hooks, MCP: s.mcp, Rec: s.rec, Log: s.log}}
	s.catalogs = &catalogs{dir: opts.CatalogDir, rec: s.rec, log: s.log}
	s.keychain = &keychain{o: keychainOptions{Keys: opts.Keys, Sessions: s.sessions, Rec: s.rec, Log: s.log}}
	s.audit = &auditReader{path: opts.AuditPath, catalogDir: opts.CatalogDir, pricesFile: opts.PricesFile, log: s.log}
	s.uiAudit = &uiAudit{reader: s.audit}
	s.prices = &prices{catalogDir: opts.CatalogDir, file: opts.PricesFile, rec: s.rec, log: s.log}
	s.ui = &ui{hasTerminal: s.terminals.has, cookie: s.cookieName, logins: s.logins, sessions: s.sessions, budgets: s.budgets, bus: s.bus, life: s.life, rec: s.rec, log: s.log,
		kill: s.kill, refused: s.authFailed}
	s.rec.observe = s.ui.observe
	s.metrics.reg.MustRegister(opts.Collectors...)
	s.lastActivity.Store(time.Now().UnixNano())
	return s, nil
}

// RestoreSessions admits again the sessions a previous daemon kept in the
// store, before Serve: each one whose deadline and idle timeout have not
// passed, whose profile is the one it started with (same alias, creation,
// provider, endpoint and key reference) and whose key is the one it
// started with (by its HMAC). Each restored session is recorded
// (session.restore), each refused one ended (session.end with the
// reason). open, when not nil, are the sessions the audit log shows
// started and not ended: a stored session not among them is not
// restored, so a revoke whose removal from the store was lost still holds.
// A store that cannot be read, or is not safe, restores nothing. It
// returns the ids of the sessions it restored or ended.
func (s *Server) RestoreSessions(ctx context.Context, open map[string]bool) []string {
	return s.sessions.restore(ctx, open)
}

// SocketDirs are the directories of the session sockets it serves: after
// RestoreSessions, those of the restored sessions, which the socket root's
// Sweep must leave.
func (s *Server) SocketDirs() []string { return s.sessions.socketDirs() }

// KeptSockets reports whether the stop kept a session whose sandbox is
// bound to a socket directory: the socket root must then outlive the
// daemon (SocketRoot.Close).
func (s *Server) KeptSockets() bool { return s.sessions.keptSockets.Load() }

// RunMCP runs the MCP gateway until ctx ends, then stops the upstream
// servers it started and waits for them.
func (s *Server) RunMCP(ctx context.Context) error { return s.mcp.run(ctx) }

// authFailed counts and records a refused credential; tok is the token
// the request presented, if any.
func (s *Server) authFailed(reason string, r *http.Request, tok string) {
	s.metrics.authFailures.WithLabelValues(reason).Inc()
	// Any local process (a sandboxed agent through its socket too) can
	// send wrong tokens as fast as it likes: past a burst, each source's
	// refusals are counted, not recorded (or logged) one by one.
	ok, skipped := s.authDenials.allow(denialSource(r), time.Now())
	if !ok {
		return
	}
	detail := map[string]any{"reason": reason, "remote": r.RemoteAddr}
	if tok != "" {
		// Matchable (the same wrong token shows up as the same value)
		// but not readable.
		detail["token"] = s.opts.HMAC.Sum(tok)
	}
	// The path is logged, never the query or headers: they may carry a
	// token someone pasted in the wrong place.
	s.recordDenial(r, http.StatusUnauthorized, "authentication failed", detail, skipped)
}

func (s *Server) guardDenied(reason string, r *http.Request) {
	s.metrics.guardDenials.WithLabelValues(reason).Inc()
	detail := map[string]any{"reason": reason, "remote": r.RemoteAddr, "host": clip(r.Host)}
	if o := r.Header.Get("Origin"); o != "" {
		detail["origin"] = clip(o)
	}
	// A web page can send these from the user's browser as fast as it
	// likes: past a steady rate they are counted, not recorded one by one.
	ok, skipped := s.guardDenials.allow(time.Now())
	if !ok {
		return
	}
	s.recordDenial(r, http.StatusForbidden, "cross-site or foreign-host request refused", detail, skipped)
}

// recordDenial logs and audits a refused request; the request is refused
// whether or not the record is written. Whoever sends it chooses its path,
// so the path is clipped. skipped is how many refusals of its kind were
// counted but not recorded since the last record (the metrics count every
// one).
func (s *Server) recordDenial(r *http.Request, status int, msg string, detail map[string]any, skipped int64) {
	if skipped > 0 {
		detail["unrecorded_before"] = skipped
	}
	target := clip(r.Method + " " + r.URL.Path)
	s.log.Warn(msg, "reason", detail["reason"], "target", target, "remote", r.RemoteAddr, "unrecorded_before", skipped)
	_ = s.rec.record(r.Context(), audit.Record{Kind: audit.KindAuthFailure, Target: target, Decision: audit.Deny, Status: int64(status), Detail: audit.DetailJSON(detail)})
}

// maxDeniedField bounds a value a refused client chose (its path, Host,
// Origin) in the log and the audit log.
const maxDeniedField = 256

// clip shortens v to maxDeniedField bytes (on a UTF-8 boundary) and says
// how much was cut.
func clip(v string) string {
	if len(v) <= maxDeniedField {
		return v
	}
	cut := maxDeniedField
	for cut > 0 && !utf8.RuneStart(v[cut]) {
		cut--
	}
	return fmt.Sprintf("%s...(%d more bytes)", v[:cut], len(v)-cut)
}

// denialLimiter is a token bucket for records of refused requests: a
// burst of denialBurst, then denialRate a second.
type denialLimiter struct {
	mu      sync.Mutex
	tokens  float64
	last    time.Time
	skipped int64
}

const (
	denialRate  = 20
	denialBurst = 200
)

// refilled reports whether the bucket is full again, and how many
// refusals it has not yet reported.
func (l *denialLimiter) refilled(now time.Time) (skipped int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.skipped, l.last.IsZero() || l.tokens+now.Sub(l.last).Seconds()*denialRate >= denialBurst
}

// allow reports whether a refused request at now is recorded and, if so,
// how many were not recorded since the last one that was.
func (l *denialLimiter) allow(now time.Time) (bool, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last.IsZero() {
		l.tokens = denialBurst
	} else {
		l.tokens = min(denialBurst, l.tokens+now.Sub(l.last).Seconds()*denialRate)
	}
	l.last = now
	if l.tokens < 1 {
		l.skipped++
		return false, 0
	}
	l.tokens--
	skipped := l.skipped
	l.skipped = 0
	return true, skipped
}

// sourceLimiter is a denialLimiter per source of refused requests, so
// that one source's flood does not keep another's refusals from being
// recorded. At most maxDenialSources are tracked at once (buckets that
// have refilled are forgotten first); sources past that share one.
type sourceLimiter struct {
	mu        sync.Mutex
	buckets   map[string]*denialLimiter
	lastSweep time.Time
}

const maxDenialSources = 1024

// denialOverflow is the bucket of the sources past maxDenialSources.
const denialOverflow = "other sources"

func (l *sourceLimiter) allow(source string, now time.Time) (bool, int64) {
	l.mu.Lock()
	b := l.buckets[source]
	if b == nil {
		if l.buckets == nil {
			l.buckets = map[string]*denialLimiter{}
		}
		// A sweep costs a pass over every bucket: at most one a second,
		// however many new sources arrive.
		if len(l.buckets) >= maxDenialSources && now.Sub(l.lastSweep) >= time.Second {
			l.lastSweep = now
			l.sweep(now)
		}
		if len(l.buckets) >= maxDenialSources {
			source = denialOverflow
		}
		if b = l.buckets[source]; b == nil {
			b = &denialLimiter{}
			l.buckets[source] = b
		}
	}
	l.mu.Unlock()
	return b.allow(now)
}

// sweep forgets the buckets that have refilled. What they had not yet
// reported is carried to the shared bucket, whose next record says it.
func (l *sourceLimiter) sweep(now time.Time) {
	var carried int64
	for k, v := range l.buckets {
		if k == denialOverflow {
			continue
		}
		if n, ok := v.refilled(now); ok {
			carried += n
			delete(l.buckets, k)
		}
	}
	if carried > 0 {
		o := l.buckets[denialOverflow]
		if o == nil {
			o = &denialLimiter{}
			l.buckets[denialOverflow] = o
		}
		o.mu.Lock()
		o.skipped += carried
		o.mu.Unlock()
	}
}

// sourceKey carries the source of requests that arrive on a session
// socket, where the peer address says nothing.
type sourceKey struct{}

// denialSource is who sent a refused request: the session whose socket it
// came through, or the peer's IP address (every local process shares
// 127.0.0.1).
func denialSource(r *http.Request) string {
	if src, ok := r.Context().Value(sourceKey{}).(string); ok {
		return src
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return host
	}
	return r.RemoteAddr
}

// recoverer turns a handler panic into a JSON 500; the stack goes to the
// log, never to the client.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "internal", "internal error; the daemon log has the details")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// activity tracks in-flight requests and the time of the last one, for
// the idle exit.
func (s *Server) activity(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inFlight.Add(1)
		defer func() {
			s.lastActivity.Store(time.Now().UnixNano())
			s.inFlight.Add(-1)
		}()
		next.ServeHTTP(w, r)
	})
}

// Stop asks a running Serve to shut down gracefully.
func (s *Server) Stop(reason string) {
	s.stopOnce.Do(func() { s.stopCh <- reason })
}

// Serve answers requests on ln until ctx ends, Stop is called, a client
// asks the daemon to stop, or the daemon has been idle for IdleTimeout. It
// then shuts down gracefully within ShutdownTimeout. The returned reason
// says why it stopped.
func (s *Server) Serve(ctx context.Context, ln net.Listener) (reason string, err error) {
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok {
		s.port.Store(int64(tcp.Port))
	}
	s.listenAddr.Store(ln.Addr().String())
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		// No server-wide ReadTimeout or WriteTimeout: they would cut
		// WebSockets and provider streams. JSON routes get a per-request
		// read deadline from limitBody instead.
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	idleCtx, stopIdle := context.WithCancel(ctx)
	var idleWG sync.WaitGroup
	idleWG.Go(func() { s.watchIdle(idleCtx) })
	defer func() {
		stopIdle()
		idleWG.Wait()
	}()

	select {
	case <-ctx.Done():
		reason = "signal"
	case reason = <-s.stopCh:
	case err := <-serveErr:
		return "error", fmt.Errorf("serve: %w", err)
	}
	s.log.Info("daemon stopping", "reason", reason)
	// Remote agents first: their terminals are streams the shutdown
	// would otherwise wait for until its deadline.
	s.terminals.stopAll()
	// Those that the next daemon admits again are kept.
	kept := s.sessions.stopAll("daemon stopped")
	if err := s.rec.record(context.Background(), audit.Record{Kind: audit.KindDaemonStop, Actor: audit.ActorDaemon, Decision: audit.Allow,
		Detail: audit.DetailJSON(map[string]any{"reason": reason, "uptime_seconds": int64(time.Since(s.started).Seconds()), "sessions_kept": kept})}); err != nil {
		s.log.Error("could not audit the daemon stop", "err", err)
	}
	s.life.stop()

	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if err != nil {
		srv.Close()
		err = fmt.Errorf("shutdown: %w", err)
	}
	done := make(chan struct{})
	go func() { s.life.streams.Wait(); close(done) }()
	select {
	case <-done:
	case <-sctx.Done():
		s.log.Warn("the shutdown deadline passed with streams still open", "timeout", s.opts.ShutdownTimeout)
	}
	_ = <-serveErr // http.ErrServerClosed: Serve has returned
	return reason, err
}

// watchIdle stops the server once nothing has happened for IdleTimeout.
// Open WebSockets and in-flight requests count as activity.
func (s *Server) watchIdle(ctx context.Context) {
	d := s.opts.IdleTimeout
	if s.opts.StayAlive || d <= 0 {
		return
	}
	t := time.NewTicker(min(max(d/4, 250*time.Millisecond), 30*time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			last := time.Unix(0, s.lastActivity.Load())
			if s.inFlight.Load() == 0 && s.sessions.count() == 0 && time.Since(last) >= d {
				s.Stop(fmt.Sprintf("idle for %s with no requests or sessions", d))
				return
			}
		}
	}
}

func (s *Server) handleVersion(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, version.Get())
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	addr, _ := s.listenAddr.Load().(string)
	idle := "never"
	if !s.opts.StayAlive && s.opts.IdleTimeout > 0 {
		idle = s.opts.IdleTimeout.String()
	}
	s.bus.mu.Lock()
	streams := len(s.bus.subs)
	s.bus.mu.Unlock()
	writeJSON(w, http.StatusOK, api.Status{
		Version:        version.Get().Version,
		PID:            os.Getpid(),
		Listen:         addr,
		Started:        s.started.UTC().Format(time.RFC3339),
		UptimeSeconds:  time.Since(s.started).Round(time.Millisecond).Seconds(),
		StayAlive:      s.opts.StayAlive,
		IdleTimeout:    idle,
		RequestsActive: s.inFlight.Load() - 1, // not counting this request
		EventStreams:   streams,
		Sessions:       s.sessions.count(),
		Profiles:       s.profileCount(),
	})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	h := api.Health{Version: version.Get().Version}
	if name, why, err := s.opts.Keys.Backend(); err != nil {
		h.Keys.Error = err.Error()
	} else {
		h.Keys.Backend, h.Keys.Why = name, why
	}
	if s.opts.AuditState == nil {
		h.Audit.Off = true
	} else {
		h.Audit.Path = s.opts.AuditPath
		if err := s.opts.AuditState(); err != nil {
			h.Audit.Error = err.Error()
		} else {
			h.Audit.Writable = true
		}
	}
	writeJSON(w, http.StatusOK, h)
}

func (s *Server) profileCount() int {
	ps, err := s.opts.Profiles.List()
	if err != nil {
		return 0
	}
	return len(ps)
}

func (s *Server) handleStop(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusAccepted, api.Stopping{PID: os.Getpid(), Stopping: true})
	s.Stop("stop requested")
}

func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	if !s.rec.recordOr503(w, r, audit.Record{Kind: audit.KindTokenRotate, Actor: audit.ActorAdmin, Target: s.opts.TokenFile, Decision: audit.Allow}) {
		return
	}
	t, err := token.Replace(s.opts.TokenFile)
	if err != nil {
		s.log.Error("token rotation failed", "err", err)
		writeError(w, http.StatusInternalServerError, "rotate_failed", "could not write the new token file; the old token stays valid: "+err.Error())
		return
	}
	s.auth.set(t)
	// What the old token let in goes with it: the dashboard's logins.
	s.logins.EndAll()
	s.metrics.rotations.Inc()
	s.log.Info("token rotated", "file", s.opts.TokenFile)
	writeJSON(w, http.StatusOK, api.TokenRotated{Rotated: true, TokenFile: s.opts.TokenFile})
}
