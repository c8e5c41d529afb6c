package test

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/api"
)

// TestMCPToolSearch: 'mcp tools PROFILE --search on' serves the profile's
// sessions search_tools and call_tool instead of server-everything's
// tools; the official SDK client finds a tool and calls it through
// call_tool, and the call is vetted and audited under the tool's own
// name. --search off lists every tool again.
func TestMCPToolSearch(t *testing.T) {
	requireMCPNode(t)
	t.Parallel()
	e, d := newMCPEnv(t)
	modules, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol"))
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "mcp", "add", "work", "everything", "--ro", filepath.Dir(modules), "--",
		"node", filepath.Join(modules, "server-everything", "dist", "index.js"), "stdio")
	if _, stderr, code := e.Run("mcp", "tools", "work", "--search", "maybe"); code == 0 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "on, off") {
		t.Errorf("mcp tools --search maybe: exit %d, stderr %q; want refused in one line", code, stderr)
	}
	var set api.MCPToolsDefault
	if err := json.Unmarshal([]byte(mustRun(t, e, "mcp", "tools", "work", "--search", "on", "--json")), &set); err != nil || set.Search != "on" || set.Default != "all" {
		t.Fatalf("mcp tools --search on --json: got %+v (%v), want search on, default all", set, err)
	}
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^everything__echo$",
		"--shell", `echo "$RINGLET_TOOL_INPUT" | grep -qv forbidden || { echo "refused by a ringlet hook" >&2; exit 1; }`)

	tok := mcpSessionToken(t, e, "work")
	r := runSDK(t, e, tok, map[string]any{"url": d.URL + "/mcp", "steps": []any{
		map[string]any{"list": true},
		map[string]any{"call": "search_tools", "args": map[string]any{"query": "echo a message back", "limit": 3}},
		map[string]any{"call": "call_tool", "args": map[string]any{"name": "everything__echo", "arguments": map[string]any{"message": "via search"}}},
		map[string]any{"call": "call_tool", "args": map[string]any{"name": "everything__echo", "arguments": map[string]any{"message": "forbidden"}}},
		map[string]any{"call": "everything__echo", "args": map[string]any{"message": "directly"}},
	}})
	if got := r.Steps[0].Tools; !slices.Contains(got, "search_tools") || !slices.Contains(got, "call_tool") || slices.ContainsFunc(got, func(n string) bool { return strings.HasPrefix(n, "everything__") }) {
		t.Errorf("tools with search on: got %v, want the meta-tools and none of everything's", got)
	}
	if text, isErr := r.text(1); isErr || !strings.Contains(text, `"name":"everything__echo"`) || !strings.Contains(text, `"inputSchema"`) {
		t.Errorf("search_tools: got %v %q, want everything__echo with its schema", isErr, text)
	}
	if text, isErr := r.text(2); isErr || text != "Echo: via search" {
		t.Errorf("call_tool everything__echo: got %v %q", isErr, text)
	}
	if text, isErr := r.text(3); !isErr || !strings.HasPrefix(text, "refused by a ringlet hook [refused by Ringlet hook ") {
		t.Errorf("call_tool refused by the hook: got %v %q", isErr, text)
	}
	if _, isErr := r.text(4); !isErr {
		t.Error("a direct call in search mode: got a result, want an error")
	}
	var allowed, denied int
	for _, rec := range auditOf(t, e, "work", "tool.call") {
		if rec.Target == "everything__echo" && rec.Detail["via"] == "mcp" {
			switch rec.Decision {
			case "allow":
				allowed++
			case "deny":
				denied++
			}
		}
	}
	if allowed != 1 || denied != 1 {
		t.Errorf("tool.call records of everything__echo: got %d allowed and %d denied, want 1 and 1", allowed, denied)
	}

	mustRun(t, e, "mcp", "tools", "work", "--search", "off")
	r = runSDK(t, e, tok, map[string]any{"url": d.URL + "/mcp", "steps": []any{map[string]any{"list": true}}})
	if got := r.Steps[0].Tools; !slices.Contains(got, "everything__echo") || slices.Contains(got, "search_tools") {
		t.Errorf("tools with search off: got %v", got)
	}
	if recs := auditOf(t, e, "work", "mcp.tools"); len(recs) != 2 || recs[0].Detail["search"] != "on" || recs[1].Detail["search"] != "off" {
		t.Errorf("mcp.tools records: got %+v, want search on then off", recs)
	}
}
