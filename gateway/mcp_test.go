package gateway

import (
	"context"
	"encoding/json"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/audit/auditlog"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
)

// mcpWorld is a live daemon with two profiles (work, other), a stored key
// for each, hooks, a real audit log and the MCP gateway.
type mcpWorld struct {
	s         *Server
	ts        *httptest.Server
	hooks     *hook.Store
	auditPath string
	home      string // work's HOME
}

func newMCPWorld(t *testing.T) *mcpWorld {
	t.Helper()
	return newMCPWorldWith(t, nil)
}

// newMCPWorldWith is newMCPWorld with its options changed by change.
func newMCPWorldWith(t *testing.T, change func(*Options)) *mcpWorld {
	t.Helper()
	configDir, dataDir := t.TempDir(), t.TempDir()
	cat, err := profile.LoadCatalog(configDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.AddProvider(profile.Provider{ID: "local", BaseURL: "http://127.0.0.1:9", Format: "anthropic", Auth: profile.AuthXAPIKey}); err != nil {
		t.Fatal(err)
	}
	profiles := profile.NewStore(configDir, dataDir)
	keys, err := keystore.Open(keystore.Options{Dir: configDir, Backend: credentials.BackendFile})
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []string{"work", "other"} {
		if _, err := profiles.Create(cat, profile.Profile{Alias: alias, Agent: "generic", Provider: "local", Command: []string{"true"}}); err != nil {
			t.Fatalf("Create %s: %v", alias, err)
		}
		if _, err := keys.Set(credentials.Ref{Provider: "local", Alias: alias}, credentials.NewSecret("sk-secret-key-of-"+alias)); err != nil {
			t.Fatal(err)
		}
	}
	w := &mcpWorld{hooks: hook.NewStore(configDir), auditPath: filepath.Join(t.TempDir(), "audit.db"), home: profiles.Home("work")}
	log, err := auditlog.Open(auditlog.Options{Path: w.auditPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { log.Close() })
	opts := Options{
		Profiles: profiles, CatalogDir: configDir, Keys: keys, Launch: launch.New(launch.Options{}), Hooks: w.hooks, Audit: log, AuditPath: w.auditPath,
		MCPStore: mcp.NewStore(configDir), MCPPath: "/usr/local/bin:/usr/bin:/bin",
	}
	if change != nil {
		change(&opts)
	}
	w.s, w.ts = newLiveServer(t, opts)
	t.Cleanup(func() { w.s.mcp.srv.Close() })
	return w
}

// session starts a session of alias and returns its id and token.
func (w *mcpWorld) session(t *testing.T, alias string) (string, string) {
	t.Helper()
	sess, tok, err := w.s.sessions.start(t.Context(), alias, 0, audit.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	return sess.ID, tok
}

// addUp adds the MCP server "up" of profile work, the program bin.
func (w *mcpWorld) addUp(t *testing.T, bin string) {
	t.Helper()
	body, _ := json.Marshal(api.MCPServerRequest{Profile: "work", Name: "up", Command: []string{bin}})
	if status, text := w.rest(t, testToken, "POST", "/api/mcp/servers", string(body)); status != http.StatusCreated {
		t.Fatalf("POST /api/mcp/servers: %d %s", status, text)
	}
}

// connect returns an initialized mcp-go client for tok.
func (w *mcpWorld) connect(t *testing.T, tok string) *client.Client {
	t.Helper()
	return connectVia(t, w.ts.URL, tok, nil)
}

// connectVia returns an initialized mcp-go client of base's /mcp for
// tok, through hc (nil: http.DefaultClient).
func connectVia(t *testing.T, base, tok string, hc *http.Client) *client.Client {
	t.Helper()
	opts := []transport.StreamableHTTPCOption{transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + tok})}
	if hc != nil {
		opts = append(opts, transport.WithHTTPBasicClient(hc))
	}
	c, err := client.NewStreamableHttpClient(base+"/mcp", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// No version asked: mcp-go's client first tries the stateless
	// 2026-07-28 protocol, is told which versions Ringlet serves, and
	// falls back to initialize.
	init := mcpgo.InitializeRequest{}
	init.Params.ClientInfo = mcpgo.Implementation{Name: "gateway-test", Version: "1"}
	res, err := c.Initialize(t.Context(), init)
	if err != nil {
		t.Fatalf("initialize: %v", err)
	}
	if res.ProtocolVersion != "2025-11-25" {
		t.Errorf("negotiated version: got %q, want 2025-11-25", res.ProtocolVersion)
	}
	return c
}

func toolNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ListTools(t.Context(), mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var out []string
	for _, tl := range res.Tools {
		out = append(out, tl.Name)
	}
	slices.Sort(out)
	return out
}

func callTool(t *testing.T, c *client.Client, name string, args map[string]any) (string, bool) {
	t.Helper()
	req := mcpgo.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(t.Context(), req)
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcpgo.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

// buildTestServer builds the upstream MCP server of the mcp package's tests.
func buildTestServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mcptestserver")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/neullabs/ringlet/mcp/internal/testserver/mcptestserver").CombinedOutput()
	if err != nil {
		t.Fatalf("build the test MCP server: %v\n%s", err, out)
	}
	return bin
}

func mcpPost(t *testing.T, w *mcpWorld, hdr map[string]string, body string) *http.Response {
	t.Helper()
	return mcpPostTo(t, w, "/mcp", hdr, body)
}

// mcpPostTo posts an MCP message to target (a path, with any query); a
// "Host" in hdr replaces the request's Host.
func mcpPostTo(t *testing.T, w *mcpWorld, target string, hdr map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.ts.URL+target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const mcpInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

func TestMCPAuthentication(t *testing.T) {
	w := newMCPWorld(t)
	_, sessTok := w.session(t, "work")
	revokedID, revokedTok := w.session(t, "other")
	w.s.sessions.end(t.Context(), revokedID, "revoked", audit.ActorAdmin)
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		query  string
		status int
	}{
		{"admin token", map[string]string{"Authorization": "Bearer " + testToken}, "", 200},
		{"session token", map[string]string{"Authorization": "Bearer " + sessTok}, "", 200},
		{"no token", nil, "", 401},
		{"wrong token", map[string]string{"Authorization": "Bearer " + otherToken}, "", 401},
		{"revoked session token", map[string]string{"Authorization": "Bearer " + revokedTok}, "", 401},
		{"made-up session token", map[string]string{"Authorization": "Bearer rlt_notasession"}, "", 401},
		{"basic scheme", map[string]string{"Authorization": "Basic " + testToken}, "", 401},
		{"token in the query", nil, "?token=" + testToken, 401},
		{"token as x-api-key", map[string]string{"X-Api-Key": sessTok}, "", 401},
		{"token as WebSocket subprotocol", map[string]string{"Sec-WebSocket-Protocol": "bearer, " + testToken}, "", 401},
		{"foreign Host", map[string]string{"Authorization": "Bearer " + testToken, "Host": "evil.example:80"}, "", 403},
		{"foreign Origin", map[string]string{"Authorization": "Bearer " + testToken, "Origin": "http://evil.example"}, "", 403},
		{"same-site page", map[string]string{"Authorization": "Bearer " + testToken, "Sec-Fetch-Site": "same-site"}, "", 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := mcpPostTo(t, w, "/mcp"+tc.query, tc.hdr, mcpInit)
			if resp.StatusCode != tc.status {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status == 200 && !strings.HasPrefix(resp.Header.Get("Mcp-Session-Id"), "rmcp_") {
				t.Errorf("Mcp-Session-Id: got %q, want a Ringlet session id", resp.Header.Get("Mcp-Session-Id"))
			}
			assertNoCORS(t, resp)
		})
	}
}

// TestMCPSessionIDIsNotACredential: an MCP session id alone, or with
// another valid token, gets nothing.
func TestMCPSessionIDIsNotACredential(t *testing.T) {
	w := newMCPWorld(t)
	_, workTok := w.session(t, "work")
	_, work2Tok := w.session(t, "work")
	resp := mcpPost(t, w, map[string]string{"Authorization": "Bearer " + workTok}, mcpInit)
	sid := resp.Header.Get("Mcp-Session-Id")
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	for _, tc := range []struct {
		name   string
		tok    string
		status int
	}{
		{"no token", "", 401},
		{"another session of the same profile", work2Tok, 404},
		{"the admin token", testToken, 404},
		{"the owner", workTok, 200},
	} {
		hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
		if tc.tok != "" {
			hdr["Authorization"] = "Bearer " + tc.tok
		}
		if got := mcpPost(t, w, hdr, list).StatusCode; got != tc.status {
			t.Errorf("%s: got HTTP %d, want %d", tc.name, got, tc.status)
		}
	}
}

func TestMCPAdminToolsAreTheRESTAPI(t *testing.T) {
	w := newMCPWorld(t)
	c := w.connect(t, testToken)
	names := toolNames(t, c)
	want := []string{"audit_query", "audit_trace", "audit_verify", "budgets_clear", "budgets_set", "budgets_show", "hooks_add", "hooks_list", "hooks_remove", "keychain_list", "mcp_servers_approve", "mcp_servers_list", "mcp_servers_set", "mcp_tools_default", "mcp_tools_list", "mcp_tools_set",
		"profiles_create", "profiles_delete", "profiles_inspect", "profiles_list", "ratelimits_clear", "ratelimits_set", "ratelimits_show", "sessions_kill", "sessions_list", "sessions_revoke", "usage_summary"}
	if !slices.Equal(names, want) {
		t.Fatalf("admin tools: got %v, want %v", names, want)
	}
	text, isErr := callTool(t, c, "profiles_list", nil)
	if isErr || !strings.Contains(text, `"alias":"work"`) || !strings.Contains(text, `"alias":"other"`) {
		t.Errorf("profiles_list: got %v %s", isErr, text)
	}
	text, isErr = callTool(t, c, "hooks_add", map[string]any{"profile": "work", "event": "pre-tool-use", "shell": "exit 0"})
	var added hook.Hook
	if isErr || json.Unmarshal([]byte(text), &added) != nil || added.ID == "" {
		t.Fatalf("hooks_add: got %v %s", isErr, text)
	}
	// The same validation as REST: an unknown profile is the API's 404.
	if text, isErr := callTool(t, c, "hooks_list", map[string]any{"profile": "nope"}); !isErr || !strings.Contains(text, "HTTP 404") {
		t.Errorf("hooks_list of an unknown profile: got %v %q, want the API's 404", isErr, text)
	}
	text, _ = callTool(t, c, "hooks_list", map[string]any{"profile": "work"})
	if !strings.Contains(text, added.ID) {
		t.Errorf("hooks_list: got %s, want %s", text, added.ID)
	}
	// The same audit records as REST.
	recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindHookAdd}, Limit: 10})
	if err != nil || len(recs) != 1 || recs[0].Actor != audit.ActorAdmin || recs[0].Profile != "work" {
		t.Errorf("hook.add records: got %+v, %v", recs, err)
	}
	// No tool ever returns a key.
	_, _ = w.session(t, "work")
	for _, tool := range []struct {
		name string
		args map[string]any
	}{{"keychain_list", nil}, {"profiles_list", nil}, {"profiles_inspect", map[string]any{"alias": "work"}}, {"sessions_list", nil},
		{"audit_query", map[string]any{"limit": 1000}}, {"usage_summary", nil}, {"hooks_list", map[string]any{"profile": "work"}},
		{"budgets_show", map[string]any{"profile": "work"}}} {
		text, _ := callTool(t, c, tool.name, tool.args)
		if strings.Contains(text, "sk-secret-key-of-") || strings.Contains(text, "rlt_") {
			t.Errorf("%s returned a key or token: %s", tool.name, text)
		}
	}
}

func TestMCPSessionSeesOnlyItself(t *testing.T) {
	w := newMCPWorld(t)
	workID, workTok := w.session(t, "work")
	otherID, _ := w.session(t, "other")
	c := w.connect(t, workTok)
	if got := toolNames(t, c); !slices.Equal(got, []string{"session_audit", "session_info", "session_trace", "session_usage"}) {
		t.Errorf("session tools: got %v", got)
	}
	text, isErr := callTool(t, c, "session_info", nil)
	if isErr || !strings.Contains(text, workID) || strings.Contains(text, otherID) {
		t.Errorf("session_info: got %s, want session %s only", text, workID)
	}
	// Both sessions have records (session.start); work reads only its own.
	recs, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Limit: 1000})
	var sawOther bool
	for _, r := range recs {
		sawOther = sawOther || r.Session == otherID
	}
	if !sawOther {
		t.Fatal("setup: no record of the other session")
	}
	text, isErr = callTool(t, c, "session_audit", map[string]any{"limit": 1000})
	var page struct {
		Records []audit.Record `json:"records"`
	}
	if isErr || json.Unmarshal([]byte(text), &page) != nil || len(page.Records) == 0 {
		t.Fatalf("session_audit: got %v %s", isErr, text)
	}
	for _, r := range page.Records {
		if r.Session != workID {
			t.Errorf("session_audit returned a record of session %q (%s)", r.Session, r.Kind)
		}
	}
	if _, isErr := callTool(t, c, "session_audit", map[string]any{"session": otherID}); !isErr {
		t.Error("session_audit accepted another session's id")
	}
	if _, err := c.CallTool(t.Context(), mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "profiles_list"}}); err == nil {
		t.Error("a session token called profiles_list")
	}
}

func TestMCPUpstreamThroughHooks(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	rec := filepath.Join(w.home, "received")
	// Added the way the CLI does it, over REST.
	for _, tc := range []struct {
		profile, name string
		argv          []string
	}{{"work", "up", []string{bin, "-record", rec}}, {"other", "up2", []string{bin}}} {
		body, _ := json.Marshal(api.MCPServerRequest{Profile: tc.profile, Name: tc.name, Command: tc.argv})
		if status, text := w.rest(t, testToken, "POST", "/api/mcp/servers", string(body)); status != http.StatusCreated {
			t.Fatalf("POST /api/mcp/servers: %d %s", status, text)
		}
	}
	workID, workTok := w.session(t, "work")
	_, otherTok := w.session(t, "other")
	c := w.connect(t, workTok)
	names := toolNames(t, c)
	if !slices.Contains(names, "up__echo") || slices.Contains(names, "up2__echo") {
		t.Fatalf("work's tools: got %v, want up__echo and not other's up2__echo", names)
	}
	text, isErr := callTool(t, c, "up__echo", map[string]any{"text": "hello"})
	if isErr || text != `{"text":"hello"}` {
		t.Errorf("echo: got %v %q", isErr, text)
	}
	// The profile's hook refuses rm -rf: the upstream receives nothing.
	if _, err := w.hooks.Add(hook.Hook{Profile: "work", Event: hook.PreToolUse, Shell: `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf" || { echo "no rm -rf, please" >&2; exit 1; }`}); err != nil {
		t.Fatal(err)
	}
	text, isErr = callTool(t, c, "up__echo", map[string]any{"text": "rm -rf /"})
	if !isErr || !strings.HasPrefix(text, "no rm -rf, please [refused by Ringlet hook ") {
		t.Errorf("denied call: got %v %q, want the hook's reason as an error result", isErr, text)
	}
	data, _ := os.ReadFile(rec)
	if strings.Contains(string(data), "rm -rf") {
		t.Error("the upstream received the denied call")
	}
	// Both outcomes are audited, with the hook decisions.
	recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Session: workID, Kinds: []string{audit.KindToolCall, audit.KindHookDecision}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var allowed, denied, hookDenied int
	for _, r := range recs {
		switch {
		case r.Kind == audit.KindToolCall && r.Target == "up__echo" && r.Decision == audit.Allow:
			allowed++
		case r.Kind == audit.KindToolCall && r.Target == "up__echo" && r.Decision == audit.Deny:
			denied++
		case r.Kind == audit.KindHookDecision && r.Decision == audit.Deny:
			hookDenied++
		}
	}
	if allowed != 1 || denied != 1 || hookDenied != 1 {
		t.Errorf("audit: got %d allowed, %d denied tool calls and %d denying hook decisions; want 1, 1, 1", allowed, denied, hookDenied)
	}
	// Profile other cannot call work's tools.
	oc := w.connect(t, otherTok)
	if _, err := oc.CallTool(t.Context(), mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: "up__echo", Arguments: map[string]any{}}}); err == nil {
		t.Error("profile other called work's up__echo")
	}
	// mcp list over REST says what runs.
	var list struct {
		Servers []mcpserver.Status `json:"servers"`
	}
	_, text = w.rest(t, testToken, "GET", "/api/mcp/servers?profile=work", "")
	if err := json.Unmarshal([]byte(text), &list); err != nil || len(list.Servers) != 1 || list.Servers[0].State != mcp.StateRunning {
		t.Errorf("GET /api/mcp/servers: got %+v, %v", list, err)
	}
	// What came back is recorded under each allowed call, never for a
	// denied one: the echo's size and ok; a server that dies, an error.
	if _, isErr := callTool(t, c, "up__crash", map[string]any{}); !isErr {
		t.Error("crash: got a result, want an error")
	}
	recs, _, err = audit.Query(t.Context(), w.auditPath, audit.Filter{Session: workID, Kinds: []string{audit.KindToolCall, audit.KindToolResult}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]audit.Record{}
	var results []audit.Record
	for _, r := range recs {
		if r.Kind == audit.KindToolCall {
			calls[r.SpanID] = r
		} else {
			results = append(results, r)
		}
	}
	slices.SortFunc(results, func(a, b audit.Record) int { return int(a.Seq - b.Seq) })
	if len(results) != 2 {
		t.Fatalf("tool.result records: %+v, want 2 (echo, crash)", results)
	}
	for i, want := range []struct{ tool, status, decision string }{{"up__echo", "ok", audit.Allow}, {"up__crash", "upstream_error", audit.Error}} {
		r := results[i]
		var d struct{ Status string }
		_ = json.Unmarshal(r.Detail, &d) // checked below
		call, ok := calls[r.ParentSpanID]
		if r.Target != want.tool || d.Status != want.status || r.Decision != want.decision || !ok || call.Decision != audit.Allow ||
			r.TraceID != call.TraceID || r.Seq < call.Seq || r.Link != audit.LinkCarried {
			t.Errorf("result %d: %+v (detail %s), want %s %s under its allowed tool.call", i, r, r.Detail, want.tool, want.status)
		}
		if want.status == "ok" && r.BytesOut < int64(len(`{"text":"hello"}`)) {
			t.Errorf("echo's result: %d bytes", r.BytesOut)
		}
		if strings.Contains(string(r.Detail), "hello") {
			t.Errorf("the result's content was recorded: %s", r.Detail)
		}
	}
}

// rest sends a REST request with tok and returns the status and body.
func (w *mcpWorld) rest(t *testing.T, tok, method, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func TestMCPServersREST(t *testing.T) {
	w := newMCPWorld(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"fs","command":["true"]}`, 201},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"fs","command":["true"]}`, 409},
		{"POST", "/api/mcp/servers", `{"profile":"nope","name":"fs","command":["true"]}`, 404},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"Bad_Name","command":["true"]}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","command":[]}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","command":["true"],"environment":{"A":"b"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","command":["true"],"env":{"PATH":"/tmp"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","command":["true"],"env":{"A-B":"1"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","command":["true"],"secrets":{"TOKEN":"local/nobody"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","url":"https://mcp.example.com/mcp","secrets":{"TOKEN":"local/work"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"gh","command":["true"],"env":{"MODE":"a"},"secrets":{"TOKEN":"local/work"}}`, 201},
		{"PATCH", "/api/mcp/servers/work/gh", `{"env":{"MODE":"b"},"unset_secrets":["TOKEN"],"secrets":{"OTHER":"local/other"}}`, 200},
		{"PATCH", "/api/mcp/servers/work/gh", `{}`, 400},
		{"PATCH", "/api/mcp/servers/work/gh", `{"secrets":{"X":"local/nobody"}}`, 400},
		{"PATCH", "/api/mcp/servers/work/gh", `{"unset_env":["NOPE"]}`, 400},
		{"PATCH", "/api/mcp/servers/work/gh", `{"secrets":{"MODE":"local/work"}}`, 400},
		{"PATCH", "/api/mcp/servers/work/gh", `{"env":{"HOME":"/tmp"}}`, 400},
		{"PATCH", "/api/mcp/servers/work/gh", `{"env":{"A":"1"},"extra":1}`, 400},
		{"PATCH", "/api/mcp/servers/work/nope", `{"env":{"A":"1"}}`, 404},
		{"PATCH", "/api/mcp/servers/nope/gh", `{"env":{"A":"1"}}`, 404},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","command":["true"],"timeout":"1ms"}`, 400},
		{"GET", "/api/mcp/servers?profile=work", "", 200},
		{"GET", "/api/mcp/servers?profile=../etc", "", 400},
		{"DELETE", "/api/mcp/servers/work/nope", "", 404},
		{"DELETE", "/api/mcp/servers/work/fs", "", 200},
		{"DELETE", "/api/mcp/servers/work/fs", "", 404},
	} {
		if got, body := w.rest(t, testToken, tc.method, tc.path, tc.body); got != tc.status {
			t.Errorf("%s %s %s: got %d, want %d (%s)", tc.method, tc.path, tc.body, got, tc.status, body)
		}
	}
	recs, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindMCPAdd, audit.KindMCPRemove}, Limit: 10})
	if len(recs) < 2 {
		t.Errorf("mcp.add/mcp.remove records: got %d, want at least 2", len(recs))
	}
	// gh as stored and listed: names and references, no key.
	_, text := w.rest(t, testToken, "GET", "/api/mcp/servers?profile=work", "")
	var list api.MCPServerList
	if err := json.Unmarshal([]byte(text), &list); err != nil || len(list.Servers) != 1 ||
		!maps.Equal(list.Servers[0].Env, map[string]string{"MODE": "b"}) || !maps.Equal(list.Servers[0].Secrets, map[string]string{"OTHER": "local/other"}) {
		t.Errorf("GET /api/mcp/servers after PATCH: got %s", text)
	}
	updates, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindMCPUpdate}, Limit: 10})
	if len(updates) != 1 || !strings.Contains(string(updates[0].Detail), `"OTHER":"local/other"`) || !strings.Contains(string(updates[0].Detail), `"unset_secrets":["TOKEN"]`) {
		t.Errorf("mcp.update records: got %+v, want the one change, by names and references", updates)
	}
	all, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Limit: 1000})
	for _, r := range all {
		if strings.Contains(string(r.Detail), "sk-secret-key-of-") {
			t.Errorf("audit record %s holds a key: %s", r.Kind, r.Detail)
		}
	}
	if strings.Contains(text, "sk-secret-key-of-") {
		t.Errorf("GET /api/mcp/servers holds a key: %s", text)
	}
	// A session token is refused on the REST API.
	_, tok := w.session(t, "work")
	if got, _ := w.rest(t, tok, "GET", "/api/mcp/servers?profile=work", ""); got != http.StatusUnauthorized {
		t.Errorf("session token on /api/mcp/servers: got %d, want 401", got)
	}
}

// TestMCPStreamsEndWithTheirToken: an open notification stream (GET /mcp)
// is cut when its session is revoked or the admin token rotated.
func TestMCPStreamsEndWithTheirToken(t *testing.T) {
	w := newMCPWorld(t)
	sessID, sessTok := w.session(t, "work")
	for _, tc := range []struct {
		name string
		tok  string
		end  func()
	}{
		{"session revoked", sessTok, func() { w.s.sessions.end(t.Context(), sessID, "revoked", audit.ActorAdmin) }},
		{"admin token rotated", testToken, func() {
			if status, body := w.rest(t, testToken, "POST", "/api/daemon/rotate-token", ""); status != http.StatusOK {
				t.Fatalf("rotate: %d %s", status, body)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := mcpPost(t, w, map[string]string{"Authorization": "Bearer " + tc.tok}, mcpInit)
			sid := resp.Header.Get("Mcp-Session-Id")
			req, _ := http.NewRequest(http.MethodGet, w.ts.URL+"/mcp", nil)
			req.Header.Set("Authorization", "Bearer "+tc.tok)
			req.Header.Set("Accept", "text/event-stream")
			req.Header.Set("Mcp-Session-Id", sid)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			stream, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Body.Close()
			if stream.StatusCode != http.StatusOK {
				t.Fatalf("GET /mcp: got %d, want 200", stream.StatusCode)
			}
			ended := make(chan struct{})
			go func() {
				io.Copy(io.Discard, stream.Body)
				close(ended)
			}()
			tc.end()
			select {
			case <-ended:
			case <-time.After(5 * time.Second):
				t.Fatal("the stream is still open")
			}
		})
	}
}

// TestMCPSessionsFreedWithTheirToken: revoking a session token (or
// rotating the admin token) frees the MCP sessions it created at once,
// rather than after their idle timeout.
func TestMCPSessionsFreedWithTheirToken(t *testing.T) {
	w := newMCPWorld(t)
	sessID, sessTok := w.session(t, "work")
	_, keepTok := w.session(t, "work")
	mcpPost(t, w, map[string]string{"Authorization": "Bearer " + keepTok}, mcpInit)
	for range 10 {
		if resp := mcpPost(t, w, map[string]string{"Authorization": "Bearer " + sessTok}, mcpInit); resp.StatusCode != http.StatusOK {
			t.Fatalf("initialize: got HTTP %d", resp.StatusCode)
		}
		if resp := mcpPost(t, w, map[string]string{"Authorization": "Bearer " + testToken}, mcpInit); resp.StatusCode != http.StatusOK {
			t.Fatalf("initialize: got HTTP %d", resp.StatusCode)
		}
	}
	if got := w.s.mcp.srv.Sessions(); got != 21 {
		t.Fatalf("MCP sessions: got %d, want 21", got)
	}
	if status, body := w.rest(t, testToken, "DELETE", "/api/sessions/"+sessID, ""); status != http.StatusOK {
		t.Fatalf("revoke: %d %s", status, body)
	}
	waitForSessions(t, w, 11, "after the revocation (the other tokens' sessions)")
	if status, body := w.rest(t, testToken, "POST", "/api/daemon/rotate-token", ""); status != http.StatusOK {
		t.Fatalf("rotate: %d %s", status, body)
	}
	waitForSessions(t, w, 1, "after the rotation")
}

// waitForSessions waits until the gateway holds want MCP sessions: the
// table frees them as soon as it hears the token ended.
func waitForSessions(t *testing.T, w *mcpWorld, want int, when string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for got := w.s.mcp.srv.Sessions(); got != want; got = w.s.mcp.srv.Sessions() {
		if time.Now().After(deadline) {
			t.Fatalf("MCP sessions %s: got %d, want %d", when, got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMCPServerHeadersREST: an HTTP server's headers through the REST
// API: checked as 'mcp add' and 'mcp set' check them, a key that is not
// stored refused, and the audit records (mcp.add, mcp.update) name the
// headers and the references, never a plain header's value.
func TestMCPServerHeadersREST(t *testing.T) {
	w := newMCPWorld(t)
	const plain = "plain-value-not-in-audit"
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","url":"https://mcp.example.com/mcp","headers":{"Host":"evil"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","url":"https://mcp.example.com/mcp","headers":{"X-A":"a\r\nB: c"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","url":"https://mcp.example.com/mcp","header_secrets":{"X-Key":"local/nobody"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","url":"https://mcp.example.com/mcp","credential":"local/work","header_secrets":{"Authorization":"Token local/work"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"x","command":["true"],"headers":{"X-A":"1"}}`, 400},
		{"POST", "/api/mcp/servers", `{"profile":"work","name":"docs","url":"https://mcp.example.com/mcp","headers":{"x-team":"` + plain + `"},"header_secrets":{"x-api-key":"local/work"}}`, 201},
		{"PATCH", "/api/mcp/servers/work/docs", `{"unset_headers":["X-TEAM"],"header_secrets":{"Authorization":"Token local/other"},"headers":{"X-Debug":"` + plain + `"}}`, 200},
		{"PATCH", "/api/mcp/servers/work/docs", `{"header_secrets":{"X-Other":"local/nobody"}}`, 400},
		{"PATCH", "/api/mcp/servers/work/docs", `{"headers":{"Mcp-Session-Id":"x"}}`, 400},
		{"PATCH", "/api/mcp/servers/work/docs", `{"unset_header_secrets":["X-Nope"]}`, 400},
	} {
		if got, body := w.rest(t, testToken, tc.method, tc.path, tc.body); got != tc.status {
			t.Errorf("%s %s %s: got %d, want %d (%s)", tc.method, tc.path, tc.body, got, tc.status, body)
		}
	}
	_, text := w.rest(t, testToken, "GET", "/api/mcp/servers?profile=work", "")
	var list api.MCPServerList
	if err := json.Unmarshal([]byte(text), &list); err != nil || len(list.Servers) != 1 ||
		!maps.Equal(list.Servers[0].Headers, map[string]string{"X-Debug": plain}) ||
		!maps.Equal(list.Servers[0].HeaderSecrets, map[string]string{"X-Api-Key": "local/work", "Authorization": "Token local/other"}) {
		t.Errorf("GET /api/mcp/servers after PATCH: got %s", text)
	}
	recs, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindMCPAdd, audit.KindMCPUpdate}, Limit: 10})
	var details string
	for _, r := range recs {
		details += string(r.Detail)
	}
	if len(recs) != 2 || !strings.Contains(details, `"X-Api-Key":"local/work"`) || !strings.Contains(details, `"Authorization":"Token local/other"`) ||
		!strings.Contains(details, `"X-Debug"`) || strings.Contains(details, plain) {
		t.Errorf("mcp.add and mcp.update records: got %s, want the headers' names and references, no plain value", details)
	}
}

// The admin tools ratelimits_show/set/clear call the ratelimits routes:
// a limit set is shown and applies, one out of range is refused, clear
// removes them all.
func TestRateLimitsAdminTools(t *testing.T) {
	w := newMCPWorld(t)
	c := w.connect(t, testToken)
	if text, isErr := callTool(t, c, "ratelimits_set", map[string]any{"profile": "work", "session_tool_calls": 3, "profile_requests": 60}); isErr ||
		!strings.Contains(text, `"session_tool_calls":3`) || !strings.Contains(text, `"profile_requests":60`) {
		t.Fatalf("ratelimits_set: got %v %s, want both limits set", isErr, text)
	}
	// Omitted limits stay; 0 removes one.
	if text, isErr := callTool(t, c, "ratelimits_set", map[string]any{"profile": "work", "profile_requests": 0}); isErr ||
		!strings.Contains(text, `"session_tool_calls":3`) || strings.Contains(text, "profile_requests") {
		t.Fatalf("ratelimits_set 0: got %v %s, want profile_requests removed and session_tool_calls kept", isErr, text)
	}
	if text, isErr := callTool(t, c, "ratelimits_set", map[string]any{"profile": "work", "session_tokens": 2_000_000_000}); !isErr || !strings.Contains(text, "session_tokens") {
		t.Errorf("ratelimits_set over the maximum: got %v %s, want an error naming session_tokens", isErr, text)
	}
	if text, isErr := callTool(t, c, "ratelimits_show", map[string]any{"profile": "work"}); isErr || !strings.Contains(text, `"session_tool_calls":3`) {
		t.Errorf("ratelimits_show: got %v %s, want session_tool_calls 3", isErr, text)
	}
	if text, isErr := callTool(t, c, "ratelimits_clear", map[string]any{"profile": "work"}); isErr || strings.Contains(text, "session_tool_calls") {
		t.Errorf("ratelimits_clear: got %v %s, want no limit", isErr, text)
	}
	if text, _ := callTool(t, c, "ratelimits_show", map[string]any{"profile": "work"}); strings.Contains(text, "session_tool_calls") {
		t.Errorf("ratelimits_show after clear: got %s, want no limit", text)
	}
}

// TestMCPAnswersReuseTheConnection: a tools/call answer goes as one body
// with its length, so that a client which stops reading at the JSON's
// end (mcp-go's does) can reuse its connection. Flushing every answer
// made it chunked with its end in a later write, and such a client
// opened a new connection for about every other call.
func TestMCPAnswersReuseTheConnection(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	w.addUp(t, bin)
	_, tok := w.session(t, "work")
	var dials atomic.Int64
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	t.Cleanup(tr.CloseIdleConnections)
	c := connectVia(t, w.ts.URL, tok, &http.Client{Transport: tr})
	if text, isErr := callTool(t, c, "up__echo", map[string]any{"text": "warm"}); isErr {
		t.Fatalf("echo: %s", text)
	}
	before := dials.Load()
	for i := range 20 {
		if text, isErr := callTool(t, c, "up__echo", map[string]any{"text": strconv.Itoa(i)}); isErr || text != `{"text":"`+strconv.Itoa(i)+`"}` {
			t.Fatalf("echo %d: got %v %q", i, isErr, text)
		}
	}
	if n := dials.Load() - before; n != 0 {
		t.Errorf("20 sequential tools/calls opened %d new connections, want 0", n)
	}

	// The same answer read by hand: a length, not chunks.
	sid := c.GetSessionId()
	resp := mcpPost(t, w, map[string]string{"Authorization": "Bearer " + tok, "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"},
		`{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"up__echo","arguments":{"text":"x"}}}`)
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(got)) || len(resp.TransferEncoding) != 0 {
		t.Errorf("tools/call answer: status %d, length %d, transfer encoding %v, %d bytes %q; want 200 with its length", resp.StatusCode, resp.ContentLength, resp.TransferEncoding, len(got), got)
	}
}
