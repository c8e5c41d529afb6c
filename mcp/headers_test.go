package mcp

import (
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/mcp/internal/testserver"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// TestHTTPUpstreamHeaders checks --header and --header-secret: the
// gateway sends the plain values and the stored keys (after their scheme
// word) on every request, records which header got which reference before
// connecting, and refuses to connect, saying how to fix it, when a key is
// not in the store.
func TestHTTPUpstreamHeaders(t *testing.T) {
	t.Parallel()
	const key, token = "sk-header-canary-91ab", "tok-header-canary-22cd"
	var mu sync.Mutex
	seen := map[string][]http.Header{} // server path -> request headers
	h := server.NewStreamableHTTPServer(testserver.New("Echo over HTTP."), server.WithStateful(true))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Clone())
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})
	var audited []map[string]string
	w := newWorld(t, func(o *Options) {
		o.Credential = func(ref string) (string, error) {
			switch ref {
			case "mcp/search":
				return key, nil
			case "mcp/svc":
				return token, nil
			}
			return "", errors.New("no such credential")
		}
		o.OnHeaderSecrets = func(p, s string, hs map[string]string) error {
			mu.Lock()
			defer mu.Unlock()
			audited = append(audited, hs)
			return nil
		}
	})
	add := func(name, path string, plain, secret map[string]string) {
		t.Helper()
		if _, err := w.srv.AddServer("a", mcpserver.Config{Name: name, URL: up.URL + path, Headers: plain, HeaderSecrets: secret, Timeout: 5 * time.Second}); err != nil {
			t.Fatal(err)
		}
	}
	add("keyed", "/keyed/mcp", map[string]string{"X-Team": "infra"}, map[string]string{"X-API-Key": "search", "Authorization": "Token mcp/svc"})
	add("missing", "/missing/mcp", nil, map[string]string{"X-API-Key": "mcp/gone"})
	c := w.client(t, "a1")
	c.initialize("2025-11-25")
	names := c.toolNames()
	if !slices.Contains(names, "keyed__echo") {
		t.Fatalf("tools: got %v, want keyed__echo", names)
	}
	if r := c.tool("keyed__echo", map[string]any{"text": "hello"}); r.IsError {
		t.Errorf("call: got error %q, want the echo", r.text())
	}
	st := w.status("a", "missing")
	if st.State != StateFailed || !strings.Contains(st.Error, "header X-Api-Key (mcp/gone) cannot be read from the credential store") ||
		!strings.Contains(st.Error, "ringlet keychain set mcp gone") {
		t.Errorf("the server whose key is missing: got %q %q, want failed, naming the header and how to store the key", st.State, st.Error)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen["/keyed/mcp"]) == 0 {
		t.Fatal("the server with headers got no request")
	}
	for _, got := range seen["/keyed/mcp"] {
		if got.Get("X-Api-Key") != key || got.Get("Authorization") != "Token "+token || got.Get("X-Team") != "infra" {
			t.Errorf("request headers: got X-Api-Key %q, Authorization %q, X-Team %q; want the key, Token and the token, infra",
				got.Get("X-Api-Key"), got.Get("Authorization"), got.Get("X-Team"))
		}
	}
	if len(seen["/missing/mcp"]) != 0 {
		t.Errorf("the server whose key is missing got %d requests, want none", len(seen["/missing/mcp"]))
	}
	want := map[string]string{"X-Api-Key": "mcp/search", "Authorization": "Token mcp/svc"}
	if !slices.ContainsFunc(audited, func(m map[string]string) bool { return maps.Equal(m, want) }) {
		t.Errorf("header secrets recorded: got %v, want %v", audited, want)
	}
}
