package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// TestProfileConnect: POST /api/profiles/{alias}/connect writes the
// agent's MCP entry into both HOMEs, with the daemon as each reaches it
// (the forwarder in a provider-network sandbox, the address the request
// came to otherwise), refuses what it cannot do without writing, and
// never writes through a link the agent planted.
func TestProfileConnect(t *testing.T) {
	t.Parallel()
	w := newMCPWorld(t)
	store := w.s.profiles.o.Profiles
	cat, err := profile.LoadCatalog(w.s.profiles.o.CatalogDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "localoa", BaseURL: "http://127.0.0.1:9/v1", Format: "openai", Auth: profile.AuthBearer}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []profile.Profile{
		{Alias: "cc", Agent: "claude", Provider: "local"},
		{Alias: "cx", Agent: "codex", Provider: "localoa"},
		{Alias: "cxhost", Agent: "codex", Provider: "localoa", Network: sandbox.NetHost},
		{Alias: "trap", Agent: "claude", Provider: "local"},
	} {
		if _, err := store.Create(cat, p); err != nil {
			t.Fatalf("Create %s: %v", p.Alias, err)
		}
	}
	self := strings.TrimPrefix(w.ts.URL, "http://")
	post := func(t *testing.T, alias, body string) (int, api.Connected, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, w.ts.URL+"/api/profiles/"+alias+"/connect", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text := readBody(t, resp)
		var out api.Connected
		_ = json.Unmarshal([]byte(text), &out) // an error answer decodes to nothing
		return resp.StatusCode, out, text
	}
	read := func(t *testing.T, path string) string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}

	for _, tc := range []struct {
		name, alias, body string
		status            int
		want              string
	}{
		{"a generic profile", "work", `{}`, http.StatusBadRequest, "connect writes the MCP configuration of claude, codex"},
		{"another agent than the profile's", "cc", `{"agent":"codex"}`, http.StatusBadRequest, "runs claude"},
		{"an unknown field", "cc", `{"agent":"claude","token":"x"}`, http.StatusBadRequest, ""},
		{"no such profile", "nope", `{}`, http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, _, text := post(t, tc.alias, tc.body); status != tc.status || !strings.Contains(text, tc.want) {
				t.Errorf("got %d %s, want %d saying %q", status, text, tc.status, tc.want)
			}
		})
	}

	t.Run("claude", func(t *testing.T) {
		status, out, text := post(t, "cc", `{}`)
		want := []string{filepath.Join(store.Home("cc"), ".claude", ".claude.json"), filepath.Join(store.UnsandboxedHome("cc"), ".claude", ".claude.json")}
		if status != http.StatusOK || out.Agent != "claude" || out.Server != "ringlet" || strings.Join(out.Files, " ") != strings.Join(want, " ") {
			t.Fatalf("got %d %s, want 200 and files %v", status, text, want)
		}
		for _, f := range out.Files {
			if got := read(t, f); !strings.Contains(got, `"url": "${RINGLET_SESSION_URL}/mcp"`) || !strings.Contains(got, `"Authorization": "Bearer ${RINGLET_SESSION_TOKEN}"`) {
				t.Errorf("%s: got %s", f, got)
			}
		}
	})
	for _, tc := range []struct{ alias, boxed string }{{"cx", "http://127.0.0.1:8765"}, {"cxhost", "http://" + self}} {
		t.Run(tc.alias, func(t *testing.T) {
			status, out, text := post(t, tc.alias, `{"agent":"codex"}`)
			if status != http.StatusOK || len(out.Files) != 2 {
				t.Fatalf("got %d %s, want 200 and two files", status, text)
			}
			for i, base := range []string{tc.boxed, "http://" + self} {
				if got := read(t, out.Files[i]); !strings.Contains(got, `url = "`+base+`/mcp"`) || !strings.Contains(got, `bearer_token_env_var = "RINGLET_SESSION_TOKEN"`) {
					t.Errorf("%s: got %s, want the daemon at %s", out.Files[i], got, base)
				}
			}
		})
	}

	t.Run("a link the agent planted", func(t *testing.T) {
		outside := filepath.Join(t.TempDir(), "victim")
		if err := os.WriteFile(outside, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		home := store.Home("trap")
		if err := os.MkdirAll(filepath.Join(home, ".claude"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(outside, filepath.Join(home, ".claude", ".claude.json")); err != nil {
			t.Fatal(err)
		}
		if status, _, text := post(t, "trap", `{}`); status != http.StatusConflict || !strings.Contains(text, "symbolic link") {
			t.Errorf("got %d %s, want 409 naming the link", status, text)
		}
		if got := read(t, outside); got != "{}" {
			t.Errorf("the link's target: got %q, want it untouched", got)
		}
	})
}
