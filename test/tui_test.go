package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// tuiWorld is a proxyWorld whose user has test/node's agents first on
// PATH, and a fresh workspace holding a file that the tests' agents are
// told to delete.
type tuiWorld struct {
	*proxyWorld
	work, victim string
}

func newTUIWorld(t *testing.T, bin string) *tuiWorld {
	t.Helper()
	requireTmux(t)
	requireBwrap(t)
	// Symbolic links resolved: `profiles run` binds the program's
	// directory into the sandbox, where a link in a parent directory
	// would not resolve.
	binDir, err := filepath.EvalSymlinks(filepath.Dir(bin))
	if err != nil {
		t.Fatal(err)
	}
	w := &tuiWorld{proxyWorld: newProxyWorld(t), work: t.TempDir()}
	w.e.ExtraEnv = append(w.e.ExtraEnv, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	w.victim = filepath.Join(w.work, "victim.txt")
	if err := os.WriteFile(w.victim, []byte("keep me\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// agentTerm starts the agent of profile alias the way a user does, in a
// terminal: `ringlet profiles run ALIAS`, or with remote, `ringlet
// profiles run ALIAS --remote` and then `ringlet terminal attach` in the
// terminal. It returns the terminal and the agent's session.
func (w *tuiWorld) agentTerm(t *testing.T, alias string, remote bool) (*tmuxTerm, string) {
	t.Helper()
	env := w.e.Environ()
	if !remote {
		m := startTmux(t, env, w.work, ringletBin, "profiles", "run", alias)
		// The session is the one that starts now.
		var id string
		m.WaitFor("a live session of "+alias, func(string) bool {
			id = liveSession(t, w.e, alias)
			return id != ""
		})
		return m, id
	}
	// What the user's terminal would give the daemon's pseudo-terminal.
	w.e.ExtraEnv = append(w.e.ExtraEnv, "TERM=xterm-256color")
	out := mustRun(t, w.e, "profiles", "run", alias, "--remote")
	m := regexp.MustCompile(`session (s_[0-9a-f]+) \(pid \d+\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("profiles run --remote: got %q, want the session and pid", out)
	}
	return startTmux(t, env, w.work, ringletBin, "terminal", "attach", m[1]), m[1]
}

// liveSession is the id of profile alias's one live session, "" while
// there is none.
func liveSession(t *testing.T, e *env, alias string) string {
	t.Helper()
	var list []struct {
		ID      string `json:"id"`
		Profile string `json:"profile"`
	}
	out := mustRun(t, e, "sessions", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("sessions list --json: %v; got %q", err, out)
	}
	for _, s := range list {
		if s.Profile == alias {
			return s.ID
		}
	}
	return ""
}

// agentExit waits for the end of session and returns the exit code it
// records for its agent. A remote agent's viewer may see it exit before
// the daemon records the session's end.
func agentExit(t *testing.T, e *env, alias, session string) string {
	t.Helper()
	var reason string
	if !waitFor(runTimeout, func() bool {
		for _, r := range auditOf(t, e, alias, "session.end") {
			if r.Session == session {
				reason, _ = r.Detail["reason"].(string)
				return true
			}
		}
		return false
	}) {
		t.Fatalf("audit: no session.end for %s within %s", session, runTimeout)
	}
	code, ok := strings.CutPrefix(reason, "agent exited with code ")
	if !ok {
		t.Fatalf("session.end of %s: got reason %q, want the agent's exit", session, reason)
	}
	return code
}

// claudePrompt is Claude Code's input box, empty and waiting: a rule, then
// the prompt sign. Its dialogs (onboarding, trust, which key to use) show
// no such box.
var claudePrompt = regexp.MustCompile(`(?m)^─{20,} *\n❯ *\n─{20,}`)

// claudeQuestions are what Claude Code asks on a first run that Ringlet
// has settled: its onboarding (which reaches api.anthropic.com), and
// whether to use a key it has not seen before.
var claudeQuestions = []string{"Welcome to Claude Code", "Unable to connect", "Do you want to use this API key", "trust this folder"}

// TestClaudeCodeTUI drives the real Claude Code's terminal UI in tmux on a
// fresh profile, in its sandbox, as a user does: started with `profiles
// run` (or `profiles run --remote` and `terminal attach`), it reaches its
// prompt with no first-run question, answers a question with the fake
// provider's text, shows the refusal of a pre-tool-use hook that keeps it
// from deleting a file, and exits with /exit; ringlet exits with the
// agent's exit code. A profile without --trust-workspace gets Claude
// Code's own trust question, whose default answer (No) makes it exit 1,
// and ringlet exit 1.
func TestClaudeCodeTUI(t *testing.T) {
	t.Parallel()
	requireNode(t)
	for _, remote := range []bool{false, true} {
		name := "profiles run"
		if remote {
			name = "profiles run --remote and terminal attach"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			t.Run("a turn, a refused tool call, /exit", func(t *testing.T) {
				t.Parallel()
				claudeTUISession(t, remote)
			})
			t.Run("an untrusted workspace asks, and No exits 1", func(t *testing.T) {
				t.Parallel()
				w := newTUIWorld(t, claudeBin(t))
				key := w.newProfile("claude", "tui", "fake", "--model", "claude-sonnet-4-5", "--workspace", w.work)
				m, id := w.agentTerm(t, "tui", remote)
				screen := m.WaitText("Yes, I trust this folder")
				for _, q := range claudeQuestions[:3] {
					if strings.Contains(screen, q) {
						t.Errorf("the terminal shows %q; want only the trust question:\n%s", q, screen)
					}
				}
				m.PressUntil("Enter", "Claude Code's exit", m.Exited) // No, exit: the default
				if got, want := m.ExitStatus(), 1; got != want {
					t.Errorf("ringlet's exit status: got %d, want Claude Code's %d\n%s", got, want, m.Screen())
				}
				if got := agentExit(t, w.e, "tui", id); got != "1" {
					t.Errorf("audited exit code of the agent: got %s, want 1", got)
				}
				assertNoKey(t, "the terminal", []byte(m.Screen()), key)
				w.assertNoKeyLeak(t, key)
			})
		})
	}
}

func claudeTUISession(t *testing.T, remote bool) {
	w := newTUIWorld(t, claudeBin(t))
	key := w.newProfile("claude", "tui", "fake", "--model", "claude-sonnet-4-5", "--workspace", w.work, "--trust-workspace")
	hookID := addHook(t, w.e, "tui", `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm "`)
	m, id := w.agentTerm(t, "tui", remote)

	screen := m.WaitMatch(claudePrompt)
	for _, q := range claudeQuestions {
		if strings.Contains(screen, q) {
			t.Errorf("the terminal shows %q; want Claude Code's prompt and no first-run question:\n%s", q, screen)
		}
	}

	m.Type("say hi")
	m.WaitText("❯ say hi")
	m.Keys("Enter")
	m.WaitText(fakeprovider.AnswerText(fakeprovider.DefaultTextEvents))

	cmd := "rm victim.txt"
	w.fake.ToolUse.Store(&cmd)
	m.Type("delete victim.txt")
	m.WaitText("❯ delete victim.txt")
	m.Keys("Enter")
	m.WaitText("hook " + hookID + " refused the call")
	// The refusal went back to the model as the tool's result.
	if _, ok := w.fake.WaitFor(t.Context(), func(reqs []fakeprovider.Request) bool {
		for _, r := range reqs {
			if tr, ok := toolResultOf(r.Body); ok && tr.IsError && strings.Contains(tr.Text, "refused the call") {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatal("the provider got no tool_result with the refusal")
	}
	if _, err := os.Stat(w.victim); err != nil {
		t.Errorf("the file the refused call would delete: %v; want it kept", err)
	}
	refusalShown(t, w.fake, m, checkToolAudit(t, w.e, "tui", id, hookID, "deny"))

	m.Type("/exit")
	m.WaitText("❯ /exit")
	m.Keys("Enter")
	status := m.ExitStatus()
	if status != 0 {
		t.Errorf("ringlet's exit status: got %d, want Claude Code's 0 after /exit\n%s", status, m.Screen())
	}
	if got := agentExit(t, w.e, "tui", id); got != "0" {
		t.Errorf("audited exit code of the agent: got %s, want 0", got)
	}

	// What Ringlet wrote in the agent's HOME: onboarding done, the
	// workspace trusted; no key.
	data, err := os.ReadFile(filepath.Join(w.profileHome("tui"), ".claude", ".claude.json"))
	if err != nil || !strings.Contains(string(data), `"hasCompletedOnboarding": true`) {
		t.Errorf(".claude.json in the profile's HOME: got %.300q (%v), want hasCompletedOnboarding", data, err)
	}
	assertNoKey(t, "the terminal", []byte(m.Screen()), key)
	w.assertNoKeyLeak(t, key)
}

// codexQuestions are what Codex asks that Ringlet has settled: its login,
// and (for a --trust-workspace profile) whether the workspace is trusted.
var codexQuestions = []string{"Sign in with ChatGPT", "API key", "Trust this folder"}

// TestCodexTUI drives the real Codex CLI's terminal UI in tmux on a fresh
// profile whose workspace is a git repository, in its sandbox: started
// with `profiles run` (or `--remote` and `terminal attach`) it reaches its
// prompt with no login and, with --trust-workspace, no trust question,
// answers with the fake provider's text over the Responses API, and
// /quit ends ringlet with Codex's exit code. Without --trust-workspace,
// Codex asks.
func TestCodexTUI(t *testing.T) {
	t.Parallel()
	requireNode(t)
	for _, remote := range []bool{false, true} {
		name := "profiles run"
		if remote {
			name = "profiles run --remote and terminal attach"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newCodexTUIWorld(t)
			key := w.newProfile("codex", "cxtui", "fakeoa", "--model", "ringlet-e2e", "--workspace", w.work, "--trust-workspace")
			hookID := addHook(t, w.e, "cxtui", `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm "`)
			m, id := w.agentTerm(t, "cxtui", remote)
			screen := m.WaitText("Ask Codex to do anything")
			for _, q := range codexQuestions {
				if strings.Contains(screen, q) {
					t.Errorf("the terminal shows %q; want Codex's prompt and no question:\n%s", q, screen)
				}
			}
			m.Type("say hi")
			m.WaitText("› say hi")
			m.Keys("Enter")
			screen = m.WaitText(fakeprovider.AnswerText(fakeprovider.DefaultTextEvents))
			for _, q := range codexQuestions {
				if strings.Contains(screen, q) {
					t.Errorf("the terminal shows %q after the answer; want no question:\n%s", q, screen)
				}
			}
			reqs := w.fake.Requests()
			if len(reqs) == 0 || len(requestsWithKey(reqs, key)) != len(reqs) {
				t.Errorf("the provider got %d requests, %d of them with the profile's key; want all with it", len(reqs), len(requestsWithKey(reqs, key)))
			}
			for _, r := range reqs {
				if r.Path != "/v1/responses" {
					t.Errorf("%s %s: want only the Responses API", r.Method, r.Path)
				}
			}
			codexToolCalls(t, w, m, id, hookID)

			m.Type("/quit")
			m.WaitText("› /quit")
			m.PressUntil("Enter", "Codex's exit", m.Exited)
			if got := m.ExitStatus(); got != 0 {
				t.Errorf("ringlet's exit status: got %d, want Codex's 0 after /quit\n%s", got, m.Screen())
			}
			if got := agentExit(t, w.e, "cxtui", id); got != "0" {
				t.Errorf("audited exit code of the agent: got %s, want 0", got)
			}
			assertNoKey(t, "the terminal", []byte(m.Screen()), key)
			w.assertNoKeyLeak(t, key)
		})
	}
	t.Run("an untrusted workspace asks", func(t *testing.T) {
		t.Parallel()
		w := newCodexTUIWorld(t)
		key := w.newProfile("codex", "cxtui", "fakeoa", "--model", "ringlet-e2e", "--workspace", w.work)
		m, _ := w.agentTerm(t, "cxtui", false)
		screen := m.WaitText("Trust this folder")
		for _, q := range codexQuestions[:2] {
			if strings.Contains(screen, q) {
				t.Errorf("the terminal shows %q; want only the trust question:\n%s", q, screen)
			}
		}
		m.PressUntil("Enter", "Codex's prompt", func(s string) bool { return strings.Contains(s, "Ask Codex to do anything") })
		m.Type("/quit")
		m.WaitText("› /quit")
		m.PressUntil("Enter", "Codex's exit", m.Exited)
		if got := m.ExitStatus(); got != 0 {
			t.Errorf("ringlet's exit status: got %d, want 0\n%s", got, m.Screen())
		}
		w.assertNoKeyLeak(t, key)
	})
}

// codexToolCalls has Codex, at its prompt in m, run two shell commands
// the fake provider asks for. The first deletes the victim file, which
// hook hookID refuses: Ringlet's adapter, Codex's own PreToolUse hook,
// blocks it, Codex shows the reason, the file stays, and the audit log
// has the refusal. The second creates a file, which the hook allows:
// Codex's shell tool works in Ringlet's sandbox, whose boundary replaces
// Codex's own sandbox (which cannot nest in it).
func codexToolCalls(t *testing.T, w *tuiWorld, m *tmuxTerm, session, hookID string) {
	t.Helper()
	cmd := "rm victim.txt"
	w.fake.ToolUse.Store(&cmd)
	m.Type("delete victim.txt")
	m.WaitText("› delete victim.txt")
	m.Keys("Enter")
	m.WaitText("hook " + hookID + " refused the call")
	// The refusal went back to the model as the command's output.
	if _, ok := w.fake.WaitFor(t.Context(), func(reqs []fakeprovider.Request) bool {
		for _, r := range reqs {
			if strings.Contains(string(r.Body), `"function_call_output"`) && strings.Contains(string(r.Body), "refused the call") {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("the provider got no function_call_output with the refusal\n%s", m.Screen())
	}
	if _, err := os.Stat(w.victim); err != nil {
		t.Errorf("the file the refused call would delete: %v; want it kept", err)
	}
	refusalShown(t, w.fake, m, checkToolAudit(t, w.e, "cxtui", session, hookID, "deny"))

	made := filepath.Join(w.work, "made-by-codex")
	cmd = "touch made-by-codex"
	w.fake.ToolUse.Store(&cmd)
	m.Type("make a file")
	m.WaitText("› make a file")
	m.Keys("Enter")
	m.WaitFor("the command's file in the workspace", func(string) bool {
		_, err := os.Stat(made)
		return err == nil
	})
	w.fake.ToolUse.Store(nil)
}

// newCodexTUIWorld is a tuiWorld for Codex, whose workspace is a git
// repository: Codex asks about trust only in one.
func newCodexTUIWorld(t *testing.T) *tuiWorld {
	t.Helper()
	w := newTUIWorld(t, nodeBin(t, "codex"))
	if out, err := exec.Command("git", "init", "-q", w.work).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	return w
}

// TestOpenCodeTUI drives the real OpenCode's terminal UI in tmux on a
// fresh profile, in its sandbox: started with `profiles run` (or
// `--remote` and `terminal attach`) it reaches its prompt, answers with
// the fake provider's text through Ringlet's proxy (Anthropic Messages,
// the profile's model, the key added by the daemon), shows the refusal
// of a pre-tool-use hook that keeps its bash tool from deleting a file
// (openCodeToolCall), and /exit ends ringlet with OpenCode's exit code.
func TestOpenCodeTUI(t *testing.T) {
	t.Parallel()
	requireNode(t)
	for _, remote := range []bool{false, true} {
		name := "profiles run"
		if remote {
			name = "profiles run --remote and terminal attach"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newTUIWorld(t, nodeBin(t, "opencode"))
			key := w.newProfile("opencode", "octui", "fake", "--model", "claude-sonnet-4-5", "--workspace", w.work)
			hookID := addHook(t, w.e, "octui", `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm "`)
			m, id := w.agentTerm(t, "octui", remote)
			m.WaitText("Ask anything")
			m.Type("say hi")
			m.WaitMatch(regexp.MustCompile(`┃\s+say hi`))
			m.Keys("Enter")
			m.WaitText(fakeprovider.Delta(0))
			reqs := w.fake.Requests()
			var asked bool
			for _, r := range reqs {
				var body struct {
					Model string `json:"model"`
				}
				if r.Path != "/v1/messages" || r.Key != key || json.Unmarshal(r.Body, &body) != nil {
					t.Errorf("%s %s: want Anthropic Messages with the profile's key", r.Method, r.Path)
				}
				asked = asked || body.Model == "claude-sonnet-4-5"
			}
			if !asked {
				t.Errorf("the provider got %d requests, none for the profile's model claude-sonnet-4-5", len(reqs))
			}
			openCodeToolCall(t, w, m, id, hookID)

			m.Type("/exit")
			m.WaitMatch(regexp.MustCompile(`┃\s+/exit`))
			m.PressUntil("Enter", "OpenCode's exit", m.Exited)
			if got := m.ExitStatus(); got != 0 {
				t.Errorf("ringlet's exit status: got %d, want OpenCode's 0 after /exit\n%s", got, m.Screen())
			}
			if got := agentExit(t, w.e, "octui", id); got != "0" {
				t.Errorf("audited exit code of the agent: got %s, want 0", got)
			}
			assertNoKey(t, "the terminal", []byte(m.Screen()), key)
			w.assertNoKeyLeak(t, key)
		})
	}
}

// openCodeToolCall has OpenCode, at its prompt in m, run the shell
// command the fake provider asks for, which deletes the victim file and
// which hook hookID refuses: Ringlet's plugin in OpenCode blocks it, the
// reason goes back to the model as the tool's error, the file stays, and
// the audit log has the refusal.
func openCodeToolCall(t *testing.T, w *tuiWorld, m *tmuxTerm, session, hookID string) {
	t.Helper()
	cmd := "rm victim.txt"
	w.fake.ToolUse.Store(&cmd)
	defer w.fake.ToolUse.Store(nil)
	m.Type("delete victim.txt")
	m.WaitMatch(regexp.MustCompile(`┃\s+delete victim.txt`))
	m.Keys("Enter")
	// OpenCode's terminal shows a failed shell call as its command; the
	// error (Ringlet's reason) goes to the model as the tool's result.
	m.WaitText("$ rm victim.txt")
	reason := fmt.Sprintf("hook %s refused the call (exit 1)", hookID)
	ctx, cancel := context.WithTimeout(t.Context(), tuiTimeout)
	defer cancel()
	var tr toolResult
	if _, ok := w.fake.WaitFor(ctx, func(reqs []fakeprovider.Request) bool {
		for _, r := range reqs {
			var ok bool
			if tr, ok = toolResultOf(r.Body); ok {
				return true
			}
		}
		return false
	}); !ok {
		t.Fatalf("the provider got no tool_result within %s\n%s", tuiTimeout, m.Screen())
	}
	if !tr.IsError || !strings.Contains(tr.Text, reason) {
		t.Errorf("tool_result: got %+v, want is_error with %q", tr, reason)
	}
	if _, err := os.Stat(w.victim); err != nil {
		t.Errorf("the file the refused call would delete: %v; want it kept", err)
	}
	got := checkToolAudit(t, w.e, "octui", session, hookID, "deny")
	if !strings.HasPrefix(got, reason+" [") {
		t.Errorf("audited reason: got %q, want it to begin with %q and explain the hook", got, reason)
	}
	// OpenCode's terminal shows the failed command, not its error.
	refusalShown(t, w.fake, nil, got)
}

// refusalShown checks where a hook's refusal, as audited (reason), went:
// its first part ("hook ID refused the call (exit N)") is on the agent's
// terminal, and the whole of it, with the hook's command and how to
// change it, reached the model as the tool's result. (A terminal wraps
// or clips the long explanation as it likes.) m is nil for an agent
// whose terminal does not show a refused call's error.
func refusalShown(t *testing.T, fake *fakeprovider.Provider, m *tmuxTerm, reason string) {
	t.Helper()
	first, _, explained := strings.Cut(reason, " [")
	if !explained {
		t.Errorf("audited reason %q: want the hook's explanation in brackets after its first part", reason)
	}
	if m != nil && !strings.Contains(m.Screen(), first) {
		t.Errorf("the terminal does not show the refusal %q:\n%s", first, m.Screen())
	}
	var q bytes.Buffer
	enc := json.NewEncoder(&q)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(reason) // a string always encodes
	want := bytes.TrimSuffix(bytes.TrimSpace(q.Bytes()), []byte(`"`))[1:]
	if !slices.ContainsFunc(fake.Requests(), func(r fakeprovider.Request) bool { return bytes.Contains(r.Body, want) }) {
		t.Errorf("no request to the provider carries the audited reason %q as the tool's result", reason)
	}
}
