package mcp

import (
	"errors"
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

// TestHTTPUpstreamCredential checks --credential: the gateway sends the
// stored key to the HTTP server as a bearer token on every request, a
// server without a credential gets no Authorization header, and the key
// never appears in what the agent's client receives.
func TestHTTPUpstreamCredential(t *testing.T) {
	t.Parallel()
	const key = "sk-mcp-upstream-canary-7f3e"
	var mu sync.Mutex
	seen := map[string][]string{} // server path -> Authorization headers
	h := server.NewStreamableHTTPServer(testserver.New("Echo over HTTP."), server.WithStateful(true))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path] = append(seen[r.URL.Path], r.Header.Get("Authorization"))
		mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	// Registered before the world, so it runs after the world closed its
	// clients; the listening stream would otherwise keep Close waiting.
	t.Cleanup(func() {
		up.CloseClientConnections()
		up.Close()
	})

	var asked []string
	w := newWorld(t, func(o *Options) {
		o.Credential = func(ref string) (string, error) {
			mu.Lock()
			asked = append(asked, ref)
			mu.Unlock()
			if ref != "docs/team" {
				return "", errors.New("no such credential")
			}
			return key, nil
		}
	})
	if _, err := w.srv.AddServer("a", mcpserver.Config{Name: "auth", URL: up.URL + "/mcp", Credential: "docs/team", Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.srv.AddServer("a", mcpserver.Config{Name: "plain", URL: up.URL + "/plain/mcp", Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	c := w.client(t, "a1")
	c.initialize("2025-11-25")
	names := c.toolNames()
	if !slices.Contains(names, "auth__echo") {
		t.Fatalf("tools: got %v, want auth__echo", names)
	}
	r := c.tool("auth__echo", map[string]any{"text": "hello"})
	if r.IsError || strings.Contains(r.text(), key) {
		t.Errorf("call: got error %v, text %q; want the echo without the key", r.IsError, r.text())
	}

	mu.Lock()
	defer mu.Unlock()
	if len(seen["/mcp"]) == 0 {
		t.Fatal("the credentialed server got no request")
	}
	for _, got := range seen["/mcp"] {
		if got != "Bearer "+key {
			t.Errorf("credentialed server: got Authorization %q, want the stored key as a bearer token", got)
		}
	}
	for _, got := range seen["/plain/mcp"] {
		if got != "" {
			t.Errorf("server without a credential: got Authorization %q, want none", got)
		}
	}
	if !slices.Contains(asked, "docs/team") {
		t.Errorf("credential lookups: got %v, want docs/team", asked)
	}
}

func TestCredentialValidation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  mcpserver.Config
		ok   bool
	}{
		{"http with credential", mcpserver.Config{Name: "x", URL: "https://mcp.example.com/mcp", Credential: "docs/team"}, true},
		{"stdio with credential", mcpserver.Config{Name: "x", Command: []string{"srv"}, Credential: "docs/team"}, false},
		{"no alias", mcpserver.Config{Name: "x", URL: "https://mcp.example.com/mcp", Credential: "docs"}, false},
		{"upper case", mcpserver.Config{Name: "x", URL: "https://mcp.example.com/mcp", Credential: "Docs/team"}, false},
		{"path tricks", mcpserver.Config{Name: "x", URL: "https://mcp.example.com/mcp", Credential: "../team"}, false},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: got error %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}
