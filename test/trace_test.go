package test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// traceNode is a node of 'audit trace --json'.
type traceNode struct {
	SpanID       string `json:"span_id"`
	ParentSpanID string `json:"parent_span_id"`
	Kind         string `json:"kind"`
	Link         string `json:"link"`
	Record       *struct {
		Seq    int64           `json:"seq"`
		Target string          `json:"target"`
		Detail json.RawMessage `json:"detail"`
	} `json:"record"`
	ToolUse *struct {
		ID, Name    string
		InputDigest string `json:"input_digest"`
	} `json:"tool_use"`
	Children []*traceNode `json:"children"`
}

func (n *traceNode) via() string {
	var d struct{ Via string }
	if n.Record != nil {
		_ = json.Unmarshal(n.Record.Detail, &d) // a record without it has no via
	}
	return d.Via
}

// child is n's first child of kind (and via, for tool.call), or nil.
func (n *traceNode) child(kind, via string) *traceNode {
	for _, c := range n.Children {
		if c.Kind == kind && (via == "" || c.via() == via) {
			return c
		}
	}
	return nil
}

var toolUseIDRE = regexp.MustCompile(`toolu_fake[A-Za-z0-9_]+`)

// TestAuditTraceLinksATurn: a provider answer with a tool_use of an MCP
// tool, Claude Code's PreToolUse check carrying its tool_use_id, the MCP
// tools/call (no id: inferred), and the next request carrying the
// tool_result, through the real daemon and binary, make one trace whose
// tree 'audit trace --json' prints with the right parents. Then the
// hook bypass: an MCP call no check allowed is flagged by default and
// refused with strict hooks.
func TestAuditTraceLinksATurn(t *testing.T) {
	e := newEnv(t)
	key := proxyCanary("trace")
	fake := fakeprovider.New(key)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	bin := buildMCPTestServer(t)
	d := e.StartDaemon()
	mustRun(t, e, "providers", "add", "fake", "--base-url", srv.URL, "--format", "anthropic", "--auth", "x-api-key")
	if _, stderr, code := e.RunInput(key, "profiles", "create", "claude", "work", "--provider", "fake"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	mustRun(t, e, "mcp", "add", "work", "up", "--no-sandbox", "--", bin)
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--shell", "exit 0")
	var sess hkSession
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &sess); err != nil {
		t.Fatal(err)
	}
	cmd, name, input := "x", "mcp__ringlet__up__echo", `{"text":"hi"}`
	fake.ToolUse.Store(&cmd)
	fake.ToolName.Store(&name)
	fake.ToolInput.Store(&input)

	post := func(body string) string {
		t.Helper()
		code, b := postMessages(t, sess.BaseURL, sess.Token, body)
		if code != 200 {
			t.Fatalf("POST /v1/messages: %d %s", code, b)
		}
		return string(b)
	}
	// One turn: a streamed answer with the tool_use.
	answer := post(`{"model":"claude-test","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"echo hi"}]}`)
	toolUseID := toolUseIDRE.FindString(answer)
	if toolUseID == "" {
		t.Fatalf("no tool_use in the answer: %s", answer)
	}
	// Claude Code's PreToolUse check, with the tool_use_id.
	event := `{"session_id":"x","hook_event_name":"PreToolUse","tool_use_id":"` + toolUseID + `","tool_name":"` + name + `","tool_input":` + input + `}`
	if stderr, code := hkClaude(t, e, sess, event, ringletBin, "hook", "claude-pre-tool-use"); code != 0 {
		t.Fatalf("hook claude-pre-tool-use: exit %d, stderr %q", code, stderr)
	}
	// The MCP call Claude Code then makes (no id of the tool_use in it).
	got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + sess.Token}, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "hi"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "hi") {
		t.Fatalf("tools/call up__echo: %q (error %v)", text, isErr)
	}
	// The next request carries the result back.
	post(`{"model":"claude-test","max_tokens":10,"messages":[{"role":"user","content":"echo hi"},{"role":"assistant","content":[{"type":"tool_use","id":"` + toolUseID +
		`","name":"` + name + `","input":` + input + `}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"` + toolUseID + `","content":"hi"}]}]}`)

	var page struct {
		Records []struct {
			Seq     int64  `json:"seq"`
			Kind    string `json:"kind"`
			TraceID string `json:"trace_id"`
		} `json:"records"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "provider.request", "--json")), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Records) != 2 || page.Records[0].TraceID == "" || page.Records[0].TraceID != page.Records[1].TraceID {
		t.Fatalf("provider.request records: %+v, want two in one trace", page.Records)
	}
	traceID := page.Records[0].TraceID
	var tr struct {
		TraceID string       `json:"trace_id"`
		Roots   []*traceNode `json:"roots"`
	}
	// Named by a record's number, the same trace.
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "trace", strconv.FormatInt(page.Records[1].Seq, 10), "--json")), &tr); err != nil {
		t.Fatal(err)
	}
	if tr.TraceID != traceID || len(tr.Roots) != 1 || tr.Roots[0].Kind != "provider.request" {
		raw, _ := json.MarshalIndent(tr, "", " ")
		t.Fatalf("trace: %s; want one root, the first provider request of trace %s", raw, traceID)
	}
	use := tr.Roots[0].child("tool_use", "")
	if use == nil || use.ToolUse.ID != toolUseID || use.ToolUse.Name != name || !strings.HasPrefix(use.ToolUse.InputDigest, "sha256:") {
		t.Fatalf("the request's tool_use: %+v, want %s", use, toolUseID)
	}
	agentCall := use.child("tool.call", "agent")
	if agentCall == nil || agentCall.Link != "carried" || agentCall.child("hook.decision", "") == nil {
		t.Errorf("the agent's check: %+v, want a tool.call via agent under the tool_use (carried), its hook decision under it", agentCall)
	}
	mcpCall := use.child("tool.call", "mcp")
	if mcpCall == nil || mcpCall.Link != "inferred" || mcpCall.Record.Target != "up__echo" || mcpCall.child("hook.decision", "") == nil {
		t.Errorf("the MCP call: %+v, want a tool.call via mcp under the tool_use (inferred), its hook decision under it", mcpCall)
	}
	if next := use.child("provider.request", ""); next == nil || next.Link != "carried" {
		t.Errorf("the next request: %+v, want it under the tool_use (carried)", next)
	}
	if use.child("hook.bypass", "") != nil {
		t.Error("a checked tool call was flagged as a hook bypass")
	}
	text := mustRun(t, e, "audit", "trace", traceID)
	for _, want := range []string{"trace " + traceID, "provider.request /v1/messages model claude-test", "tool_use " + name + " (" + toolUseID + ")", "tool.call up__echo via mcp", "(inferred)"} {
		if !strings.Contains(text, want) {
			t.Errorf("audit trace: no %q in\n%s", want, text)
		}
	}
	if q := mustRun(t, e, "audit", "query", "--trace", traceID, "--json"); strings.Count(q, `"seq"`) < 6 {
		t.Errorf("audit query --trace: %s, want the trace's records", q)
	}

	// Bad references: one line saying what to give, non-zero.
	for ref, want := range map[string]int{"nope": 2, "99999": 1, "00000000000000000000000000000001": 1} {
		_, stderr, code := e.Run("audit", "trace", ref)
		if code != want || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || stderr == "" {
			t.Errorf("audit trace %s: exit %d, stderr %q; want %d and one line", ref, code, stderr, want)
		}
	}
	if st, _, body := d.MustGet(t, "/api/audit/traces/"+traceID, e.Token(), nil); st != 200 || !strings.Contains(string(body), toolUseID) {
		t.Errorf("GET /api/audit/traces/%s: %d %s", traceID, st, body)
	}

	// An MCP call that no PreToolUse check allowed: flagged by default.
	post(`{"model":"claude-test","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"again"}]}`)
	got = stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + sess.Token}, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "hi"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "hi") {
		t.Fatalf("tools/call without a check, default mode: %q (error %v), want it allowed", text, isErr)
	}
	if q := mustRun(t, e, "audit", "query", "--kind", "hook.bypass", "--decision", "allow", "--json"); !strings.Contains(q, `"hook.bypass"`) || !strings.Contains(q, `"seen_by": "mcp"`) {
		t.Errorf("hook.bypass after an unchecked MCP call: %s", q)
	}
	// Strict hooks: refused, with a JSON-RPC error saying how to change it.
	mustRun(t, e, "profiles", "set", "work", "--strict-hooks")
	post(`{"model":"claude-test","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"and again"}]}`)
	got = stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + sess.Token}, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "hi"}))
	if m := got["2"]; m.Error == nil || !strings.Contains(m.Error.Message, "strict hooks") || !strings.Contains(m.Error.Message, "--strict-hooks=false") {
		t.Errorf("tools/call without a check, strict: %+v, want a JSON-RPC error naming strict hooks and how to turn them off", m)
	}
	if q := mustRun(t, e, "audit", "query", "--kind", "hook.bypass", "--decision", "deny", "--json"); !strings.Contains(q, `"strict": true`) {
		t.Errorf("hook.bypass deny record: %s", q)
	}
	if status, _, body := d.MustGet(t, "/metrics", e.Token(), nil); status != http.StatusOK ||
		!strings.Contains(string(body), `ringlet_mcp_tool_calls_total{decision="strict",profile="work",server="up",tool="echo"} 1`) {
		t.Errorf("/metrics after the strict refusal: %d, want ringlet_mcp_tool_calls_total{decision=strict,...,tool=echo} 1 in:\n%s", status, body)
	}
	if out := mustRun(t, e, "audit", "verify"); !strings.Contains(out, "is intact") {
		t.Errorf("audit verify after traced records: %s", out)
	}
	e.AssertNoSecret(key)
}
