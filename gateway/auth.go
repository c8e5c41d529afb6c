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
	mu     sync.Mutex // serialises rotations
	cur    atomic.Pointer[tokenGen]
	onFail func(reason string, r *http.Request)
}

func newAuthenticator(t token.Token, onFail func(string, *http.Request)) *authenticator {
	a := &authenticator{onFail: onFail}
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

// credential extracts the bearer token from a request: the Authorization
// header, or for a WebSocket handshake the subprotocol pair "bearer, TOKEN"
// (browsers' WebSocket API cannot set headers). Query strings and cookies
// are never read. reason names what was wrong when ok is false.
func credential(r *http.Request) (tok, reason string, ok bool) {
	if h := r.Header.Values("Authorization"); len(h) > 0 {
		if len(h) > 1 {
			return "", "malformed", false
		}
		scheme, value, found := strings.Cut(h[0], " ")
		value = strings.TrimSpace(value)
		if !found || !strings.EqualFold(scheme, "Bearer") || value == "" {
			return "", "malformed", false
		}
		return value, "", true
	}
	if protos := subprotocols(r); len(protos) > 0 {
		if len(protos) == 2 && protos[0] == "bearer" && protos[1] != "" {
			return protos[1], "", true
		}
		return "", "malformed", false
	}
	q := r.URL.Query()
	if q.Has("token") || q.Has("access_token") {
		return "", "query_token", false
	}
	return "", "missing", false
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

var authMessages = map[string]string{
	"missing":     "this endpoint needs Authorization: Bearer <token>; the token is in the http_token file in ringlet's config directory",
	"malformed":   "malformed credentials; send exactly one Authorization: Bearer <token> header",
	"query_token": "tokens in query strings are not accepted; send Authorization: Bearer <token> instead",
	"invalid":     "invalid token; read the current one from the http_token file in ringlet's config directory",
}

// middleware admits only requests that carry the current admin token. The
// request context of an admitted request ends when the token is rotated.
func (a *authenticator) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, reason, ok := credential(r)
		var gen *tokenGen
		if ok {
			gen, ok = a.check(tok)
			if !ok {
				reason = "invalid"
			}
		}
		if !ok {
			a.onFail(reason, r)
			w.Header().Set("WWW-Authenticate", `Bearer realm="ringlet"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", authMessages[reason])
			return
		}
		ctx, cancel := context.WithCancelCause(r.Context())
		stop := context.AfterFunc(gen.ctx, func() { cancel(context.Cause(gen.ctx)) })
		defer func() {
			stop()
			cancel(nil)
		}()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}
