package agenthome

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/hook"
)

// FuzzClaude feeds .claude.json files an agent could leave: whatever
// Ringlet accepts, it writes back as a JSON object with onboarding done
// and the workspace, and nothing else, trusted.
func FuzzClaude(f *testing.F) {
	for _, s := range []string{"", "{}", "null", `{"projects":{"/":{"hasTrustDialogAccepted":true}}}`, `{"projects":[1]}`, `{"n":1e400}`, `{"a":"\u0000"}`, "[]", "{"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), ".claude")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, ".claude.json")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if Claude(dir, []string{"/w"}) != nil {
			return
		}
		out, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg map[string]any
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber() // numbers keep their text, which need not fit a float64
		if err := dec.Decode(&cfg); err != nil {
			t.Fatalf("wrote %q, not a JSON object: %v", out, err)
		}
		if cfg["hasCompletedOnboarding"] != true {
			t.Fatalf("wrote %q without onboarding done", out)
		}
		if got := trustedIn(cfg); len(got) != 1 || got[0] != "/w" {
			t.Fatalf("wrote %q, trusting %v; want only /w", out, got)
		}
	})
}

// FuzzCodex does the same for Codex's config.toml.
func FuzzCodex(f *testing.F) {
	for _, s := range []string{"", "model = \"m\"\n", "[projects.\"/\"]\ntrust_level = \"trusted\"\n", "projects = 1\n", "[projects]\nx = 1\n", "a = 1979-05-27T07:32:00Z\n", "=", "[[projects]]\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := filepath.Join(t.TempDir(), ".codex")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "config.toml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		h, err := hook.NewCodexHook("/usr/local/bin/ringlet")
		if err != nil {
			t.Fatal(err)
		}
		if Codex(dir, dir, h, []string{"/w"}) != nil {
			return
		}
		out, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg := map[string]any{}
		if err := toml.Unmarshal(out, &cfg); err != nil {
			t.Fatalf("wrote %q, not TOML: %v", out, err)
		}
		projects, _ := cfg["projects"].(map[string]any)
		for dir, v := range projects {
			m, _ := v.(map[string]any)
			if trust := m["trust_level"]; (dir == "/w") != (trust == "trusted") || dir != "/w" && trust != nil {
				t.Fatalf("wrote %q: projects.%q.trust_level = %v; want trusted for /w only", out, dir, trust)
			}
		}
		if w, _ := projects["/w"].(map[string]any); w["trust_level"] != "trusted" {
			t.Fatalf("wrote %q without /w trusted", out)
		}
	})
}

// FuzzReset feeds the config files an agent could leave where Ringlet
// resets what runs code: whatever Reset accepts, it leaves the approved
// items exactly (a second Reset finds nothing to do).
func FuzzReset(f *testing.F) {
	for _, s := range []string{"", "{}", "null", `{"mcpServers":{"x":{"command":"y"}},"projects":{"/w":{"mcpServers":1}}}`,
		`{"hooks":{"Stop":[{"hooks":[{"command":"x"}]}]}}`, "mcp_servers = 1\nnotify = [\"x\"]\n", "[profiles.a]\nnotify = [1.5]\n", "{", "[]", `{"n":1e400}`} {
		f.Add([]byte(s))
	}
	approved := map[string]Approved{
		"claude": {Agent: "claude", Items: map[string][]byte{
			".claude/settings.json": []byte(`{"model":"x"}`), keyItem(".claude/.claude.json", []string{"mcpServers"}): []byte(`{"mine":{"command":"m","n":1}}`)}},
		"codex": {Agent: "codex", Items: map[string][]byte{keyItem(".codex/config.toml", []string{"notify"}): []byte(`["a",1]`)}},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for agent, a := range approved {
			home := t.TempDir()
			for _, rel := range []string{".claude/settings.json", ".claude/.claude.json", ".codex/config.toml"} {
				p := filepath.Join(home, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			q := filepath.Join(t.TempDir(), "q")
			if _, _, err := Reset(home, a, q); err != nil {
				continue
			}
			if items, _, err := Reset(home, a, q); err != nil || len(items) != 0 {
				t.Fatalf("%s: second reset got %q %v, want nothing (input %q)", agent, items, err, data)
			}
		}
	})
}
