package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// sessionHome starts a session through the API, sandboxed or not, and
// returns what it answered.
func (w *proxyWorld) sessionVia(alias string, sandboxed bool) (s proxySession, home string) {
	w.t.Helper()
	body := `{"profile":"` + alias + `"}`
	if sandboxed {
		body = `{"profile":"` + alias + `","sandbox":true}`
	}
	out := mustRun(w.t, w.e, "api", "/api/sessions", "-X", "POST", "-d", body)
	var st struct {
		proxySession
		Home      string `json:"home"`
		Sandboxed bool   `json:"sandboxed"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.Sandboxed != sandboxed || st.Home == "" {
		w.t.Fatalf("POST /api/sessions %s: got %q (%v), want a session with sandboxed %v and its HOME", body, out, err, sandboxed)
	}
	return st.proxySession, st.Home
}

// TestUnsandboxedRunsNeverShareTheSandboxHome: whatever a sandboxed agent
// writes in its HOME, an agent of the same profile run without the
// sandbox never reads: for every agent in the catalog, nothing in an
// unsandboxed session's launch names the sandboxed HOME.
func TestUnsandboxedRunsNeverShareTheSandboxHome(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	for _, c := range []struct{ agent, provider string }{
		{"claude", "fake"}, {"codex", "fakeoa"}, {"opencode", "fake"}, {"generic", "fakeoa"},
	} {
		args := []string{"--model", "m-1"}
		if c.agent == "generic" {
			args = append(args, "--command", "true")
		}
		w.newProfile(c.agent, "p-"+c.agent, c.provider, args...)
		_, sbHome := w.sessionVia("p-"+c.agent, true)
		if sbHome != w.profileHome("p-"+c.agent) {
			t.Errorf("%s: sandboxed session HOME got %s, want the profile's home %s", c.agent, sbHome, w.profileHome("p-"+c.agent))
		}
		s, home := w.sessionVia("p-"+c.agent, false)
		if home != w.unsandboxedHome("p-"+c.agent) {
			t.Errorf("%s: unsandboxed session HOME got %s, want %s", c.agent, home, w.unsandboxedHome("p-"+c.agent))
		}
		launch := strings.Join(s.Launch.Args, "\n")
		for _, v := range s.Launch.Env {
			launch += "\n" + v.Name + "=" + v.Value
		}
		if regexp.MustCompile(regexp.QuoteMeta(sbHome) + `($|[/"'\s,;}\]])`).MatchString(launch) {
			t.Errorf("%s: the unsandboxed launch names the sandboxed HOME %s:\n%s", c.agent, sbHome, launch)
		}
		if strings.HasPrefix(home, sbHome+"/") || home == sbHome || strings.HasPrefix(sbHome, home+"/") {
			t.Errorf("%s: HOMEs overlap: %s and %s", c.agent, home, sbHome)
		}
	}
}

// TestPlantedClaudeHookStaysInTheSandbox: a sandboxed Claude Code adds a
// PreToolUse hook of its own to its settings.json; the same profile's
// Claude Code, later run without the sandbox ('profiles env'), makes a
// tool call, and the planted hook does not run. The control plants the
// same hook in the unsandboxed HOME and sees it run, so the test can fail.
func TestPlantedClaudeHookStaysInTheSandbox(t *testing.T) {
	t.Parallel()
	requireNode(t)
	w := newProxyWorld(t)
	key := w.newProfile("claude", "cc", "fake", "--model", "claude-sonnet-4-5")
	_, sbHome := w.sessionVia("cc", true)
	marker := filepath.Join(t.TempDir(), "PLANTED-HOOK-RAN")
	plant := func(home string) {
		t.Helper()
		settings := filepath.Join(home, ".claude", "settings.json")
		var m map[string]any
		data, err := os.ReadFile(settings)
		if err != nil || json.Unmarshal(data, &m) != nil {
			t.Fatalf("settings.json in %s: %v %q", home, err, data)
		}
		hooks := m["hooks"].(map[string]any)
		planted := map[string]any{"matcher": "*", "hooks": []any{map[string]any{"type": "command", "command": "touch " + marker}}}
		for _, ev := range []string{"PreToolUse", "SessionStart", "UserPromptSubmit", "Stop"} {
			cur, _ := hooks[ev].([]any)
			hooks[ev] = append(cur, planted)
		}
		out, _ := json.Marshal(m)
		if err := os.WriteFile(settings, out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	plant(sbHome)

	run := func() {
		t.Helper()
		s := w.startSession("cc") // profiles env
		work := t.TempDir()
		cmd := "true"
		w.fake.ToolUse.Store(&cmd)
		cenv := clientEnv(t, s, w.unsandboxedHome("cc"), key, claudeOffline...)
		runClaude(t, work, cenv, "-p", "run true", "--output-format", "json", "--allowedTools", "Bash(true)")
	}
	run()
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("a hook planted in the sandboxed HOME ran in an unsandboxed Claude Code")
	}
	// Control: the same hook where the unsandboxed Claude Code reads its
	// settings runs.
	plant(w.unsandboxedHome("cc"))
	run()
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("control: the hook planted in the unsandboxed HOME did not run (%v); the test cannot see a planted hook", err)
	}
}
