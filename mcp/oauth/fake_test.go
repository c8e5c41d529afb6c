package oauth

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/neullabs/ringlet/credentials"
)

// fakeAS is an MCP server behind OAuth and its authorization server in
// one process, each document of which a test can spoil: the server's 401
// names its protected resource metadata, which names the authorization
// server, whose metadata offers registration, the code grant and refresh.
type fakeAS struct {
	ts *httptest.Server

	mu sync.Mutex
	// prm and meta change the documents before they are sent.
	prm  func(map[string]any)
	meta func(map[string]any)
	// raw, when set, answers a path instead of the handlers below.
	raw map[string]http.HandlerFunc
	// token answers the token endpoint (default: issue tokens).
	token  func(w http.ResponseWriter, form url.Values)
	grants []url.Values
	issued int
}

func newFakeAS(t *testing.T) *fakeAS {
	f := &fakeAS{raw: map[string]http.HandlerFunc{}}
	f.ts = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.ts.Close)
	return f
}

func (f *fakeAS) URL() string { return f.ts.URL + "/mcp" }

func (f *fakeAS) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	raw := f.raw[r.URL.Path]
	f.mu.Unlock()
	if raw != nil {
		raw(w, r)
		return
	}
	base := f.ts.URL
	switch r.URL.Path {
	case "/mcp":
		w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+base+`/.well-known/oauth-protected-resource/mcp", scope="mcp:tools"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	case "/.well-known/oauth-protected-resource/mcp":
		doc := map[string]any{"resource": base + "/mcp", "authorization_servers": []string{base}}
		f.mu.Lock()
		if f.prm != nil {
			f.prm(doc)
		}
		f.mu.Unlock()
		writeJSON(w, doc)
	case "/.well-known/oauth-authorization-server":
		doc := map[string]any{"issuer": base, "authorization_endpoint": base + "/authorize", "token_endpoint": base + "/token",
			"registration_endpoint": base + "/register", "response_types_supported": []string{"code"},
			"grant_types_supported": []string{"authorization_code", "refresh_token"}, "code_challenge_methods_supported": []string{"S256"}}
		f.mu.Lock()
		if f.meta != nil {
			f.meta(doc)
		}
		f.mu.Unlock()
		writeJSON(w, doc)
	case "/register":
		w.WriteHeader(http.StatusCreated)
		writeJSON(w, map[string]any{"client_id": "ringlet-client", "redirect_uris": []string{}, "token_endpoint_auth_method": "none"})
	case "/token":
		_ = r.ParseForm() // an empty form is refused below
		f.mu.Lock()
		f.grants = append(f.grants, r.PostForm)
		tok := f.token
		f.mu.Unlock()
		if tok != nil {
			tok(w, r.PostForm)
			return
		}
		f.issue(w, r.PostForm)
	default:
		http.NotFound(w, r)
	}
}

// issue answers a grant with fresh tokens (the refresh token rotated).
func (f *fakeAS) issue(w http.ResponseWriter, form url.Values) {
	if form.Get("grant_type") == "" || form.Get("client_id") == "" {
		w.WriteHeader(http.StatusBadRequest)
		writeJSON(w, map[string]any{"error": "invalid_request"})
		return
	}
	f.mu.Lock()
	f.issued++
	n := f.issued
	f.mu.Unlock()
	writeJSON(w, map[string]any{"access_token": "access-" + strconv.Itoa(n), "refresh_token": "refresh-" + strconv.Itoa(n), "token_type": "Bearer", "expires_in": 3600})
}

func (f *fakeAS) grantsOf(kind string) []url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []url.Values
	for _, g := range f.grants {
		if g.Get("grant_type") == kind {
			out = append(out, g)
		}
	}
	return out
}

func (f *fakeAS) set(fn func(f *fakeAS)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func writeJSON(w http.ResponseWriter, v any) {
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	_ = json.NewEncoder(w).Encode(v) // the client sees a short answer
}

// memKeys is a credential store in memory.
type memKeys struct {
	mu sync.Mutex
	m  map[credentials.Ref]string
}

func newMemKeys() *memKeys { return &memKeys{m: map[credentials.Ref]string{}} }

func (k *memKeys) Get(r credentials.Ref) (credentials.Secret, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[r]
	if !ok {
		return credentials.Secret{}, credentials.ErrNotFound
	}
	return credentials.NewSecret(v), nil
}

func (k *memKeys) Set(r credentials.Ref, s credentials.Secret) (credentials.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[r] = s.Reveal()
	return credentials.Entry{}, nil
}

func (k *memKeys) Remove(r credentials.Ref) (credentials.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[r]; !ok {
		return credentials.Entry{}, credentials.ErrNotFound
	}
	delete(k.m, r)
	return credentials.Entry{}, nil
}
