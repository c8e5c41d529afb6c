package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

// TestClaudeHomePreparedAtSessionStart: at every session start Ringlet
// rewrites what it owns in Claude Code's .claude.json, whatever the agent
// left there: onboarding done, and the workspace trusted only while the
// profile says --trust-workspace (trust the agent wrote for itself is
// removed). The file holds neither the key nor the session token, and a
// symlink in its place refuses the session instead of being followed.
func TestClaudeHomePreparedAtSessionStart(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	work := t.TempDir()
	if stdout, stderr, code := w.e.Run("profiles", "create", "claude", "nows", "--provider", "fake", "--trust-workspace", "--skip-key"); code != 2 || stdout != "" || !strings.Contains(stderr, "--trust-workspace needs --workspace") {
		t.Errorf("profiles create --trust-workspace without --workspace: got exit %d, stdout %q, stderr %q; want exit 2 and why", code, stdout, stderr)
	}
	key := w.newProfile("claude", "cc", "fake", "--workspace", work)
	inspect := func() bool {
		t.Helper()
		var v struct {
			Trust *bool `json:"trust_workspace"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, w.e, "profiles", "inspect", "cc", "--json")), &v); err != nil {
			t.Fatal(err)
		}
		return v.Trust != nil && *v.Trust
	}
	if inspect() || !strings.Contains(mustRun(t, w.e, "profiles", "inspect", "cc"), "trust_workspace   false") {
		t.Errorf("profiles inspect cc: got the workspace trusted, want not")
	}
	home := w.profileHome("cc")
	cfgPath := filepath.Join(home, ".claude", ".claude.json")
	planted := `{"hasCompletedOnboarding": false, "userID": "agent-kept", "projects": {"` + work + `": {"hasTrustDialogAccepted": true, "allowedTools": []}, "/": {"hasTrustDialogAccepted": true}}}`
	if err := os.WriteFile(cfgPath, []byte(planted), 0o644); err != nil {
		t.Fatal(err)
	}
	check := func(wantTrusted []string, tokens ...string) {
		t.Helper()
		data, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Onboarded bool                                  `json:"hasCompletedOnboarding"`
			UserID    string                                `json:"userID"`
			Projects  map[string]map[string]json.RawMessage `json:"projects"`
		}
		if err := json.Unmarshal(data, &cfg); err != nil {
			t.Fatalf(".claude.json: %v; got %s", err, data)
		}
		var trusted []string
		for dir, p := range cfg.Projects {
			if string(p["hasTrustDialogAccepted"]) == "true" {
				trusted = append(trusted, dir)
			}
		}
		if !cfg.Onboarded || cfg.UserID != "agent-kept" || strings.Join(trusted, " ") != strings.Join(wantTrusted, " ") {
			t.Errorf(".claude.json after a session start: got onboarded %v, userID %q, trusted %v; want true, Claude Code's own state kept, trusted %v\n%s",
				cfg.Onboarded, cfg.UserID, trusted, wantTrusted, data)
		}
		for _, tok := range tokens {
			if strings.Contains(string(data), tok) {
				t.Error(".claude.json holds the session token")
			}
		}
		assertNoKey(t, ".claude.json", data, key)
	}
	s, _ := w.sessionVia("cc", true)
	check(nil, s.Token)

	mustRun(t, w.e, "profiles", "set", "cc", "--trust-workspace")
	if !inspect() {
		t.Errorf("profiles inspect cc after set --trust-workspace: got not trusted, want trusted")
	}
	s, _ = w.sessionVia("cc", true)
	check([]string{work}, s.Token)

	// 'profiles env' prepares the unsandboxed HOME the same way.
	w.startSession("cc")
	if data, err := os.ReadFile(filepath.Join(w.unsandboxedHome("cc"), ".claude", ".claude.json")); err != nil || !strings.Contains(string(data), `"hasCompletedOnboarding": true`) {
		t.Errorf(".claude.json in the unsandboxed HOME: got %q (%v), want onboarding done", data, err)
	}

	elsewhere := filepath.Join(t.TempDir(), "target.json")
	if err := os.Remove(cfgPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, cfgPath); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := w.e.Run("api", "/api/sessions", "-X", "POST", "-d", `{"profile":"cc","sandbox":true}`); code == 0 || !strings.Contains(stderr, "symbolic link") {
		t.Errorf("a session with .claude.json a symlink: got exit %d, stderr %q; want a refusal naming the symlink", code, stderr)
	}
	if _, err := os.Lstat(elsewhere); err == nil {
		t.Error("the symlink's target was written")
	}
}

// TestCodexHomePreparedAtSessionStart: the same for Codex's config.toml:
// at every session start the workspace is trusted only while the profile
// says so, whatever the agent wrote, and the rest of the file is kept.
func TestCodexHomePreparedAtSessionStart(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	work := t.TempDir()
	key := w.newProfile("codex", "cx", "fakeoa", "--workspace", work)
	cfgPath := filepath.Join(w.profileHome("cx"), ".codex", "config.toml")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		t.Fatal(err)
	}
	planted := "model_reasoning_effort = \"high\"\n[projects.\"" + work + "\"]\ntrust_level = \"trusted\"\n[projects.\"/\"]\ntrust_level = \"trusted\"\n"
	if err := os.WriteFile(cfgPath, []byte(planted), 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(wantTrusted bool, token string) {
		t.Helper()
		data, err := os.ReadFile(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Effort   string                       `toml:"model_reasoning_effort"`
			Projects map[string]map[string]string `toml:"projects"`
		}
		if err := toml.Unmarshal(data, &cfg); err != nil {
			t.Fatalf("config.toml: %v\n%s", err, data)
		}
		var trusted []string
		for dir, p := range cfg.Projects {
			if p["trust_level"] != "" {
				trusted = append(trusted, dir+"="+p["trust_level"])
			}
		}
		want := ""
		if wantTrusted {
			want = work + "=trusted"
		}
		if strings.Join(trusted, " ") != want || cfg.Effort != "high" {
			t.Errorf("config.toml after a session start: got trust %v, effort %q; want %q and Codex's own setting kept\n%s", trusted, cfg.Effort, want, data)
		}
		if strings.Contains(string(data), token) {
			t.Error("config.toml holds the session token")
		}
		assertNoKey(t, "config.toml", data, key)
	}
	s, _ := w.sessionVia("cx", true)
	check(false, s.Token)
	mustRun(t, w.e, "profiles", "set", "cx", "--trust-workspace")
	s, _ = w.sessionVia("cx", true)
	check(true, s.Token)
}
