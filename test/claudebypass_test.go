package test

import (
	"strings"
	"testing"
)

// TestClaudeCodeBuiltinToolsChecked: the real Claude Code's PreToolUse
// check of a built-in tool (Bash, Read) names the tool_use it carries the
// id of (same tool, same input), so its result coming back raises no
// hook.bypass under a profile with pre-tool-use hooks.
func TestClaudeCodeBuiltinToolsChecked(t *testing.T) {
	t.Parallel()
	w, _, _ := sandboxWorld(t)
	mustRun(t, w.e, "hooks", "add", "box", "--on", "pre-tool-use", "--shell", "exit 0")
	for _, c := range []struct{ name, input, allowed string }{
		{"Bash", `{"command":"echo traced","description":"Say traced"}`, "Bash(echo:*)"},
		{"Read", `{"file_path":"/etc/hostname"}`, "Read"},
	} {
		cmd, name, input := "x", c.name, c.input
		w.fake.ToolUse.Store(&cmd)
		w.fake.ToolName.Store(&name)
		w.fake.ToolInput.Store(&input)
		if res := runBox(t, w, "-p", "use "+c.name, "--output-format", "json", "--allowedTools", c.allowed); res.IsError {
			t.Fatalf("claude -p with %s: got %+v", c.name, res)
		}
	}
	if q := mustRun(t, w.e, "audit", "query", "--kind", "tool.call", "--json"); !strings.Contains(q, `"Bash"`) || !strings.Contains(q, `"Read"`) {
		t.Fatalf("no tool.call records for Bash and Read: %s", q)
	}
	if q := mustRun(t, w.e, "audit", "query", "--kind", "hook.bypass", "--json"); strings.Contains(q, `"hook.bypass"`) {
		t.Errorf("a hook bypass was recorded for checked calls: %s", q)
	}
}
