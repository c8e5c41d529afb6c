package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

type refusal struct{ Tool, Args, Reason string }

func TestToolControl(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	def, defErr := mcpserver.ToolsAll, error(nil)
	w := newWorld(t, func(o *Options) {
		o.ToolsDefault = func(context.Context, string) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			return def, defErr
		}
	})
	var refused []refusal
	w.callers["a1"].Refused = func(_ context.Context, tool string, args json.RawMessage, reason string, _ bool) {
		mu.Lock()
		refused = append(refused, refusal{tool, string(args), reason})
		mu.Unlock()
	}
	rec := filepath.Join(w.homes["a"], "rec")
	w.addServer("a", "up", upstreamCommand(t, "-record", rec))
	c := w.ready(t, "a1")
	all := []string{"session_audit", "session_info", "session_trace", "session_usage", "up__crash", "up__echo", "up__getenv", "up__hang", "up__probe", "up__progress", "up__set_desc", "up__slow"}
	if got := c.toolNames(); !slices.Equal(got, all) {
		t.Fatalf("default all: got %v, want %v", got, all)
	}

	// Disabling a glob hides the tools it matches and refuses calls to them.
	if _, err := w.srv.SetTools("a", "up", mcpserver.ToolChange{Disable: []string{"s*", "hang"}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"session_audit", "session_info", "session_trace", "session_usage", "up__crash", "up__echo", "up__getenv", "up__probe", "up__progress"}
	if got := c.toolNames(); !slices.Equal(got, want) {
		t.Errorf("after --disable 's*' hang: got %v, want %v", got, want)
	}
	r := c.tool("up__slow", map[string]any{"ms": 1})
	if !r.IsError || !strings.Contains(r.text(), `up__slow is disabled by the rule "s*"`) || !strings.Contains(r.text(), "ringlet mcp tools a up --enable slow") {
		t.Errorf("call to a disabled tool: got %v %q, want an error naming the rule and the fix", r.IsError, r.text())
	}
	if len(recorded(t, rec)) != 0 || len(w.vets()) != 0 {
		t.Errorf("a disabled tool's call reached the hooks or the upstream")
	}
	mu.Lock()
	got := slices.Clone(refused)
	mu.Unlock()
	if len(got) != 1 || got[0].Tool != "up__slow" || got[0].Args != `{"ms":1}` || !strings.Contains(got[0].Reason, "disabled") {
		t.Errorf("refusals audited: got %+v, want one of up__slow with its arguments", got)
	}
	st := toolState(w.status("a", "up"), "slow")
	if st.State != mcpserver.ToolDisabled || st.Enabled || st.By != mcpserver.ByRule || st.Rule != "s*" {
		t.Errorf("status of slow: got %+v, want disabled by the rule s*", st)
	}
	if st := toolState(w.status("a", "up"), "echo"); !st.Enabled || st.By != mcpserver.ByDefault || st.Description == "" {
		t.Errorf("status of echo: got %+v, want enabled by default, with its description", st)
	}

	// Default none: only what a rule enables is served.
	mu.Lock()
	def = mcpserver.ToolsNone
	mu.Unlock()
	w.srv.Republish("a")
	if _, err := w.srv.SetTools("a", "up", mcpserver.ToolChange{Enable: []string{"echo", "nothing_*"}}); err != nil {
		t.Fatal(err)
	}
	want = []string{"session_audit", "session_info", "session_trace", "session_usage", "up__echo"}
	if got := c.toolNames(); !slices.Equal(got, want) {
		t.Errorf("default none with echo enabled: got %v, want %v", got, want)
	}
	if r := c.tool("up__echo", map[string]any{"text": "hi"}); r.IsError || r.text() != `{"text":"hi"}` {
		t.Errorf("enabled echo: got %v %q", r.IsError, r.text())
	}
	if r := c.tool("up__getenv", map[string]any{}); !r.IsError || !strings.Contains(r.text(), "by the profile's default") {
		t.Errorf("call to a tool off by default: got %v %q", r.IsError, r.text())
	}

	// A later rule wins over an earlier one.
	if _, err := w.srv.SetTools("a", "up", mcpserver.ToolChange{Disable: []string{"*"}}); err != nil {
		t.Fatal(err)
	}
	if got := c.toolNames(); slices.Contains(got, "up__echo") {
		t.Errorf("after --disable '*': got %v, want no upstream tool", got)
	}

	// A default that cannot be read disables every tool no rule names.
	if _, err := w.srv.SetTools("a", "up", mcpserver.ToolChange{Reset: true}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	def, defErr = mcpserver.ToolsAll, errors.New("profile file unreadable")
	mu.Unlock()
	w.srv.Republish("a")
	if got := c.toolNames(); !slices.Equal(got, []string{"session_audit", "session_info", "session_trace", "session_usage"}) {
		t.Errorf("with an unreadable default: got %v, want only the session tools", got)
	}
	// Another profile is untouched by a's rules.
	if got := w.ready(t, "b1").toolNames(); !slices.Equal(got, []string{"session_audit", "session_info", "session_trace", "session_usage"}) {
		t.Errorf("profile b: got %v", got)
	}
}

// TestDisabledNameNotEchoed: a call whose name no server could list is
// refused as unknown, never quoted in a command the user may copy.
func TestDisabledNameNotEchoed(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(o *Options) {
		o.ToolsDefault = func(context.Context, string) (string, error) { return mcpserver.ToolsNone, nil }
	})
	w.addServer("a", "up", upstreamCommand(t))
	c := w.ready(t, "a1")
	if m := c.call("tools/call", map[string]any{"name": "up__x; rm -rf ~", "arguments": map[string]any{}}); m.Error == nil || strings.Contains(string(m.Result), "rm -rf") {
		t.Errorf("got %s %+v, want a JSON-RPC error for an unknown tool", m.Result, m.Error)
	}
	if r := c.tool("up__echo", map[string]any{}); !r.IsError || !strings.Contains(r.text(), "--enable echo") {
		t.Errorf("a valid name off by default: got %v %q", r.IsError, r.text())
	}
}
