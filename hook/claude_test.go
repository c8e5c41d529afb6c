package hook

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testRinglet = "/opt/ringlet/bin/ringlet"

// readSettings decodes dir/settings.json.
func readSettings(t *testing.T, dir string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "settings.json"))
	if err != nil {
		t.Fatalf("read settings.json: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("settings.json: got %s, not JSON: %v", data, err)
	}
	return m
}

// preToolUse returns settings.hooks.PreToolUse.
func preToolUse(t *testing.T, settings map[string]any) []any {
	t.Helper()
	hooks, ok := settings["hooks"].(map[string]any)
	if !ok {
		t.Fatalf("settings.hooks: got %#v, want an object", settings["hooks"])
	}
	pre, ok := hooks["PreToolUse"].([]any)
	if !ok {
		t.Fatalf("settings.hooks.PreToolUse: got %#v, want an array", hooks["PreToolUse"])
	}
	return pre
}

// assertRingletEntry checks e is Ringlet's entry for the binary ringlet.
func assertRingletEntry(t *testing.T, e any, ringlet string) {
	t.Helper()
	assertRingletAdapter(t, e, ringlet, ClaudeAdapterArg)
}

func assertRingletAdapter(t *testing.T, e any, ringlet, arg string) {
	t.Helper()
	m, ok := e.(map[string]any)
	if !ok {
		t.Fatalf("Ringlet's entry: got %#v, want an object", e)
	}
	if m["matcher"] != "*" {
		t.Errorf("matcher: got %#v, want %q", m["matcher"], "*")
	}
	hs, ok := m["hooks"].([]any)
	if !ok || len(hs) != 1 {
		t.Fatalf("hooks: got %#v, want one hook", m["hooks"])
	}
	h, _ := hs[0].(map[string]any)
	if h["type"] != "command" {
		t.Errorf("type: got %#v, want %q", h["type"], "command")
	}
	want := "'" + ringlet + "' " + arg + claudeFailClosed
	if h["command"] != want {
		t.Errorf("command: got %#v, want %q", h["command"], want)
	}
	if to, ok := h["timeout"].(float64); ok && to <= 0 {
		t.Errorf("timeout: got %v, want a positive number of seconds or none", to)
	}
}

// countRinglet counts the PreToolUse entries that run Ringlet's adapter.
func countRinglet(pre []any) int {
	n := 0
	for _, e := range pre {
		if isRingletEntry(e) {
			n++
		}
	}
	return n
}

func TestInstallClaudeFresh(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "home", ".claude") // does not exist yet
	if err := InstallClaude(dir, testRinglet); err != nil {
		t.Fatalf("InstallClaude: %v", err)
	}
	s := readSettings(t, dir)
	pre := preToolUse(t, s)
	if len(pre) != 1 {
		t.Fatalf("PreToolUse: got %d entries, want 1", len(pre))
	}
	assertRingletEntry(t, pre[0], testRinglet)
	post, _ := s["hooks"].(map[string]any)["PostToolUse"].([]any)
	if len(post) != 1 {
		t.Fatalf("PostToolUse: got %#v, want Ringlet's one entry", post)
	}
	assertRingletAdapter(t, post[0], testRinglet, ClaudePostAdapterArg)
	if len(s) != 1 {
		t.Errorf("settings: got keys %v, want only hooks", reflect.ValueOf(s).MapKeys())
	}
	assertMode(t, filepath.Join(dir, "settings.json"), 0o600)
	assertMode(t, dir, 0o700)
}

func TestInstallClaudeKeepsUserSettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	user := `{
  "model": "claude-opus-4",
  "permissions": {"allow": ["Bash(ls:*)"], "deny": ["Read(./.env)"]},
  "env": {"FOO": "bar"},
  "cleanupPeriodDays": 30,
  "hooks": {
    "PostToolUse": [{"matcher": "Write", "hooks": [{"type": "command", "command": "prettier --write"}]}],
    "PreToolUse": [
      {"matcher": "Bash", "hooks": [{"type": "command", "command": "/home/me/check-bash.sh"}]},
      {"matcher": "*", "hooks": [{"type": "command", "command": "'/old/path/ringlet' hook claude-pre-tool-use"}]},
      {"matcher": "Edit", "hooks": [{"type": "command", "command": "/home/me/check-edit.sh"}]}
    ]
  }
}`
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(user), 0o644); err != nil {
		t.Fatal(err)
	}
	var before map[string]any
	if err := json.Unmarshal([]byte(user), &before); err != nil {
		t.Fatal(err)
	}

	for range 2 { // twice: the second install changes nothing
		if err := InstallClaude(dir, testRinglet); err != nil {
			t.Fatalf("InstallClaude: %v", err)
		}
	}
	after := readSettings(t, dir)
	for _, k := range []string{"model", "permissions", "env", "cleanupPeriodDays"} {
		if !reflect.DeepEqual(after[k], before[k]) {
			t.Errorf("%s: got %#v, want the user's %#v", k, after[k], before[k])
		}
	}
	hooks := after["hooks"].(map[string]any)
	post, _ := hooks["PostToolUse"].([]any)
	if len(post) != 2 || !reflect.DeepEqual(post[1:], before["hooks"].(map[string]any)["PostToolUse"]) {
		t.Errorf("PostToolUse: got %#v, want Ringlet's entry, then the user's unchanged", hooks["PostToolUse"])
	} else {
		assertRingletAdapter(t, post[0], testRinglet, ClaudePostAdapterArg)
	}
	pre := preToolUse(t, after)
	if len(pre) != 3 {
		t.Fatalf("PreToolUse: got %d entries, want 3 (Ringlet's and the user's two): %#v", len(pre), pre)
	}
	assertRingletEntry(t, pre[0], testRinglet)
	userPre := before["hooks"].(map[string]any)["PreToolUse"].([]any)
	if !reflect.DeepEqual(pre[1:], []any{userPre[0], userPre[2]}) {
		t.Errorf("the user's PreToolUse entries: got %#v, want %#v in their order", pre[1:], []any{userPre[0], userPre[2]})
	}
	assertMode(t, filepath.Join(dir, "settings.json"), 0o600)
}

// TestInstallClaudeIdempotent installs repeatedly, the binary moving in
// between: there is always exactly one Ringlet entry, for the latest.
func TestInstallClaudeIdempotent(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i, bin := range []string{testRinglet, testRinglet, "/usr/local/bin/ringlet", testRinglet} {
		if err := InstallClaude(dir, bin); err != nil {
			t.Fatalf("InstallClaude #%d: %v", i+1, err)
		}
		pre := preToolUse(t, readSettings(t, dir))
		if n := countRinglet(pre); n != 1 || len(pre) != 1 {
			t.Fatalf("after install #%d: got %d entries, %d of them Ringlet's; want exactly one Ringlet entry", i+1, len(pre), n)
		}
		assertRingletEntry(t, pre[0], bin)
	}
}

// TestInstallClaudeQuotesPath checks the command runs the binary named,
// however odd its path, when Claude Code hands it to a shell.
func TestInstallClaudeQuotesPath(t *testing.T) {
	t.Parallel()
	for _, bin := range []string{
		"/tmp/it's here/ringlet",
		"/tmp/$(touch x)/`id`/ring let;rm",
		`/tmp/a"b\c/ringlet`,
	} {
		dir := t.TempDir()
		if err := InstallClaude(dir, bin); err != nil {
			t.Fatalf("InstallClaude(%q): %v", bin, err)
		}
		pre := preToolUse(t, readSettings(t, dir))
		cmd := pre[0].(map[string]any)["hooks"].([]any)[0].(map[string]any)["command"].(string)
		quoted, ok := strings.CutSuffix(cmd, " "+ClaudeAdapterArg+claudeFailClosed)
		if !ok {
			t.Fatalf("command: got %q, want it to end with %q", cmd, ClaudeAdapterArg)
		}
		// The shell must see one word: the path.
		out, err := exec.Command("/bin/sh", "-c", `printf '%s' `+quoted).Output()
		if err != nil || string(out) != bin {
			t.Errorf("the shell reads %q as %q (%v), want %q", quoted, out, err, bin)
		}
	}
}

// TestInstallClaudeRefusesBadFile leaves a file it cannot parse exactly as
// it was and says what to fix.
func TestInstallClaudeRefusesBadFile(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{
		"truncated":        `{"model": "x",`,
		"trailing text":    `{"model": "x"} and more`,
		"array":            `[1, 2]`,
		"string":           `"settings"`,
		"comments (JSONC)": "{\n  // my settings\n  \"model\": \"x\"\n}",
		"empty":            "",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "settings.json")
			if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
				t.Fatal(err)
			}
			err := InstallClaude(dir, testRinglet)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "not valid JSON") {
				t.Errorf("InstallClaude: got %v, want an error naming %s as not valid JSON", err, path)
			}
			data, _ := os.ReadFile(path)
			if string(data) != content {
				t.Errorf("settings.json: got %q, want unchanged %q", data, content)
			}
			assertMode(t, path, 0o640)
		})
	}
}

// TestInstallClaudeNull treats a settings.json holding null as empty
// settings (it used to panic on the nil map).
func TestInstallClaudeNull(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte("null\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := InstallClaude(dir, testRinglet); err != nil {
		t.Fatalf("InstallClaude: %v", err)
	}
	assertRingletEntry(t, preToolUse(t, readSettings(t, dir))[0], testRinglet)
}

// TestInstallClaudeKeepsNumbersAndUnchangedFiles: numbers keep their exact
// text (no float64 round trip), and a file that already holds the hook is
// not rewritten (it runs at every session start).
func TestInstallClaudeKeepsNumbersAndUnchangedFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "settings.json")
	if err := os.WriteFile(path, []byte(`{"cleanupPeriodDays": 12345678901234567890, "ratio": 1.50}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := InstallClaude(dir, testRinglet); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "12345678901234567890") || !strings.Contains(string(data), "1.50") {
		t.Errorf("settings.json: got %s, want the numbers as written", data)
	}
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if err := InstallClaude(dir, testRinglet); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || !fi.ModTime().Equal(old) {
		t.Errorf("an install that changes nothing rewrote the file (mtime %v, want %v)", fi.ModTime(), old)
	}
}

// TestInstallClaudeRefusesSymlinks: the agent can write its HOME; a
// symlink in place of .claude or settings.json must not lead the daemon to
// write elsewhere.
func TestInstallClaudeRefusesSymlinks(t *testing.T) {
	t.Parallel()
	for _, which := range []string{"dir", "file"} {
		home, elsewhere := t.TempDir(), t.TempDir()
		configDir := filepath.Join(home, ".claude")
		target := filepath.Join(elsewhere, "settings.json")
		if err := os.WriteFile(target, []byte(`{"mine": true}`), 0o600); err != nil {
			t.Fatal(err)
		}
		if which == "dir" {
			if err := os.Symlink(elsewhere, configDir); err != nil {
				t.Fatal(err)
			}
		} else {
			if err := os.Mkdir(configDir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(configDir, "settings.json")); err != nil {
				t.Fatal(err)
			}
		}
		if err := InstallClaude(configDir, testRinglet); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("%s symlink: got %v, want a refusal naming the symbolic link", which, err)
		}
		if data, _ := os.ReadFile(target); string(data) != `{"mine": true}` {
			t.Errorf("%s symlink: the file it points to became %s", which, data)
		}
	}
}

// TestInstallClaudeDropsDisableAllHooks: disableAllHooks in user settings
// turns off every hook, Ringlet's included; an agent that can write its
// HOME could set it for its next session, so each session start drops it.
func TestInstallClaudeDropsDisableAllHooks(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "settings.json"), []byte(`{"disableAllHooks": true, "model": "m"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := InstallClaude(dir, testRinglet); err != nil {
		t.Fatal(err)
	}
	s := readSettings(t, dir)
	if _, ok := s["disableAllHooks"]; ok || s["model"] != "m" {
		t.Errorf("settings: got %v, want disableAllHooks gone and the model kept", s)
	}
	assertRingletEntry(t, preToolUse(t, s)[0], testRinglet)
}
