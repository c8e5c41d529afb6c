package mcp

import (
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
type boundSessions struct {
	mu   sync.Mutex
	byID map[string]boundSession
	per  map[string]int // live sessions per binding
}

type boundSession struct {
	binding string
	scope   string
	used    time.Time // created or last presented
}

func newBoundSessions() *boundSessions {
	return &boundSessions{byID: map[string]boundSession{}, per: map[string]int{}}
}

// check reports whether id is a live session of caller on scope.
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
	t.byID[id] = s
	return true
}

// oldest is binding's least recently used session, or "" if it has none.
func (t *boundSessions) oldest(binding string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var id string
	var at time.Time
	for k, s := range t.byID {
		if s.binding == binding && (id == "" || s.used.Before(at)) {
			id, at = k, s.used
		}
	}
	return id
}

func (t *boundSessions) full(binding string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.per[binding] >= maxSessionsPerBinding
}

func (t *boundSessions) add(binding, scope string) string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; an id that
		// matches nothing is the safe answer if it ever does.
		return ""
	}
	id := "rmcp_" + hex.EncodeToString(b[:])
	t.mu.Lock()
	t.byID[id] = boundSession{binding: binding, scope: scope, used: time.Now()}
	t.per[binding]++
	t.mu.Unlock()
	return id
}

func (t *boundSessions) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.byID[id]; ok {
		delete(t.byID, id)
		if t.per[s.binding]--; t.per[s.binding] <= 0 {
			delete(t.per, s.binding)
		}
	}
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
	return m.t.add(m.caller.Binding, m.scope)
}

func (m *idManager) Validate(id string) (bool, error) {
	if !m.t.check(id, m.caller, m.scope) {
		return false, errNoSession
	}
	return false, nil
}

func (m *idManager) Terminate(id string) (bool, error) {
	if m.caller != nil && !m.t.check(id, m.caller, m.scope) {
		return false, errNoSession
	}
	m.t.remove(id)
	return false, nil
}
