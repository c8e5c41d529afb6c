package test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
)

// TestMCPToolControl drives 'ringlet mcp tools' against the reference
// server everything, with the official TypeScript SDK client connected
// to the real daemon: a glob disabled leaves tools/list (the client is
// told the list changed), a call to one is refused and audited, and with
// the profile's default none only the enabled tools are served.
func TestMCPToolControl(t *testing.T) {
	requireMCPNode(t)
	t.Parallel()
	e, d := newMCPEnv(t)
	modules, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "mcp", "add", "work", "everything", "--ro", filepath.Dir(modules), "--",
		"node", filepath.Join(modules, "server-everything", "dist", "index.js"), "stdio")

	// Listed as the gateway sees them, all enabled by default.
	var tools api.MCPTools
	if err := json.Unmarshal([]byte(mustRun(t, e, "mcp", "tools", "work", "everything", "--json")), &tools); err != nil {
		t.Fatal(err)
	}
	if tools.Default != "all" || len(tools.Tools) < 5 {
		t.Fatalf("mcp tools --json: got default %q and %d tools, want all and everything's tools", tools.Default, len(tools.Tools))
	}
	for _, tl := range tools.Tools {
		if !tl.Enabled || tl.By != "default" {
			t.Errorf("%s: got enabled %v by %q, want enabled by default", tl.Name, tl.Enabled, tl.By)
		}
	}
	text := mustRun(t, e, "mcp", "tools", "work", "everything")
	if !strings.Contains(text, "TOOL") || !strings.Contains(text, "echo") || !strings.Contains(text, "enabled") {
		t.Errorf("mcp tools: got %q, want a table of the tools", text)
	}

	url := d.URL + "/mcp"
	tok := mcpSessionToken(t, e, "work")
	run := func(plan ...any) nodeResult {
		return runSDK(t, e, tok, map[string]any{"url": url, "steps": plan})
	}
	r := run(
		map[string]any{"list": true},
		map[string]any{"exec": []string{ringletBin, "mcp", "tools", "work", "everything", "--disable", "get-*", "--disable", "nothing-*"}},
		map[string]any{"list": true},
		map[string]any{"call": "everything__get-sum", "args": map[string]any{"a": 1, "b": 2}},
		map[string]any{"call": "everything__echo", "args": map[string]any{"message": "still here"}},
	)
	if !slices.Contains(r.Steps[0].Tools, "everything__get-sum") {
		t.Fatalf("before: got %v, want everything__get-sum", r.Steps[0].Tools)
	}
	if !r.Steps[1].ListChanged {
		t.Error("the client was not told the tool list changed after --disable")
	}
	for _, n := range r.Steps[2].Tools {
		if strings.HasPrefix(n, "everything__get-") {
			t.Errorf("after --disable get-*: %s is still listed", n)
		}
	}
	if !slices.Contains(r.Steps[2].Tools, "everything__echo") {
		t.Errorf("after --disable get-*: echo is gone from %v", r.Steps[2].Tools)
	}
	if text, isErr := r.text(3); !isErr || !strings.Contains(text, `everything__get-sum is disabled by the rule "get-*"`) {
		t.Errorf("call to a disabled tool: got %v %q, want refused with the rule", isErr, text)
	}
	if text, isErr := r.text(4); isErr || text != "Echo: still here" {
		t.Errorf("echo: got %v %q", isErr, text)
	}
	if out := mustRun(t, e, "mcp", "show", "work", "everything"); !strings.Contains(out, "-get-* -nothing-*") {
		t.Errorf("mcp show: got %q, want the rules in order", out)
	}
	if out := mustRun(t, e, "mcp", "list", "work"); !strings.Contains(out, "tool(s) disabled ('ringlet mcp tools work everything' lists them)") {
		t.Errorf("mcp list: got %q, want the disabled tools counted", out)
	}
	// Completion: profiles, servers, and the tools the daemon knows.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"mcp", "tools", "wo"}, "work"},
		{[]string{"mcp", "tools", "work", "ev"}, "everything"},
		{[]string{"mcp", "tools", "work", "everything", "--enable", "ec"}, "echo"},
		{[]string{"mcp", "tools", "work", "everything", "--disable", "get-s"}, "get-sum"},
		{[]string{"mcp", "tools", "work", "--default", ""}, "none"},
	} {
		if out := mustRun(t, e, append([]string{"__complete"}, tc.args...)...); !strings.Contains(out, tc.want) {
			t.Errorf("completion of %v: got %q, want %s", tc.args, out, tc.want)
		}
	}
	// The unmatched pattern is stored, and the command said so.
	_, stderr, code := e.Run("mcp", "tools", "work", "everything", "--disable", "nothing-*")
	if code != 0 || !strings.Contains(stderr, `"nothing-*" matches none of everything's current tools`) {
		t.Errorf("unmatched pattern: exit %d, stderr %q", code, stderr)
	}

	// The refusal and the changes are in the audit log.
	audited := mustRun(t, e, "audit", "query", "--kind", "tool.call", "--decision", "deny", "--json")
	if !strings.Contains(audited, "everything__get-sum") || !strings.Contains(audited, "disabled") {
		t.Errorf("audit of the refused call: got %s", audited)
	}
	if changes := mustRun(t, e, "audit", "query", "--kind", "mcp.tools", "--json"); !strings.Contains(changes, "get-*") {
		t.Errorf("audit of mcp tools: got %s", changes)
	}

	// Default none: only what is enabled is served.
	if out := mustRun(t, e, "mcp", "tools", "work", "--default", "none"); !strings.Contains(out, "disabled until enabled") {
		t.Errorf("--default none: got %q", out)
	}
	mustRun(t, e, "mcp", "tools", "work", "everything", "--enable", "echo")
	r = run(
		map[string]any{"list": true},
		map[string]any{"call": "everything__echo", "args": map[string]any{"message": "only me"}},
		map[string]any{"call": "everything__trigger-long-running-operation", "args": map[string]any{"duration": 0.1, "steps": 1}},
	)
	var upstream []string
	for _, n := range r.Steps[0].Tools {
		if strings.Contains(n, "__") {
			upstream = append(upstream, n)
		}
	}
	if !slices.Equal(upstream, []string{"everything__echo"}) {
		t.Errorf("default none, echo enabled: got %v, want [everything__echo]", upstream)
	}
	if text, isErr := r.text(1); isErr || text != "Echo: only me" {
		t.Errorf("echo: got %v %q", isErr, text)
	}
	if text, isErr := r.text(2); !isErr || !strings.Contains(text, "by the profile's default") {
		t.Errorf("a tool off by default: got %v %q, want refused", isErr, text)
	}

	// Bad input: one line, non-zero exit.
	for _, args := range [][]string{
		{"mcp", "tools", "work", "everything", "--enable", "[x"},
		{"mcp", "tools", "work", "--default", "some"},
		{"mcp", "tools", "work"},
		{"mcp", "tools", "work", "nope", "--enable", "x"},
	} {
		if _, stderr, code := e.Run(args...); code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") > 2 {
			t.Errorf("ringlet %v: exit %d, stderr %q, want a short error", args, code, stderr)
		}
	}
}
