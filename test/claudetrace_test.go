package test

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestClaudeCodeTurnTraced: the real Claude Code in its sandbox, with
// Ringlet's MCP server, answers a turn whose provider answer asks for
// the MCP tool mcp__ringlet__up__echo. Its PreToolUse hook (Ringlet's
// adapter, with the tool_use_id), its MCP call and its next request with
// the tool_result all land in the trace of the first request, under the
// tool_use (the MCP call by the id Claude Code sends in its _meta), and no
// hook bypass is recorded.
func TestClaudeCodeTurnTraced(t *testing.T) {
	t.Parallel()
	w, _, _ := sandboxWorld(t)
	bin := buildMCPTestServer(t)
	mustRun(t, w.e, "mcp", "add", "box", "up", "--", bin)
	mustRun(t, w.e, "profiles", "run", "box", "--", "mcp", "add", "ringlet", "--", "ringlet", "mcp", "--stdio")
	mustRun(t, w.e, "profiles", "config", "approve", "box")
	cmd, name, input := "x", "mcp__ringlet__up__echo", `{"text":"traced"}`
	w.fake.ToolUse.Store(&cmd)
	w.fake.ToolName.Store(&name)
	w.fake.ToolInput.Store(&input)
	res := runBox(t, w, "-p", "echo traced", "--output-format", "json", "--allowedTools", name)
	if res.IsError {
		t.Fatalf("claude -p: got %+v", res)
	}
	var page struct {
		Records []struct {
			Seq     int64           `json:"seq"`
			TraceID string          `json:"trace_id"`
			Detail  json.RawMessage `json:"detail"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "audit", "query", "--kind", "provider.request", "--json", "--limit", "50")), &page); err != nil {
		t.Fatal(err)
	}
	traceID := ""
	for _, r := range page.Records {
		if strings.Contains(string(r.Detail), name) {
			traceID = r.TraceID
		}
	}
	if traceID == "" {
		t.Fatalf("no provider.request names %s's tool_use: %+v", name, page.Records)
	}
	var tr struct {
		Roots []*traceNode `json:"roots"`
	}
	out := mustRun(t, w.e, "audit", "trace", traceID, "--json")
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatal(err)
	}
	var use *traceNode
	var find func([]*traceNode)
	find = func(ns []*traceNode) {
		for _, n := range ns {
			if n.Kind == "tool_use" && n.ToolUse.Name == name {
				use = n
			}
			find(n.Children)
		}
	}
	find(tr.Roots)
	if use == nil {
		t.Fatalf("no tool_use %s in the trace:\n%s", name, mustRun(t, w.e, "audit", "trace", traceID))
	}
	text := mustRun(t, w.e, "audit", "trace", traceID)
	if c := use.child("tool.call", "agent"); c == nil || c.Link != "carried" {
		t.Errorf("Claude Code's PreToolUse check is not under the tool_use (carried):\n%s", text)
	}
	// Claude Code sends the tool_use's id in the call's _meta
	// (claudecode/toolUseId): the link is carried, not inferred.
	if c := use.child("tool.call", "mcp"); c == nil || c.Record.Target != "up__echo" || c.Link != "carried" {
		t.Errorf("the MCP call is not under the tool_use (carried):\n%s", text)
	}
	if next := use.child("provider.request", ""); next == nil || next.Link != "carried" {
		t.Errorf("the next request is not under the tool_use (carried):\n%s", text)
	}
	if q := mustRun(t, w.e, "audit", "query", "--kind", "hook.bypass", "--json"); strings.Contains(q, `"hook.bypass"`) {
		t.Errorf("a hook bypass was recorded for a checked call: %s", q)
	}
	t.Logf("the turn's trace:\n%s", text)
}
