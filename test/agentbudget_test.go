package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// agentHook runs the Claude Code PreToolUse adapter of session s on one
// tool call, as Claude Code does, and returns its exit code and stderr.
func agentHook(t *testing.T, w *proxyWorld, s proxySession, tool string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ringletBin, "hook", "claude-pre-tool-use")
	cmd.Env = append(w.e.Environ(), "RINGLET_SESSION_URL="+s.Env()["RINGLET_SESSION_URL"], "RINGLET_SESSION_TOKEN="+s.Token)
	cmd.Stdin = strings.NewReader(`{"hook_event_name":"PreToolUse","tool_name":"` + tool + `","tool_input":{"command":"ls"}}`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, stderr.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), stderr.String()
	}
	t.Fatalf("ringlet hook claude-pre-tool-use: %v", err)
	return 0, ""
}

// sessionInspect is what 'sessions inspect --json' shows of the budget
// and the rate limits.
type sessionInspect struct {
	Budget *struct {
		Spent struct {
			ToolCalls int64 `json:"tool_calls"`
		} `json:"spent"`
		Remaining struct {
			ToolCalls int64 `json:"tool_calls"`
		} `json:"remaining"`
	} `json:"budget"`
	RateLimits []struct {
		Scope, Limit string
		PerMinute    int64   `json:"per_minute"`
		Available    float64 `json:"available"`
		Throttled    int64   `json:"throttled"`
	} `json:"rate_limits"`
}

// TestAgentToolCallsCount: rate limits and budgets set with the flags of
// 'profiles create' and 'profiles set' pace and cap the agent's own tool
// calls, asked about by its hook adapter (the real 'ringlet hook
// claude-pre-tool-use'): past the limit or the cap the adapter exits 2
// with Ringlet's reason, which Claude Code shows; each refusal is audited
// with the limit or budget; a tool of Ringlet's MCP gateway is left to
// the gateway (not counted twice); 'sessions inspect' shows both; the
// spend survives a restart.
func TestAgentToolCallsCount(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "tools", "fake", "--command", "true", "--rate-session-tool-calls", "2",
		"--budget-session", "tools=3", "--budget-on-exhaust", "refuse")
	var limits struct {
		SessionToolCalls int64 `json:"session_tool_calls"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "ratelimits", "show", "tools", "--json")), &limits); err != nil || limits.SessionToolCalls != 2 {
		t.Fatalf("ratelimits show after 'profiles create --rate-session-tool-calls 2': got %+v (%v)", limits, err)
	}
	if _, stderr, code := w.e.Run("profiles", "set", "tools", "--rate-session-tool-calls", "-3"); code != 2 || !strings.Contains(stderr, "--rate-session-tool-calls") {
		t.Errorf("profiles set with a negative rate: exit %d, stderr %q; want 2 naming the flag", code, stderr)
	}
	s := w.startSession("tools")

	for i := range 2 {
		if code, stderr := agentHook(t, w, s, "Bash"); code != 0 {
			t.Fatalf("tool call %d: exit %d (%s), want allowed", i+1, code, stderr)
		}
	}
	if code, stderr := agentHook(t, w, s, "mcp__ringlet__session_info"); code != 0 {
		t.Errorf("a tool of Ringlet's MCP gateway: exit %d (%s), want it left to the gateway", code, stderr)
	}
	code, stderr := agentHook(t, w, s, "Bash")
	if code != 2 || !strings.Contains(stderr, "2 tool calls a minute") {
		t.Fatalf("third tool call: exit %d, stderr %q; want 2 with the rate limit's reason", code, stderr)
	}
	var info sessionInspect
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "sessions", "inspect", s.ID, "--json")), &info); err != nil || len(info.RateLimits) != 1 ||
		info.RateLimits[0].Scope != "session" || info.RateLimits[0].Limit != "tool_calls" || info.RateLimits[0].PerMinute != 2 || info.RateLimits[0].Throttled != 1 ||
		info.RateLimits[0].Available >= 1 || info.Budget == nil || info.Budget.Spent.ToolCalls != 2 || info.Budget.Remaining.ToolCalls != 1 {
		t.Fatalf("sessions inspect --json: got %+v (%v), want the tool-call limit (2 a minute, empty, throttled once) and 2 of 3 tool calls spent", info, err)
	}
	if out := mustRun(t, w.e, "sessions", "inspect", s.ID); !strings.Contains(out, "rate limit session tool_calls") || !strings.Contains(out, "of 2 a minute, throttled 1") ||
		!strings.Contains(out, "budget tool_calls") {
		t.Errorf("sessions inspect: got %q, want the rate limit's and the budget's state", out)
	}
	limited := false
	for _, r := range budgetRecords(t, w.e, s.ID, "rate.limited") {
		limited = limited || r.Target == "Bash" && r.Detail["limit"] == "tool_calls"
	}
	if !limited {
		t.Errorf("no rate.limited record for the refused Bash call")
	}

	// The limit lifted with 'profiles set': the budget still caps them.
	mustRun(t, w.e, "profiles", "set", "tools", "--rate-session-tool-calls", "0")
	if code, stderr := agentHook(t, w, s, "Edit"); code != 0 {
		t.Fatalf("the third counted call: exit %d (%s), want allowed", code, stderr)
	}
	code, stderr = agentHook(t, w, s, "Write")
	if code != 2 || !strings.Contains(stderr, "budget session/"+s.ID) || !strings.Contains(stderr, "budget_exhausted") {
		t.Fatalf("the call past the tool-call cap: exit %d, stderr %q; want 2 naming budget session/%s", code, stderr, s.ID)
	}
	refused := budgetRecords(t, w.e, s.ID, "budget.refused")
	if len(refused) != 1 || refused[0].Detail["cap"] != "tool_calls" || refused[0].Detail["request"] != "tool.call Write" {
		t.Errorf("budget.refused records: got %+v, want one for Write at the tool_calls cap", refused)
	}

	// A restart reads the three counted calls back from the audit log.
	w.restart(t, false)
	info = sessionInspect{}
	if err := json.Unmarshal([]byte(mustRun(t, w.e, "sessions", "inspect", s.ID, "--json")), &info); err != nil || info.Budget == nil || info.Budget.Spent.ToolCalls != 3 {
		t.Fatalf("after a restart: sessions inspect got %+v (%v), want 3 tool calls spent", info.Budget, err)
	}
	if code, _ := agentHook(t, w, s, "Bash"); code != 2 {
		t.Errorf("after a restart, a call past the cap: exit %d, want 2", code)
	}
}

// TestRuntimeCapEndsAnIdleSession: a session whose runtime cap passes
// while it sends nothing is killed when it passes (session.killed by
// budget, budget.exhausted for runtime), not at its next request; its
// token then gets the budget's refusal.
func TestRuntimeCapEndsAnIdleSession(t *testing.T) {
	t.Parallel()
	w := newProxyWorld(t)
	w.newProfile("generic", "brief", "fake", "--command", "true", "--budget-session", "runtime=2s")
	s := w.startSession("brief")
	deadline := time.Now().Add(60 * time.Second)
	for {
		if endReason(t, w.e, s.ID) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session's runtime cap (2s) passed 60s ago and it has not ended; records: %+v", sessionRecords(t, w.e, s.ID))
		}
		time.Sleep(100 * time.Millisecond) // polling the audit log, not a request of the session
	}
	killed := budgetRecords(t, w.e, s.ID, "session.killed")
	if len(killed) != 1 || killed[0].Detail["by"] != "budget" || !strings.Contains(fmt.Sprint(killed[0].Detail["reason"]), "runtime") {
		t.Errorf("session.killed records: got %+v, want one by budget for the runtime cap", killed)
	}
	if exh := budgetRecords(t, w.e, s.ID, "budget.exhausted"); len(exh) != 1 || exh[0].Detail["cap"] != "runtime" {
		t.Errorf("budget.exhausted records: got %+v, want one for runtime", exh)
	}
	before := len(w.fake.Requests())
	status, _, body := w.send(t, "POST", "/v1/messages", anthropicHeaders(s.Token), messages(8, false))
	if status != http.StatusBadRequest || !strings.Contains(string(body), "runtime") {
		t.Errorf("a request after the kill: got %d %s, want the runtime budget's refusal", status, body)
	}
	if n := len(w.fake.Requests()); n != before {
		t.Errorf("a request after the kill reached the provider")
	}
}

// TestClaudeCodeToolCallBudget: the real Claude Code (-p) whose session
// has spent its tool-call budget on one call: its next Bash tool_use is
// denied by its own PreToolUse hook with Ringlet's reason, which goes
// back to the model as the tool's error; the command does not run.
func TestClaudeCodeToolCallBudget(t *testing.T) {
	t.Parallel()
	requireNode(t)
	claudeBin(t)
	w := newProxyWorld(t)
	key := w.newProfile("claude", "cc", "fake", "--model", "claude-sonnet-4-5", "--budget-session", "tools=1", "--budget-on-exhaust", "refuse")
	s := w.startSession("cc")
	if code, stderr := agentHook(t, w, s, "Read"); code != 0 {
		t.Fatalf("the one call the budget allows: exit %d (%s)", code, stderr)
	}
	work := t.TempDir()
	marker := filepath.Join(work, "marker")
	cmd := "touch " + marker
	w.fake.ToolUse.Store(&cmd)
	cenv := clientEnv(t, s, t.TempDir(), key, claudeOffline...)
	res := runClaude(t, work, cenv, "-p", "create the marker", "--output-format", "json", "--allowedTools", "Bash(touch:*)")
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the marker was created: the call past the tool-call budget ran")
	}
	tr := toolRoundTrip(t, w.fake, res)
	if !tr.IsError || !strings.Contains(tr.Text, "budget session/"+s.ID) || !strings.Contains(tr.Text, "budget_exhausted") {
		t.Errorf("tool_result: got %+v, want is_error with the budget's reason naming session/%s", tr, s.ID)
	}
	if refused := budgetRecords(t, w.e, s.ID, "budget.refused"); len(refused) != 1 || refused[0].Detail["request"] != "tool.call Bash" {
		t.Errorf("budget.refused records: got %+v, want one for Bash", refused)
	}
	w.assertNoKeyLeak(t, key)
}
