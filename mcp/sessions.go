package mcp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// maxSessionsPerBinding bounds the MCP sessions one credential holds open,
// so a client that never ends its sessions cannot grow the table without
// bound (idle ones are swept anyway). At the bound, a new session ends the
// credential's least recently used one: clients that never send DELETE
// (the MCP Inspector CLI, the conformance suite) must not lock a token out.
const maxSessionsPerBinding = 256

var errNoSession = errors.New("no such MCP session")

// boundSessions is the table of live MCP session ids. An id is 32 random
// bytes, bound to the credential (Caller.Binding) and the server (scope)
// that created it: the same id presented with another token, or to
// another profile's server, is unknown. An id is never a credential; the
// bearer token is checked on every request before the id is looked at.
//
// mcp-go's default manager (StatelessGeneratingSessionIdManager) accepts
// any well-formed UUID and binds it to nothing, which is why Ringlet
// brings its own.
//
// The table is the authority on which sessions live: a session it ends on
// its own (evicted at the limit, or its credential stopped working) is
// unknown from that moment, and ended is told so that mcp-go drops its
// state too.
type boundSessions struct {
	// ended is called, outside the lock, with each session the table
	// ended on its own and why.
	ended func(scope, id, why string)

	mu        sync.Mutex
	byID      map[string]*boundSession
	byBinding map[string]*binding
}

type boundSession struct {
	binding string
	scope   string
	used    time.Time // created or last presented
}

// binding is the live sessions of one credential.
type binding struct {
	ids   map[string]*boundSession
	watch func() bool // stops watching the credential; nil if it never ends
}

// Why a session was ended by the table.
const (
	endedEvicted = "evicted"
	endedRevoked = "revoked"
)

func newBoundSessions(ended func(scope, id, why string)) *boundSessions {
	return &boundSessions{ended: ended, byID: map[string]*boundSession{}, byBinding: map[string]*binding{}}
}

// check reports whether id is a live session of caller on scope, and
// marks it used.
func (t *boundSessions) check(id string, c *Caller, scope string) bool {
	if c == nil || c.Binding == "" {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok || s.binding != c.Binding || s.scope != scope {
		return false
	}
	s.used = time.Now()
	return true
}

// add creates a session of c on scope. At the limit it first ends c's
// least recently used session, so the table never holds more than the
// limit per credential however many initializes race.
func (t *boundSessions) add(c *Caller, scope string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; an id that
		// matches nothing is the safe answer if it ever does.
		return ""
	}
	id := "rmcp_" + hex.EncodeToString(b[:])
	var evicted *boundSession
	var evictedID string
	t.mu.Lock()
	bd := t.byBinding[c.Binding]
	if bd == nil {
		bd = &binding{ids: map[string]*boundSession{}}
		t.byBinding[c.Binding] = bd
		if c.Valid != nil {
			key := c.Binding
			bd.watch = context.AfterFunc(c.Valid, func() { t.endBinding(key) })
		}
	}
	if len(bd.ids) >= maxSessionsPerBinding {
		for k, s := range bd.ids {
			if evicted == nil || s.used.Before(evicted.used) {
				evictedID, evicted = k, s
			}
		}
		delete(bd.ids, evictedID)
		delete(t.byID, evictedID)
	}
	s := &boundSession{binding: c.Binding, scope: scope, used: time.Now()}
	t.byID[id] = s
	bd.ids[id] = s
	t.mu.Unlock()
	if evicted != nil && t.ended != nil {
		t.ended(evicted.scope, evictedID, endedEvicted)
	}
	return id
}

// remove forgets id, ended by its client (DELETE) or mcp-go's idle sweep.
func (t *boundSessions) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok {
		return
	}
	delete(t.byID, id)
	if bd := t.byBinding[s.binding]; bd != nil {
		delete(bd.ids, id)
		if len(bd.ids) == 0 {
			if bd.watch != nil {
				bd.watch()
			}
			delete(t.byBinding, s.binding)
		}
	}
}

// endBinding ends every session of a credential that stopped working.
func (t *boundSessions) endBinding(key string) {
	t.mu.Lock()
	bd := t.byBinding[key]
	delete(t.byBinding, key)
	var ended []*boundSession
	var ids []string
	if bd != nil {
		for id, s := range bd.ids {
			delete(t.byID, id)
			ids, ended = append(ids, id), append(ended, s)
		}
	}
	t.mu.Unlock()
	if t.ended == nil {
		return
	}
	for i, id := range ids {
		t.ended(ended[i].scope, id, endedRevoked)
	}
}

// endScope forgets every session of scope, whose server is gone.
func (t *boundSessions) endScope(scope string) {
	t.mu.Lock()
	var ids []string
	for id, s := range t.byID {
		if s.scope == scope {
			ids = append(ids, id)
		}
	}
	t.mu.Unlock()
	for _, id := range ids {
		t.remove(id)
	}
}

// live reports whether id is in the table.
func (t *boundSessions) live(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.byID[id]
	return ok
}

func (t *boundSessions) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// resolver hands mcp-go a session id manager bound to the caller of each
// request; mcp-go's idle sweeper passes a nil request and may only end
// sessions.
type resolver struct {
	t     *boundSessions
	scope string
}

func (r resolver) ResolveSessionIdManager(req *http.Request) server.SessionIdManager {
	m := &idManager{t: r.t, scope: r.scope}
	if req != nil {
		m.caller = CallerFrom(req.Context())
	}
	return m
}

type idManager struct {
	t      *boundSessions
	scope  string
	caller *Caller
}

func (m *idManager) Generate() string {
	if m.caller == nil || m.caller.Binding == "" {
		return ""
	}
	return m.t.add(m.caller, m.scope)
}

func (m *idManager) Validate(id string) (bool, error) {
	if !m.t.check(id, m.caller, m.scope) {
		return false, errNoSession
	}
	return false, nil
}

// Terminate ends id for its client's DELETE, or for the idle sweeper and
// Ringlet's own clean-up (no caller), which may end any session.
func (m *idManager) Terminate(id string) (bool, error) {
	if m.caller != nil && !m.t.check(id, m.caller, m.scope) {
		return false, errNoSession
	}
	m.t.remove(id)
	return false, nil
}
