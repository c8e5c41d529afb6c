package gateway

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/sandbox"
)

// agentCheck posts one of the agent's own hook checks (its PreToolUse,
// or event) with tok and returns the decision.
func (w *slWorld) agentCheck(t *testing.T, tok, event, tool string) hook.Decision {
	t.Helper()
	body, err := json.Marshal(api.HookCheck{Event: event, ToolName: tool, ToolInput: json.RawMessage(`{"command":"ls"}`)})
	if err != nil {
		t.Fatal(err)
	}
	var d hook.Decision
	decode(t, w.do(t, tok, "POST", "/session/hooks/check", string(body)), http.StatusOK, &d)
	return d
}

func (w *slWorld) setBudgets(t *testing.T, alias, body string) {
	t.Helper()
	var v api.BudgetView
	decode(t, w.do(t, testToken, "PUT", "/api/budgets/"+alias, body), http.StatusOK, &v)
}

// TestAgentToolCallsArePaced: the agent's own tool calls, asked about by
// its hook adapter, take from the tool-calls-a-minute buckets; past the
// limit the hook denies with the limit named, audited as rate.limited; a
// tool of Ringlet's MCP gateway (counted there) and a post-tool-use
// check take nothing; the clock moving on admits calls again.
func TestAgentToolCallsArePaced(t *testing.T) {
	w := rlWorld(t)
	w.setLimits(t, "work", `{"session_tool_calls":2}`)
	st := w.envSession(t, "work", "")
	for i := range 2 {
		if d := w.agentCheck(t, st.Token, hook.PreToolUse, "Bash"); !d.Allow {
			t.Fatalf("call %d of 2: got refused (%s), want allowed", i+1, d.Reason)
		}
	}
	// Not counted here: the gateway paces them.
	for _, tool := range []string{"mcp__ringlet__up__echo", "mcp__ringlet__session_info"} {
		if d := w.agentCheck(t, st.Token, hook.PreToolUse, tool); !d.Allow {
			t.Errorf("%s: got refused (%s), want it left to the gateway", tool, d.Reason)
		}
	}
	if d := w.agentCheck(t, st.Token, hook.PostToolUse, "Bash"); !d.Allow {
		t.Errorf("post-tool-use: got refused (%s), want it not counted", d.Reason)
	}
	d := w.agentCheck(t, st.Token, hook.PreToolUse, "Bash")
	if d.Allow || !strings.Contains(d.Reason, "2 tool calls a minute") || !strings.Contains(d.Reason, RateLimitErrorCode) {
		t.Fatalf("third call: got %+v, want refused naming the limit of 2 tool calls a minute", d)
	}
	recs := w.audit.kind(audit.KindRateLimited)
	if len(recs) != 1 || recs[0].Session != st.ID || recs[0].Target != "Bash" || !strings.Contains(string(recs[0].Detail), `"limit":"tool_calls"`) {
		t.Errorf("rate.limited records: got %+v, want one for Bash naming tool_calls", recs)
	}
	// inspect shows the bucket empty and the refusal.
	var info api.SessionInfo
	decode(t, w.do(t, testToken, "GET", "/api/sessions/"+st.ID, ""), http.StatusOK, &info)
	if len(info.RateLimits) != 1 || info.RateLimits[0] != (api.RateLimitState{Scope: "session", Limit: "tool_calls", PerMinute: 2, Available: 0, Throttled: 1}) {
		t.Errorf("inspect rate_limits: got %+v, want session tool_calls 2 a minute, 0 left, throttled 1", info.RateLimits)
	}
	w.clock.Advance(30 * time.Second)
	if d := w.agentCheck(t, st.Token, hook.PreToolUse, "Bash"); !d.Allow {
		t.Errorf("after 30s: got refused (%s), want one more call admitted", d.Reason)
	}
}

// TestAgentToolCallsAreBudgeted: the agent's own tool calls are charged
// against a tool-call budget once each (a gateway tool not at all here);
// the call past the cap is denied with the budget named and audited as
// budget.refused, and the charged calls' tool.call records say so.
func TestAgentToolCallsAreBudgeted(t *testing.T) {
	w := rlWorld(t)
	w.setBudgets(t, "work", `{"limits":{"session":{"tool_calls":2}},"on_exhaust":"refuse"}`)
	st := w.envSession(t, "work", "")
	for _, tool := range []string{"Bash", "mcp__ringlet__up__echo", "Edit"} {
		if d := w.agentCheck(t, st.Token, hook.PreToolUse, tool); !d.Allow {
			t.Fatalf("%s: got refused (%s), want allowed", tool, d.Reason)
		}
	}
	d := w.agentCheck(t, st.Token, hook.PreToolUse, "Write")
	if d.Allow || !strings.Contains(d.Reason, "budget session/"+st.ID) || !strings.Contains(d.Reason, BudgetErrorCode) {
		t.Fatalf("third charged call: got %+v, want refused naming budget session/%s", d, st.ID)
	}
	refused := w.audit.kind(audit.KindBudgetRefused)
	if len(refused) != 1 || !strings.Contains(string(refused[0].Detail), `"request":"tool.call Write"`) || !strings.Contains(string(refused[0].Detail), `"cap":"tool_calls"`) {
		t.Errorf("budget.refused records: got %+v, want one for Write at the tool_calls cap", refused)
	}
	var counted []string
	for _, r := range w.audit.kind(audit.KindToolCall) {
		if strings.Contains(string(r.Detail), `"counted":true`) {
			counted = append(counted, r.Target)
		}
	}
	if strings.Join(counted, ",") != "Bash,Edit" {
		t.Errorf("tool.call records counted: got %v, want Bash and Edit (the gateway's tool counted by the gateway)", counted)
	}
	var info api.SessionInfo
	decode(t, w.do(t, testToken, "GET", "/api/sessions/"+st.ID, ""), http.StatusOK, &info)
	if info.Budget == nil || info.Budget.Spent.ToolCalls != 2 || info.Budget.Reserved.ToolCalls != 0 {
		t.Errorf("inspect budget: got %+v, want 2 tool calls spent, none reserved", info.Budget)
	}
}

// TestAgentToolCallCapKills: with the kill action, the agent's call past
// a tool-call cap is denied with the budget's reason (not "session
// ended") and the session is killed after the answer.
func TestAgentToolCallCapKills(t *testing.T) {
	w := rlWorld(t)
	w.setBudgets(t, "work", `{"limits":{"session":{"tool_calls":1}}}`)
	st := w.envSession(t, "work", "")
	if d := w.agentCheck(t, st.Token, hook.PreToolUse, "Bash"); !d.Allow {
		t.Fatalf("first call: got refused (%s)", d.Reason)
	}
	// The first call reached the cap: the session is killed after it.
	if w.admitted(t, st.Token) {
		t.Errorf("after the call that reached the cap: session still admitted, want it killed")
	}
	killed := w.audit.kind(audit.KindSessionKilled)
	if len(killed) != 1 || killed[0].Session != st.ID || !strings.Contains(string(killed[0].Detail), `"by":"budget"`) {
		t.Errorf("session.killed: got %+v, want one by budget", killed)
	}

	w.setBudgets(t, "work", `{"limits":{"session":{"tool_calls":1}},"on_exhaust":"refuse"}`)
	st2 := w.envSession(t, "work", "")
	w.agentCheck(t, st2.Token, hook.PreToolUse, "Bash")
	w.setBudgets(t, "work", `{"on_exhaust":"kill"}`)
	d := w.agentCheck(t, st2.Token, hook.PreToolUse, "Bash")
	if d.Allow || !strings.Contains(d.Reason, BudgetErrorCode) {
		t.Errorf("call past the cap with kill: got %+v, want the budget's refusal", d)
	}
	if w.admitted(t, st2.Token) {
		t.Errorf("after the refused call: session still admitted, want it killed")
	}
}

// TestRuntimeCapTimer: a session's runtime cap ends it when it passes,
// with no request: kill runs the kill switch (session.killed by budget);
// refuse records budget.exhausted once and refuses its calls, the
// session living on. A cap raised before it passes moves the timer.
func TestRuntimeCapTimer(t *testing.T) {
	w := rlWorld(t)
	w.setBudgets(t, "work", `{"limits":{"session":{"runtime":"1m"}}}`)
	st := w.envSession(t, "work", "")
	w.clock.Advance(59 * time.Second)
	if len(w.audit.kind(audit.KindSessionKilled)) != 0 {
		t.Fatalf("before the cap: got a kill")
	}
	w.clock.Advance(time.Second)
	killed := w.audit.kind(audit.KindSessionKilled)
	if len(killed) != 1 || killed[0].Session != st.ID || !strings.Contains(string(killed[0].Detail), "runtime") {
		t.Fatalf("at the cap: session.killed %+v, want one for the runtime cap", killed)
	}
	if exh := w.audit.kind(audit.KindBudgetExhausted); len(exh) != 1 || !strings.Contains(string(exh[0].Detail), `"cap":"runtime"`) {
		t.Errorf("budget.exhausted: got %+v, want one for runtime", exh)
	}
	if w.admitted(t, st.Token) {
		t.Errorf("after the runtime cap: session still admitted")
	}

	// Raised while it runs: the timer follows the new cap.
	st2 := w.envSession(t, "work", "")
	w.clock.Advance(30 * time.Second)
	w.setBudgets(t, "work", `{"limits":{"session":{"runtime":"2m"}}}`)
	w.clock.Advance(60 * time.Second)
	if !w.admitted(t, st2.Token) {
		t.Fatalf("after the old cap, before the raised one: session gone")
	}
	w.clock.Advance(30 * time.Second)
	if w.admitted(t, st2.Token) {
		t.Errorf("at the raised cap: session still admitted")
	}

	// refuse: recorded once, calls refused, the session lives.
	w.setBudgets(t, "work", `{"limits":{"session":{"runtime":"1m"}},"on_exhaust":"refuse"}`)
	st3 := w.envSession(t, "work", "")
	before := len(w.audit.kind(audit.KindBudgetExhausted))
	w.clock.Advance(2 * time.Minute)
	if got := len(w.audit.kind(audit.KindBudgetExhausted)) - before; got != 1 {
		t.Errorf("refuse: got %d budget.exhausted records, want 1", got)
	}
	if d := w.agentCheck(t, st3.Token, hook.PreToolUse, "Bash"); d.Allow || !strings.Contains(d.Reason, "runtime") {
		t.Errorf("refuse: a call after the cap got %+v, want refused for the runtime cap", d)
	}
	if !w.admitted(t, st3.Token) {
		t.Errorf("refuse: session ended, want it alive")
	}
}

// TestRuntimeCapOfTheSessionsOwnBudget: a cap given at the session's
// start (profiles run --budget) arms the timer too.
func TestRuntimeCapOfTheSessionsOwnBudget(t *testing.T) {
	w := rlWorld(t)
	st := w.envSession(t, "work", `,"budget":{"runtime":"10s"}`)
	w.clock.Advance(10 * time.Second)
	if w.admitted(t, st.Token) {
		t.Errorf("after its own runtime cap: session still admitted")
	}
}

// TestAgentCallThatReachesTheCapIsAnsweredOverTheSocket: a sandboxed
// agent asks through its session socket; the call that reaches its
// tool-call cap (kill action) is answered "allow" before the kill closes
// that socket, and the session is killed after.
func TestAgentCallThatReachesTheCapIsAnsweredOverTheSocket(t *testing.T) {
	w := rlWorld(t)
	w.setBudgets(t, "work", `{"limits":{"session":{"tool_calls":1}}}`)
	st := w.envSession(t, "work", `,"socket":true`)
	if st.Socket == "" {
		t.Fatal("no session socket")
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", st.Socket)
	}}}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", "http://127.0.0.1:"+itoaInt(sandbox.ForwarderPort)+"/session/hooks/check",
		strings.NewReader(`{"event":"pre-tool-use","tool_name":"Bash","tool_input":{"command":"ls"}}`))
	req.Header.Set("Authorization", "Bearer "+st.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("the call that reaches the cap: %v, want its answer before the kill", err)
	}
	var d hook.Decision
	decode(t, resp, http.StatusOK, &d)
	if !d.Allow {
		t.Errorf("the call that reaches the cap: got %+v, want allowed", d)
	}
	// The kill follows the answer.
	waitUntil(t, "the session killed after the answer", func() bool { return len(w.audit.kind(audit.KindSessionKilled)) > 0 })
	if killed := w.audit.kind(audit.KindSessionKilled); len(killed) != 1 || killed[0].Session != st.ID {
		t.Errorf("session.killed: got %+v, want one for %s", killed, st.ID)
	}
}
