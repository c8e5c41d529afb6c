package agentconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func TestClaude(t *testing.T) {
	t.Parallel()
	want := map[string]any{"type": "http", "url": "${RINGLET_SESSION_URL}/mcp", "headers": map[string]any{"Authorization": "Bearer ${RINGLET_SESSION_TOKEN}"}}
	for _, tc := range []struct {
		name, before string
		keep         []string // keys of the file that stay
	}{
		{"no file", "", nil},
		{"an empty file", "\n", nil},
		{"Claude Code's state and a server of the user's", `{"numStartups": 12345678901234567890, "projects": {"/w": {"allowedTools": []}}, "mcpServers": {"mine": {"command": "x"}, "ringlet": {"command": "old"}}}`,
			[]string{"numStartups", "projects"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), ".claude")
			if tc.before != "" {
				writeFile(t, filepath.Join(dir, ".claude.json"), tc.before)
			}
			path, err := Claude(dir)
			if err != nil {
				t.Fatal(err)
			}
			text := read(t, path)
			var doc map[string]any
			if err := json.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatal(err)
			}
			servers, _ := doc["mcpServers"].(map[string]any)
			if got, _ := json.Marshal(servers[Server]); string(got) != mustJSON(want) {
				t.Errorf("mcpServers.ringlet: got %s, want %s", got, mustJSON(want))
			}
			for _, k := range tc.keep {
				if _, ok := doc[k]; !ok {
					t.Errorf("%s: gone, want it kept", k)
				}
			}
			if strings.Contains(tc.before, "mine") && servers["mine"] == nil {
				t.Error("the user's own server: gone, want it kept")
			}
			if strings.Contains(tc.before, "12345678901234567890") && !strings.Contains(text, "12345678901234567890") {
				t.Error("a large number lost its exact text")
			}
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("mode: got %v (%v), want 0600", fi.Mode(), err)
			}
			again, err := Claude(dir)
			if err != nil || read(t, again) != text {
				t.Errorf("a second connect: got %v and a changed file, want the same file", err)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestCodex(t *testing.T) {
	t.Parallel()
	const user = "model = \"gpt-5\" # the user's\n\n[mcp_servers.mine]\ncommand = \"x\"\n"
	dir := filepath.Join(t.TempDir(), ".codex")
	writeFile(t, filepath.Join(dir, "config.toml"), user)
	path, err := Codex(dir, "http://127.0.0.1:8765")
	if err != nil {
		t.Fatal(err)
	}
	first := read(t, path)
	if !strings.HasPrefix(first, user) {
		t.Errorf("the user's part: got %q, want it kept as it was at the start", first)
	}
	var doc struct {
		Model      string `toml:"model"`
		MCPServers map[string]struct {
			URL               string `toml:"url"`
			BearerTokenEnvVar string `toml:"bearer_token_env_var"`
			Command           string `toml:"command"`
		} `toml:"mcp_servers"`
	}
	if err := toml.Unmarshal([]byte(first), &doc); err != nil {
		t.Fatalf("%s: %v", first, err)
	}
	if r := doc.MCPServers[Server]; r.URL != "http://127.0.0.1:8765/mcp" || r.BearerTokenEnvVar != "RINGLET_SESSION_TOKEN" || doc.MCPServers["mine"].Command != "x" || doc.Model != "gpt-5" {
		t.Errorf("config: got %+v, want ringlet's entry beside the user's", doc)
	}
	// Connect again, with the daemon elsewhere: one block, the new URL.
	if _, err := Codex(dir, "http://127.0.0.1:9999"); err != nil {
		t.Fatal(err)
	}
	second := read(t, path)
	if strings.Count(second, codexBegin) != 1 || !strings.Contains(second, "127.0.0.1:9999/mcp") || strings.Contains(second, "8765") || !strings.HasPrefix(second, user) {
		t.Errorf("after a second connect: got %q, want one block with the new URL after the user's part", second)
	}

	// The session start rewrites config.toml as TOML (agenthome), which
	// drops the block's lines: connect finds its entry all the same and
	// replaces it.
	var plain map[string]any
	if err := toml.Unmarshal([]byte(second), &plain); err != nil {
		t.Fatal(err)
	}
	rewritten, err := toml.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(rewritten))
	if _, err := Codex(dir, "http://127.0.0.1:7777"); err != nil {
		t.Fatalf("connect after the file was rewritten without the block's lines: %v", err)
	}
	third := read(t, path)
	doc.MCPServers = nil
	if err := toml.Unmarshal([]byte(third), &doc); err != nil {
		t.Fatalf("%s: %v", third, err)
	}
	if strings.Count(third, codexBegin) != 1 || strings.Count(third, "[mcp_servers.ringlet]") != 1 || doc.MCPServers[Server].URL != "http://127.0.0.1:7777/mcp" || doc.MCPServers["mine"].Command != "x" || doc.Model != "gpt-5" {
		t.Errorf("after a connect of a rewritten file: got %q, want one block with the new URL and the user's settings", third)
	}

	for _, tc := range []struct{ name, file, base, want string }{
		{"the user's own ringlet server with a URL", "[mcp_servers.ringlet]\nurl = \"http://x/mcp\"\nbearer_token_env_var = \"RINGLET_SESSION_TOKEN\"\nenabled = false\n", "http://127.0.0.1:8765", "of its own"},
		{"the user's own ringlet server", "[mcp_servers.ringlet]\ncommand = \"mine\"\n", "http://127.0.0.1:8765", "of its own"},
		{"a dotted ringlet server", "mcp_servers.ringlet.command = \"mine\"\n", "http://127.0.0.1:8765", "of its own"},
		{"invalid TOML", "model = \n", "http://127.0.0.1:8765", "not valid TOML"},
		{"an inline mcp_servers table", "mcp_servers = { mine = { command = \"x\" } }\n", "http://127.0.0.1:8765", "cannot take"},
		{"a block without its end", codexBegin + "\n[mcp_servers.ringlet]\n", "http://127.0.0.1:8765", "broken block"},
		{"an end without its block", codexEnd + "\n", "http://127.0.0.1:8765", "without its start"},
		{"a base URL with a path", "", "http://127.0.0.1:8765/proxy", "not a base URL"},
		{"a base URL with a quote", "", `http://127.0.0.1:8765"`, "not a base URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), ".codex")
			writeFile(t, filepath.Join(dir, "config.toml"), tc.file)
			if _, err := Codex(dir, tc.base); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
			if got := read(t, filepath.Join(dir, "config.toml")); got != tc.file {
				t.Errorf("the file: got %q, want it untouched", got)
			}
		})
	}
}

func TestOpenCode(t *testing.T) {
	t.Parallel()
	want := map[string]any{"type": "remote", "url": "{env:RINGLET_SESSION_URL}/mcp", "headers": map[string]any{"Authorization": "Bearer {env:RINGLET_SESSION_TOKEN}"},
		"oauth": false, "enabled": true}
	for _, tc := range []struct {
		name, before string
		keep         []string // keys of the file that stay
	}{
		{"no file", "", nil},
		{"OpenCode's settings and a server of the user's", `{"$schema": "https://opencode.ai/config.json", "theme": "x", "mcp": {"mine": {"type": "local", "command": ["x"]}, "ringlet": {"type": "local"}}}`,
			[]string{"$schema", "theme"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			if tc.before != "" {
				writeFile(t, filepath.Join(home, OpenCodeConfig), tc.before)
			}
			path, err := OpenCode(home)
			if err != nil {
				t.Fatal(err)
			}
			if path != filepath.Join(home, ".config", "opencode", "opencode.json") {
				t.Errorf("path: got %s, want OpenCode's global config in the HOME", path)
			}
			text := read(t, path)
			var doc map[string]any
			if err := json.Unmarshal([]byte(text), &doc); err != nil {
				t.Fatal(err)
			}
			servers, _ := doc["mcp"].(map[string]any)
			if got, _ := json.Marshal(servers[Server]); string(got) != mustJSON(want) {
				t.Errorf("mcp.ringlet: got %s, want %s", got, mustJSON(want))
			}
			for _, k := range tc.keep {
				if _, ok := doc[k]; !ok {
					t.Errorf("%s: gone, want it kept", k)
				}
			}
			if strings.Contains(tc.before, "mine") && servers["mine"] == nil {
				t.Error("the user's own server: gone, want it kept")
			}
			for _, p := range []string{path, filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
				if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&0o077 != 0 {
					t.Errorf("%s: got %v (%v), want it private", p, fi.Mode(), err)
				}
			}
		})
	}
	for _, bad := range []string{`{"mcp": []}`, "{\n  // a comment\n}", `{"a": 1} x`} {
		home := t.TempDir()
		writeFile(t, filepath.Join(home, OpenCodeConfig), bad)
		if _, err := OpenCode(home); err == nil || !strings.Contains(err.Error(), "fix or remove it") {
			t.Errorf("OpenCode on %q: got %v, want a refusal saying what to do", bad, err)
		}
		if got := read(t, filepath.Join(home, OpenCodeConfig)); got != bad {
			t.Errorf("the refused file: got %q, want it untouched", got)
		}
	}
	home := t.TempDir()
	writeFile(t, filepath.Join(home, ".config"), "a file")
	if _, err := OpenCode(home); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("OpenCode with .config a file: got %v, want a refusal", err)
	}
}

// TestRefusesLinks: the agent can write its HOME; a symbolic link in
// place of the config dir or the file is refused, and the file it points
// to is untouched.
func TestRefusesLinks(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "outside.json")
	writeFile(t, outside, "{}")
	for _, tc := range []struct {
		name  string
		plant func(home string)
		write func(home string) error
	}{
		{"the file", func(home string) {
			writeFile(t, filepath.Join(home, ".claude", "keep"), "")
			if err := os.Symlink(outside, filepath.Join(home, ".claude", ".claude.json")); err != nil {
				t.Fatal(err)
			}
		}, func(home string) error { _, err := Claude(filepath.Join(home, ".claude")); return err }},
		{"the directory", func(home string) {
			if err := os.Symlink(filepath.Dir(outside), filepath.Join(home, ".codex")); err != nil {
				t.Fatal(err)
			}
		}, func(home string) error {
			_, err := Codex(filepath.Join(home, ".codex"), "http://127.0.0.1:1")
			return err
		}},
		// OpenCode's config is two directories down: a link at either
		// one is refused, as the attack of a sandboxed agent that points
		// its HOME's .config at the user's own would be.
		{"OpenCode's .config", func(home string) {
			if err := os.Symlink(filepath.Dir(outside), filepath.Join(home, ".config")); err != nil {
				t.Fatal(err)
			}
		}, func(home string) error { _, err := OpenCode(home); return err }},
		{"OpenCode's opencode directory", func(home string) {
			if err := os.MkdirAll(filepath.Join(home, ".config"), 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Dir(outside), filepath.Join(home, ".config", "opencode")); err != nil {
				t.Fatal(err)
			}
		}, func(home string) error { _, err := OpenCode(home); return err }},
		{"OpenCode's file", func(home string) {
			writeFile(t, filepath.Join(home, ".config", "opencode", "keep"), "")
			if err := os.Symlink(outside, filepath.Join(home, ".config", "opencode", "opencode.json")); err != nil {
				t.Fatal(err)
			}
		}, func(home string) error { _, err := OpenCode(home); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			home := t.TempDir()
			tc.plant(home)
			if err := tc.write(home); err == nil || !strings.Contains(err.Error(), "symbolic link") {
				t.Errorf("got %v, want a refusal naming the symbolic link", err)
			}
			if got := read(t, outside); got != "{}" {
				t.Errorf("the file outside: got %q, want it untouched", got)
			}
			for _, name := range []string{"config.toml", "opencode.json", "opencode"} {
				if _, err := os.Stat(filepath.Join(filepath.Dir(outside), name)); err == nil {
					t.Errorf("%s was written outside the HOME", name)
				}
			}
		})
	}
}
