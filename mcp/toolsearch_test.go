package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// TestToolSearchMode: with search on, a profile's sessions see
// search_tools and call_tool instead of the servers' tools; a search
// finds the served tools and a call through call_tool passes the same
// policy as a direct call, and is refused for what is not served.
func TestToolSearchMode(t *testing.T) {
	t.Parallel()
	var on atomic.Bool
	on.Store(true)
	w := newWorld(t, func(o *Options) {
		o.ToolSearch = func(p string) (bool, error) { return p == "a" && on.Load(), nil }
	})
	w.addServer("a", "up", upstreamCommand(t))
	c := w.ready(t, "a1")
	if got, want := c.toolNames(), []string{"session_info", "session_audit", "session_trace", "session_usage", "search_tools", "call_tool"}; !sameSet(got, want) {
		t.Fatalf("tools in search mode: got %q, want %q", got, want)
	}
	r := c.tool("search_tools", map[string]any{"query": "echo the arguments back"})
	var found struct {
		Tools []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"inputSchema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(r.StructuredContent, &found); r.IsError || err != nil || len(found.Tools) == 0 || found.Tools[0].Name != "up__echo" || !strings.Contains(string(found.Tools[0].InputSchema), `"text"`) {
		t.Fatalf("search_tools: got %v %s, want up__echo first with its schema", r.IsError, r.StructuredContent)
	}
	if r := c.tool("search_tools", map[string]any{"query": "zzzz nothing matches"}); r.IsError || !strings.Contains(string(r.StructuredContent), `"tools":[]`) {
		t.Errorf("search with no match: got %s, want no tools", r.StructuredContent)
	}

	r = c.tool("call_tool", map[string]any{"name": "up__echo", "arguments": map[string]any{"text": "through search"}})
	if r.IsError || !strings.Contains(r.text(), "through search") {
		t.Errorf("call_tool up__echo: got %v %q", r.IsError, r.text())
	}
	vets := w.vets()
	if len(vets) != 1 || vets[0].Tool != "up__echo" || string(vets[0].Input) != `{"text":"through search"}` {
		t.Errorf("vetted: got %+v, want up__echo with its own arguments", vets)
	}
	w.setDeny("no echo today")
	if r := c.tool("call_tool", map[string]any{"name": "up__echo", "arguments": map[string]any{}}); !r.IsError || r.text() != "no echo today" {
		t.Errorf("denied call_tool: got %v %q, want the hook's reason", r.IsError, r.text())
	}
	w.setDeny("")
	for _, name := range []string{"up__nope", "session_info", "call_tool", "echo"} {
		if r := c.tool("call_tool", map[string]any{"name": name}); !r.IsError {
			t.Errorf("call_tool %s: got %q, want an error", name, r.text())
		}
	}
	if m := c.call("tools/call", map[string]any{"name": "up__echo", "arguments": map[string]any{}}); m.Error == nil && !strings.Contains(string(m.Result), `"isError":true`) {
		t.Errorf("direct call in search mode: got %s, want refused", m.Result)
	}
	if _, err := w.srv.SetTools("a", "up", mcpserver.ToolChange{Disable: []string{"echo"}}); err != nil {
		t.Fatal(err)
	}
	if r := c.tool("call_tool", map[string]any{"name": "up__echo", "arguments": map[string]any{}}); !r.IsError || !strings.Contains(r.text(), "disabled") {
		t.Errorf("call_tool of a disabled tool: got %v %q, want refused as disabled", r.IsError, r.text())
	}
	if r := c.tool("search_tools", map[string]any{"query": "echo"}); strings.Contains(string(r.StructuredContent), "up__echo") {
		t.Errorf("search found a disabled tool: %s", r.StructuredContent)
	}
	// Off again: the tools are listed.
	on.Store(false)
	w.srv.Republish("a")
	if got := c.toolNames(); !slices.Contains(got, "up__slow") || slices.Contains(got, "search_tools") {
		t.Errorf("tools with search off: got %q", got)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func TestSearchIndexRanks(t *testing.T) {
	t.Parallel()
	tool := func(name, desc string) server.ServerTool {
		return server.ServerTool{Tool: mcpgo.NewTool(name, mcpgo.WithDescription(desc))}
	}
	ix := newSearchIndex([]server.ServerTool{
		tool("fs__read_text_file", "Read the complete contents of a file as text."),
		tool("fs__write_file", "Create a new file or overwrite an existing one."),
		tool("github__createIssue", "Open a new issue in a GitHub repository."),
		tool("github__list_issues", "List the issues of a repository."),
	})
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"read file", []string{"fs__read_text_file", "fs__write_file"}},
		{"create issue", []string{"github__createIssue", "github__list_issues", "fs__write_file"}},
		{"CREATE-ISSUE", []string{"github__createIssue", "github__list_issues", "fs__write_file"}},
		{"issues", []string{"github__list_issues", "github__createIssue"}},
		{"", nil},
		{"kubernetes", nil},
	} {
		var got []string
		for _, st := range ix.search(tc.query, 10) {
			got = append(got, st.Tool.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("search %q: got %q, want %q", tc.query, got, tc.want)
		}
	}
	if got := ix.search("issue", 1); len(got) != 1 {
		t.Errorf("limit 1: got %d tools", len(got))
	}
}

// thousandTools is a tool set of 1,000 tools of 20 servers, with names
// and descriptions of realistic length.
func thousandTools() []server.ServerTool {
	verbs := []string{"read", "write", "list", "create", "delete", "update", "search", "get", "move", "copy"}
	nouns := []string{"file", "issue", "page", "user", "message", "branch", "ticket", "record", "table", "document"}
	var out []server.ServerTool
	for i := range 1000 {
		v, n := verbs[i%len(verbs)], nouns[(i/len(verbs))%len(nouns)]
		name := fmt.Sprintf("srv%02d__%s_%s_%d", i/50, v, n, i)
		desc := fmt.Sprintf("%s a %s of the service: takes the %s's id and returns what the service says about it, with its metadata and links.", v, n, n)
		out = append(out, server.ServerTool{Tool: mcpgo.NewTool(name, mcpgo.WithDescription(desc), mcpgo.WithString("id", mcpgo.Required()))})
	}
	return out
}

// BenchmarkToolSearch is search_tools' ranking over 1,000 tools (query)
// and building its index when the tool set changes (index), beside the
// baseline of what search mode spares a client: encoding the tools/list
// answer of the same 1,000 tools (list).
func BenchmarkToolSearch(b *testing.B) {
	tools := thousandTools()
	ix := newSearchIndex(tools)
	b.Run("query", func(b *testing.B) {
		for b.Loop() {
			if len(ix.search("create a github issue", searchDefault)) == 0 {
				b.Fatal("nothing found")
			}
		}
	})
	b.Run("index", func(b *testing.B) {
		for b.Loop() {
			newSearchIndex(tools)
		}
	})
	b.Run("list", func(b *testing.B) {
		defs := make([]mcpgo.Tool, len(tools))
		for i, t := range tools {
			defs[i] = t.Tool
		}
		for b.Loop() {
			if _, err := json.Marshal(mcpgo.ListToolsResult{Tools: defs}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCallToolOfPendingTool: call_tool of a tool hidden until approved is
// refused as a tools/call of it is, saying how to approve it, and
// audited as refused; the server does not see it.
func TestCallToolOfPendingTool(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(o *Options) {
		o.ToolSearch = func(p string) (bool, error) { return true, nil }
	})
	var mu sync.Mutex
	var refused []string
	w.callers["a1"].Refused = func(_ context.Context, tool string, args json.RawMessage, reason string, _ bool) {
		mu.Lock()
		refused = append(refused, tool+" "+string(args)+": "+reason)
		mu.Unlock()
	}
	rec := filepath.Join(w.homes["a"], "rec")
	w.addServer("a", "up", upstreamCommand(t, "-record", rec))
	c := w.ready(t, "a1")
	if r := c.tool("call_tool", map[string]any{"name": "up__set_desc", "arguments": map[string]any{"desc": "Now does something else."}}); r.IsError {
		t.Fatal(r.text())
	}
	waitFor(t, 10*time.Second, "echo to be hidden", func() bool { return toolState(w.status("a", "up"), "echo").State == mcpserver.ToolChanged })
	before := len(recorded(t, rec))
	r := c.tool("call_tool", map[string]any{"name": "up__echo", "arguments": map[string]any{"text": "hi"}})
	if !r.IsError || !strings.Contains(r.text(), "ringlet mcp approve a up") {
		t.Errorf("call_tool of a changed tool: got %v %q, want refused saying how to approve", r.IsError, r.text())
	}
	if n := len(recorded(t, rec)); n != before {
		t.Error("the upstream received a call to a hidden tool")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(refused) != 1 || !strings.HasPrefix(refused[0], `up__echo {"text":"hi"}: `) || !strings.Contains(refused[0], "ringlet mcp approve a up") {
		t.Errorf("audited refusals: got %q, want up__echo's with its arguments and reason", refused)
	}
}
