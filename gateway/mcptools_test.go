package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/mcp/mcpserver"
)

func TestMCPToolsREST(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	rec := filepath.Join(w.home, "received")
	body, _ := json.Marshal(api.MCPServerRequest{Profile: "work", Name: "up", Command: []string{bin, "-record", rec}})
	if status, text := w.rest(t, testToken, "POST", "/api/mcp/servers", string(body)); status != http.StatusCreated {
		t.Fatalf("POST /api/mcp/servers: %d %s", status, text)
	}
	tools := func(text string) api.MCPTools {
		t.Helper()
		var out api.MCPTools
		if err := json.Unmarshal([]byte(text), &out); err != nil {
			t.Fatalf("answer %s: %v", text, err)
		}
		return out
	}
	state := func(out api.MCPTools, name string) mcpserver.ToolStatus {
		for _, tl := range out.Tools {
			if tl.Name == name {
				return tl
			}
		}
		t.Fatalf("no tool %s in %+v", name, out.Tools)
		return mcpserver.ToolStatus{}
	}
	status, text := w.rest(t, testToken, "GET", "/api/mcp/servers/work/up/tools", "")
	if got := tools(text); status != 200 || got.Default != "all" || !state(got, "echo").Enabled || state(got, "echo").By != mcpserver.ByDefault {
		t.Fatalf("GET tools: got %d %s, want echo enabled by default", status, text)
	}
	status, text = w.rest(t, testToken, "PATCH", "/api/mcp/servers/work/up/tools", `{"disable":["ec*","nothing_*"]}`)
	got := tools(text)
	if status != 200 || state(got, "echo").Enabled || state(got, "echo").Rule != "ec*" || !slices.Equal(got.Unmatched, []string{"nothing_*"}) {
		t.Errorf("PATCH disable: got %d %s, want echo disabled by ec* and nothing_* unmatched", status, text)
	}
	// Its resources and prompts: the profile's default, then switched.
	if got.Resources.By != mcpserver.ByDefault || !got.Resources.Enabled || got.Prompts.By != mcpserver.ByDefault {
		t.Errorf("resources and prompts at first: got %+v %+v, want enabled by default", got.Resources, got.Prompts)
	}
	status, text = w.rest(t, testToken, "PATCH", "/api/mcp/servers/work/up/tools", `{"resources":"off","prompts":"on"}`)
	if got := tools(text); status != 200 || got.Resources.Enabled || got.Resources.By != mcpserver.ByRule || !got.Prompts.Enabled || got.Prompts.By != mcpserver.ByRule {
		t.Errorf("PATCH resources off, prompts on: got %d %s", status, text)
	}
	status, text = w.rest(t, testToken, "PATCH", "/api/mcp/servers/work/up/tools", `{"resources":"default","prompts":"default"}`)
	if got := tools(text); status != 200 || !got.Resources.Enabled || got.Resources.By != mcpserver.ByDefault || got.Prompts.By != mcpserver.ByDefault {
		t.Errorf("PATCH back to default: got %d %s", status, text)
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"PATCH", "/api/mcp/servers/work/up/tools", `{}`, 400},
		{"PATCH", "/api/mcp/servers/work/up/tools", `{"resources":"maybe"}`, 400},
		{"PATCH", "/api/mcp/servers/work/up/tools", `{"enable":["[x"]}`, 400},
		{"PATCH", "/api/mcp/servers/work/up/tools", `{"enable":["a"],"disable":["a"]}`, 400},
		{"PATCH", "/api/mcp/servers/work/up/tools", `{"enable":["a"],"extra":1}`, 400},
		{"PATCH", "/api/mcp/servers/work/nope/tools", `{"enable":["a"]}`, 404},
		{"PATCH", "/api/mcp/servers/nope/up/tools", `{"enable":["a"]}`, 404},
		{"GET", "/api/mcp/servers/work/nope/tools", "", 404},
		{"PUT", "/api/mcp/tools-default/work", `{"default":"some"}`, 400},
		{"PUT", "/api/mcp/tools-default/work", `{}`, 400},
		{"PUT", "/api/mcp/tools-default/nope", `{"default":"none"}`, 404},
	} {
		if got, body := w.rest(t, testToken, tc.method, tc.path, tc.body); got != tc.status {
			t.Errorf("%s %s %s: got %d, want %d (%s)", tc.method, tc.path, tc.body, got, tc.status, body)
		}
	}

	// mcp list carries the rules beside the tools' states.
	_, text = w.rest(t, testToken, "GET", "/api/mcp/servers?profile=work", "")
	var list api.MCPServerList
	if err := json.Unmarshal([]byte(text), &list); err != nil || len(list.Servers) != 1 || len(list.Servers[0].ToolRules) != 2 || len(list.Servers[0].Tools) == 0 {
		t.Errorf("GET /api/mcp/servers: got %s, want the two rules and the tools", text)
	}
	// A session of the profile neither sees nor calls the disabled tool.
	sessID, tok := w.session(t, "work")
	c := w.connect(t, tok)
	if names := toolNames(t, c); slices.Contains(names, "up__echo") || !slices.Contains(names, "up__slow") {
		t.Errorf("session tools: got %v, want up__slow and not up__echo", names)
	}
	text, isErr := callTool(t, c, "up__echo", map[string]any{"text": "hi"})
	if !isErr || !strings.Contains(text, `disabled by the rule "ec*"`) {
		t.Errorf("call to a disabled tool: got %v %q", isErr, text)
	}
	if data, _ := os.ReadFile(rec); strings.Contains(string(data), "tools/call") {
		t.Errorf("the upstream received a call to a disabled tool: %s", data)
	}
	recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Session: sessID, Kinds: []string{audit.KindToolCall}, Limit: 10})
	if err != nil || len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Target != "up__echo" || !strings.Contains(string(recs[0].Detail), `"disabled":true`) {
		t.Errorf("tool.call records: got %+v, %v, want one deny of up__echo, disabled", recs, err)
	}

	// Default none: only what is enabled is served.
	if status, text := w.rest(t, testToken, "PUT", "/api/mcp/tools-default/work", `{"default":"none"}`); status != 200 {
		t.Fatalf("PUT default: %d %s", status, text)
	}
	if status, text := w.rest(t, testToken, "PATCH", "/api/mcp/servers/work/up/tools", `{"enable":["slow"]}`); status != 200 {
		t.Fatalf("PATCH enable: %d %s", status, text)
	}
	names := toolNames(t, c)
	var upstream []string
	for _, n := range names {
		if strings.HasPrefix(n, "up__") {
			upstream = append(upstream, n)
		}
	}
	if !slices.Equal(upstream, []string{"up__slow"}) {
		t.Errorf("default none, slow enabled: got %v, want [up__slow]", upstream)
	}
	p, err := w.s.profiles.o.Profiles.Get("work")
	if err != nil || p.MCPToolsDefault != "none" {
		t.Errorf("profile: got %q, %v, want mcp_tools_default none", p.MCPToolsDefault, err)
	}
	changes, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindMCPTools}, Limit: 10})
	if len(changes) != 5 {
		t.Errorf("mcp.tools records: got %d, want 5 (disable, resources/prompts twice, default, enable)", len(changes))
	}
	// Changes are the admin's: a session token is refused.
	if got, _ := w.rest(t, tok, "PATCH", "/api/mcp/servers/work/up/tools", `{"enable":["echo"]}`); got != http.StatusUnauthorized {
		t.Errorf("session token on PATCH tools: got %d, want 401", got)
	}
	if got, _ := w.rest(t, tok, "PUT", "/api/mcp/tools-default/work", `{"default":"all"}`); got != http.StatusUnauthorized {
		t.Errorf("session token on PUT tools-default: got %d, want 401", got)
	}
}

// TestMCPItemsREST: PATCH .../tools disables single prompts and
// resources; the answer lists each with its state and the patterns that
// match nothing; the change is audited with its lists; a session is
// refused a disabled prompt, and the refusal is recorded.
func TestMCPItemsREST(t *testing.T) {
	bin := buildTestServer(t)
	w := newMCPWorld(t)
	body, _ := json.Marshal(api.MCPServerRequest{Profile: "work", Name: "up", Command: []string{bin, "-resources", "2"}})
	if status, text := w.rest(t, testToken, "POST", "/api/mcp/servers", string(body)); status != http.StatusCreated {
		t.Fatalf("POST /api/mcp/servers: %d %s", status, text)
	}
	status, text := w.rest(t, testToken, "PATCH", "/api/mcp/servers/work/up/tools", `{"disable_prompts":["greet"],"disable_resources":["test://doc/2","nothing://*"]}`)
	var out api.MCPTools
	if err := json.Unmarshal([]byte(text), &out); err != nil || status != 200 {
		t.Fatalf("PATCH: %d %s", status, text)
	}
	got := map[string]string{}
	for _, it := range out.Items {
		got[it.Kind+" "+it.Name] = it.State + " " + it.By
	}
	for k, want := range map[string]string{
		"prompt greet":               "disabled explicit",
		"resource test://doc/1":      "visible default",
		"resource test://doc/2":      "disabled explicit",
		"template test://env/{name}": "visible default",
	} {
		if got[k] != want {
			t.Errorf("%s: got %q, want %q (items %+v)", k, got[k], want, out.Items)
		}
	}
	if !slices.Equal(out.Unmatched, []string{"nothing://*"}) || len(out.PromptRules) != 1 || len(out.ResourceRules) != 2 {
		t.Errorf("unmatched and rules: got %q %+v %+v, want nothing://* unmatched, 1 prompt rule, 2 resource rules", out.Unmatched, out.PromptRules, out.ResourceRules)
	}
	changes, _, _ := audit.Query(t.Context(), w.auditPath, audit.Filter{Kinds: []string{audit.KindMCPTools}, Limit: 1})
	if len(changes) != 1 || !strings.Contains(string(changes[0].Detail), `"disable_prompts":["greet"]`) || !strings.Contains(string(changes[0].Detail), `"disable_resources":["test://doc/2","nothing://*"]`) {
		t.Errorf("mcp.tools record: got %+v, want the prompt and resource lists", changes)
	}
	for _, bad := range []string{`{"enable_resources":["a b"]}`, `{"disable_prompts":["a/b"]}`, `{"enable_prompts":["x"],"disable_prompts":["x"]}`} {
		if status, text := w.rest(t, testToken, "PATCH", "/api/mcp/servers/work/up/tools", bad); status != 400 {
			t.Errorf("PATCH %s: got %d %s, want 400", bad, status, text)
		}
	}
	sessID, tok := w.session(t, "work")
	c := w.connect(t, tok)
	req := mcpgo.GetPromptRequest{}
	req.Params.Name, req.Params.Arguments = "up__greet", map[string]string{"name": "x"}
	if _, err := c.GetPrompt(t.Context(), req); err == nil || !strings.Contains(err.Error(), "--enable-prompt greet") {
		t.Errorf("get of the disabled prompt: got %v, want refused naming --enable-prompt greet", err)
	}
	recs, _, err := audit.Query(t.Context(), w.auditPath, audit.Filter{Session: sessID, Kinds: []string{audit.KindMCPPromptGet}, Limit: 10})
	if err != nil || len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Target != "up__greet" || !strings.Contains(string(recs[0].Detail), `"disabled":true`) {
		t.Errorf("mcp.prompt_get records: got %+v, %v, want one deny of up__greet", recs, err)
	}
}
