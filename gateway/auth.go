package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/neullabs/ringlet/dashboard"
	"github.com/neullabs/ringlet/token"
)

// errTokenRotated is the cancellation cause of every request context that
// was authenticated with a token that has since been rotated.
var errTokenRotated = errors.New("token rotated; reconnect with the new token")

// tokenGen is one generation of the admin token. Its context is cancelled
// when the token is replaced, which ends every WebSocket and stream that
// was opened with it.
type tokenGen struct {
	hash   [32]byte
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// authenticator checks bearer tokens against the current admin token.
type authenticator struct {
	mu  sync.Mutex // serialises rotations
	cur atomic.Pointer[tokenGen]
}

func newAuthenticator(t token.Token) *authenticator {
	a := &authenticator{}
	a.set(t)
	return a
}

// set makes t the only accepted token and cancels everything opened with
// the previous one.
func (a *authenticator) set(t token.Token) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ctx, cancel := context.WithCancelCause(context.Background())
	old := a.cur.Swap(&tokenGen{hash: t.Hash(), ctx: ctx, cancel: cancel})
	if old != nil {
		old.cancel(errTokenRotated)
	}
}

// check reports whether presented is the current token. Both sides are
// hashed first so the comparison takes the same time whatever the length
// or content of the guess.
func (a *authenticator) check(presented string) (*tokenGen, bool) {
	g := a.cur.Load()
	h := sha256.Sum256([]byte(presented))
	return g, subtle.ConstantTimeCompare(h[:], g.hash[:]) == 1
}

// serve runs next with a request context that ends when this generation
// of the token is rotated, so that nothing opened with it outlives it.
func (g *tokenGen) serve(next http.Handler, w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithCancelCause(r.Context())
	stop := context.AfterFunc(g.ctx, func() { cancel(context.Cause(g.ctx)) })
	defer func() {
		stop()
		cancel(nil)
	}()
	next.ServeHTTP(w, r.WithContext(ctx))
}

// carrier is a place in a request that may hold a token. Which ones a
// route reads follows from who it admits (who.carriers).
type carrier uint8

const (
	// fromAuthorization is "Authorization: Bearer TOKEN": either token.
	fromAuthorization carrier = 1 << iota
	// fromAPIKey is "X-Api-Key: TOKEN", where provider SDKs put their key:
	// a session token, on the routes only sessions reach.
	fromAPIKey
	// fromSubprotocol is the WebSocket subprotocol pair "bearer, TOKEN"
	// (browsers' WebSocket API cannot set headers): the admin token, on
	// the routes only the admin reaches.
	fromSubprotocol
	// fromCookie is the dashboard's login cookie, on the dashboard's
	// routes, which read nothing else.
	fromCookie
)

// credential extracts the one token of a request from the carriers in
// from. This is the only place a token is read from a request:
//
//   - A carrier header may be sent once: two Authorization or two
//     X-Api-Key headers are malformed, even beside the header that
//     would have decided.
//   - X-Api-Key, when read and not empty, decides: an Authorization
//     header beside it is ignored (SDKs send a stale one from the
//     environment; the proxy never forwards it). Otherwise Authorization
//     decides, and must be "Bearer TOKEN"; otherwise the subprotocol
//     pair, which must be exactly "bearer, TOKEN".
//   - No cookie is ever read here: the dashboard's login cookie is read
//     by loginCookie, only on the dashboard's routes (fromCookie).
//   - Query strings are never read; a token in the query is named as the
//     reason, so the client learns where to put it.
//
// reason names what was wrong when ok is false.
func credential(r *http.Request, from carrier) (tok, reason string, ok bool) {
	if from == fromCookie {
		return "", "missing", false
	}
	var key []string
	if from&fromAPIKey != 0 {
		key = r.Header.Values("X-Api-Key")
	}
	var authz []string
	if from&fromAuthorization != 0 {
		authz = r.Header.Values("Authorization")
	}
	if len(key) > 1 || len(authz) > 1 {
		return "", "malformed", false
	}
	if len(key) == 1 && key[0] != "" {
		return key[0], "", true
	}
	if len(authz) == 1 {
		scheme, value, found := strings.Cut(authz[0], " ")
		value = strings.TrimSpace(value)
		if !found || !strings.EqualFold(scheme, "Bearer") || value == "" {
			return "", "malformed", false
		}
		return value, "", true
	}
	if from&fromSubprotocol != 0 {
		if protos := subprotocols(r); len(protos) > 0 {
			if len(protos) == 2 && protos[0] == "bearer" && protos[1] != "" {
				return protos[1], "", true
			}
			return "", "malformed", false
		}
	}
	q := r.URL.Query()
	if q.Has("token") || q.Has("access_token") {
		return "", "query_token", false
	}
	return "", "missing", false
}

// pageProtocol is the WebSocket subprotocol a dashboard page opens a
// terminal with: the pair "ringlet-page, KEY" carries the login's page
// key, which a browser's WebSocket cannot send in dashboard.KeyHeader.
// The daemon answers with the name alone, never the key.
const pageProtocol = "ringlet-page"

// pageKey is the page key of a dashboard request: the one
// dashboard.KeyHeader, or, on a WebSocket handshake (and only there),
// the subprotocol pair "ringlet-page, KEY". Anything else (two headers, a
// header and the pair, another list, the pair on a plain request, a key
// in the query) is no key, which the data routes refuse (byBrowser). The
// subprotocols are read only when no header was sent.
func pageKey(r *http.Request) (key string, ok bool) {
	keys := r.Header.Values(dashboard.KeyHeader)
	protos := subprotocols(r)
	switch {
	case len(keys) == 1 && len(protos) == 0:
		return keys[0], keys[0] != ""
	case len(keys) != 0:
		return "", false
	}
	if len(protos) != 2 || protos[0] != pageProtocol || protos[1] == "" || !isWebSocket(r) {
		return "", false
	}
	return protos[1], true
}

// isWebSocket reports whether r asks to become a WebSocket.
func isWebSocket(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
}

func subprotocols(r *http.Request) []string {
	var out []string
	for _, line := range r.Header.Values("Sec-WebSocket-Protocol") {
		for _, p := range strings.Split(line, ",") {
			out = append(out, strings.TrimSpace(p))
		}
	}
	return out
}

//nolint:gosec // G101: messages about tokens, not tokens
var authMessages = map[string]string{
	"missing":         "this endpoint needs Authorization: Bearer <token>; the token is in the http_token file in ringlet's config directory",
	"malformed":       "malformed credentials; send exactly one Authorization: Bearer <token> header",
	"query_token":     "tokens in query strings are not accepted; send Authorization: Bearer <token> instead",
	"invalid":         "invalid token; read the current one from the http_token file in ringlet's config directory",
	"invalid_session": "this session token is not valid (revoked or expired); start a new session",
}

// loginCookie reads the dashboard's login cookie, named name, which must
// be sent once.
func loginCookie(r *http.Request, name string) (tok, reason string, ok bool) {
	var found []string
	for _, c := range r.CookiesNamed(name) {
		found = append(found, c.Value)
	}
	switch {
	case len(found) > 1:
		return "", "malformed", false
	case len(found) == 1 && found[0] != "":
		return found[0], "", true
	}
	return "", "missing", false
}
