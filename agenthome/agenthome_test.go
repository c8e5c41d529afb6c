package agenthome

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/profile"
)

const testRinglet = "/usr/local/bin/ringlet"

func testAdapter(t *testing.T) hook.CodexHook {
	t.Helper()
	h, err := hook.NewCodexHook(testRinglet)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// assertCodexHook fails t unless cfg's first PreToolUse group is
// Ringlet's adapter, trusted under the key of the config.toml at
// seenHome and not disabled, and hooks are not turned off.
func assertCodexHook(t *testing.T, cfg map[string]any, seenHome string) {
	t.Helper()
	want := testAdapter(t)
	hooks, _ := cfg["hooks"].(map[string]any)
	groups, _ := hooks["PreToolUse"].([]any)
	if len(groups) == 0 || !hook.IsCodexEntry(groups[0]) {
		t.Fatalf("hooks.PreToolUse: got %v, want Ringlet's adapter first", hooks["PreToolUse"])
	}
	g := groups[0].(map[string]any)
	hs, _ := g["hooks"].([]any)
	h, _ := hs[0].(map[string]any)
	if g["matcher"] != "*" || len(hs) != 1 || h["type"] != "command" || h["command"] != want.Command || h["timeout"] != int64(600) {
		t.Errorf("Ringlet's group: got %v, want matcher *, one command hook %q with timeout 600", g, want.Command)
	}
	for i, g := range groups[1:] {
		if hook.IsCodexEntry(g) {
			t.Errorf("hooks.PreToolUse[%d]: got a second Ringlet group %v", i+1, g)
		}
	}
	state, _ := hooks["state"].(map[string]any)
	key := filepath.Join(seenHome, "config.toml") + ":pre_tool_use:0:0"
	st, _ := state[key].(map[string]any)
	if len(st) != 1 || st["trusted_hash"] != want.TrustedHash {
		t.Errorf("hooks.state[%q]: got %v, want only trusted_hash = %s", key, st, want.TrustedHash)
	}
	if f, _ := cfg["features"].(map[string]any); f["hooks"] == false || f["codex_hooks"] == false {
		t.Errorf("features: got %v, want hooks not turned off", f)
	}
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v; got %s", path, err, data)
	}
	return m
}

// trustedIn lists the projects of a .claude.json whose trust dialog is
// accepted.
func trustedIn(cfg map[string]any) []string {
	var out []string
	projects, _ := cfg["projects"].(map[string]any)
	for dir, v := range projects {
		if m, ok := v.(map[string]any); ok && m["hasTrustDialogAccepted"] == true {
			out = append(out, dir)
		}
	}
	return out
}

func TestClaude(t *testing.T) {
	t.Parallel()
	ws := "/work/app"
	tests := []struct {
		name        string
		old         string // "" for no file
		trusted     []string
		wantTrusted []string
		// wantKept are keys of the old file that must survive with their
		// exact text.
		wantKept []string
	}{
		{name: "fresh, untrusted"},
		{name: "fresh, trusted", trusted: []string{ws}, wantTrusted: []string{ws}},
		{name: "blank file", old: " \n", trusted: []string{ws}, wantTrusted: []string{ws}},
		{name: "null", old: "null", wantTrusted: nil},
		{
			name:     "Claude Code's state kept, onboarding set",
			old:      `{"hasCompletedOnboarding": false, "numStartups": 12345678901234567890, "userID": "u1", "mcpServers": {"x": {"command": "y"}}}`,
			wantKept: []string{`"numStartups": 12345678901234567890`, `"userID": "u1"`, `"command": "y"`},
		},
		{
			name:        "trust the agent wrote is removed, its other project state kept",
			old:         `{"projects": {"/work/app": {"hasTrustDialogAccepted": true, "allowedTools": ["Bash"]}, "/": {"hasTrustDialogAccepted": true}}}`,
			wantKept:    []string{`"allowedTools": [`},
			wantTrusted: nil,
		},
		{
			name:        "trusted: only the workspace",
			old:         `{"projects": {"/": {"hasTrustDialogAccepted": true}, "/work/app": {"lastCost": 1.50}}}`,
			trusted:     []string{ws, "/real/app"},
			wantTrusted: []string{ws, "/real/app"},
			wantKept:    []string{`"lastCost": 1.50`},
		},
		{name: "projects not an object", old: `{"projects": ["/work/app"]}`, trusted: []string{ws}, wantTrusted: []string{ws}},
		{name: "a project not an object", old: `{"projects": {"/work/app": true}}`, trusted: []string{ws}, wantTrusted: []string{ws}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "home", ".claude")
			path := filepath.Join(dir, ".claude.json")
			if tt.old != "" {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(tt.old), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := Claude(dir, tt.trusted); err != nil {
				t.Fatalf("Claude: %v", err)
			}
			cfg := readJSON(t, path)
			if cfg["hasCompletedOnboarding"] != true {
				t.Errorf("hasCompletedOnboarding: got %v, want true", cfg["hasCompletedOnboarding"])
			}
			got := trustedIn(cfg)
			if strings.Join(sorted(got), " ") != strings.Join(sorted(tt.wantTrusted), " ") {
				t.Errorf("trusted projects: got %v, want %v", got, tt.wantTrusted)
			}
			data, _ := os.ReadFile(path)
			for _, k := range tt.wantKept {
				if !strings.Contains(string(data), k) {
					t.Errorf(".claude.json: got %s, want %s kept", data, k)
				}
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf(".claude.json mode: got %v (%v), want 0600", fi.Mode(), err)
			}
		})
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// TestClaudeUnchangedNotRewritten: a second preparation finds nothing to
// change and leaves the file as it is.
func TestClaudeUnchangedNotRewritten(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), ".claude")
	if err := Claude(dir, []string{"/w"}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ".claude.json")
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := Claude(dir, []string{"/w"}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("a preparation that changes nothing rewrote the file (mtime %v, want %v)", fi.ModTime(), old)
	}
}

// TestClaudeRefuses: what the agent left that Ringlet does not read or
// follow is refused, and nothing is written through it.
func TestClaudeRefuses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		plant func(t *testing.T, dir, elsewhere string)
		want  string
	}{
		{"not JSON", func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, ".claude.json"), "{not json") }, "not a valid JSON object"},
		{"text after the object", func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, ".claude.json"), "{} {}") }, "not a valid JSON object"},
		{"a JSON array", func(t *testing.T, dir, _ string) { write(t, filepath.Join(dir, ".claude.json"), "[]") }, "not a valid JSON object"},
		{"the file a symlink", func(t *testing.T, dir, elsewhere string) {
			symlink(t, filepath.Join(elsewhere, "target.json"), filepath.Join(dir, ".claude.json"))
		}, "symbolic link"},
		{"the directory a symlink", func(t *testing.T, dir, elsewhere string) {
			if err := os.Remove(dir); err != nil {
				t.Fatal(err)
			}
			symlink(t, elsewhere, dir)
		}, "symbolic link"},
		{"the file a directory", func(t *testing.T, dir, _ string) {
			if err := os.Mkdir(filepath.Join(dir, ".claude.json"), 0o700); err != nil {
				t.Fatal(err)
			}
		}, "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), ".claude")
			elsewhere := t.TempDir()
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			tt.plant(t, dir, elsewhere)
			err := Claude(dir, []string{"/w"})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Claude: got %v, want an error with %q", err, tt.want)
			}
			if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
				t.Errorf("the link's target directory got %d entries, want none", len(entries))
			}
		})
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// TestPrepare: the profile decides what is trusted, and only a Claude
// Code profile gets a .claude.json.
func TestPrepare(t *testing.T) {
	t.Parallel()
	real := t.TempDir()
	link := filepath.Join(t.TempDir(), "ws")
	symlink(t, real, link)
	for _, tt := range []struct {
		name        string
		p           profile.Profile
		wantFile    bool
		wantTrusted []string
	}{
		{"claude, trusted", profile.Profile{Agent: "claude", Workspace: real, TrustWorkspace: true}, true, []string{real}},
		{"claude, trusted through a link: both names", profile.Profile{Agent: "claude", Workspace: link, TrustWorkspace: true}, true, []string{link, real}},
		{"claude, not trusted", profile.Profile{Agent: "claude", Workspace: real}, true, nil},
		{"generic", profile.Profile{Agent: "generic", Workspace: real, TrustWorkspace: true}, false, nil},
		{"codex, trusted", profile.Profile{Agent: "codex", Workspace: real, TrustWorkspace: true}, false, []string{real}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			home := t.TempDir()
			if err := Prepare(Home{Dir: home, Ringlet: testRinglet}, tt.p); err != nil {
				t.Fatalf("Prepare: %v", err)
			}
			path := filepath.Join(home, ".claude", ".claude.json")
			_, err := os.Stat(path)
			if (err == nil) != tt.wantFile {
				t.Fatalf(".claude.json exists: got %v, want %v", err == nil, tt.wantFile)
			}
			codexConfig := filepath.Join(home, ".codex", "config.toml")
			if _, err := os.Stat(codexConfig); (err == nil) != (tt.p.Agent == "codex") {
				t.Fatalf("codex config.toml exists: got %v, want %v", err == nil, tt.p.Agent == "codex")
			}
			if tt.p.Agent == "codex" {
				got, cfg := codexTrusted(t, codexConfig)
				if strings.Join(got, " ") != strings.Join(tt.wantTrusted, " ") {
					t.Errorf("codex trusted: got %v, want %v", got, tt.wantTrusted)
				}
				assertCodexHook(t, cfg, filepath.Join(home, ".codex"))
			}
			if !tt.wantFile {
				return
			}
			if got := trustedIn(readJSON(t, path)); strings.Join(sorted(got), " ") != strings.Join(sorted(tt.wantTrusted), " ") {
				t.Errorf("trusted: got %v, want %v", got, tt.wantTrusted)
			}
		})
	}
}

// codexTrusted lists the projects of a config.toml marked trusted, and
// fails t on a trust_level that is not "trusted".
func codexTrusted(t *testing.T, path string) ([]string, map[string]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := toml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("%s: %v; got %s", path, err, data)
	}
	var out []string
	projects, _ := cfg["projects"].(map[string]any)
	for dir, v := range projects {
		if m, ok := v.(map[string]any); ok && m["trust_level"] != nil {
			if m["trust_level"] != "trusted" {
				t.Errorf("projects.%q.trust_level: got %v, want trusted or none", dir, m["trust_level"])
			}
			out = append(out, dir)
		}
	}
	return out, cfg
}

func TestCodex(t *testing.T) {
	t.Parallel()
	ws := "/work/app"
	tests := []struct {
		name        string
		old         string
		trusted     []string
		wantTrusted []string
		check       func(t *testing.T, cfg map[string]any)
	}{
		{name: "fresh, untrusted"},
		{name: "fresh, trusted", trusted: []string{ws}, wantTrusted: []string{ws}},
		{
			name:    "Codex's own settings kept",
			old:     "model = \"gpt-5.5\"\n[notice.model_migrations]\n\"gpt-5.5\" = \"gpt-6-sol\"\n[mcp_servers.x]\ncommand = \"y\"\n[tui]\nscreen_reader_detection_done = true\n",
			trusted: []string{ws}, wantTrusted: []string{ws},
			check: func(t *testing.T, cfg map[string]any) {
				notice, _ := cfg["notice"].(map[string]any)
				migrations, _ := notice["model_migrations"].(map[string]any)
				servers, _ := cfg["mcp_servers"].(map[string]any)
				if cfg["model"] != "gpt-5.5" || migrations["gpt-5.5"] != "gpt-6-sol" || servers["x"] == nil {
					t.Errorf("config: got %v, want Codex's own settings kept", cfg)
				}
			},
		},
		{
			name:        "trust the agent wrote is removed",
			old:         "[projects.\"/work/app\"]\ntrust_level = \"trusted\"\n[projects.\"/\"]\ntrust_level = \"trusted\"\n[projects.\"/other\"]\ntrust_level = \"untrusted\"\n",
			wantTrusted: nil,
		},
		{
			name:        "trusted: only the workspace",
			old:         "[projects.\"/\"]\ntrust_level = \"trusted\"\n",
			trusted:     []string{ws},
			wantTrusted: []string{ws},
		},
		{name: "projects not a table", old: "projects = [\"/work/app\"]\n", trusted: []string{ws}, wantTrusted: []string{ws}},
		{
			name: "the agent's attempts to turn Ringlet's hook off are undone",
			old: "[features]\nhooks = false\ncodex_hooks = false\nother = true\n" +
				"[[hooks.PreToolUse]]\nmatcher = \"Bash\"\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = \"my-check\"\n" +
				"[hooks.state.\"/seen/.codex/config.toml:pre_tool_use:0:0\"]\nenabled = false\ntrusted_hash = \"sha256:0\"\n" +
				"[hooks.state.\"/seen/.codex/hooks.json:stop:0:0\"]\nenabled = false\n" +
				"[hooks.state.\"/seen/.codex/hooks.json:pre_tool_use:0:0\"]\ntrusted_hash = \"sha256:1\"\n",
			check: func(t *testing.T, cfg map[string]any) {
				hooks := cfg["hooks"].(map[string]any)
				groups := hooks["PreToolUse"].([]any)
				user, _ := groups[len(groups)-1].(map[string]any)
				if len(groups) != 2 || user["matcher"] != "Bash" {
					t.Errorf("hooks.PreToolUse: got %v, want Ringlet's, then the user's own", groups)
				}
				state := hooks["state"].(map[string]any)
				if other, _ := state["/seen/.codex/hooks.json:stop:0:0"].(map[string]any); other["enabled"] != false {
					t.Errorf("hooks.state of another hook: got %v, want it kept", state)
				}
				// A hook the agent trusted for itself could rewrite the
				// input Ringlet's judged.
				if planted, _ := state["/seen/.codex/hooks.json:pre_tool_use:0:0"].(map[string]any); planted["trusted_hash"] != nil {
					t.Errorf("hooks.state of another hook: got %v, want its trust removed", planted)
				}
				if f := cfg["features"].(map[string]any); f["other"] != true || len(f) != 1 {
					t.Errorf("features: got %v, want only the others kept", f)
				}
			},
		},
		{
			name: "an earlier Ringlet hook (another ringlet path) is replaced",
			old:  "[[hooks.PreToolUse]]\nmatcher = \"*\"\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = \"'/old/ringlet' hook codex-pre-tool-use || exit 2\"\n",
			check: func(t *testing.T, cfg map[string]any) {
				if groups := cfg["hooks"].(map[string]any)["PreToolUse"].([]any); len(groups) != 1 {
					t.Errorf("hooks.PreToolUse: got %v, want Ringlet's alone", groups)
				}
			},
		},
		{name: "hooks not a table", old: "hooks = 1\n"},
		{name: "PreToolUse not an array", old: "[hooks]\nPreToolUse = \"x\"\nstate = 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), ".codex")
			path := filepath.Join(dir, "config.toml")
			if tt.old != "" {
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				write(t, path, tt.old)
			}
			if err := Codex(dir, "/seen/.codex", testAdapter(t), tt.trusted); err != nil {
				t.Fatalf("Codex: %v", err)
			}
			got, cfg := codexTrusted(t, path)
			assertCodexHook(t, cfg, "/seen/.codex")
			if strings.Join(sorted(got), " ") != strings.Join(sorted(tt.wantTrusted), " ") {
				t.Errorf("trusted projects: got %v, want %v", got, tt.wantTrusted)
			}
			if tt.check != nil {
				tt.check(t, cfg)
			}
		})
	}
}

// TestCodexUnchangedKeepsComments: a config.toml that already says what
// Ringlet would write is left as it is, comments included.
func TestCodexUnchangedKeepsComments(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), ".codex")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config.toml")
	h := testAdapter(t)
	content := "# my notes\nmodel = \"m\" # why\n\n[projects.\"/w\"]\ntrust_level = \"trusted\"\n" +
		"[[hooks.PreToolUse]]\nmatcher = \"*\" # all\n[[hooks.PreToolUse.hooks]]\ntype = \"command\"\ncommand = " + strconv.Quote(h.Command) + "\ntimeout = 600\n" +
		"[hooks.state.\"" + dir + "/config.toml:pre_tool_use:0:0\"]\ntrusted_hash = \"" + h.TrustedHash + "\"\n"
	write(t, path, content)
	if err := Codex(dir, dir, h, []string{"/w"}); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(path); string(data) != content {
		t.Errorf("config.toml: got %q, want it unchanged", data)
	}
}

func TestCodexRefuses(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), ".codex")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "config.toml"), "model = \n")
	if err := Codex(dir, dir, testAdapter(t), nil); err == nil || !strings.Contains(err.Error(), "not valid TOML") {
		t.Errorf("Codex on a broken config.toml: got %v, want it refused as not valid TOML", err)
	}
	elsewhere := t.TempDir()
	link := filepath.Join(t.TempDir(), ".codex")
	symlink(t, elsewhere, link)
	if err := Codex(link, link, testAdapter(t), nil); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Codex on a symlinked CODEX_HOME: got %v, want a refusal", err)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the link's target got %d entries, want none", len(entries))
	}
}

// TestOpenCode: Ringlet's plugin is written into the OpenCode config dir
// the catalog names, whatever the agent left in its place, and both of
// the profile's OpenCode config dirs are marked as having the package
// OpenCode would otherwise wait for npm to install; a symlink planted in
// place of the plugin dir is refused, not followed.
func TestOpenCode(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	want, err := hook.OpenCodePlugin(testRinglet)
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(home, filepath.FromSlash(hook.OpenCodePluginDir), hook.OpenCodePluginFile)
	for i, planted := range []string{"", "export const Evil = async () => ({})\n"} {
		if planted != "" {
			if err := os.WriteFile(plugin, []byte(planted), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := Prepare(Home{Dir: home, Ringlet: testRinglet}, profile.Profile{Agent: "opencode"}); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		got, err := os.ReadFile(plugin)
		if err != nil || string(got) != string(want) {
			t.Errorf("start %d: plugin: got %.100q (%v), want Ringlet's", i, got, err)
		}
	}
	for _, d := range []string{".config/opencode", ".config/opencode-ringlet"} {
		lock, err := os.ReadFile(filepath.Join(home, d, "package-lock.json"))
		if err != nil || !strings.Contains(string(lock), `"@opencode-ai/plugin"`) {
			t.Errorf("%s/package-lock.json: got %q (%v), want @opencode-ai/plugin in its root", d, lock, err)
		}
		if fi, err := os.Stat(filepath.Join(home, d, "node_modules")); err != nil || !fi.IsDir() {
			t.Errorf("%s/node_modules: %v, want a directory", d, err)
		}
	}

	// What the agent leaves in Ringlet's own config dir is gone at the next
	// start: OpenCode loads that dir last, so a plugin there would run after
	// Ringlet's and a config there would override Ringlet's settings.
	own := filepath.Join(home, ".config", "opencode-ringlet")
	planted := []string{"plugin/zzz.js", "plugin/a.ts", "plugins/x.js", "opencode.json", "opencode.jsonc", "agent/evil.md"}
	for _, f := range planted {
		writeTestFile(t, filepath.Join(own, filepath.FromSlash(f)), "planted")
	}
	userOwn := filepath.Join(home, ".config", "opencode", "plugin", "mine.js")
	writeTestFile(t, userOwn, "the user's")
	if err := Prepare(Home{Dir: home, Ringlet: testRinglet}, profile.Profile{Agent: "opencode"}); err != nil {
		t.Fatalf("start with planted files: %v", err)
	}
	for _, f := range planted {
		if _, err := os.Lstat(filepath.Join(own, filepath.FromSlash(f))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s in Ringlet's OpenCode dir after a start: %v, want removed", f, err)
		}
	}
	for _, f := range []string{"plugin/" + hook.OpenCodePluginFile, "package-lock.json", "node_modules"} {
		if _, err := os.Lstat(filepath.Join(own, filepath.FromSlash(f))); err != nil {
			t.Errorf("%s in Ringlet's OpenCode dir after a start: %v, want kept", f, err)
		}
	}
	if _, err := os.Stat(userOwn); err != nil {
		t.Errorf("a plugin in .config/opencode: %v, want left alone (not Ringlet's dir)", err)
	}

	elsewhere := t.TempDir()
	dir := filepath.Join(home, filepath.FromSlash(hook.OpenCodePluginDir))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, dir); err != nil {
		t.Fatal(err)
	}
	if err := Prepare(Home{Dir: home, Ringlet: testRinglet}, profile.Profile{Agent: "opencode"}); err == nil {
		t.Error("plugin dir a symlink: got no error, want a refusal")
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the symlink's target got %d entries, want none", len(entries))
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
