package gateway

import (
	"strings"
	"testing"

	"github.com/neullabs/ringlet/audit"
)

// TestAmbiguousBodiesRefused: a JSON body two readers could read
// differently is refused before anything acts on it. The hook check of
// Claude Code's adapter is the case that matters: a hook must judge the
// same tool input the agent's tool runs with.
func TestAmbiguousBodiesRefused(t *testing.T) {
	t.Parallel()
	w := newHookWorld(t)
	w.addHook(t, "work", `grep -q EVIL && exit 1; exit 0`, "")
	_, tok := w.session(t, "work")
	for _, tc := range []struct {
		name, tok, method, path, body, msg string
	}{
		{"duplicate key in the tool input", tok, "POST", "/session/hooks/check", `{"tool_name":"Bash","tool_input":{"command":"ls","command":"EVIL"}}`, `the key "command" appears twice in tool_input`},
		{"keys differing in case in the tool input", tok, "POST", "/session/hooks/check", `{"tool_name":"Bash","tool_input":{"command":"ls","Command":"EVIL"}}`, "differ only in case"},
		{"duplicate deep in the tool input", tok, "POST", "/session/hooks/check", `{"tool_name":"Bash","tool_input":{"a":[{"b":1,"b":2}]}}`, "tool_input.a[0]"},
		{"two tool names", tok, "POST", "/session/hooks/check", `{"tool_name":"Read","tool_name":"Bash","tool_input":{}}`, `"tool_name" appears twice`},
		{"a field in another case", tok, "POST", "/session/hooks/check", `{"tool_name":"Read","Tool_Name":"Bash","tool_input":{}}`, "differ only in case"},
		{"unpaired surrogates in keys", tok, "POST", "/session/hooks/check", `{"tool_name":"Bash","tool_input":{"\ud800":1,"\udbff":2}}`, "not valid Unicode"},
		{"an admin body", testToken, "POST", "/api/hooks", `{"profile":"work","event":"pre-tool-use","shell":"true","shell":"false"}`, `"shell" appears twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(w.audit.kind(audit.KindHookDecision)) + len(w.audit.kind(audit.KindToolCall)) + len(w.audit.kind(audit.KindHookAdd))
			e := assertError(t, w.do(t, tc.tok, tc.method, tc.path, tc.body), 400, "bad_request")
			if !strings.Contains(e.Error.Message, tc.msg) {
				t.Errorf("message: got %q, want it to say %q", e.Error.Message, tc.msg)
			}
			if after := len(w.audit.kind(audit.KindHookDecision)) + len(w.audit.kind(audit.KindToolCall)) + len(w.audit.kind(audit.KindHookAdd)); after != before {
				t.Errorf("the refused body was acted on: %d new records", after-before)
			}
		})
	}
}
