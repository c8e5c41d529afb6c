package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/provider"
)

// checkUse posts the agent's PreToolUse check of its tool_use id, a Bash
// call of `ls`, and returns the decision.
func (w *slWorld) checkUse(t *testing.T, tok, id string) hook.Decision {
	t.Helper()
	body, err := json.Marshal(api.HookCheck{Event: hook.PreToolUse, ToolUseID: id, ToolName: "Bash", ToolInput: json.RawMessage(`{"command":"ls"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var d hook.Decision
	decode(t, w.do(t, tok, "POST", "/session/hooks/check", string(body)), http.StatusOK, &d)
	return d
}

// TestHookRefusalIsNoBypass: a tool call the hook route refuses for a
// rate limit or a budget was checked: its result coming back in the next
// request raises no hook.bypass, and the refusal's record sits under its
// tool_use (carried).
func TestHookRefusalIsNoBypass(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		set        func(w *slWorld)
	}{
		{"rate limit", audit.KindRateLimited, func(w *slWorld) { w.setLimits(t, "work", `{"session_tool_calls":1}`) }},
		{"budget", audit.KindBudgetRefused, func(w *slWorld) {
			w.setBudgets(t, "work", `{"limits":{"session":{"tool_calls":1}},"on_exhaust":"refuse"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := rlWorld(t)
			tc.set(w)
			tr := w.s.rec.traces
			tr.hooked = func(string, string) bool { return true }
			st := w.envSession(t, "work", "")
			sess := w.s.sessions.get(st.ID)
			rt, _ := tr.request(nil, sess, []byte(`{}`))
			digest := provider.ArgsDigest([]byte(`{"command":"ls"}`))
			rt.add(provider.ToolUse{ID: "toolu_1", Name: "Bash", InputDigest: digest})
			rt.add(provider.ToolUse{ID: "toolu_2", Name: "Bash", InputDigest: digest})
			if d := w.checkUse(t, st.Token, "toolu_1"); !d.Allow {
				t.Fatalf("first call: refused (%s)", d.Reason)
			}
			if d := w.checkUse(t, st.Token, "toolu_2"); d.Allow {
				t.Fatal("second call: allowed, want refused")
			}
			_, bypass := tr.request(nil, sess, []byte(`{"messages":[{"content":[{"type":"tool_result","tool_use_id":"toolu_1"},{"type":"tool_result","tool_use_id":"toolu_2"}]}]}`))
			if len(bypass) != 0 {
				t.Errorf("hook.bypass for a call Ringlet refused: %+v", bypass)
			}
			recs := w.audit.kind(tc.kind)
			if len(recs) != 1 || recs[0].TraceID != rt.trace || recs[0].ParentSpanID != rt.uses[1].SpanID || recs[0].Link != audit.LinkCarried {
				t.Errorf("%s records: %+v, want one under toolu_2 (carried)", tc.kind, recs)
			}
		})
	}
}

// TestHookCheckBoundToItsToolUse: a check carrying a tool_use's id
// counts for it only when it names the same tool with the same input; a
// post-tool-use check marks nothing checked.
func TestHookCheckBoundToItsToolUse(t *testing.T) {
	t.Parallel()
	tr := newTraces(nil)
	tr.hooked = func(string, string) bool { return true }
	sess := &session{ID: "s1", Profile: profile.Profile{Alias: "work"}, Agent: profile.Agent{ID: "claude"}}
	rt, _ := tr.request(nil, sess, []byte(`{}`))
	bash := provider.ArgsDigest([]byte(`{"command":"rm -rf ~"}`))
	rt.add(provider.ToolUse{ID: "toolu_other_tool", Name: "Bash", InputDigest: bash})
	rt.add(provider.ToolUse{ID: "toolu_other_input", Name: "Bash", InputDigest: bash})
	rt.add(provider.ToolUse{ID: "toolu_post", Name: "Bash", InputDigest: bash})
	rt.add(provider.ToolUse{ID: "toolu_ok", Name: "Bash", InputDigest: bash})
	rt.add(provider.ToolUse{ID: "toolu_mcp", Name: "mcp__ringlet__up__echo", InputDigest: provider.ArgsDigest([]byte(`{"text":"hi"}`))})
	rt.add(provider.ToolUse{ID: "toolu_nodigest", Name: "Read"})
	for _, c := range []struct {
		req  api.HookCheck
		want bool
	}{
		{api.HookCheck{Event: hook.PreToolUse, ToolUseID: "toolu_other_tool", ToolName: "Read", ToolInput: []byte(`{}`)}, false},
		{api.HookCheck{Event: hook.PreToolUse, ToolUseID: "toolu_other_input", ToolName: "Bash", ToolInput: []byte(`{"command":"ls"}`)}, false},
		{api.HookCheck{Event: hook.PostToolUse, ToolUseID: "toolu_post", ToolName: "Bash", ToolInput: []byte(`{"command":"rm -rf ~"}`)}, true},
		{api.HookCheck{Event: hook.PreToolUse, ToolUseID: "toolu_ok", ToolName: "Bash", ToolInput: []byte(` { "command" : "rm -rf ~" }`)}, true},
		{api.HookCheck{Event: hook.PreToolUse, ToolUseID: "toolu_mcp", ToolName: "mcp__ringlet__up__echo", ToolInput: []byte(`{"text":"hi"}`)}, true},
		{api.HookCheck{Event: hook.PreToolUse, ToolUseID: "toolu_nodigest", ToolName: "Read", ToolInput: []byte(`{"file_path":"/x"}`)}, true},
	} {
		sp := tr.agentCheck(sess, c.req)
		if got := sp.link == audit.LinkCarried; got != c.want {
			t.Errorf("%s check of %s: carried %v, want %v", c.req.ToolName, c.req.ToolUseID, got, c.want)
		}
		tr.agentAllowed(sess, sp)
	}
	if l := tr.mcpCall(sess, "toolu_mcp", "up__echo", []byte(`{"text":"hi"}`)); !l.allowed {
		t.Error("the MCP call of a checked tool_use: not allowed")
	}
	if l := tr.mcpCall(sess, "toolu_other_tool", "up__echo", []byte(`{"text":"hi"}`)); l.allowed {
		t.Error("an MCP call under a tool_use checked as another tool: allowed")
	}
	_, bypass := tr.request(nil, sess, []byte(`{"messages":[{"content":[`+
		`{"tool_use_id":"toolu_other_tool"},{"tool_use_id":"toolu_other_input"},{"tool_use_id":"toolu_post"},{"tool_use_id":"toolu_ok"},{"tool_use_id":"toolu_mcp"},{"tool_use_id":"toolu_nodigest"}]}]}`))
	var flagged []string
	for _, r := range bypass {
		var d struct {
			ID string `json:"tool_use_id"`
		}
		_ = json.Unmarshal(r.Detail, &d) // a bad detail shows as an empty id
		flagged = append(flagged, d.ID)
	}
	if want := []string{"toolu_other_tool", "toolu_other_input", "toolu_post"}; !slices.Equal(flagged, want) {
		t.Errorf("hook.bypass of %q, want %q", flagged, want)
	}
}

// TestTracesReadHooksOutsideTheLock: while one session's request or end
// waits on its profile's hooks being read, another session's records are
// placed (the hooks are not read under the lock all sessions share).
func TestTracesReadHooksOutsideTheLock(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"request", "session.end"} {
		t.Run(step, func(t *testing.T) {
			tr := newTraces(nil)
			entered, release := make(chan struct{}), make(chan struct{})
			var once sync.Once
			tr.hooked = func(string, string) bool {
				once.Do(func() { close(entered); <-release })
				return true
			}
			slow := &session{ID: "slow", Profile: profile.Profile{Alias: "work"}, Agent: profile.Agent{ID: "claude"}}
			other := &session{ID: "other", Profile: profile.Profile{Alias: "work"}, Agent: profile.Agent{ID: "claude"}}
			rt, _ := tr.request(nil, slow, []byte(`{}`))
			rt.add(provider.ToolUse{ID: "toolu_1", Name: "Bash"})
			done := make(chan struct{})
			go func() {
				defer close(done)
				if step == "request" {
					_, _ = tr.request(nil, slow, []byte(`{"tool_use_id":"toolu_1"}`))
					return
				}
				end := audit.Record{Kind: audit.KindSessionEnd, Session: "slow"}
				tr.stamp(context.Background(), &end)
			}()
			<-entered
			placed := make(chan struct{})
			go func() {
				defer close(placed)
				_, _ = tr.request(nil, other, []byte(`{}`))
				r := audit.Record{Kind: audit.KindToolCall, Session: "other"}
				tr.stamp(context.Background(), &r)
			}()
			select {
			case <-placed:
			case <-time.After(30 * time.Second):
				t.Error("another session's records waited for this session's hooks to be read")
			}
			close(release)
			<-done
			<-placed
		})
	}
}
