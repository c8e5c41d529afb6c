package mcp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/mcp/internal/testserver"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/mcp/oauth"
)

// oauthUpstream is the test server over HTTP behind OAuth, with its
// authorization server: it serves a request whose bearer token it
// issued and has not revoked, and answers the others 401 naming its
// resource metadata. Its token endpoint refreshes, refuses, or drops the
// connection as the test says.
type oauthUpstream struct {
	ts *httptest.Server
	h  http.Handler

	mu        sync.Mutex
	valid     map[string]bool
	issued    int
	mode      string // "" issue, "refuse", "down"
	refreshes []url.Values
}

func newOAuthUpstream(t *testing.T, opts ...server.ServerOption) *oauthUpstream {
	u := &oauthUpstream{valid: map[string]bool{"access-0": true}}
	s := testserver.New("Echo behind OAuth.", opts...)
	if len(opts) > 0 {
		s.AddResource(mcpgo.NewResource("test://doc/1", "doc 1"), func(ctx context.Context, req mcpgo.ReadResourceRequest) ([]mcpgo.ResourceContents, error) {
			return []mcpgo.ResourceContents{mcpgo.TextResourceContents{URI: req.Params.URI, Text: "doc 1"}}, nil
		})
	}
	u.h = server.NewStreamableHTTPServer(s, server.WithStateful(true))
	u.ts = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(func() {
		u.ts.CloseClientConnections()
		u.ts.Close()
	})
	return u
}

func (u *oauthUpstream) url() string { return u.ts.URL + "/mcp" }

func (u *oauthUpstream) serve(w http.ResponseWriter, r *http.Request) {
	base := u.ts.URL
	switch r.URL.Path {
	case "/mcp":
		u.mu.Lock()
		ok := u.valid[strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")]
		u.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		u.h.ServeHTTP(w, r)
	case "/.well-known/oauth-protected-resource/mcp":
		writeTestJSON(w, map[string]any{"resource": base + "/mcp", "authorization_servers": []string{base}})
	case "/.well-known/oauth-authorization-server":
		writeTestJSON(w, map[string]any{"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"code_challenge_methods_supported": []string{"S256"}})
	case "/token":
		_ = r.ParseForm() // an empty form is refused below
		u.mu.Lock()
		u.refreshes = append(u.refreshes, r.PostForm)
		mode := u.mode
		u.mu.Unlock()
		switch {
		case mode == "down":
			// The connection drops: no answer at all.
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close() // the point
					return
				}
			}
			http.Error(w, "down", http.StatusBadGateway)
		case mode == "refuse" || r.PostForm.Get("grant_type") != "refresh_token":
			w.WriteHeader(http.StatusBadRequest)
			writeTestJSON(w, map[string]any{"error": "invalid_grant", "error_description": "the refresh token was revoked"})
		default:
			u.mu.Lock()
			u.issued++
			tok := "access-" + strconv.Itoa(u.issued)
			u.valid[tok] = true
			u.mu.Unlock()
			writeTestJSON(w, map[string]any{"access_token": tok, "refresh_token": "refresh-" + strconv.Itoa(u.issued), "token_type": "Bearer", "expires_in": 3600})
		}
	default:
		http.NotFound(w, r)
	}
}

// revoke makes the server refuse every token it issued so far.
func (u *oauthUpstream) revoke() {
	u.mu.Lock()
	clear(u.valid)
	u.mu.Unlock()
}

func (u *oauthUpstream) setMode(m string) {
	u.mu.Lock()
	u.mode = m
	u.mu.Unlock()
}

func (u *oauthUpstream) refreshCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.refreshes)
}

func writeTestJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v) // the client sees a short answer
}

// testKeys is a credential store in memory.
type testKeys struct {
	mu sync.Mutex
	m  map[credentials.Ref]string
}

func (k *testKeys) Get(r credentials.Ref) (credentials.Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[r]
	if !ok {
		return credentials.Secret{}, credentials.ErrNotFound
	}
	return credentials.NewSecret(v), nil
}

func (k *testKeys) Set(r credentials.Ref, s credentials.Secret) (credentials.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[r] = s.Reveal()
	return credentials.Entry{}, nil
}

func (k *testKeys) Remove(r credentials.Ref) (credentials.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.m, r)
	return credentials.Entry{}, nil
}

// oauthWorld is a world whose profile a has server docs behind OAuth,
// authorized with access-0 (valid for an hour) and refresh-0.
func oauthWorld(t *testing.T, opts ...server.ServerOption) (*world, *oauthUpstream, *testKeys) {
	t.Helper()
	up := newOAuthUpstream(t, opts...)
	keys := &testKeys{m: map[credentials.Ref]string{}}
	rec := &oauth.Record{Profile: "a", Server: "docs", URL: up.url(), Issuer: up.ts.URL, ClientID: "ringlet-client",
		ResourceMetadata: up.ts.URL + "/.well-known/oauth-protected-resource/mcp",
		Token:            transport.Token{AccessToken: "access-0", RefreshToken: "refresh-0", TokenType: "Bearer", ExpiresIn: 3600, ExpiresAt: time.Now().Add(time.Hour)}}
	if err := oauth.Save(keys, rec); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, func(o *Options) { o.OAuthKeys = keys })
	if _, err := w.srv.AddServer("a", mcpserver.Config{Name: "docs", URL: up.url(), Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return w, up, keys
}

// needsAuthError checks that a call got the JSON-RPC error that names
// the command fixing it.
func needsAuthError(t *testing.T, c *testClient, tool string) {
	t.Helper()
	m := c.call("tools/call", map[string]any{"name": tool, "arguments": map[string]any{"text": "hi"}})
	if m.Error == nil {
		t.Fatalf("a call to a server that needs authorization: got result %s, want a JSON-RPC error", m.Result)
	}
	if !strings.Contains(m.Error.Message, "run 'ringlet mcp auth a docs'") {
		t.Errorf("got error %d %q, want it to name 'ringlet mcp auth a docs'", m.Error.Code, m.Error.Message)
	}
}

// TestOAuthUpstreamRefusedTokenIsRefreshedOnce: a token the server
// refuses before its expiry is refreshed and the call sent once more;
// the refreshed tokens are what the store holds.
func TestOAuthUpstreamRefusedTokenIsRefreshedOnce(t *testing.T) {
	t.Parallel()
	w, up, keys := oauthWorld(t)
	c := w.ready(t, "a1")
	if r := c.tool("docs__echo", map[string]any{"text": "one"}); r.IsError || !strings.Contains(r.text(), "one") {
		t.Fatalf("first call: %v %q", r.IsError, r.text())
	}
	if n := up.refreshCount(); n != 0 {
		t.Fatalf("refreshed %d times with a valid token", n)
	}
	up.revoke()
	if r := c.tool("docs__echo", map[string]any{"text": "two"}); r.IsError || !strings.Contains(r.text(), "two") {
		t.Fatalf("call after the token was refused: %v %q", r.IsError, r.text())
	}
	if n := up.refreshCount(); n != 1 {
		t.Errorf("refreshed %d times, want once", n)
	}
	rec, err := oauth.Load(keys, "a", "docs")
	if err != nil || rec.Token.AccessToken != "access-1" || rec.Token.RefreshToken != "refresh-1" {
		t.Errorf("stored: %+v, %v; want access-1 and refresh-1", rec, err)
	}
	if st := w.status("a", "docs"); st.State != StateRunning {
		t.Errorf("state: got %s (%s), want running", st.State, st.Error)
	}
}

// TestOAuthUpstreamRefreshRefusedNeedsAuth: a refused refresh leaves the
// server needing authorization: its status says which command fixes it,
// a fault is reported, and calls get a JSON-RPC error naming it.
func TestOAuthUpstreamRefreshRefusedNeedsAuth(t *testing.T) {
	t.Parallel()
	w, up, _ := oauthWorld(t)
	c := w.ready(t, "a1")
	if r := c.tool("docs__echo", map[string]any{"text": "one"}); r.IsError {
		t.Fatalf("first call: %q", r.text())
	}
	up.revoke()
	up.setMode("refuse")
	needsAuthError(t, c, "docs__echo")
	st := w.status("a", "docs")
	if st.State != StateNeedsAuth || !strings.Contains(st.Error, "run 'ringlet mcp auth a docs'") {
		t.Errorf("status: got %s %q, want needs-auth naming the command", st.State, st.Error)
	}
	if f := w.faultsOf("a", "docs"); len(f) == 0 || f[len(f)-1].Reason != FaultAuth {
		t.Errorf("faults: got %+v, want one of reason auth", f)
	}
	// It stays so (no retry loop against the authorization server) and
	// its tools stay listed so that calls are told why.
	n := up.refreshCount()
	needsAuthError(t, c, "docs__echo")
	if up.refreshCount() != n {
		t.Error("a call to a server that needs authorization tried to refresh again")
	}
}

// TestOAuthUpstreamRefreshUnreachable: a refresh that gets no answer is
// not a refusal: the server is restarting with the reason, not needing
// authorization, and once the authorization server answers again the
// token is refreshed and calls go through.
func TestOAuthUpstreamRefreshUnreachable(t *testing.T) {
	t.Parallel()
	w, up, _ := oauthWorld(t)
	c := w.ready(t, "a1")
	if r := c.tool("docs__echo", map[string]any{"text": "one"}); r.IsError {
		t.Fatalf("first call: %q", r.text())
	}
	up.revoke()
	up.setMode("down")
	m := c.call("tools/call", map[string]any{"name": "docs__echo", "arguments": map[string]any{"text": "two"}})
	var r toolResult
	if m.Error != nil || json.Unmarshal(m.Result, &r) != nil || !r.IsError || !strings.Contains(r.text(), "authorization server did not answer") {
		t.Fatalf("call while the authorization server is down: got error %+v, result %s; want a tool error saying so", m.Error, m.Result)
	}
	st := w.status("a", "docs")
	if st.State == StateNeedsAuth || !strings.Contains(st.Error, "authorization server did not answer") {
		t.Errorf("status: got %s %q, want restarting with the reason", st.State, st.Error)
	}
	if f := w.faultsOf("a", "docs"); len(f) == 0 || f[len(f)-1].Reason != FaultUnreachable {
		t.Errorf("faults: got %+v, want one of reason unreachable", f)
	}
	up.setMode("")
	waitFor(t, 30*time.Second, "a call to go through again", func() bool {
		m := c.call("tools/call", map[string]any{"name": "docs__echo", "arguments": map[string]any{"text": "three"}})
		var r toolResult
		return m.Error == nil && json.Unmarshal(m.Result, &r) == nil && !r.IsError && strings.Contains(r.text(), "three")
	})
}

// TestOAuthUpstreamRenewedNeedsAuth: a server restarted by 'mcp set'
// with the same definition (or by 'mcp auth', which reconnects it) whose
// new run needs authorization keeps its tools listed, and a call gets
// the JSON-RPC error naming the command, not "tool not found" nor the
// stopped run's "the server was removed".
func TestOAuthUpstreamRenewedNeedsAuth(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(*mcpserver.Config) error{
		"same definition": func(*mcpserver.Config) error { return nil },
		"another header":  func(c *mcpserver.Config) error { c.Headers = map[string]string{"X-Team": "infra"}; return nil },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w, up, _ := oauthWorld(t)
			c := w.ready(t, "a1")
			if r := c.tool("docs__echo", map[string]any{"text": "one"}); r.IsError {
				t.Fatalf("first call: %q", r.text())
			}
			up.revoke()
			up.setMode("refuse")
			if _, err := w.srv.ChangeServer("a", "docs", change); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the new run to need authorization", func() bool { return w.status("a", "docs").State == StateNeedsAuth })
			needsAuthError(t, c, "docs__echo")
		})
	}
}

// TestChangeServerSameToolsRebinds: a server restarted by 'mcp set' with
// the same definition serves the same tools from a new run; a call right
// after goes to that run (it waits for its start), not to the stopped
// one.
func TestChangeServerSameToolsRebinds(t *testing.T) {
	t.Parallel()
	up := newHTTPUpstream(t)
	w := newWorld(t)
	if _, err := w.srv.AddServer("a", mcpserver.Config{Name: "web", URL: up.ts.URL + "/mcp", Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c := w.ready(t, "a1")
	if r := c.tool("web__echo", map[string]any{"text": "one"}); r.IsError {
		t.Fatalf("first call: %q", r.text())
	}
	for i := range 3 {
		if _, err := w.srv.ChangeServer("a", "web", func(*mcpserver.Config) error { return nil }); err != nil {
			t.Fatal(err)
		}
		text := "after set " + strconv.Itoa(i)
		if r := c.tool("web__echo", map[string]any{"text": text}); r.IsError || !strings.Contains(r.text(), text) {
			t.Errorf("call right after 'mcp set': got %v %q", r.IsError, r.text())
		}
	}
}

// TestOAuthRecordIsNoKey: an OAuth record cannot be given to a server as
// a key (--credential, --secret, --header-secret): the whole record,
// refresh token and client secret, would be sent.
func TestOAuthRecordIsNoKey(t *testing.T) {
	t.Parallel()
	if mcpserver.OAuthProvider != oauth.Provider {
		t.Fatalf("mcpserver.OAuthProvider %q, oauth.Provider %q: want the same", mcpserver.OAuthProvider, oauth.Provider)
	}
	for name, c := range map[string]mcpserver.Config{
		"credential":    {Name: "docs", URL: "https://mcp.example.com/mcp", Credential: "mcp-oauth/docs.work"},
		"secret":        {Name: "gh", Command: []string{"x"}, Secrets: map[string]string{"TOKEN": "mcp-oauth/docs.work"}},
		"header secret": {Name: "docs", URL: "https://mcp.example.com/mcp", HeaderSecrets: map[string]string{"X-Key": "mcp-oauth/docs.work"}},
	} {
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "is the OAuth authorization of an MCP server") {
			t.Errorf("%s: got %v, want it refused", name, err)
		}
	}
}

// TestOAuthUpstreamResourceRead: a resources/read meets a refused token
// as a tool call does: refreshed and sent once more; refused for good,
// the server needs authorization, the error names the command, and its
// resources are no longer listed.
func TestOAuthUpstreamResourceRead(t *testing.T) {
	t.Parallel()
	w, up, _ := oauthWorld(t, server.WithResourceCapabilities(false, true))
	c := w.ready(t, "a1")
	if got := c.resourceURIs("resources/list", "resources", "uri"); !slices.Equal(got, []string{"docs+test://doc/1"}) {
		t.Fatalf("resources: got %q", got)
	}
	up.revoke()
	if text, _, m := c.read("docs+test://doc/1"); m.Error != nil || text != "doc 1" {
		t.Fatalf("read after the token was refused: got %q %+v, want it refreshed and read", text, m.Error)
	}
	if n := up.refreshCount(); n != 1 {
		t.Errorf("refreshed %d times, want once", n)
	}
	up.revoke()
	up.setMode("refuse")
	_, _, m := c.read("docs+test://doc/1")
	if m.Error == nil || !strings.Contains(m.Error.Message, "run 'ringlet mcp auth a docs'") {
		t.Errorf("read with the refresh refused: got %+v, want an error naming 'ringlet mcp auth a docs'", m.Error)
	}
	if st := w.status("a", "docs"); st.State != StateNeedsAuth {
		t.Errorf("state: got %s (%s), want needs-auth", st.State, st.Error)
	}
}

// TestOAuthUpstreamNeedsAuthHidesResources: a server that lost its
// authorization in a tool call no longer lists its resources.
func TestOAuthUpstreamNeedsAuthHidesResources(t *testing.T) {
	t.Parallel()
	w, up, _ := oauthWorld(t, server.WithResourceCapabilities(false, true))
	c := w.ready(t, "a1")
	if got := c.resourceURIs("resources/list", "resources", "uri"); !slices.Equal(got, []string{"docs+test://doc/1"}) {
		t.Fatalf("resources: got %q", got)
	}
	up.revoke()
	up.setMode("refuse")
	needsAuthError(t, c, "docs__echo")
	if got := c.resourceURIs("resources/list", "resources", "uri"); len(got) != 0 {
		t.Errorf("resources of a server that needs authorization: got %q, want none", got)
	}
}
