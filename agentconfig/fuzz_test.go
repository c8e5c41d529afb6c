package agentconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// FuzzCodex: whatever config.toml the agent left, connect either refuses
// and leaves it as it was, or writes valid TOML with exactly one block of
// Ringlet's, the one that names the daemon, and a second connect changes
// nothing.
func FuzzCodex(f *testing.F) {
	for _, s := range []string{"", "model = \"x\"\n", "[mcp_servers.a]\ncommand = \"x\"", codexBegin + "\n" + codexEnd + "\n",
		"a = 1\n" + codexBegin + "\n[mcp_servers.ringlet]\nurl = \"u\"\n" + codexEnd + "\nb = 2\n", "[[mcp_servers]]\n", "mcp_servers.ringlet = 1\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		dir := filepath.Join(t.TempDir(), ".codex")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Codex(dir, "http://127.0.0.1:8765"); err != nil {
			if got, _ := os.ReadFile(path); string(got) != file {
				t.Fatalf("refused (%v) but changed the file", err)
			}
			return
		}
		got, _ := os.ReadFile(path)
		var doc map[string]any
		if err := toml.Unmarshal(got, &doc); err != nil {
			t.Fatalf("wrote invalid TOML: %v\n%s", err, got)
		}
		if strings.Count(string(got), codexBegin) != 1 || !strings.Contains(string(got), `url = "http://127.0.0.1:8765/mcp"`) {
			t.Fatalf("wrote %q, want one block naming the daemon", got)
		}
		if _, err := Codex(dir, "http://127.0.0.1:8765"); err != nil {
			t.Fatalf("a second connect: %v", err)
		}
		if again, _ := os.ReadFile(path); string(again) != string(got) {
			t.Fatalf("a second connect changed %q into %q", got, again)
		}
	})
}

// FuzzClaude: whatever .claude.json the agent left, connect either
// refuses and leaves it as it was, or writes a JSON object whose
// mcpServers.ringlet is Ringlet's entry.
func FuzzClaude(f *testing.F) {
	for _, s := range []string{"", "{}", "null", `{"mcpServers":{"a":{}}}`, `{"mcpServers":[]}`, `[]`, `{"a":1e400}`, `{} {}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, file string) {
		dir := filepath.Join(t.TempDir(), ".claude")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, ".claude.json")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Claude(dir); err != nil {
			if got, _ := os.ReadFile(path); string(got) != file {
				t.Fatalf("refused (%v) but changed the file", err)
			}
			return
		}
		got, _ := os.ReadFile(path)
		var doc struct {
			MCPServers map[string]struct {
				URL string `json:"url"`
			} `json:"mcpServers"`
		}
		if err := json.Unmarshal(got, &doc); err != nil || doc.MCPServers[Server].URL != "${RINGLET_SESSION_URL}/mcp" {
			t.Fatalf("wrote %q (%v), want Ringlet's entry in a JSON object", got, err)
		}
	})
}
