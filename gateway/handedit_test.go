package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/hook"
)

// TestMCPCallSeesHandEdits: a hand edit that tightens what a session may
// call (the profile's tools default, a server's tool rules, a hook) is
// applied by the very next tools/call, though the call before it read
// (and the stores keep) the file as it was. Each file is old enough to be
// kept when it is read before the edit, which is written in place (same
// inode).
func TestMCPCallSeesHandEdits(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	w.addUp(t, bin)
	configDir := filepath.Dir(filepath.Dir(w.hooks.Path("work")))
	profilePath := filepath.Join(configDir, "profiles", "work.toml")
	serversPath := filepath.Join(configDir, "mcp", "work.json")
	hooksPath := w.hooks.Path("work")
	_, tok := w.session(t, "work")
	c := w.connect(t, tok)
	call := func() (string, bool) {
		t.Helper()
		return callTool(t, c, "up__echo", map[string]any{"text": "hi"})
	}
	// old waits until path changed longer ago than the stores' racy
	// window, so that a read keeps it, and reads it through a call.
	old := func(path string) {
		t.Helper()
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		for time.Since(fi.ModTime()) < 2500*time.Millisecond {
			time.Sleep(100 * time.Millisecond)
		}
		if text, isErr := call(); isErr {
			t.Fatalf("the call before the edit of %s: refused: %s", path, text)
		}
	}
	edit := func(path string, change func(string) string) string {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(change(string(data))); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	refused := func(what, want string) {
		t.Helper()
		if text, isErr := call(); !isErr || !strings.Contains(text, want) {
			t.Errorf("the call after %s: got %v %q, want refused (%q)", what, isErr, text, want)
		}
	}

	old(profilePath)
	was := edit(profilePath, func(s string) string { return s + "mcp_tools_default = \"none\"\n" })
	refused("mcp_tools_default = none written by hand", "disabled")
	edit(profilePath, func(string) string { return was })

	old(serversPath)
	edit(serversPath, func(s string) string {
		var f map[string]any
		if err := json.Unmarshal([]byte(s), &f); err != nil {
			t.Fatal(err)
		}
		for _, srv := range f["servers"].([]any) {
			srv.(map[string]any)["tool_rules"] = []any{map[string]any{"pattern": "echo", "enabled": false}}
		}
		out, _ := json.Marshal(f)
		return string(out)
	})
	refused("a tool rule written by hand", `disabled by the rule "echo"`)
	edit(serversPath, func(s string) string { return strings.ReplaceAll(s, `"enabled":false`, `"enabled":true`) })

	// The hooks file, with a hook that matches nothing.
	if _, err := w.hooks.Add(hook.Hook{Profile: "work", Event: hook.PreToolUse, Shell: "exit 0", Match: "^nothing$"}); err != nil {
		t.Fatal(err)
	}
	old(hooksPath)
	edit(hooksPath, func(s string) string {
		return strings.ReplaceAll(s, `exit 0`, `echo denied by a hand edit >&2; exit 1`)
	})
	if text, isErr := call(); isErr {
		t.Fatalf("a hook that matches nothing: the call refused: %s", text)
	}
	old(hooksPath)
	edit(hooksPath, func(s string) string { return strings.ReplaceAll(s, `^nothing$`, `^up__echo$`) })
	refused("a denying hook matched by hand", "denied by a hand edit")
}
