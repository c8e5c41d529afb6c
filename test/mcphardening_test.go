package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// auditRecords is `ringlet audit query --kind KIND --json`, newest first.
func auditRecords(t *testing.T, e *env, kind string) []struct {
	Kind, Profile, Target, Decision string
	Detail                          map[string]any
} {
	t.Helper()
	var page struct {
		Records []struct {
			Kind, Profile, Target, Decision string
			Detail                          map[string]any
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", kind, "--json")), &page); err != nil {
		t.Fatal(err)
	}
	return page.Records
}

// TestMCPUpstreamRestarts drives a sandboxed stdio server through the
// real daemon: a call it never answers ends its run (the hung process is
// killed, the restart audited as mcp.server_restart, 'mcp list' tells
// the truth) and the next call runs on a new process; a crash mid-call is
// audited the same way and the next call works too.
func TestMCPUpstreamRestarts(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	marker := filepath.Join(e.Root, "pid-"+sbRandomHex(4))
	mustRun(t, e, "mcp", "add", "work", "up", "--timeout", "3s", "--", bin, "-pid", marker)
	work := []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}

	got := stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "first"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "first") {
		t.Fatalf("up__echo: got %v %q", isErr, text)
	}
	hung := markedProcesses(marker)
	if len(hung) == 0 {
		t.Fatal("no process on the host runs the server")
	}

	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__hang", map[string]string{}))
	if text, isErr := callText(t, got["2"]); !isErr || !strings.Contains(text, "no answer within 3s") {
		t.Errorf("the hung call: got %v %q, want a timeout error", isErr, text)
	}
	if !waitFor(10*time.Second, func() bool { return !slices.ContainsFunc(hung, func(p int) bool { return !pidGone(p) }) }) {
		t.Errorf("the hung server's processes %v still run", hung)
	}
	// Restarted without waiting for a call (a call right away would wait
	// for it within its own 3s, which a busy machine may not give it).
	if !waitFor(30*time.Second, func() bool { s := mcpServers(t, e, "work"); return len(s) == 1 && s[0].State == "running" }) {
		t.Fatalf("mcp list after the hang: got %+v, want up running again", mcpServers(t, e, "work"))
	}
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "after the hang"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "after the hang") {
		t.Errorf("the call after the hang: got %v %q, want it answered", isErr, text)
	}
	recs := auditRecords(t, e, "mcp.server_restart")
	if len(recs) != 1 || recs[0].Profile != "work" || recs[0].Target != "up" || recs[0].Decision != "error" ||
		recs[0].Detail["reason"] != "timeout" || recs[0].Detail["tool"] != "hang" {
		t.Errorf("audit of the timeout: got %+v, want one mcp.server_restart of work/up, reason timeout, tool hang", recs)
	}

	// A crash mid-call: an error for the call, an audit record, and the
	// next call works once the server is back.
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__crash", map[string]string{}))
	if text, isErr := callText(t, got["2"]); !isErr || !strings.Contains(text, "exited during the call") {
		t.Errorf("the crashing call: got %v %q, want an error saying the server exited", isErr, text)
	}
	if !waitFor(10*time.Second, func() bool { return len(auditRecords(t, e, "mcp.server_restart")) == 2 }) {
		t.Fatalf("audit after the crash: got %+v, want a second mcp.server_restart", auditRecords(t, e, "mcp.server_restart"))
	}
	if !waitFor(30*time.Second, func() bool { s := mcpServers(t, e, "work"); return len(s) == 1 && s[0].State == "running" }) {
		t.Fatalf("mcp list after the crash: got %+v, want up running again", mcpServers(t, e, "work"))
	}
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "after the crash"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "after the crash") {
		t.Errorf("the call after the crash: got %v %q, want it answered", isErr, text)
	}
	recs = auditRecords(t, e, "mcp.server_restart")
	if recs[0].Detail["reason"] != "crash" || !strings.Contains(recs[0].Detail["error"].(string), "boom") || recs[0].Detail["failures"] != float64(2) {
		t.Errorf("audit of the crash: got %+v, want reason crash with the server's stderr, the second failure in a row", recs[0])
	}
	_, _, body := d.MustGet(t, "/api/mcp/servers?profile=work", e.Token(), nil)
	if !strings.Contains(string(body), `"state":"running"`) {
		t.Errorf("GET /api/mcp/servers after the crash: got %s, want up running", body)
	}
	e.AssertNoSecret(e.Token())
}

// startHostileMCP runs the test server's hostile HTTP MCP server (it
// echoes the bearer token it is sent in every answer) and returns its
// base URL.
func startHostileMCP(t *testing.T, bin string) string {
	t.Helper()
	urlFile := filepath.Join(t.TempDir(), "url")
	cmd := exec.Command(bin, "-hostile", urlFile)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var url []byte
	if !waitFor(10*time.Second, func() bool {
		url, _ = os.ReadFile(urlFile)
		return len(url) > 0
	}) {
		t.Fatal("the hostile MCP server did not start")
	}
	return string(url)
}

// mcpHTTP speaks MCP to the daemon's /mcp with one token, keeping every
// answer it receives (headers and bodies) in seen.
type mcpHTTP struct {
	t    *testing.T
	url  string
	tok  string
	sid  string
	seen bytes.Buffer
}

func (c *mcpHTTP) post(body string) string {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.sid != "" {
		req.Header.Set("Mcp-Session-Id", c.sid)
		req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		c.t.Fatalf("POST /mcp: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Header.Write(&c.seen)
	c.seen.Write(data)
	if s := resp.Header.Get("Mcp-Session-Id"); s != "" {
		c.sid = s
	}
	return string(data)
}

// TestMCPUpstreamCredentialNeverLeaks: an HTTP MCP server added with
// --credential gets the stored key as its bearer token, and echoes it
// back everywhere it can (a tool result, a JSON-RPC error, progress
// messages, a tool description, its stream's error body, a failed
// initialize). The agent's client never sees the key, nor does the audit
// database or anything the daemon logs or prints.
func TestMCPUpstreamCredentialNeverLeaks(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	canary := newCanary(t, "mcp")
	if _, stderr, code := e.RunInput(canary+"\n", "keychain", "set", "docs", "team"); code != 0 {
		t.Fatalf("keychain set: exit %d, stderr %q", code, stderr)
	}
	base := startHostileMCP(t, bin)
	mustRun(t, e, "mcp", "add", "work", "docs", "--url", base+"/mcp", "--credential", "docs/team", "--timeout", "10s")
	mustRun(t, e, "mcp", "add", "work", "bad", "--url", base+"/bad/mcp", "--credential", "docs/team", "--timeout", "10s")

	// A failure message shows the answer with the key masked.
	mask := func(s string) string { return strings.ReplaceAll(s, canary, "<KEY>") }
	c := &mcpHTTP{t: t, url: d.URL + "/mcp", tok: mcpSessionToken(t, e, "work")}
	c.post(stdioInit)
	c.post(stdioInitialized)
	if list := c.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); !strings.Contains(list, "docs__leak") || !strings.Contains(list, "Sends [redacted] along.") {
		t.Fatalf("tools/list: got %s, want the hostile server's tools, the key redacted from a description", mask(list))
	}
	for i, call := range []struct{ tool, meta, want string }{
		{"docs__leak", "", "the key is [redacted], escaped [redacted]"},
		{"docs__leak_error", "", "no access for [redacted]"},
		{"docs__leak_progress", `,"_meta":{"progressToken":"p"}`, "step 1 with [redacted]"},
	} {
		body := c.post(`{"jsonrpc":"2.0","id":` + strconv.Itoa(i+3) + `,"method":"tools/call","params":{"name":"` + call.tool + `","arguments":{}` + call.meta + `}}`)
		if !strings.Contains(body, call.want) {
			t.Errorf("%s: got %s, want %q", call.tool, mask(body), call.want)
		}
	}

	s := mcpServers(t, e, "work")
	if i := slices.IndexFunc(s, func(v mcpServerView) bool { return v.Name == "bad" }); i < 0 || !strings.Contains(s[i].Error, "no account for [redacted]") {
		t.Errorf("mcp list: got %s, want bad failed with the key redacted", mask(fmt.Sprintf("%+v", s)))
	}
	recs := auditRecords(t, e, "mcp.server_restart")
	if len(recs) == 0 || !strings.Contains(recs[len(recs)-1].Detail["error"].(string), "[redacted]") {
		t.Errorf("audit: got %s, want bad's failed start with the key redacted", mask(fmt.Sprintf("%+v", recs)))
	}
	logs := func() string {
		data, _ := os.ReadFile(e.LogFile())
		return d.Stderr() + string(data)
	}
	if !waitFor(10*time.Second, func() bool { return strings.Contains(logs(), "stream refused for [redacted]") }) {
		t.Errorf("daemon log: got no stream failure of docs with the key redacted; the log check proves nothing\n%s", mask(logs()))
	}

	assertNoLeak(t, "the MCP client's answers", c.seen.Bytes(), canary)
	assertNoLeak(t, "the daemon's log", []byte(logs()), canary)
	assertNoLeak(t, "audit.db", dbBytes(t, filepath.Join(e.StateDir(), "audit.db")), canary)
	e.AssertNoSecret(canary, e.Token())
}

// mcpSessionsMetric is ringlet_mcp_sessions from /metrics.
func mcpSessionsMetric(t *testing.T, e *env, d *daemon) string {
	t.Helper()
	_, _, body := d.MustGet(t, "/metrics", e.Token(), nil)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "ringlet_mcp_sessions "); ok {
			return v
		}
	}
	t.Fatal("/metrics: no ringlet_mcp_sessions")
	return ""
}

// TestMCPSessionLimitAndRevocation: a client that never sends DELETE can
// initialize past the per-token limit against the real daemon (each
// initialize ends the least recently used session, whose id then gets
// 404), the live count never passes the limit, and revoking the session
// token frees every MCP session it held.
func TestMCPSessionLimitAndRevocation(t *testing.T) {
	t.Parallel()
	e, d := newMCPEnv(t)
	var s struct{ ID, Token string }
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", "work", "--json")), &s); err != nil || s.ID == "" {
		t.Fatalf("profiles env --json: %v, session %q", err, s.ID)
	}
	var first string
	for i := range 300 {
		c := &mcpHTTP{t: t, url: d.URL + "/mcp", tok: s.Token}
		if body := c.post(stdioInit); !strings.Contains(body, `"protocolVersion"`) || c.sid == "" {
			t.Fatalf("initialize %d: got %s, want a session", i+1, body)
		}
		if i == 0 {
			first = c.sid
		}
	}
	if got := mcpSessionsMetric(t, e, d); got != "256" {
		t.Errorf("ringlet_mcp_sessions after 300 initializes: got %s, want 256 (the limit)", got)
	}
	old := &mcpHTTP{t: t, url: d.URL + "/mcp", tok: s.Token, sid: first}
	if body := old.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`); !strings.Contains(body, "no such MCP session") {
		t.Errorf("the evicted session: got %s, want it unknown", body)
	}
	mustRun(t, e, "sessions", "revoke", s.ID)
	if !waitFor(10*time.Second, func() bool { return mcpSessionsMetric(t, e, d) == "0" }) {
		t.Errorf("ringlet_mcp_sessions after the revocation: got %s, want 0", mcpSessionsMetric(t, e, d))
	}
}

// TestHookAdapterRefusesAmbiguousInput: Claude Code's hook adapter hands
// the daemon a tool input with a key twice; the daemon refuses to judge
// it and the adapter blocks the call (exit 2) saying why.
func TestHookAdapterRefusesAmbiguousInput(t *testing.T) {
	t.Parallel()
	e, d := newMCPEnv(t)
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--shell", `echo "$RINGLET_TOOL_INPUT" | grep -qv EVIL`)
	env := []string{"RINGLET_HOOK_URL=" + d.URL, "RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}
	for _, tc := range []struct {
		input string
		code  int
		want  string
	}{
		{`{"command":"ls"}`, 0, ""},
		{`{"command":"ls","command":"EVIL"}`, 2, `the key "command" appears twice in tool_input`},
		{`{"command":"ls","Command":"EVIL"}`, 2, "differ only in case"},
	} {
		cmd := e.command(t.Context(), ringletBin, "hook", "claude-pre-tool-use")
		cmd.Env = append(cmd.Env, env...)
		cmd.Stdin = strings.NewReader(`{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":` + tc.input + `}`)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("tool input %s: got exit %d, stderr %q; want exit %d saying %q", tc.input, code, stderr.String(), tc.code, tc.want)
		}
	}
}
