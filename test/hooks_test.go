package test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// hkGuard is the hook from the README's security section.
const hkGuard = `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf"`

// hkEvent is Claude Code's PreToolUse event for a Bash command.
func hkEvent(command string) string {
	input, _ := json.Marshal(map[string]string{"command": command})
	return `{"session_id":"x","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":` + string(input) + `}`
}

// hkSession is what `profiles env --json` prints.
type hkSession struct {
	ID      string `json:"id"`
	Token   string `json:"token"`
	BaseURL string `json:"base_url"`
	Launch  struct {
		Env []struct{ Name, Value string } `json:"env"`
	} `json:"launch"`
}

func (s hkSession) env(name string) string {
	for _, v := range s.Launch.Env {
		if v.Name == name {
			return v.Value
		}
	}
	return ""
}

// hkClaude runs argv the way Claude Code runs its PreToolUse hook: the
// event on stdin, the session's variables in the environment. It returns
// the hook's stderr and exit code.
func hkClaude(t *testing.T, e *env, sess hkSession, event string, argv ...string) (stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cmd.Env, "ANTHROPIC_BASE_URL="+sess.BaseURL, "ANTHROPIC_API_KEY="+sess.Token)
	cmd.Stdin = strings.NewReader(event)
	var errb lockedBuffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%v did not finish within %s", argv, runTimeout)
	case err == nil:
		return errb.String(), 0
	case errors.As(err, &ee) && ee.Exited():
		return errb.String(), ee.ExitCode()
	default:
		t.Fatalf("%v: %v", argv, err)
	}
	return "", -1
}

// TestHooksClaudeCode is the README's Hooks section end to end: a claude
// profile's Claude Code asks the daemon before each tool call, and a
// hook that refuses rm -rf blocks it.
func TestHooksClaudeCode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	d := e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	const key = "sk-ant-hooks-canary-5d0b1c7e"
	if out, stderr, code := e.RunInput(key, "profiles", "create", "claude", "work", "--provider", "local"); code != 0 || !strings.Contains(out, "key: stored") {
		t.Fatalf("profiles create: exit %d, stdout %q, stderr %q; want the profile with its key", code, out, stderr)
	}
	out := mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--shell", hkGuard)
	if !strings.Contains(out, "added hook h_") {
		t.Errorf("hooks add: got %q, want the new hook's id", out)
	}

	// The profile's Claude Code config runs this very binary.
	var view struct {
		Home            string
		UnsandboxedHome string `json:"unsandboxed_home"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "inspect", "work", "--json")), &view); err != nil || view.Home == "" || view.UnsandboxedHome == "" {
		t.Fatalf("profiles inspect --json: %v, home %q, unsandboxed_home %q", err, view.Home, view.UnsandboxedHome)
	}
	// Both HOMEs get the hook at create time; profiles env uses the
	// unsandboxed one.
	if data, err := os.ReadFile(filepath.Join(view.UnsandboxedHome, ".claude", "settings.json")); err != nil || !strings.Contains(string(data), "hook claude-pre-tool-use") {
		t.Errorf("unsandboxed HOME's settings.json: got %q (%v), want Ringlet's hook", data, err)
	}
	settingsPath := filepath.Join(view.Home, ".claude", "settings.json")
	data, err := os.ReadFile(settingsPath)
	if err != nil {
		t.Fatalf("the profile's Claude Code settings: %v", err)
	}
	var settings struct {
		Hooks struct {
			PreToolUse []struct {
				Matcher string `json:"matcher"`
				Hooks   []struct{ Type, Command string }
			}
		}
	}
	if err := json.Unmarshal(data, &settings); err != nil || len(settings.Hooks.PreToolUse) != 1 || len(settings.Hooks.PreToolUse[0].Hooks) != 1 {
		t.Fatalf("settings.json: got %s (%v), want one PreToolUse entry with one hook", data, err)
	}
	entry := settings.Hooks.PreToolUse[0]
	wantCmd := "'" + ringletBin + "' hook claude-pre-tool-use || exit 2"
	if entry.Matcher != "*" || entry.Hooks[0].Type != "command" || entry.Hooks[0].Command != wantCmd {
		t.Errorf("PreToolUse entry: got %+v, want matcher * running %q", entry, wantCmd)
	}
	if fi, err := os.Stat(settingsPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("settings.json mode: got %v (%v), want 0600", fi.Mode().Perm(), err)
	}

	var sess hkSession
	envJSON := mustRun(t, e, "profiles", "env", "work", "--json")
	if err := json.Unmarshal([]byte(envJSON), &sess); err != nil || sess.Token == "" || sess.BaseURL != d.URL+"/proxy" {
		t.Fatalf("profiles env --json: got %q (%v), want a session with base_url %s/proxy", envJSON, err, d.URL)
	}
	if got, want := sess.env("CLAUDE_CONFIG_DIR"), filepath.Join(view.UnsandboxedHome, ".claude"); got != want {
		t.Errorf("CLAUDE_CONFIG_DIR in profiles env --json: got %q, want %q", got, want)
	}
	if envText := mustRun(t, e, "profiles", "env", "work"); !strings.Contains(envText, "export CLAUDE_CONFIG_DIR='"+filepath.Join(view.UnsandboxedHome, ".claude")+"'\n") {
		t.Errorf("profiles env: got %q, want it to export CLAUDE_CONFIG_DIR=%s/.claude", envText, view.UnsandboxedHome)
	}

	// Claude Code runs the settings' command through a shell.
	claude := []string{"/bin/sh", "-c", entry.Hooks[0].Command}
	direct := []string{ringletBin, "hook", "claude-pre-tool-use"}
	cases := []struct {
		name    string
		argv    []string
		command string
		code    int
	}{
		{"rm -rf via settings.json", claude, "rm -rf /tmp/x", 2},
		{"ls via settings.json", claude, "ls", 0},
		{"rm -rf", direct, "rm -rf /tmp/x", 2},
		{"ls", direct, "ls -la", 0},
		{"rm -rf with quotes and substitution", direct, `x=$(echo "rm -rf" '$HOME'); rm -rf "$x"`, 2},
	}
	for _, c := range cases {
		stderr, code := hkClaude(t, e, sess, hkEvent(c.command), c.argv...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d; stderr %q", c.name, code, c.code, stderr)
		}
		if c.code == 2 && strings.TrimSpace(stderr) == "" {
			t.Errorf("%s: stderr empty, want the reason Claude Code shows", c.name)
		}
		if c.code == 0 && stderr != "" {
			t.Errorf("%s: stderr %q, want empty", c.name, stderr)
		}
	}
	// What Claude Code sends that is not a tool call is blocked.
	for name, event := range map[string]string{
		"not JSON":     `{"tool_name":`,
		"no tool_name": `{"hook_event_name":"PreToolUse","tool_input":{}}`,
		"empty":        ``,
	} {
		if stderr, code := hkClaude(t, e, sess, event, direct...); code != 2 || stderr == "" {
			t.Errorf("event %s: exit %d, stderr %q; want 2 and a reason", name, code, stderr)
		}
	}

	// The audit log has both decisions, with the profile and session.
	var q struct {
		Records []struct {
			Kind, Profile, Session, Target, Decision string
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "hook.decision,tool.call", "--json")), &q); err != nil {
		t.Fatalf("audit query --json: %v", err)
	}
	seen := map[string]int{}
	for _, r := range q.Records {
		if r.Kind != "hook.decision" && r.Kind != "tool.call" {
			t.Errorf("audit query --kind hook.decision,tool.call: got a %s record", r.Kind)
		}
		if r.Profile == "work" && r.Session == sess.ID && r.Target == "Bash" {
			seen[r.Kind+" "+r.Decision]++
		}
	}
	for _, k := range []string{"hook.decision deny", "hook.decision allow", "tool.call deny", "tool.call allow"} {
		if seen[k] == 0 {
			t.Errorf("audit: no %s record for profile work, session %s, tool Bash; got %v", k, sess.ID, seen)
		}
	}

	// A revoked session cannot ask: blocked.
	mustRun(t, e, "sessions", "revoke", sess.ID)
	if stderr, code := hkClaude(t, e, sess, hkEvent("ls"), direct...); code != 2 || stderr == "" {
		t.Errorf("revoked session: exit %d, stderr %q; want 2 and a reason", code, stderr)
	}
	// A token that is not a session's: blocked.
	forged := sess
	forged.Token = "rlt_" + strings.Repeat("A", 43)
	if stderr, code := hkClaude(t, e, forged, hkEvent("ls"), direct...); code != 2 || stderr == "" {
		t.Errorf("unknown session token: exit %d, stderr %q; want 2 and a reason", code, stderr)
	}
	admin := sess
	admin.Token = e.Token()
	if stderr, code := hkClaude(t, e, admin, hkEvent("ls"), direct...); code != 2 || stderr == "" {
		t.Errorf("admin token instead of a session's: exit %d, stderr %q; want 2 and a reason", code, stderr)
	}

	// The daemon is gone: blocked.
	var live hkSession
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &live); err != nil {
		t.Fatal(err)
	}
	if _, code := hkClaude(t, e, live, hkEvent("ls"), direct...); code != 0 {
		t.Fatalf("new session: exit %d, want 0 while the daemon runs", code)
	}
	mustRun(t, e, "daemon", "stop")
	if code := d.Wait(); code != 0 {
		t.Errorf("daemon exit: got %d, want 0", code)
	}
	if stderr, code := hkClaude(t, e, live, hkEvent("ls"), claude...); code != 2 || !strings.Contains(stderr, "daemon") {
		t.Errorf("daemon stopped: exit %d, stderr %q; want 2 and a reason naming the daemon", code, stderr)
	}
	e.AssertNoSecret(key)
}

// hkHook is a hook as `hooks list --json` and `hooks export` print it.
type hkHook struct {
	ID        string `json:"id"`
	Profile   string `json:"profile"`
	Event     string `json:"event"`
	Shell     string `json:"shell"`
	Match     string `json:"match"`
	TimeoutNS int64  `json:"timeout_ns"`
}

func hkList(t *testing.T, e *env, profile string) []hkHook {
	t.Helper()
	out := mustRun(t, e, "hooks", "list", profile, "--json")
	var hooks []hkHook
	if err := json.Unmarshal([]byte(out), &hooks); err != nil {
		t.Fatalf("hooks list %s --json: got %q: %v", profile, out, err)
	}
	return hooks
}

// TestHooksRoundTrip lists, exports, imports and removes hooks with the
// CLI, and checks what it refuses.
func TestHooksRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	for _, p := range []string{"work", "other"} {
		mustRun(t, e, "profiles", "create", "claude", p, "--provider", "local", "--skip-key")
	}
	if hooks := hkList(t, e, "work"); hooks == nil || len(hooks) != 0 {
		t.Errorf("hooks list of a profile without hooks: got %#v, want []", hooks)
	}
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--shell", hkGuard)
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^(Write|Edit)$", "--shell", "./check.sh", "--timeout", "5s")

	work := hkList(t, e, "work")
	if len(work) != 2 || work[0].Shell != hkGuard || work[1].Match != "^(Write|Edit)$" || work[1].TimeoutNS != 5e9 || work[0].TimeoutNS != 10e9 {
		t.Fatalf("hooks list work --json: got %+v, want the guard (10s) then ./check.sh on ^(Write|Edit)$ (5s)", work)
	}
	table := mustRun(t, e, "hooks", "list", "work")
	for _, want := range []string{work[0].ID, work[1].ID, "^(Write|Edit)$", "5s", "./check.sh"} {
		if !strings.Contains(table, want) {
			t.Errorf("hooks list work: got %q, want it to show %q", table, want)
		}
	}

	exported := mustRun(t, e, "hooks", "export", "work")
	file := filepath.Join(e.Root, "hooks.json")
	if err := os.WriteFile(file, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, e, "hooks", "import", "other", file); !strings.Contains(out, "imported 2 hook(s) into profile other") {
		t.Errorf("hooks import: got %q, want 2 imported", out)
	}
	other := hkList(t, e, "other")
	if len(other) != 2 {
		t.Fatalf("hooks list other: got %+v, want the 2 imported", other)
	}
	for i := range other {
		w, o := work[i], other[i]
		if o.Profile != "other" || o.ID == w.ID || o.Shell != w.Shell || o.Match != w.Match || o.Event != w.Event || o.TimeoutNS != w.TimeoutNS {
			t.Errorf("imported hook %d: got %+v, want %+v with profile other and a new id", i, o, w)
		}
	}
	// From stdin, too.
	if _, stderr, code := e.RunInput(exported, "hooks", "import", "other", "-"); code != 0 {
		t.Errorf("hooks import other - : exit %d, stderr %q", code, stderr)
	}
	if got := len(hkList(t, e, "other")); got != 4 {
		t.Errorf("hooks after a second import: got %d, want 4", got)
	}

	if out := mustRun(t, e, "hooks", "remove", "work", work[0].ID); !strings.Contains(out, work[0].ID) {
		t.Errorf("hooks remove: got %q, want it to name %s", out, work[0].ID)
	}
	if got := hkList(t, e, "work"); len(got) != 1 || got[0].ID != work[1].ID {
		t.Errorf("hooks list after remove: got %+v, want only %s", got, work[1].ID)
	}

	badFile := filepath.Join(e.Root, "bad.json")
	for name, content := range map[string]string{
		"invalid hook":  `[{"event":"pre-tool-use","shell":"true"},{"event":"pre-tool-use","shell":"true","match":"("}]`,
		"unknown field": `[{"event":"pre-tool-use","shell":"true","run_as":"root"}]`,
		"not an array":  `{"hooks":[]}`,
	} {
		if err := os.WriteFile(badFile, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, stderr, code := e.Run("hooks", "import", "work", badFile); code != 1 || !strings.HasPrefix(stderr, "ringlet: ") {
			t.Errorf("hooks import of %s: exit %d, stderr %q; want 1 and one ringlet: line", name, code, stderr)
		}
	}
	if got := len(hkList(t, e, "work")); got != 1 {
		t.Errorf("hooks after refused imports: got %d, want 1 (all or none)", got)
	}

	cases := []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"unknown event", []string{"hooks", "add", "work", "--on", "bogus", "--shell", "true"}, 2, "invalid event"},
		{"invalid match", []string{"hooks", "add", "work", "--on", "pre-tool-use", "--match", "(", "--shell", "true"}, 2, "--match"},
		{"missing --shell", []string{"hooks", "add", "work", "--on", "pre-tool-use"}, 2, "--shell"},
		{"missing --on", []string{"hooks", "add", "work", "--shell", "true"}, 2, "--on"},
		{"empty --shell", []string{"hooks", "add", "work", "--on", "pre-tool-use", "--shell", " "}, 2, "empty"},
		{"bad --timeout", []string{"hooks", "add", "work", "--on", "pre-tool-use", "--shell", "true", "--timeout", "soon"}, 2, "--timeout"},
		{"timeout out of bounds", []string{"hooks", "add", "work", "--on", "pre-tool-use", "--shell", "true", "--timeout", "1h"}, 2, "timeout"},
		{"timeout zero", []string{"hooks", "add", "work", "--on", "pre-tool-use", "--shell", "true", "--timeout", "0"}, 2, "timeout"},
		{"invalid profile name", []string{"hooks", "add", "Work!", "--on", "pre-tool-use", "--shell", "true"}, 2, "invalid profile name"},
		{"no profile", []string{"hooks", "add", "--on", "pre-tool-use", "--shell", "true"}, 2, "PROFILE"},
		{"unknown profile", []string{"hooks", "add", "nobody", "--on", "pre-tool-use", "--shell", "true"}, 1, `no profile "nobody"`},
		{"list unknown profile", []string{"hooks", "list", "nobody"}, 1, `no profile "nobody"`},
		{"remove unknown hook", []string{"hooks", "remove", "work", "h_00000000"}, 1, "h_00000000"},
		{"import missing file", []string{"hooks", "import", "work", filepath.Join(e.Root, "missing.json")}, 1, "missing.json"},
	}
	for _, c := range cases {
		stdout, stderr, code := e.Run(c.args...)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d; stderr %q", c.name, code, c.code, stderr)
		}
		if lines := lines(stderr); len(lines) != 1 || !strings.HasPrefix(lines[0], "ringlet: ") || !strings.Contains(lines[0], c.want) {
			t.Errorf("%s: stderr %q, want one line starting ringlet: that mentions %q", c.name, stderr, c.want)
		}
		if stdout != "" {
			t.Errorf("%s: stdout %q, want empty", c.name, stdout)
		}
	}
	if got := hkList(t, e, "work"); len(got) != 1 || !slices.ContainsFunc(got, func(h hkHook) bool { return h.ID == work[1].ID }) {
		t.Errorf("hooks after refused commands: got %+v, want only %s", got, work[1].ID)
	}
}

// TestHooksClaudeCodePostToolUse: the profile's Claude Code settings also
// run `ringlet hook claude-post-tool-use` on every result; a post-tool-use
// hook sees the result and its refusal reaches Claude Code as exit 2 with
// the reason (the tool has run: Claude Code shows the reason to the
// model).
func TestHooksClaudeCodePostToolUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	if out, stderr, code := e.RunInput("sk-ant-post-canary-77a1", "profiles", "create", "claude", "work", "--provider", "local"); code != 0 {
		t.Fatalf("profiles create: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	mustRun(t, e, "hooks", "add", "work", "--on", "post-tool-use", "--match", "^Bash$",
		"--shell", `grep -q 'BEGIN PRIVATE KEY' || exit 0; echo "the output holds a private key" >&2; exit 1`)
	var view struct{ Home string }
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "inspect", "work", "--json")), &view); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(view.Home, ".claude", "settings.json"))
	if err != nil {
		t.Fatal(err)
	}
	var settings struct {
		Hooks struct {
			PostToolUse []struct {
				Matcher string
				Hooks   []struct{ Command string }
			}
		}
	}
	if err := json.Unmarshal(data, &settings); err != nil || len(settings.Hooks.PostToolUse) != 1 || len(settings.Hooks.PostToolUse[0].Hooks) != 1 {
		t.Fatalf("settings.json: got %s (%v), want one PostToolUse entry", data, err)
	}
	wantCmd := "'" + ringletBin + "' hook claude-post-tool-use || exit 2"
	if got := settings.Hooks.PostToolUse[0]; got.Matcher != "*" || got.Hooks[0].Command != wantCmd {
		t.Fatalf("PostToolUse entry: got %+v, want matcher * running %q", got, wantCmd)
	}
	var sess hkSession
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &sess); err != nil {
		t.Fatal(err)
	}
	event := func(tool, stdout string) string {
		resp, _ := json.Marshal(map[string]any{"stdout": stdout, "stderr": "", "interrupted": false})
		return `{"session_id":"x","hook_event_name":"PostToolUse","tool_name":"` + tool + `","tool_input":{"command":"cat key.pem"},"tool_response":` + string(resp) + `}`
	}
	claude := []string{"/bin/sh", "-c", wantCmd}
	for _, c := range []struct {
		name, tool, stdout string
		code               int
	}{
		{"a private key in Bash's output", "Bash", "-----BEGIN PRIVATE KEY-----\nMIIE...", 2},
		{"plain Bash output", "Bash", "hello", 0},
		{"a private key from another tool (no match)", "Read", "-----BEGIN PRIVATE KEY-----", 0},
		{"a 2 MiB result (past the JSON routes' 1 MiB)", "Read", strings.Repeat("x", 2<<20), 0},
		{"a 2 MiB result with a key, judged", "Bash", strings.Repeat("x", 2<<20) + "BEGIN PRIVATE KEY", 2},
	} {
		stderr, code := hkClaude(t, e, sess, event(c.tool, c.stdout), claude...)
		if code != c.code || (c.code == 2) != strings.Contains(stderr, "the output holds a private key") {
			t.Errorf("%s: exit %d, stderr %q; want exit %d (and the hook's reason with 2)", c.name, code, stderr, c.code)
		}
	}
	var q struct {
		Records []struct {
			Decision string
			Detail   map[string]any
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "hook.decision", "--json")), &q); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range q.Records {
		got = append(got, fmt.Sprint(r.Detail["event"], " ", r.Decision))
	}
	if want := []string{"post-tool-use deny", "post-tool-use allow", "post-tool-use deny"}; !slices.Equal(got, want) {
		t.Errorf("hook.decision records (newest first): got %q, want %q", got, want)
	}
}
