package gateway

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/profile"
)

// TestProviderAddReplace: a provider id that is taken, built-in or added
// before, is replaced only when the request says so, and the answer says
// what it replaced.
func TestProviderAddReplace(t *testing.T) {
	t.Parallel()
	s, h := newTestHandler(t)
	post := func(body string) *http.Response {
		return serve(t, h, newRequest("POST", "/api/providers", strings.NewReader(body)))
	}
	baseURL := func(id string) string {
		cat, err := profile.LoadCatalog(s.opts.CatalogDir)
		if err != nil {
			t.Fatal(err)
		}
		return cat.Providers[id].BaseURL
	}
	builtin := baseURL("anthropic")
	if builtin == "" {
		t.Fatal("no built-in anthropic provider")
	}

	// The built-in is not overridden by accident.
	e := assertError(t, post(`{"id":"anthropic","base_url":"https://gw.example.com","format":"anthropic","auth":"x-api-key"}`), http.StatusConflict, "exists")
	for _, want := range []string{"already exists", "built-in", builtin, "--replace"} {
		if !strings.Contains(e.Error.Message, want) {
			t.Errorf("add anthropic without replace: got message %q, want it to contain %q", e.Error.Message, want)
		}
	}
	if got := baseURL("anthropic"); got != builtin {
		t.Errorf("after a refused add: anthropic base URL %q, want the built-in %q", got, builtin)
	}

	// With replace it is, and the answer names what it replaced.
	resp := post(`{"id":"anthropic","base_url":"https://gw.example.com","format":"anthropic","auth":"x-api-key","replace":true}`)
	var added api.ProviderAdded
	if err := json.Unmarshal([]byte(readBody(t, resp)), &added); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("add anthropic with replace: got %d, %v; want 201", resp.StatusCode, err)
	}
	if added.BaseURL != "https://gw.example.com" || added.Replaced == nil || !added.Replaced.Builtin || added.Replaced.BaseURL != builtin {
		t.Errorf("add anthropic with replace: got %+v replacing %+v, want the new URL replacing the built-in at %s", added.Provider, added.Replaced, builtin)
	}
	if got := baseURL("anthropic"); got != "https://gw.example.com" {
		t.Errorf("after replace: anthropic base URL %q, want https://gw.example.com", got)
	}

	// A new id needs no replace; adding it again does.
	if resp := post(`{"id":"mine","base_url":"https://a.example.com","format":"openai","auth":"bearer"}`); resp.StatusCode != http.StatusCreated {
		t.Errorf("add mine: got %d %s, want 201", resp.StatusCode, readBody(t, resp))
	}
	e = assertError(t, post(`{"id":"mine","base_url":"https://b.example.com","format":"openai","auth":"bearer"}`), http.StatusConflict, "exists")
	if !strings.Contains(e.Error.Message, "providers.toml") || !strings.Contains(e.Error.Message, "https://a.example.com") {
		t.Errorf("add mine again: got message %q, want it to say it was added in providers.toml at https://a.example.com", e.Error.Message)
	}
	if got := baseURL("mine"); got != "https://a.example.com" {
		t.Errorf("after a refused add: mine base URL %q, want https://a.example.com", got)
	}
}
