package gateway

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/token"
)

// TestHookDenialExplained: a hook's refusal tells the agent and the audit
// log which hook (id and command), its exit code, its first line of
// stderr and how to change it, and neither sees the session's key or the
// admin token the hook printed.
func TestHookDenialExplained(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	// The hook can read the key and the token as any program of the
	// user's; here it prints both, after its own words.
	canary := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(canary, []byte("no rm here sk-ant-test-work and "+testToken+" url=%20"+strings.ToUpper(testToken)+"ab\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shell := `cat ` + canary + ` >&2; exit 3 # ` + strings.Repeat("x", maxShownCommand)
	h := w.addHook(t, "work", shell, "^Bash$")
	_, tok := w.session(t, "work")
	d := w.check(t, tok, "Bash", `{"command":"rm -rf x"}`)
	if d.Allow {
		t.Fatal("Allow: got true, want the hook's refusal")
	}
	for _, want := range []string{"no rm here [redacted] and [redacted] url=%20[redacted]ab", "hook " + h.ID, "(cat " + canary + " >&2; exit 3 # xxx", "exit 3", "profile work",
		"'ringlet hooks list work'", "'ringlet hooks test work --hook FILE'", "'ringlet hooks remove work " + h.ID + "'"} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("the agent's reason: got %q, want it to hold %q", d.Reason, want)
		}
	}
	if strings.Contains(d.Reason, "second line") || strings.Contains(d.Reason, "\n") {
		t.Errorf("the agent's reason: got %q, want one line, the first of stderr", d.Reason)
	}
	decisions := w.audit.kind(audit.KindHookDecision)
	last := decisions[len(decisions)-1]
	var detail map[string]any
	if err := json.Unmarshal(last.Detail, &detail); err != nil {
		t.Fatal(err)
	}
	if last.Status != 3 || detail["hook"] != h.ID || detail["reason"] != "no rm here [redacted] and [redacted] url=%20[redacted]ab" || !strings.HasPrefix(fmt.Sprint(detail["command"]), "cat "+canary) {
		t.Errorf("hook.decision: got status %d, detail %s; want exit 3, the hook's id, its command and the redacted first line", last.Status, last.Detail)
	}
	calls := w.audit.kind(audit.KindToolCall)
	if call := calls[len(calls)-1]; !strings.Contains(string(call.Detail), "'ringlet hooks remove work "+h.ID+"'") {
		t.Errorf("tool.call: got detail %s, want the explained reason", call.Detail)
	}
	w.audit.mu.Lock()
	defer w.audit.mu.Unlock()
	for _, r := range w.audit.recs {
		b, _ := json.Marshal(r)
		if strings.Contains(string(b), "sk-ant-test-work") || strings.Contains(strings.ToLower(string(b)), testToken) {
			t.Errorf("audit record %s holds the key or the admin token: %s", r.Kind, b)
		}
	}
	if w.s.hooks.o.MCPRedact == nil {
		t.Error("the hooks' scrub is not given the MCP servers' redactor")
	}
	if strings.Contains(d.Reason, shell) {
		t.Errorf("the agent's reason: got %q, want the command clipped to %d bytes", d.Reason, maxShownCommand)
	}
}

// TestRedactAdminToken: the admin token is found inside a longer run of
// hex digits and in upper case, back to back, and nothing else is taken.
func TestRedactAdminToken(t *testing.T) {
	t.Parallel()
	a := newAuthenticator(token.FromString(testToken))
	other := strings.Repeat("ab", 32)
	for in, want := range map[string]string{
		testToken:                                "[redacted]",
		"%20" + testToken:                        "%20[redacted]",
		"a" + strings.ToUpper(testToken) + "f0":  "a[redacted]f0",
		testToken + testToken:                    "[redacted][redacted]",
		"x" + other + " " + testToken[:63] + "y": "x" + other + " " + testToken[:63] + "y",
		other + testToken + other:                other + "[redacted]" + other,
	} {
		if got := redactAdminToken(a, in); got != want {
			t.Errorf("redactAdminToken(%q): got %q, want %q", in, got, want)
		}
	}
}
