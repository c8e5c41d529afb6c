package mcp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/internal/child"
	"github.com/neullabs/ringlet/internal/outbound"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/mcp/oauth"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
)

// Upstream states, as 'ringlet mcp list' shows them.
const (
	StateIdle     = "idle"     // not started: it starts when a session of the profile uses MCP
	StateStarting = "starting" // being started
	StateRunning  = "running"  // its tools are served
	StateFailed   = "failed"   // it could not start; retried after a backoff, when next used
	// StateRestarting: its run ended against its will (it exited, hung on
	// a call, or could not be reached); it is restarted after a backoff
	// and its tools stay listed meanwhile.
	StateRestarting = "restarting"
	// StateNeedsAuth: an HTTP server that asked for authorization it has
	// not got (no token, or one the server refused and that could not be
	// refreshed); 'ringlet mcp auth' fixes it. It is not retried until
	// then.
	StateNeedsAuth = "needs-auth"
	stateStopped   = "stopped" // removed or shutting down
)

// ErrNeedsAuth is the error of a call to a server in StateNeedsAuth.
var ErrNeedsAuth = errors.New("the MCP server needs authorization")

// needsAuth says which command fixes a server in StateNeedsAuth.
func (u *upstream) needsAuth() error {
	return fmt.Errorf("%w: MCP server %s of profile %s asks for authorization; run 'ringlet mcp auth %s %s'", ErrNeedsAuth, u.cfg.Name, u.hub.profile, u.hub.profile, u.cfg.Name)
}

// isAuthRequired reports whether err is an HTTP server's 401, or mcp-go
// finding no token it can send (none, or its refresh failed).
func isAuthRequired(err error) bool {
	return errors.Is(err, transport.ErrOAuthAuthorizationRequired) || errors.Is(err, transport.ErrAuthorizationRequired)
}

// Fault is an upstream server failing: its run ended against its will, or
// it could not start. The gateway audits each one.
type Fault struct {
	Profile string
	Server  string
	Reason  string // FaultCrash, FaultTimeout, FaultUnreachable or FaultStart
	// Error says what happened, with any credential the server was given
	// redacted.
	Error string
	// Tool is the tool whose call got no answer, for FaultTimeout.
	Tool string
	// Failures counts the server's failures in a row, this one included.
	Failures int
	// RetryIn is how long until it is started again (for FaultStart, not
	// before its next use after that).
	RetryIn time.Duration
}

// Reasons of a Fault.
const (
	FaultCrash       = "crash"       // the process exited while running
	FaultTimeout     = "timeout"     // a call got no answer in time: the run was ended
	FaultUnreachable = "unreachable" // an HTTP server could not be reached
	FaultStart       = "start"       // it could not start (or exited while starting)
	FaultAuth        = "auth"        // an HTTP server asked for authorization it has not got
)

// Limits of an upstream.
const (
	maxLine       = 16 << 20 // one JSON-RPC message from an upstream
	maxTools      = 1000     // tools of one upstream
	maxListPages  = 100
	maxBackoff    = time.Minute
	stableRun     = time.Minute // a run this long resets the backoff
	stderrTail    = 4 << 10
	stopGrace     = 2 * time.Second
	upstreamProto = mcpgo.ProtocolVersion20251125
)

// upstreamTool is one tool as its server listed it.
type upstreamTool struct {
	Name         string          `json:"name"`
	Title        string          `json:"title,omitempty"`
	Description  string          `json:"description,omitempty"`
	InputSchema  json.RawMessage `json:"inputSchema,omitempty"`
	OutputSchema json.RawMessage `json:"outputSchema,omitempty"`
	Annotations  json.RawMessage `json:"annotations,omitempty"`
	hash         string
}

// upstream is one MCP server of a profile: a child of the daemon (stdio)
// or a remote one (HTTP). It starts on first use; a run that ends against
// its will (it exits, a call gets no answer in time, it cannot be reached)
// is restarted after a backoff, and its failure never touches the other
// upstreams.
type upstream struct {
	hub *hub
	cfg mcpserver.Config
	// ctx ends when the upstream is stopped for good: pending restarts
	// are dropped then.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	state     string
	lastErr   string
	failures  int
	retryAt   time.Time
	startDone chan struct{} // closed when the current start attempt ends
	conn      *conn
	// tools are those of the last run that listed them: kept while the
	// server restarts, so that a call meanwhile is told why it cannot be
	// served rather than that the tool does not exist.
	tools []upstreamTool
	// catalog is what the last run offers besides tools; dropped when a
	// run ends, since a resource is read from a running server only.
	catalog catalog
	// identity is that of the run that listed tools.
	identity mcpserver.Identity
	// obs is tools and identity as a pin holds them, and its digest,
	// made once per listing (nil until asked).
	obs *observation
	// judged is what the last publish served of obs.
	judged *judgement
	ids    atomic.Int64
	// lists numbers the listings a list_changed notification starts, in
	// the order they start; toolsListed and catalogListed are the numbers
	// of the listings in tools and catalog. Two notifications close
	// together start two listings that may answer out of order: the one
	// that started first must not overwrite the newer one.
	lists                      atomic.Uint64
	toolsListed, catalogListed uint64

	// given is what credentials the server was sent, to redact from what
	// it answers.
	given given

	// progress maps the progress tokens Ringlet sent with calls in flight
	// to where the upstream's notifications/progress go: the caller's own
	// token, on the caller's session. Ringlet's tokens are its own, so
	// that two clients' tokens never meet on one upstream connection.
	progress sync.Map // string -> func(mcpgo.NotificationParams)
}

// conn is one run of an upstream: its process and MCP client.
type conn struct {
	cmd *exec.Cmd
	// oauth holds the OAuth token of an HTTP server authorized with
	// 'mcp auth' (nil for others).
	oauth   *oauth.TokenStore
	client  *client.Client
	tr      transport.Interface
	stderr  *tail
	started time.Time
	caps    mcpgo.ServerCapabilities // what it declared at initialize
	catalog catalog                  // what it listed then
	exited  chan struct{}            // closed once the process has been waited for (or an HTTP connection closed)
	once    sync.Once
	exitErr error
	// identity is what runs, as pinned (see mcpserver.Identity).
	identity mcpserver.Identity
}

func (c *conn) markExited() { c.once.Do(func() { close(c.exited) }) }

func newUpstream(h *hub, cfg mcpserver.Config) *upstream {
	u := &upstream{hub: h, cfg: cfg, state: StateIdle}
	u.ctx, u.cancel = context.WithCancel(h.srv.ctx)
	return u
}

// errCallTimeout is the cause of a call's context when the call got no
// answer within the server's timeout (not when its client gave up).
var errCallTimeout = errors.New("the MCP server did not answer in time")

func backoff(failures int) time.Duration {
	d := 500 * time.Millisecond
	for i := 1; i < failures && d < maxBackoff; i++ {
		d *= 2
	}
	return min(d, maxBackoff)
}

// ensure starts the upstream if it is not running and its backoff has
// passed, and waits for the attempt (or ctx). With patient (a call), a
// backoff that ends before ctx's deadline is waited for; else the answer
// says when the next attempt is. The start itself runs in the server's
// context, so a caller that gives up does not abort it for the others.
func (u *upstream) ensure(ctx context.Context, patient bool) error {
	for {
		u.mu.Lock()
		switch u.state {
		case StateRunning:
			u.mu.Unlock()
			return nil
		case stateStopped:
			u.mu.Unlock()
			return errors.New("the server was removed")
		case StateNeedsAuth:
			u.mu.Unlock()
			return u.needsAuth()
		case StateStarting:
			ch := u.startDone
			u.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		case StateFailed, StateRestarting:
			if wait := time.Until(u.retryAt); wait > 0 {
				state, lastErr := u.state, u.lastErr
				u.mu.Unlock()
				if dl, ok := ctx.Deadline(); patient && ok && time.Now().Add(wait).Before(dl) {
					t := time.NewTimer(wait)
					select {
					case <-t.C:
						continue
					case <-ctx.Done():
						t.Stop()
						return ctx.Err()
					}
				}
				if state == StateRestarting {
					return fmt.Errorf("the server is restarting (%s); try again in %s", lastErr, roundWait(wait))
				}
				return fmt.Errorf("the server could not start (%s); the next attempt is in %s", lastErr, roundWait(wait))
			}
		}
		if err := ctx.Err(); err != nil {
			// A caller that is gone (a killed session's call, whose
			// servers the kill just stopped) starts nothing.
			u.mu.Unlock()
			return err
		}
		ch, err := u.beginLocked()
		if err != nil {
			return err
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// kick starts a failed or restarting upstream whose backoff has passed
// and does not wait for the attempt. Unlike ensure with an ended
// context (a caller that is gone, which starts nothing), it is how a
// listing retries a server that could not start.
func (u *upstream) kick() {
	u.mu.Lock()
	if (u.state == StateFailed || u.state == StateRestarting) && time.Until(u.retryAt) <= 0 {
		_, _ = u.beginLocked() // its state says how it went
		return
	}
	u.mu.Unlock()
}

// beginLocked begins a start attempt and returns what is closed when it
// ends. u.mu is held on entry and released.
func (u *upstream) beginLocked() (<-chan struct{}, error) {
	u.state, u.startDone = StateStarting, make(chan struct{})
	ch := u.startDone
	u.mu.Unlock()
	if !u.hub.srv.spawn(u.start) {
		u.mu.Lock()
		u.state = stateStopped
		close(u.startDone)
		u.mu.Unlock()
		return nil, errClosed
	}
	return ch, nil
}

// roundWait rounds a wait for a message, never down to zero.
func roundWait(d time.Duration) time.Duration {
	if d < time.Second {
		return max(d.Round(100*time.Millisecond), 100*time.Millisecond)
	}
	return d.Round(time.Second)
}

// start runs one start attempt and publishes the outcome.
func (u *upstream) start() {
	c, tools, err := u.launch()
	u.mu.Lock()
	if err == nil {
		select {
		case <-c.exited:
			err = c.describeExit()
		default:
		}
	}
	stop := false
	var fault *Fault
	switch {
	case u.state == stateStopped:
		stop = err == nil
	case err != nil && isAuthRequired(err):
		u.state, u.lastErr, u.conn, u.failures = StateNeedsAuth, strings.TrimPrefix(u.needsAuth().Error(), ErrNeedsAuth.Error()+": "), nil, 0
		fault = &Fault{Profile: u.hub.profile, Server: u.cfg.Name, Reason: FaultAuth, Error: u.lastErr}
	case err != nil:
		fault = u.failLocked(FaultStart, u.redact(err.Error()), 0)
		u.state = StateFailed
	default:
		u.state, u.conn, u.tools, u.identity, u.lastErr, u.obs = StateRunning, c, tools, c.identity, "", nil
		u.catalog = c.catalog
	}
	close(u.startDone)
	u.mu.Unlock()
	if hook := testHookStarted.Load(); hook != nil {
		(*hook)(u)
	}
	if stop {
		u.hub.srv.stopConn(c)
	}
	if fault != nil {
		u.hub.srv.log.Warn("MCP server could not start", "profile", u.hub.profile, "server", u.cfg.Name, "err", fault.Error)
		u.report(*fault)
	}
	u.hub.publish()
}

// testHookStarted, set by tests alone, runs between a start's outcome
// and its publish: where a call could once reach a run not yet judged.
var testHookStarted atomic.Pointer[func(*upstream)]

// failLocked records a failure of the current run (or start attempt): the
// run is gone, the server restarting after a backoff that grows with the
// failures in a row. ran is how long the run lasted: a long one resets
// the count. The tools stay listed.
func (u *upstream) failLocked(reason, msg string, ran time.Duration) *Fault {
	if ran >= stableRun {
		u.failures = 0
	}
	u.failures++
	wait := backoff(u.failures)
	u.state, u.lastErr, u.conn, u.catalog, u.obs = StateRestarting, msg, nil, catalog{}, nil
	u.retryAt = time.Now().Add(wait)
	return &Fault{Profile: u.hub.profile, Server: u.cfg.Name, Reason: reason, Error: msg, Failures: u.failures, RetryIn: wait}
}

// endRun ends the current run c against its will: it is stopped (a hung
// process killed; the caller does not wait for it), the fault reported,
// and a restart scheduled after the backoff. It reports whether c was
// the current run.
func (u *upstream) endRun(c *conn, reason, msg, tool string) bool {
	u.mu.Lock()
	current := u.conn == c && u.state == StateRunning
	var fault *Fault
	if current {
		fault = u.failLocked(reason, u.redact(msg), time.Since(c.started))
		fault.Tool = tool
	}
	u.mu.Unlock()
	if !current {
		return false
	}
	srv := u.hub.srv
	srv.log.Warn("MCP server failed; restarting it", "profile", u.hub.profile, "server", u.cfg.Name, "reason", reason, "err", fault.Error, "retry_in", fault.RetryIn)
	u.report(*fault)
	if !c.hasExited() {
		srv.spawn(func() { srv.killConn(c) })
	}
	u.restartAfter(fault.RetryIn)
	return true
}

// restartAfter starts the upstream again once wait has passed, unless it
// was started (by a call) or stopped meanwhile.
func (u *upstream) restartAfter(wait time.Duration) {
	srv := u.hub.srv
	srv.spawn(func() {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-u.ctx.Done():
			return
		}
		u.mu.Lock()
		due := u.state == StateRestarting
		u.mu.Unlock()
		if !due {
			return
		}
		ctx, cancel := context.WithTimeout(u.ctx, srv.opts.StartTimeout+time.Second)
		defer cancel()
		_ = u.ensure(ctx, false) // its state says how it went
	})
}

// report hands a fault to the gateway, for the audit log.
func (u *upstream) report(f Fault) {
	if on := u.hub.srv.opts.OnFault; on != nil {
		on(f)
	}
}

// exited is called by the process watcher of c.
func (u *upstream) exited(c *conn) {
	u.endRun(c, FaultCrash, c.describeExit().Error(), "")
}

// stop ends the upstream for good.
func (u *upstream) stop() {
	u.cancel()
	u.mu.Lock()
	c := u.conn
	u.state, u.conn, u.tools, u.catalog, u.obs = stateStopped, nil, nil, catalog{}, nil
	u.mu.Unlock()
	if c != nil {
		u.hub.srv.stopConn(c)
	}
}

// snapshot returns what 'mcp list' and publishing need.
func (u *upstream) snapshot() (state, lastErr string, retryAt time.Time, tools []upstreamTool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state, u.lastErr, u.retryAt, u.tools
}

// observation is what a run serves, as a pin would hold it. A new one is
// made whenever what the upstream serves changes (a run starts or ends,
// a list changes), so that a publish's judgement of it (judgement) is
// known to be of what is served now.
type observation struct {
	pin    mcpserver.Pin
	digest string
	// conn is the run observed (nil: none runs, only its tools are
	// remembered).
	conn *conn
}

// judgement is what a publish made of an observation: what of it is
// served. A call, read or get reaches a run only once a publish judged
// what that run serves (see upstream.admit).
type judgement struct {
	obs       *observation
	tools     map[string]bool // own names of the tools served
	prompts   map[string]bool // own names of the prompts served
	resources map[string]bool // own URIs of the resources served
	templates []*mcpgo.URITemplate
	// resourceRules are the server's resource rules as published: a URI
	// one of them disables is not served through a template either.
	resourceRules mcpserver.Config
}

// observation is what the upstream's last run serves, as a pin would
// hold it, with its digest; callers must not change it.
func (u *upstream) observation() *observation {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.obs == nil {
		id := u.identity
		p := mcpserver.Pin{Identity: &id, ToolsPinned: true, Tools: make(map[string]mcpserver.PinnedTool, len(u.tools))}
		for _, t := range u.tools {
			p.Tools[t.Name] = t.pinned()
		}
		if u.catalog.known {
			p.CatalogPinned = true
			p.Prompts, p.Resources, p.Templates = u.catalog.pinned()
		}
		u.obs = &observation{pin: p, digest: p.Digest(), conn: u.conn}
	}
	return u.obs
}

// judge keeps what a publish made of o.
func (u *upstream) judge(j *judgement) {
	u.mu.Lock()
	u.judged = j
	u.mu.Unlock()
}

// judgedFor is the judgement of what run c serves now; nil if none was
// made since it last changed.
func (u *upstream) judgedFor(c *conn) *judgement {
	u.mu.Lock()
	defer u.mu.Unlock()
	j := u.judged
	if j == nil || u.obs == nil || j.obs != u.obs || u.obs.conn != c || u.conn != c {
		return nil
	}
	return j
}

// errUnjudged refuses a request to a run whose tools, prompts or
// resources are not approved, or are disabled, by the time it would be
// sent.
var errUnjudged = errors.New("the server changed what it serves (it restarted, or its lists changed) and this is not served now; 'ringlet mcp list' shows why")

// admit is checked before anything is sent to run c: a publish must have
// judged what c serves, and served what ok asks for. A run not judged
// yet (a call that arrived while the server restarted) is judged now,
// by the caller, rather than trusted.
func (u *upstream) admit(c *conn, ok func(*judgement) bool) error {
	j := u.judgedFor(c)
	if j == nil {
		u.hub.publish()
		j = u.judgedFor(c)
	}
	if j == nil || !ok(j) {
		return errUnjudged
	}
	return nil
}

// failuresInARow is the count 'mcp list' shows for a server not running.
func (u *upstream) failuresInARow() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.state == StateRunning {
		return 0
	}
	return u.failures
}

// launch connects (starting the process of a stdio server), initializes
// MCP and lists the tools.
func (u *upstream) launch() (*conn, []upstreamTool, error) {
	srv := u.hub.srv
	var c *conn
	var err error
	if u.cfg.URL != "" {
		c, err = u.dial()
	} else {
		c, err = u.spawn()
	}
	if err != nil {
		return nil, nil, err
	}
	c.client = client.NewClient(c.tr, client.WithProtocolVersion(upstreamProto))
	c.client.OnNotification(func(n mcpgo.JSONRPCNotification) {
		switch n.Method {
		case string(mcpgo.MethodNotificationToolsListChanged):
			u.relist(c)
		case string(mcpgo.MethodNotificationResourcesListChanged), string(mcpgo.MethodNotificationPromptsListChanged):
			u.relistCatalog(c)
		case string(mcpgo.MethodNotificationResourceUpdated):
			if uri, ok := n.Params.AdditionalFields["uri"].(string); ok {
				u.hub.resourceUpdated(u, uri)
			}
		case "notifications/progress":
			tok, _ := n.Params.AdditionalFields["progressToken"].(string)
			if relay, ok := u.progress.Load(tok); ok {
				relay.(func(mcpgo.NotificationParams))(u.redactParams(n.Params))
			}
		}
	})
	ctx, cancel := context.WithTimeout(srv.ctx, srv.opts.StartTimeout)
	defer cancel()
	fail := func(err error) (*conn, []upstreamTool, error) {
		srv.killConn(c)
		if ee := c.describeExit(); c.cmd != nil && c.hasExited() && ee != nil {
			return nil, nil, fmt.Errorf("%v; %v", err, ee)
		}
		return nil, nil, err
	}
	if err := c.client.Start(srv.ctx); err != nil {
		return fail(err)
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = upstreamProto
	init.Params.ClientInfo = mcpgo.Implementation{Name: "ringlet", Version: srv.opts.Version}
	res, err := c.client.Initialize(ctx, init)
	if err != nil && isAuthRequired(err) && c.oauth != nil && c.oauth.Unreachable() == nil {
		// The server refused a token that has not expired (revoked, or
		// its clock differs): it is refreshed, and asked once more.
		c.oauth.Invalidate()
		res, err = c.client.Initialize(ctx, init)
	}
	if err != nil {
		if e := c.refreshUnreachable(err); e != nil {
			err = e
		}
		return fail(fmt.Errorf("initialize: %w", timeoutHint(err, srv.opts.StartTimeout)))
	}
	c.caps = res.Capabilities
	c.catalog = u.listCatalog(ctx, c, res.Capabilities)
	if res.Capabilities.Tools == nil {
		return c, nil, nil
	}
	tools, err := u.listTools(ctx, c)
	if err != nil {
		return fail(fmt.Errorf("list tools: %w", timeoutHint(err, srv.opts.StartTimeout)))
	}
	return c, tools, nil
}

// dial prepares the transport of a streamable HTTP server. It follows no
// redirect: the server's URL is the only place calls go.
func (u *upstream) dial() (*conn, error) {
	hc := &http.Client{Transport: outbound.Transport(), CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// What the transport logs may quote the server (an error body).
	logger := slog.New(redactingHandler{next: u.hub.srv.log.Handler(), redact: u.redact})
	// The standalone GET stream is how servers of the protocol versions
	// in use today send list changes and progress outside a call; the
	// newer subscriptions/listen (Client.Listen) is not spoken by them.
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPBasicClient(hc), transport.WithContinuousListening(), //nolint:staticcheck // SA1019: see above
		transport.WithHTTPLogger(logger)}
	headers, err := u.headers()
	if err != nil {
		return nil, err
	}
	if headers != nil {
		opts = append(opts, transport.WithHTTPHeaderFunc(headers))
	}
	tokens, err := u.oauthTokens()
	if err != nil {
		return nil, err
	}
	if tokens != nil {
		opts = append(opts, transport.WithHTTPOAuth(tokens.config))
	}
	tr, err := transport.NewStreamableHTTP(u.cfg.URL, opts...)
	if err != nil {
		return nil, err
	}
	c := &conn{tr: tr, stderr: &tail{}, exited: make(chan struct{}), started: time.Now(), identity: mcpserver.Identity{URL: u.cfg.URL}}
	if tokens != nil {
		c.oauth = tokens.store
	}
	return c, nil
}

type oauthTokens struct {
	store  *oauth.TokenStore
	config transport.OAuthConfig
}

// oauthTokens is the authorization 'mcp auth' stored for the server, if
// any, as mcp-go's OAuth handler takes it: the token is sent on each
// request and refreshed before it expires, each refreshed token written
// back to the credential store. A record made for another URL (the
// server was removed and added again elsewhere) is never used. Every
// token is redacted from all the server says.
func (u *upstream) oauthTokens() (*oauthTokens, error) {
	keys := u.hub.srv.opts.OAuthKeys
	if keys == nil || u.cfg.SendsAuthorization() {
		return nil, nil
	}
	rec, err := oauth.Load(keys, u.hub.profile, u.cfg.Name)
	switch {
	case errors.Is(err, credentials.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read the server's authorization from the credential store: %w", err)
	case rec.URL != u.cfg.URL:
		return nil, nil
	}
	store := oauth.NewTokenStore(keys, rec, u.given.add)
	return &oauthTokens{store: store, config: oauth.Config(rec, store, store.Client(outbound.Transport()))}, nil
}

// refreshUnreachable is, for err an authorization-required error of run
// c, why the refresh behind it got no answer from the authorization
// server; nil when err is another error or the refresh was refused.
func (c *conn) refreshUnreachable(err error) error {
	if c.oauth == nil || !isAuthRequired(err) {
		return nil
	}
	if e := c.oauth.Unreachable(); e != nil {
		return fmt.Errorf("the OAuth token could not be refreshed: its authorization server did not answer (%w)", e)
	}
	return nil
}

// headers returns what sets the headers of an HTTP server on each request
// (nil when it has none): its plain --header values, its --credential
// as Authorization: Bearer, and its --header-secret keys. Each key is
// checked now, so that a missing one fails the connection with a clear
// error, and its record (header and reference) is written before any is
// sent. The keys are read from the store again for each request rather
// than kept in a long-lived string; one that disappears is not sent and
// the server answers that request unauthorised. Every key sent is
// redacted from all the server says from then on.
func (u *upstream) headers() (transport.HTTPHeaderFunc, error) {
	cfg := u.cfg
	if cfg.Credential == "" && len(cfg.Headers)+len(cfg.HeaderSecrets) == 0 {
		return nil, nil
	}
	// Checked again: the stored file may have been edited by hand.
	for _, name := range cfg.HeaderNames() {
		if _, err := mcpserver.CheckHeaderName(name); err != nil {
			return nil, fmt.Errorf("the server's stored definition is invalid: %w", err)
		}
	}
	srv := u.hub.srv
	get := srv.opts.Credential
	secrets := map[string]string{} // header -> reference
	schemes := map[string]string{} // header -> the word before the key
	for name, v := range cfg.HeaderSecrets {
		scheme, ref, err := mcpserver.HeaderSecretRef(v)
		if err != nil {
			return nil, fmt.Errorf("the server's stored definition is invalid: header %s: %w", name, err)
		}
		secrets[name], schemes[name] = ref, scheme
	}
	if cfg.Credential != "" {
		secrets["Authorization"], schemes["Authorization"] = cfg.Credential, "Bearer"
	}
	if len(secrets) > 0 && get == nil {
		return nil, errors.New("this daemon cannot read credentials for MCP servers")
	}
	for _, name := range slices.Sorted(maps.Keys(secrets)) {
		ref := secrets[name]
		key, err := get(ref)
		if err == nil {
			err = mcpserver.CheckHeaderSecretValue(name, key)
		}
		if err != nil {
			if name == "Authorization" && cfg.Credential != "" {
				return nil, fmt.Errorf("credential %s: %w", ref, err)
			}
			return nil, fmt.Errorf("header %s (%s) cannot be read from the credential store, so the server was not connected: %w; store it with 'ringlet keychain set %s', or change it with 'ringlet mcp set %s %s --header-secret %s=PROVIDER/ALIAS'",
				name, ref, err, strings.Replace(ref, "/", " ", 1), u.hub.profile, cfg.Name, name)
		}
		u.given.add(key)
	}
	if len(cfg.HeaderSecrets) > 0 {
		if srv.opts.OnHeaderSecrets == nil {
			return nil, errors.New("this daemon cannot send MCP servers header secrets")
		}
		if err := srv.opts.OnHeaderSecrets(u.hub.profile, cfg.Name, maps.Clone(cfg.HeaderSecrets)); err != nil {
			return nil, fmt.Errorf("the audit record of the header secrets sent to the server could not be written, so it was not connected: %w", err)
		}
	}
	plain := maps.Clone(cfg.Headers)
	return func(context.Context) map[string]string {
		out := make(map[string]string, len(plain)+len(secrets))
		maps.Copy(out, plain)
		for name, ref := range secrets {
			key, err := get(ref)
			if err != nil || mcpserver.CheckHeaderSecretValue(name, key) != nil {
				continue
			}
			u.given.add(key)
			out[name] = strings.TrimSpace(schemes[name] + " " + key)
		}
		return out
	}, nil
}

// spawn starts the process of a stdio server.
func (u *upstream) spawn() (*conn, error) {
	srv := u.hub.srv
	if srv.opts.Launch == nil {
		return nil, errors.New("the daemon cannot start MCP servers")
	}
	where, err := srv.opts.Launch(u.hub.profile)
	if err != nil {
		return nil, err
	}
	path := u.cfg.SearchPath(srv.opts.Path)
	bin, err := lookPath(u.cfg.Command[0], path)
	if err != nil {
		return nil, err
	}
	// Nothing of the daemon's environment: no key, no token.
	env := []string{"PATH=" + path, "HOME=" + where.Home, "LANG=C.UTF-8"}
	extra, err := u.environment()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	var files [][]byte
	var identity mcpserver.Identity
	attr := child.Attr()
	dir := where.Dir
	if u.cfg.NoSandbox {
		// Unconfined, as the user: never with a HOME or working directory
		// that a sandboxed agent could have written (a .npmrc, a .pth),
		// and in a PID namespace of its own where the kernel allows, so
		// that what it starts (npx's node) dies with it and the daemon.
		if where.UnsandboxedHome == "" {
			return nil, errors.New("no HOME for servers that run without a sandbox")
		}
		env[1] = "HOME=" + where.UnsandboxedHome
		dir = where.UnsandboxedDir
		attr, _ = child.Contained()
		argv0 := u.cfg.Command[0]
		// A shim's manager would run with that HOME, not the user's: the
		// program it stood for when the server was added runs instead.
		if res, err := toolchain.Resolve(bin, toolchain.Options{Path: path, Shims: u.cfg.Shims}); err == nil && res.Program != bin {
			bin, argv0 = res.Program, res.Program
			env[0] = "PATH=" + strings.Join(append(res.Path, path), string(filepath.ListSeparator))
		}
		identity = srv.digests.identityOf(bin, u.cfg.Command[1:], dir)
		cmd = exec.Command(bin, u.cfg.Command[1:]...)
		cmd.Args[0] = argv0
		cmd.Env = append(env, extra...)
	} else {
		if where.Sandbox == nil {
			return nil, errors.New("MCP servers cannot be sandboxed here; remove it and add it again with --no-sandbox to run it unconfined")
		}
		identity = srv.digests.identityOf(bin, u.cfg.Command[1:], dir)
		// The variables go in bwrap's options, on a pipe: never on a
		// command line, which every user of the host can read in /proc.
		argv, fds, err := where.Sandbox(u.cfg, append([]string{bin}, u.cfg.Command[1:]...), append(env, extra...))
		if err != nil {
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		cmd = exec.Command(argv[0], argv[1:]...)
		// bwrap's own environment; the server's is in its options.
		cmd.Env = []string{"PATH=" + srv.opts.Path, "LANG=C.UTF-8"}
		files = fds
	}
	cmd.Dir = dir
	cmd.SysProcAttr = attr
	// A grandchild that keeps stderr open must not hold up Wait.
	cmd.WaitDelay = stopGrace
	c := &conn{cmd: cmd, stderr: &tail{}, exited: make(chan struct{}), identity: identity}
	cmd.Stderr = c.stderr
	// The daemon may hold descriptors it inherited without close-on-exec;
	// an upstream gets none of them.
	if err := child.CloseInheritedOnExec(); err != nil {
		return nil, fmt.Errorf("close the daemon's inherited descriptors: %w", err)
	}
	// Started under the server's lock, so a closing server either never
	// sees the process or waits for its watcher. The pipes are made only
	// once it is sure to start: a failed Start closes them, nothing else
	// would.
	srv.mu.Lock()
	if srv.closed {
		srv.mu.Unlock()
		return nil, errClosed
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		srv.mu.Unlock()
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stdin.Close()
		srv.mu.Unlock()
		return nil, err
	}
	// The sandbox's options (bwrap --args 3) and seccomp filter go on
	// pipes: they hold no secret, but keep the command line short.
	pipes, err := sandbox.NewPipes(files)
	if err != nil {
		stdin.Close()
		stdout.Close()
		srv.mu.Unlock()
		return nil, err
	}
	cmd.ExtraFiles = pipes.Files()
	if err := cmd.Start(); err != nil {
		srv.mu.Unlock()
		pipes.Started(false)
		return nil, fmt.Errorf("start %s: %w", u.cfg.Command[0], err)
	}
	// Small enough for the pipes' buffers: this does not wait on the child.
	pipes.Started(true)
	c.started = time.Now()
	srv.wg.Add(1)
	srv.mu.Unlock()
	go func() {
		defer srv.wg.Done()
		c.exitErr = cmd.Wait()
		// Whatever the server left in its process group goes with it.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		c.markExited()
		u.exited(c)
	}()
	c.tr = transport.NewIO(&lineLimit{r: stdout, max: maxLine}, stdin, nil)
	return c, nil
}

// environment is what the server gets besides PATH, HOME and LANG: its
// plain variables, and its secrets read from the credential store now.
// A secret that cannot be read fails the start (the server never runs
// without it), and one is given only once its record is written; its
// value is redacted from all the server says from then on.
func (u *upstream) environment() ([]string, error) {
	var out []string
	// Checked again: the stored file may have been edited by hand, and a
	// variable must never replace PATH or HOME.
	for _, name := range u.cfg.EnvNames() {
		if err := mcpserver.CheckEnvName(name); err != nil {
			return nil, fmt.Errorf("the server's stored definition is invalid: %w", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(u.cfg.Env)) {
		out = append(out, name+"="+u.cfg.Env[name])
	}
	if len(u.cfg.Secrets) == 0 {
		return out, nil
	}
	srv := u.hub.srv
	if srv.opts.Credential == nil || srv.opts.OnSecrets == nil {
		return nil, errors.New("this daemon cannot give MCP servers secrets")
	}
	values := make([]string, 0, len(u.cfg.Secrets))
	for _, name := range slices.Sorted(maps.Keys(u.cfg.Secrets)) {
		ref := u.cfg.Secrets[name]
		v, err := srv.opts.Credential(ref)
		if err != nil {
			return nil, fmt.Errorf("secret %s (%s) cannot be read from the credential store, so the server was not started: %w; store it with 'ringlet keychain set %s', or change it with 'ringlet mcp set %s %s --secret %s=PROVIDER/ALIAS'",
				name, ref, err, strings.Replace(ref, "/", " ", 1), u.hub.profile, u.cfg.Name, name)
		}
		if v == "" || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("secret %s (%s) is empty or holds a NUL byte, so the server was not started", name, ref)
		}
		values = append(values, v)
		out = append(out, name+"="+v)
	}
	// Redacted from the first byte the server writes.
	for _, v := range values {
		u.given.add(v)
	}
	if err := srv.opts.OnSecrets(u.hub.profile, u.cfg.Name, maps.Clone(u.cfg.Secrets)); err != nil {
		return nil, fmt.Errorf("the audit record of the secrets given to the server could not be written, so it was not started: %w", err)
	}
	return out, nil
}

func timeoutHint(err error, d time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s", d)
	}
	if errors.Is(err, transport.ErrTransportClosed) {
		return errors.New("the server closed its output")
	}
	return err
}

// listTools reads every page of tools/list, keeping each definition's raw
// schemas (mcp-go's Tool type would drop schema keywords it does not
// model).
func (u *upstream) listTools(ctx context.Context, c *conn) ([]upstreamTool, error) {
	var out []upstreamTool
	cursor := ""
	for range maxListPages {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		resp, err := c.tr.SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: mcpgo.JSONRPC_VERSION,
			ID: mcpgo.NewRequestId("ringlet-" + strconv.FormatInt(u.ids.Add(1), 10)), Method: string(mcpgo.MethodToolsList), Params: params})
		if err != nil {
			return nil, err
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("error %d: %s", resp.Error.Code, u.redact(resp.Error.Message))
		}
		var page struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &page); err != nil {
			return nil, fmt.Errorf("invalid tools/list answer: %w", err)
		}
		for _, raw := range page.Tools {
			// What the server says about a tool reaches the model, and is
			// what is pinned.
			raw, err := u.redactJSON(raw)
			if err != nil {
				return nil, fmt.Errorf("invalid tool definition: %w", err)
			}
			var t upstreamTool
			if err := json.Unmarshal(raw, &t); err != nil {
				return nil, fmt.Errorf("invalid tool definition: %w", err)
			}
			t.hash = toolHash(t)
			out = append(out, t)
		}
		if len(out) > maxTools {
			return nil, fmt.Errorf("the server lists more than %d tools", maxTools)
		}
		if page.NextCursor == "" {
			return out, nil
		}
		cursor = page.NextCursor
	}
	return nil, fmt.Errorf("tools/list did not end within %d pages", maxListPages)
}

// relist re-reads the tools of c after the server said they changed.
func (u *upstream) relist(c *conn) {
	srv := u.hub.srv
	srv.spawn(func() {
		ctx, cancel := context.WithTimeout(srv.ctx, srv.opts.StartTimeout)
		defer cancel()
		seq := u.lists.Add(1)
		tools, err := u.listTools(ctx, c)
		u.mu.Lock()
		current := u.conn == c && seq > u.toolsListed
		if current && err == nil {
			u.tools, u.obs, u.toolsListed = tools, nil, seq
		}
		u.mu.Unlock()
		if !current {
			return // another run, or a newer listing already applied
		}
		if err != nil {
			srv.log.Warn("MCP server tools could not be listed again", "profile", u.hub.profile, "server", u.cfg.Name, "err", u.redact(err.Error()))
			return
		}
		u.hub.publish()
	})
}

// call forwards one tool call with exactly args as its arguments. An HTTP
// server that no longer knows its session (it restarted, or expired it)
// never ran the call, so the session is re-initialized and the call sent
// once more. With onProgress, the call asks for progress and the
// upstream's notifications/progress for it are handed to onProgress.
func (u *upstream) call(ctx context.Context, tool string, args json.RawMessage, onProgress func(mcpgo.NotificationParams)) (*mcpgo.CallToolResult, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, u.cfg.Timeout, errCallTimeout)
	defer cancel()
	var meta *mcpgo.Meta
	if onProgress != nil {
		tok := "ringlet-progress-" + strconv.FormatInt(u.ids.Add(1), 10)
		u.progress.Store(tok, onProgress)
		defer u.progress.Delete(tok)
		meta = &mcpgo.Meta{ProgressToken: tok}
	}
	for attempt := 0; ; attempt++ {
		if err := u.ensure(ctx, true); err != nil {
			if context.Cause(ctx) == errCallTimeout {
				return nil, &callError{status: ResultTimeout, err: fmt.Errorf("the server did not start within the call's %s", u.cfg.Timeout)}
			}
			return nil, err
		}
		u.mu.Lock()
		c := u.conn
		u.mu.Unlock()
		if c == nil {
			return nil, errors.New("the server is not running")
		}
		if err := u.admit(c, func(j *judgement) bool { return j.tools[tool] }); err != nil {
			return nil, err
		}
		req := mcpgo.CallToolRequest{}
		req.Params.Name = tool
		req.Params.RawArguments = args
		req.Params.Meta = meta
		res, err := c.client.CallTool(ctx, req)
		if err == nil {
			return res, nil
		}
		status, code := failure(ctx, err)
		if retry, err := u.requestFailed(ctx, c, err, attempt, tool, tool); !retry {
			return nil, &callError{status: status, code: code, err: err}
		}
	}
}

// requestFailed decides what an error of a request to run c (a tool call,
// or another request such as resources/read) means, for the loops that
// send them: whether to send it once more (retry), or else the error to
// answer. what names the request in the fault reported; tool is the tool
// called, if any. A run that does not answer in time, that closed its
// connection, that cannot be reached or whose token was refused for good
// ends here, as it would for any request.
func (u *upstream) requestFailed(ctx context.Context, c *conn, err error, attempt int, what, tool string) (retry bool, _ error) {
	switch {
	case context.Cause(ctx) == errCallTimeout:
		// A server that does not answer may answer nothing more (a
		// stdio server that hung answers no later call either): its
		// run ends and it is restarted.
		msg := fmt.Sprintf("no answer to %s within %s", what, u.cfg.Timeout)
		u.endRun(c, FaultTimeout, msg, tool)
		return false, fmt.Errorf("no answer within %s; the server was stopped and is restarting", u.cfg.Timeout)
	case errors.Is(err, context.DeadlineExceeded):
		return false, fmt.Errorf("no answer within %s", u.cfg.Timeout)
	case errors.Is(err, context.Canceled):
		return false, err // the client went away: the run is not at fault
	case errors.Is(err, transport.ErrTransportClosed):
		if c.cmd != nil {
			// An exit is reported by the process watcher, which
			// restarts the server.
			select {
			case <-c.exited:
				return false, fmt.Errorf("the server exited during the call (%s); it is restarting", u.redact(c.describeExit().Error()))
			case <-time.After(stopGrace):
			}
		}
		if u.endRun(c, FaultCrash, "it closed its connection during a call", tool) || !c.hasExited() {
			return false, errors.New("the server closed its connection during the call; it is restarting")
		}
		return false, errors.New("the server was stopped during the call; it is restarting")
	case errors.Is(err, transport.ErrSessionTerminated) && attempt == 0:
		u.drop(c)
		return true, nil
	case c.refreshUnreachable(err) != nil:
		// Not a refusal: the token could not be refreshed for now.
		// The run ends and the server is tried again after a
		// backoff, as for a server that cannot be reached.
		msg := u.redact(c.refreshUnreachable(err).Error())
		u.endRun(c, FaultUnreachable, msg, tool)
		return false, errors.New(msg + "; it is restarting")
	case isAuthRequired(err) && attempt == 0 && c.oauth != nil:
		// The server refused the token before its expiry (revoked,
		// or its clock differs): it is refreshed, and the request
		// sent once more.
		c.oauth.Invalidate()
		return true, nil
	case isAuthRequired(err):
		u.lostAuth(c, tool)
		return false, u.needsAuth()
	case c.cmd == nil && isTransportError(err):
		// The HTTP server cannot be reached: its run ends and it is
		// tried again after a backoff.
		u.endRun(c, FaultUnreachable, err.Error(), tool)
		return false, errors.New(u.redact(err.Error()))
	default:
		return false, errors.New(u.redact(err.Error()))
	}
}

// lostAuth ends run c of a server that refused its token and has none
// it can refresh: it waits in StateNeedsAuth for 'mcp auth'.
func (u *upstream) lostAuth(c *conn, tool string) {
	u.mu.Lock()
	current := u.conn == c && u.state == StateRunning
	if current {
		// Its resources and prompts are dropped, as when any run ends:
		// they are read from a running server only.
		u.state, u.conn, u.failures, u.catalog, u.obs = StateNeedsAuth, nil, 0, catalog{}, nil
		u.lastErr = strings.TrimPrefix(u.needsAuth().Error(), ErrNeedsAuth.Error()+": ")
	}
	msg := u.lastErr
	u.mu.Unlock()
	if !current {
		return
	}
	srv := u.hub.srv
	srv.log.Warn("MCP server needs authorization", "profile", u.hub.profile, "server", u.cfg.Name)
	u.report(Fault{Profile: u.hub.profile, Server: u.cfg.Name, Reason: FaultAuth, Error: msg, Tool: tool})
	srv.spawn(func() { srv.stopConn(c) })
	u.hub.publish()
}

// isTransportError reports whether err means the server could not be
// reached (not an error it answered).
func isTransportError(err error) bool {
	var e *transport.Error
	return errors.As(err, &e)
}

// drop ends the current run c of an HTTP server that no longer knows its
// session (it restarted, or expired it): it is initialized again at once.
func (u *upstream) drop(c *conn) {
	u.mu.Lock()
	current := u.conn == c && u.state == StateRunning
	if current {
		u.state, u.conn, u.retryAt, u.obs = StateRestarting, nil, time.Now(), nil
	}
	u.mu.Unlock()
	if current {
		u.hub.srv.stopConn(c)
	}
}

// stopConn ends a run: stdin is closed so the server can exit by itself,
// then its process group gets SIGTERM and, after a grace period, SIGKILL.
func (s *Server) stopConn(c *conn) {
	s.endConn(c, []syscall.Signal{0, syscall.SIGTERM, syscall.SIGKILL})
}

// killConn ends a run that failed to start, without waiting for it.
func (s *Server) killConn(c *conn) { s.endConn(c, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) }

func (s *Server) endConn(c *conn, signals []syscall.Signal) {
	if c.client != nil {
		_ = c.client.Close() // stopping: the process or session is ended below either way
	} else {
		_ = c.tr.Close()
	}
	if c.cmd == nil {
		c.markExited()
		return
	}
	for _, sig := range signals {
		if sig != 0 {
			syscall.Kill(-c.cmd.Process.Pid, sig)
		}
		select {
		case <-c.exited:
			return
		case <-time.After(stopGrace):
		}
	}
	<-c.exited
}

func (c *conn) hasExited() bool {
	select {
	case <-c.exited:
		return true
	default:
		return false
	}
}

// describeExit says how the process ended, with the last line it wrote to
// stderr.
func (c *conn) describeExit() error {
	if !c.hasExited() {
		return nil
	}
	var msg string
	var ee *exec.ExitError
	switch {
	case c.exitErr == nil:
		msg = "exited with status 0"
	case errors.As(c.exitErr, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			msg = "killed by " + ws.Signal().String()
		} else {
			msg = "exited with status " + strconv.Itoa(ee.ExitCode())
		}
	default:
		msg = "exited: " + c.exitErr.Error()
	}
	if l := c.stderr.lastLine(); l != "" {
		msg += ": " + l
	}
	return errors.New(msg)
}

// lookPath finds name in path (the upstream's PATH, not the daemon's).
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
		return name, nil
	}
	if p := toolchain.LookPath(name, path); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("%s: not found in PATH %s", name, path)
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// toolHash is what pinning compares: SHA-256 over the canonical JSON of
// the tool's name, title, description, input and output schemas and
// annotations, so a server cannot change what the model reads about a
// tool, or how a client treats it, without the user approving it.
func toolHash(t upstreamTool) string {
	v := map[string]any{"name": t.Name, "title": t.Title, "description": t.Description}
	for k, raw := range map[string]json.RawMessage{"inputSchema": t.InputSchema, "outputSchema": t.OutputSchema, "annotations": t.Annotations} {
		if c, err := canonical(raw); err == nil {
			v[k] = c
		} else {
			v[k] = string(raw)
		}
	}
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// pinned is t as a pin holds it: its schemas and annotations in
// canonical JSON, so that a diff of two shows what changed and nothing
// else.
func (t upstreamTool) pinned() mcpserver.PinnedTool {
	p := mcpserver.PinnedTool{Title: t.Title, Description: t.Description, Hash: t.hash}
	for _, f := range []struct {
		raw json.RawMessage
		out *json.RawMessage
	}{{t.InputSchema, &p.InputSchema}, {t.OutputSchema, &p.OutputSchema}, {t.Annotations, &p.Annotations}} {
		if len(bytes.TrimSpace(f.raw)) == 0 || string(bytes.TrimSpace(f.raw)) == "null" {
			continue
		}
		c, err := canonical(f.raw)
		if err != nil {
			*f.out = append(json.RawMessage(nil), f.raw...)
			continue
		}
		// Escaped as the store escapes it, so that what was stored and
		// what is observed compare byte for byte.
		b, err := json.Marshal(c)
		if err != nil {
			*f.out = append(json.RawMessage(nil), f.raw...)
			continue
		}
		*f.out = b
	}
	return p
}

// canonical decodes raw keeping numbers as written, so that re-encoding it
// sorts object keys and drops insignificant space and nothing else.
func canonical(raw json.RawMessage) (any, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// lineLimit fails a read once a line grows past max, which ends the
// transport instead of growing a buffer without bound.
type lineLimit struct {
	r   io.Reader
	max int
	n   int
}

func (l *lineLimit) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for _, b := range p[:n] {
		if b == '\n' {
			l.n = 0
		} else if l.n++; l.n > l.max {
			return 0, fmt.Errorf("the server wrote a line longer than %d bytes", l.max)
		}
	}
	return n, err
}

// tail keeps the last bytes a process wrote to stderr.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > stderrTail {
		t.buf = append(t.buf[:0:0], t.buf[len(t.buf)-stderrTail:]...)
	}
	return len(p), nil
}

// lastLine is the last non-empty line, bounded and with control
// characters replaced, fit for a status line.
func (t *tail) lastLine() string {
	t.mu.Lock()
	s := string(t.buf)
	t.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(strings.ToValidUTF8(s, "\uFFFD")), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	l = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, l)
	if len(l) > 300 {
		l = l[:300] + "…"
	}
	return l
}

// reset takes the current run of a stdio server away, for the caller to
// kill: the server is idle again, and starts at its next use. It returns
// nil when no process runs.
func (u *upstream) reset() *conn {
	u.mu.Lock()
	defer u.mu.Unlock()
	c := u.conn
	if c == nil || c.cmd == nil || u.state != StateRunning {
		return nil
	}
	u.state, u.conn, u.obs = StateIdle, nil, nil
	return c
}
