package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// claudeOffline keeps Claude Code from calling home; the fake is the only
// server it may reach.
var claudeOffline = []string{"DISABLE_TELEMETRY=1", "DISABLE_AUTOUPDATER=1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1"}

// sessionRecord is an audit record as `audit query --json` prints it.
type sessionRecord struct {
	Seq      int64          `json:"seq"`
	Kind     string         `json:"kind"`
	Profile  string         `json:"profile"`
	Session  string         `json:"session"`
	Target   string         `json:"target"`
	Decision string         `json:"decision"`
	Status   int64          `json:"status"`
	Detail   map[string]any `json:"detail"`
}

// auditOf lists a profile's records of kinds (comma-separated), oldest
// first.
func auditOf(t *testing.T, e *env, profile, kinds string) []sessionRecord {
	t.Helper()
	out := mustRun(t, e, "audit", "query", "--kind", kinds, "--profile", profile, "--limit", "1000", "--json")
	var page struct {
		Records []sessionRecord `json:"records"`
	}
	if err := json.Unmarshal([]byte(out), &page); err != nil {
		t.Fatalf("audit query --json: %v; got %.300q", err, out)
	}
	sort.Slice(page.Records, func(i, j int) bool { return page.Records[i].Seq < page.Records[j].Seq })
	return page.Records
}

// ofKind picks the records of one kind.
func ofKind(recs []sessionRecord, kind string) []sessionRecord {
	var out []sessionRecord
	for _, r := range recs {
		if r.Kind == kind {
			out = append(out, r)
		}
	}
	return out
}

// toolResult is the tool_result block Claude Code sends back after a
// tool_use.
type toolResult struct {
	IsError bool
	Text    string
}

// toolResultOf finds the tool_result in the last message of a Messages
// request body.
func toolResultOf(body []byte) (toolResult, bool) {
	var req struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.Messages) == 0 {
		return toolResult{}, false
	}
	var blocks []struct {
		Type    string          `json:"type"`
		IsError bool            `json:"is_error"`
		Content json.RawMessage `json:"content"`
	}
	if json.Unmarshal(req.Messages[len(req.Messages)-1].Content, &blocks) != nil {
		return toolResult{}, false
	}
	for _, b := range blocks {
		if b.Type != "tool_result" {
			continue
		}
		// The content is a string or a list of text blocks.
		var text string
		if json.Unmarshal(b.Content, &text) != nil {
			var parts []struct {
				Text string `json:"text"`
			}
			json.Unmarshal(b.Content, &parts)
			for _, p := range parts {
				text += p.Text
			}
		}
		return toolResult{IsError: b.IsError, Text: text}, true
	}
	return toolResult{}, false
}

// toolRoundTrip checks that the fake answered the prompt with its
// tool_use and then got the tool's result back, and returns that result.
func toolRoundTrip(t *testing.T, fake *fakeprovider.Provider, res claudeResult) toolResult {
	t.Helper()
	var msgs []fakeprovider.Request
	for _, r := range fake.Requests() {
		if r.Path == "/v1/messages" {
			msgs = append(msgs, r)
		}
	}
	if res.IsError || res.NumTurns != 2 || len(msgs) != 2 {
		t.Fatalf("claude: got %+v and %d Messages requests; want success in 2 turns: the tool_use, then its result", res, len(msgs))
	}
	tr, ok := toolResultOf(msgs[1].Body)
	if !ok {
		t.Fatalf("second Messages request: got no tool_result; body %.800s", msgs[1].Body)
	}
	return tr
}

// addHook adds a pre-tool-use hook with `hooks add` and returns its id.
func addHook(t *testing.T, e *env, profile, shell string) string {
	t.Helper()
	out := mustRun(t, e, "hooks", "add", profile, "--on", "pre-tool-use", "--shell", shell)
	f := strings.Fields(out)
	if len(f) < 3 || !strings.HasPrefix(f[2], "h_") {
		t.Fatalf("hooks add: got %q, want 'added hook h_… to profile %s'", out, profile)
	}
	return f[2]
}

// checkToolAudit checks the records of a session's one tool call: the
// hook's decision and the outcome, both for the Bash tool. It returns the
// reason of the outcome.
func checkToolAudit(t *testing.T, e *env, profile, session, hookID, decision string) string {
	t.Helper()
	recs := auditOf(t, e, profile, "hook.decision,tool.call")
	hooks, calls := ofKind(recs, "hook.decision"), ofKind(recs, "tool.call")
	if len(hooks) != 1 || len(calls) != 1 {
		t.Fatalf("audit: got %d hook.decision and %d tool.call records, want 1 and 1: %+v", len(hooks), len(calls), recs)
	}
	h, c := hooks[0], calls[0]
	if h.Session != session || h.Target != "Bash" || h.Decision != decision || h.Detail["hook"] != hookID {
		t.Errorf("hook.decision: got session %s, tool %q, %s, hook %v; want %s, Bash, %s, %s", h.Session, h.Target, h.Decision, h.Detail["hook"], session, decision, hookID)
	}
	if c.Session != session || c.Target != "Bash" || c.Decision != decision || c.Detail["via"] != "agent" {
		t.Errorf("tool.call: got session %s, tool %q, %s, via %v; want %s, Bash, %s, agent", c.Session, c.Target, c.Decision, c.Detail["via"], session, decision)
	}
	reason, _ := c.Detail["reason"].(string)
	return reason
}

// TestClaudeCodeHooks runs the real Claude Code with nothing but the
// variables `profiles env` prints, a HOME of its own (so no ~/.claude is
// read) and flags that allow `touch` without a prompt. The fake answers
// with a Bash tool_use that would create a marker file. Ringlet's
// PreToolUse hook in the profile's CLAUDE_CONFIG_DIR must ask the daemon,
// which runs the profile's `hooks add` hooks: a refusing hook keeps the
// file from being created and its reason reaches the model; an allowing
// hook lets the command run; a daemon that cannot be asked, or a ringlet
// binary that cannot run, blocks.
func TestClaudeCodeHooks(t *testing.T) {
	t.Parallel()
	requireNode(t)
	claudeBin(t)
	cases := []struct {
		name string
		hook string   // the shell of the profile's pre-tool-use hook
		env  []string // added to Claude Code's environment
		// moveRinglet makes the hook command in settings.json name a
		// ringlet binary that is not there, as after an upgrade that
		// moved it.
		moveRinglet bool
		wantCreated bool
		// wantAudit is the decision of the audited tool call; "" when
		// the daemon is never asked.
		wantAudit string
		// wantReason is in the error Claude Code sends back as the tool
		// result; for an audited refusal it is the audited reason.
		wantReason string
	}{
		{name: "a refusing hook blocks", hook: `echo "$RINGLET_TOOL_INPUT" | grep -qv touch`, wantAudit: "deny"},
		{name: "an allowing hook lets it run", hook: "true", wantCreated: true, wantAudit: "allow"},
		{name: "an unreachable daemon blocks", hook: "true", env: []string{"RINGLET_HOOK_URL=http://127.0.0.1:" + strconv.Itoa(freePort(t))},
			wantReason: "ringlet: blocked: could not reach the Ringlet daemon"},
		// The shell's message for the missing binary varies (dash: not
		// found; bash: No such file or directory).
		{name: "a missing ringlet binary blocks", hook: "true", moveRinglet: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newProxyWorld(t)
			key := w.newProfile("claude", "cc", "fake", "--model", "claude-sonnet-4-5")
			hookID := addHook(t, w.e, "cc", c.hook)
			s := w.startSession("cc")
			settings := filepath.Join(s.Env()["CLAUDE_CONFIG_DIR"], "settings.json")
			data, err := os.ReadFile(settings)
			quoted := "'" + ringletBin + "'"
			if err != nil || !strings.Contains(string(data), quoted+" hook claude-pre-tool-use") {
				t.Fatalf("settings.json in CLAUDE_CONFIG_DIR: got %q (%v), want a PreToolUse hook running %s hook claude-pre-tool-use", data, err, quoted)
			}
			if c.moveRinglet {
				data = []byte(strings.ReplaceAll(string(data), quoted, "'"+ringletBin+".moved'"))
				if err := os.WriteFile(settings, data, 0o600); err != nil {
					t.Fatal(err)
				}
			}

			work := t.TempDir()
			marker := filepath.Join(work, "marker")
			cmd := "touch " + marker
			w.fake.ToolUse.Store(&cmd)
			cenv := clientEnv(t, s, t.TempDir(), key, slices.Concat(claudeOffline, c.env)...)
			// Without --allowedTools, -p mode refuses the command for want
			// of a prompt; Claude Code runs PreToolUse hooks before that
			// check either way. It refuses to skip permissions as root.
			start := time.Now()
			res := runClaude(t, work, cenv, "-p", "create the marker", "--output-format", "json", "--allowedTools", "Bash(touch:*)")
			t.Logf("claude -p with a tool call took %s", time.Since(start).Round(time.Millisecond))

			_, err = os.Stat(marker)
			if created := err == nil; created != c.wantCreated {
				t.Errorf("the tool's marker file exists: got %v, want %v", created, c.wantCreated)
			}
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("stat marker: %v", err)
			}
			tr := toolRoundTrip(t, w.fake, res)
			if c.wantAudit == "" {
				if recs := auditOf(t, w.e, "cc", "hook.decision,tool.call"); len(recs) != 0 {
					t.Errorf("audit: got %+v, want no hook.decision or tool.call: the daemon was never asked", recs)
				}
			} else {
				reason := checkToolAudit(t, w.e, "cc", s.ID, hookID, c.wantAudit)
				if c.wantAudit == "deny" {
					if want := fmt.Sprintf("hook %s refused the call (exit 1) [refused by Ringlet hook %s (", hookID, hookID); !strings.HasPrefix(reason, want) {
						t.Errorf("audited reason: got %q, want it to begin with %q", reason, want)
					}
					c.wantReason = reason
				}
			}
			switch {
			case c.wantCreated && tr.IsError:
				t.Errorf("tool_result: got the error %q, want the command's result", tr.Text)
			case !c.wantCreated && (!tr.IsError || !strings.Contains(tr.Text, c.wantReason)):
				t.Errorf("tool_result: got %+v, want is_error with %q", tr, c.wantReason)
			}
			w.assertTokenNeverUpstream(t, s.Token)
			w.assertNoKeyLeak(t, key)
		})
	}
}

// runClaude runs test/node's Claude Code in dir with env, and decodes its
// --output-format json result.
func runClaude(t *testing.T, dir string, env []string, args ...string) claudeResult {
	t.Helper()
	out := runClientIn(t, dir, env, 60*time.Second, claudeBin(t), args...)
	var res claudeResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("claude --output-format json: %v; got %q", err, out)
	}
	return res
}

// TestClaudeHookReinstalledAtSessionStart: a claude profile whose
// settings.json lost Ringlet's hook (a profile from before the hook, or a
// ringlet binary that moved) gets it back when a session starts; one whose
// .claude was replaced by a symlink is refused a session rather than left
// unguarded or written through the link.
func TestClaudeHookReinstalledAtSessionStart(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("claude", "cc", "fake")
	home := w.unsandboxedHome("cc")
	settings := filepath.Join(home, ".claude", "settings.json")
	if err := os.WriteFile(settings, []byte(`{"model": "claude-sonnet-4-5"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	w.startSession("cc")
	data, err := os.ReadFile(settings)
	if err != nil || !strings.Contains(string(data), "hook claude-pre-tool-use || exit 2") || !strings.Contains(string(data), `"model": "claude-sonnet-4-5"`) {
		t.Errorf("settings.json after a session start: got %s (%v), want Ringlet's hook back and the user's model kept", data, err)
	}

	elsewhere := t.TempDir()
	if err := os.RemoveAll(filepath.Join(home, ".claude")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(home, ".claude")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := w.e.Run("profiles", "env", "cc"); code == 0 || !strings.Contains(stderr, "symbolic link") {
		t.Errorf("profiles env with .claude a symlink: exit %d, stderr %q; want a refusal naming the symlink", code, stderr)
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the symlink's target got %d entries, want none", len(entries))
	}
}
