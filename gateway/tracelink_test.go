package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/provider"
)

// TestTracesBypassAndLinks: a tool_use no check reached is a hook.bypass
// when the next request carries its result (seen_by provider) or when the
// session ends; a checked one is not; an egress record while a tool call
// is outstanding goes under it; an MCP call is inferred by name and
// arguments.
func TestTracesBypassAndLinks(t *testing.T) {
	t.Parallel()
	tr := newTraces(nil)
	tr.hooked = func(alias, agent string) bool { return agent == "claude" }
	sess := &session{ID: "s1", Profile: profile.Profile{Alias: "work"}, Agent: profile.Agent{ID: "claude"}}

	rt, bypass := tr.request(nil, sess, []byte(`{"messages":[{"role":"user","content":"hi"}]}`))
	if len(bypass) != 0 || rt.parent != "" || !audit.ValidTraceID(rt.trace) {
		t.Fatalf("first request: %+v %v, want a new root trace", rt, bypass)
	}
	rt.add(provider.ToolUse{ID: "toolu_checked", Name: "Bash", InputDigest: provider.ArgsDigest([]byte(`{"command":"ls"}`))})
	rt.add(provider.ToolUse{ID: "toolu_skipped", Name: "mcp__ringlet__up__echo", InputDigest: provider.ArgsDigest([]byte(`{"text":"hi"}`))})
	rt.add(provider.ToolUse{ID: "toolu_open", Name: "Read", InputDigest: provider.ArgsDigest([]byte(`{}`))})

	sp := tr.agentCheck(sess, api.HookCheck{Event: hook.PreToolUse, ToolUseID: "toolu_checked", ToolName: "Bash", ToolInput: []byte(`{"command":"ls"}`)})
	if sp.trace != rt.trace || sp.parent != rt.uses[0].SpanID || sp.link != audit.LinkCarried {
		t.Errorf("agent check: %+v, want under toolu_checked, carried", sp)
	}
	l := tr.mcpCall(sess, "", "up__echo", []byte(` {"text": "hi"}`))
	if l.use == nil || l.use.ID != "toolu_skipped" || l.sp.link != audit.LinkInferred || l.allowed {
		t.Errorf("MCP call: %+v, want inferred to toolu_skipped, not allowed", l)
	}
	if l := tr.mcpCall(sess, "", "up__echo", []byte(`{"text":"other"}`)); l.use != nil {
		t.Errorf("MCP call with other arguments linked to %s", l.use.ID)
	}

	egress := audit.Record{Kind: audit.KindSandboxEgress, Session: "s1", Time: time.Now()}
	tr.stamp(context.Background(), &egress)
	if egress.TraceID != rt.trace || egress.ParentSpanID != rt.uses[2].SpanID || egress.Link != audit.LinkInferred {
		t.Errorf("egress: %+v, want under the latest open tool call", egress)
	}

	next, bypass := tr.request(nil, sess, []byte(`{"messages":[{"content":[{"type":"tool_result","tool_use_id":"toolu_checked"},{"type":"tool_result","tool_use_id":"toolu_skipped"}]}]}`))
	if next.trace != rt.trace || next.parent != rt.uses[0].SpanID || next.link != audit.LinkCarried {
		t.Errorf("next request: %+v, want under the first result's tool_use", next)
	}
	if len(bypass) != 1 || bypass[0].Kind != audit.KindHookBypass || bypass[0].Target != "mcp__ringlet__up__echo" || bypass[0].ParentSpanID != rt.uses[1].SpanID {
		t.Fatalf("bypass at the next request: %+v, want toolu_skipped's only", bypass)
	}

	end := audit.Record{Kind: audit.KindSessionEnd, Session: "s1", Profile: "work"}
	late := tr.stamp(context.Background(), &end)
	if len(late) != 1 || late[0].Target != "Read" {
		t.Errorf("bypass at the session's end: %+v, want toolu_open's", late)
	}
	if _, ok := tr.bySession["s1"]; ok {
		t.Error("the session's traces outlived its end")
	}

	// A profile whose agent is not expected to ask: no findings.
	codex := &session{ID: "s2", Profile: profile.Profile{Alias: "work"}, Agent: profile.Agent{ID: "codex"}}
	rt2, _ := tr.request(nil, codex, []byte(`{}`))
	rt2.add(provider.ToolUse{ID: "call_1", Name: "exec"})
	if _, bypass := tr.request(nil, codex, []byte(`{"input":[{"type":"function_call_output","call_id":"call_1"}]}`)); len(bypass) != 0 {
		t.Errorf("codex session: %+v, want no bypass", bypass)
	}

	// Off: nothing is stamped.
	tr.off.Store(true)
	r := audit.Record{Kind: audit.KindToolCall, Session: "s3"}
	tr.stamp(context.Background(), &r)
	if r.HasTrace() {
		t.Errorf("off: %+v, want no trace", r)
	}
}
