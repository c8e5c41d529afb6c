package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPlantedClaudeConfigResetAtNextRun: a sandboxed Claude Code writes
// a hook and a status line of its own into its HOME's settings.json (as
// a Write its hooks allowed would); at the next 'profiles run' they do
// not run: Ringlet put the file back to what the user approved, kept the
// agent's version aside, recorded agent.config.reset and said so on
// stderr. The user's own approved hook runs every time, and a run after
// nothing changed says nothing.
func TestPlantedClaudeConfigResetAtNextRun(t *testing.T) {
	t.Parallel()
	w, _, work := sandboxWorld(t)
	home := w.profileHome("box")
	settings := filepath.Join(home, ".claude", "settings.json")
	approvedMark, plantedMark := filepath.Join(work, "APPROVED-HOOK-RAN"), filepath.Join(work, "PLANTED-HOOK-RAN")
	addHook := func(command string, statusLine bool) {
		t.Helper()
		var m map[string]any
		data, err := os.ReadFile(settings)
		if err != nil || json.Unmarshal(data, &m) != nil {
			t.Fatalf("settings.json: %v %q", err, data)
		}
		hooks := m["hooks"].(map[string]any)
		group := map[string]any{"hooks": []any{map[string]any{"type": "command", "command": command}}}
		for _, ev := range []string{"SessionStart", "UserPromptSubmit", "Stop"} {
			cur, _ := hooks[ev].([]any)
			hooks[ev] = append(cur, group)
		}
		if statusLine {
			m["statusLine"] = map[string]any{"type": "command", "command": command}
			m["apiKeyHelper"] = command
		}
		out, _ := json.Marshal(m)
		if err := os.WriteFile(settings, out, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	run := func() string {
		t.Helper()
		stdout, stderr, code := w.e.Run("profiles", "run", "box", "--", "-p", "say hi", "--output-format", "json")
		if code != 0 {
			t.Fatalf("profiles run box: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		return stderr
	}
	ran := func(mark string) bool {
		_, err := os.Stat(mark)
		_ = os.Remove(mark) // absent or removed: the next run starts clean
		return err == nil
	}

	// The user's own hook, approved.
	addHook("touch "+approvedMark, false)
	if out := mustRun(t, w.e, "profiles", "config", "approve", "box", "--json"); !strings.Contains(out, ".claude/settings.json") {
		t.Fatalf("profiles config approve --json: got %s, want settings.json approved", out)
	}
	if stderr := run(); strings.Contains(stderr, "reset") {
		t.Errorf("a run with the approved config: got stderr %q, want no reset", stderr)
	}
	if !ran(approvedMark) {
		t.Fatal("the user's approved hook did not run; the test cannot see a hook run")
	}
	if stderr := run(); strings.Contains(stderr, "reset") {
		t.Errorf("a second run (Claude Code wrote its own state meanwhile): got stderr %q, want no reset", stderr)
	}
	ran(approvedMark)

	// The agent plants its own.
	addHook("touch "+plantedMark, true)
	stderr := run()
	if ran(plantedMark) {
		t.Error("the hook the sandboxed agent planted in settings.json ran at the next profiles run")
	}
	if !ran(approvedMark) {
		t.Error("the user's approved hook did not run after the reset")
	}
	if !strings.Contains(stderr, "ringlet: reset what the agent changed") || !strings.Contains(stderr, "~/.claude/settings.json") ||
		!strings.Contains(stderr, "ringlet profiles config approve box") {
		t.Errorf("stderr: got %q, want one line naming settings.json and how to approve", stderr)
	}
	if data, _ := os.ReadFile(settings); strings.Contains(string(data), plantedMark) {
		t.Errorf("settings.json still holds the planted command: %s", data)
	}
	recs, _ := queryRecords(t, w.e, "--kind", "agent.config.reset")
	if len(recs) != 2 {
		t.Fatalf("agent.config.reset records: got %d, want 2 (what is reset, then where it went)", len(recs))
	}
	var planned, done map[string]any
	for _, r := range recs {
		if strings.Contains(string(r.Detail), plantedMark) {
			t.Errorf("record detail: got %s, want no value", r.Detail)
		}
		if d := r.detail(t); d["quarantine"] != nil {
			done = d
		} else {
			planned = d
		}
	}
	if items, _ := json.Marshal(planned["items"]); !strings.Contains(string(items), ".claude/settings.json") {
		t.Errorf("the record before the reset: got %v, want settings.json named", planned)
	}
	moved, _ := done["quarantine"].(string)
	if data, err := os.ReadFile(filepath.Join(moved, "home", ".claude", "settings.json")); err != nil || !strings.Contains(string(data), plantedMark) {
		t.Errorf("the agent's version aside: got %q %v, want the planted settings", data, err)
	}
	if strings.HasPrefix(moved, home+string(filepath.Separator)) {
		t.Errorf("quarantine %s is inside the sandboxed HOME", moved)
	}
}

// TestProfilesConfigApproveCLI: 'profiles config approve' as a user meets
// it: help with examples, the profile completed, one clear line for a
// missing argument or an unknown profile, the items as JSON.
func TestProfilesConfigApproveCLI(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("claude", "cc", "fake")
	if out := mustRun(t, w.e, "profiles", "config", "approve", "--help"); !strings.Contains(out, "Examples:") || !strings.Contains(out, "ringlet profiles config approve work") {
		t.Errorf("--help: got %q, want examples", out)
	}
	if out := mustRun(t, w.e, "__complete", "profiles", "config", "approve", ""); !strings.Contains(out, "cc") {
		t.Errorf("completion: got %q, want the profile cc", out)
	}
	stdout, stderr, code := w.e.Run("profiles", "config", "approve")
	checkOneLineError(t, stdout, stderr, code, []int{2}, "ALIAS")
	stdout, stderr, code = w.e.Run("profiles", "config", "approve", "nope")
	checkOneLineError(t, stdout, stderr, code, []int{1}, "nope")
	var out struct {
		Profile string   `json:"profile"`
		Agent   string   `json:"agent"`
		Items   []string `json:"items"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "profiles", "config", "approve", "cc", "--json")), &out); err != nil || out.Profile != "cc" || out.Agent != "claude" || out.Items == nil {
		t.Errorf("--json: got %+v %v, want profile cc, agent claude, items", out, err)
	}
}
