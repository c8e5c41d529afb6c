package gateway

import (
	"context"
	"net/http"
	"strings"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/dashboard"
)

// callerKind is what a request's credential made of it.
type callerKind uint8

const (
	// nobody sent no credential, a malformed one, or a token that is not
	// valid (any more).
	nobody callerKind = iota
	// admin holds the admin token: the user.
	admin
	// sessionCaller holds a live session token: an agent of the session's
	// profile, or its sandbox through the session's socket.
	sessionCaller
	// browser holds a live dashboard login cookie ('ringlet ui'): the
	// user, in a browser, on the dashboard's routes only.
	browser
)

func (k callerKind) String() string {
	switch k {
	case admin:
		return "admin"
	case sessionCaller:
		return "session"
	case browser:
		return "browser"
	}
	return "nobody"
}

// caller is who sent a request. It is decided once, at the edge, by
// callerOf; what each kind may reach is the route table's to say
// (routes.go), and handlers read it from the request's context.
type caller struct {
	kind callerKind
	// tok is the token presented, whatever it is worth: MCP sessions are
	// bound to it, and a refusal records it as an HMAC.
	tok  string
	gen  *tokenGen // admin: the generation of the token, which ends on rotation
	sess *session  // sessionCaller: the live session
	// login is a browser's dashboard login; its context ends with it.
	login *dashboard.Login
	// keyed: the browser sent its login's page key too
	// (dashboard.KeyHeader), which only the dashboard's own pages have.
	keyed bool
	// reason says why the caller is nobody (a ringlet_auth_failures_total
	// reason).
	reason string
}

// callerOf turns a request into its caller, reading the token from the
// carriers in from (credential). A token that starts with
// api.SessionTokenPrefix is a session token and is only ever looked up as
// one; any other is compared with the admin token.
func (s *Server) callerOf(r *http.Request, from carrier) caller {
	if from == fromCookie {
		tok, reason, ok := loginCookie(r, s.cookieName())
		if !ok {
			return caller{reason: reason}
		}
		// A dashboard route: the login cookie is its only credential,
		// looked up as nothing else, with the page key (pageKey).
		key, _ := pageKey(r)
		if l, keyed, ok := s.logins.Check(tok, key); ok {
			return caller{kind: browser, tok: tok, login: l, keyed: keyed}
		}
		return caller{tok: tok, reason: "invalid"}
	}
	tok, reason, ok := credential(r, from)
	if !ok {
		return caller{reason: reason}
	}
	if strings.HasPrefix(tok, api.SessionTokenPrefix) {
		if sess := s.sessions.liveSession(r.Context(), tok); sess != nil {
			return caller{kind: sessionCaller, tok: tok, sess: sess}
		}
		return caller{tok: tok, reason: "invalid_session"}
	}
	if gen, ok := s.auth.check(tok); ok {
		return caller{kind: admin, tok: tok, gen: gen}
	}
	return caller{tok: tok, reason: "invalid"}
}

type callerKey struct{}

// callerCtx carries the caller the gate admitted: context.WithValue of
// it, in one allocation instead of two (the caller boxed and the
// context) on every request.
type callerCtx struct {
	context.Context
	c caller
}

func (c *callerCtx) Value(key any) any {
	if _, ok := key.(callerKey); ok {
		return &c.c
	}
	return c.Context.Value(key)
}

func withCaller(ctx context.Context, c caller) context.Context {
	return &callerCtx{Context: ctx, c: c}
}

// callerFrom is the caller the gate admitted; nobody outside a gate.
func callerFrom(ctx context.Context) caller {
	if c, ok := ctx.Value(callerKey{}).(*caller); ok {
		return *c
	}
	return caller{}
}

// sessionOf is the session of a request the gate admitted as a session
// caller. A route that calls it admits only sessions; reaching it with any
// other caller is a bug in the route table, and fails closed (the
// recoverer answers 500).
func sessionOf(r *http.Request) *session {
	c := callerFrom(r.Context())
	if c.kind != sessionCaller || c.sess == nil {
		panic("gateway: a session route was reached by " + c.kind.String())
	}
	return c.sess
}

// cookieName is the name of this daemon's dashboard login cookie.
func (s *Server) cookieName() string { return dashboard.CookieName(int(s.port.Load())) }

// actorOf is who an admin route's audit record names: the dashboard when
// a browser's login asked (the dashboard's routes share the API's
// handlers), else the admin token.
func actorOf(r *http.Request) string {
	if callerFrom(r.Context()).kind == browser {
		return audit.ActorDashboard
	}
	return audit.ActorAdmin
}
