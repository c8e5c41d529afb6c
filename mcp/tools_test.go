package mcp

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestToolSnapshots pins what each audience's tools/list says: names,
// descriptions, input schemas and annotations. A change to any tool is a
// visible diff in testdata; refresh with go test ./mcp -run TestToolSnapshots -update.
func TestToolSnapshots(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct{ tok, golden string }{
		{"admin", "admin_tools.golden"},
		{"a1", "session_tools.golden"},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			c := w.client(t, tc.tok)
			init := c.initialize("2025-11-25")
			m := c.call("tools/list", map[string]any{})
			if m.Error != nil {
				t.Fatalf("tools/list: %s", m.Error.Message)
			}
			var both struct {
				Initialize json.RawMessage `json:"initialize"`
				Tools      json.RawMessage `json:"tools"`
			}
			var list struct {
				Tools json.RawMessage `json:"tools"`
			}
			json.Unmarshal(m.Result, &list)
			both.Initialize, both.Tools = init, list.Tools
			got := canonicalIndent(t, both)
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s changed; if that is intended, run go test ./mcp -run TestToolSnapshots -update and review the diff.\ngot:\n%s", path, got)
			}
		})
	}
}

// canonicalIndent is v as indented JSON with sorted keys.
func canonicalIndent(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c, err := canonical(raw)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestAdminToolsAreREST checks that each admin tool is exactly one call of
// the REST API, so MCP, REST and the CLI share one implementation.
func TestAdminToolsAreREST(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client(t, "admin")
	c.initialize("2025-11-25")
	for _, tc := range []struct {
		tool         string
		args         map[string]any
		method, path string
		body         string
	}{
		{"profiles_list", nil, "GET", "/api/profiles", ""},
		{"profiles_inspect", map[string]any{"alias": "work"}, "GET", "/api/profiles/work", ""},
		{"profiles_create", map[string]any{"alias": "work", "agent": "claude", "provider": "anthropic", "model": "m"}, "POST", "/api/profiles", `{"alias":"work","agent":"claude","provider":"anthropic","model":"m"}`},
		{"profiles_delete", map[string]any{"alias": "work"}, "DELETE", "/api/profiles/work", ""},
		{"profiles_delete", map[string]any{"alias": "work", "purge_key": true}, "DELETE", "/api/profiles/work?purge_key=true", ""},
		{"sessions_list", nil, "GET", "/api/sessions", ""},
		{"sessions_list", map[string]any{"profile": "work"}, "GET", "/api/sessions?profile=work", ""},
		{"sessions_revoke", map[string]any{"id": "s_0123456789abcdef"}, "DELETE", "/api/sessions/s_0123456789abcdef", ""},
		{"sessions_kill", map[string]any{"id": "s_0123456789abcdef", "reason": "loop"}, "POST", "/api/sessions/s_0123456789abcdef/kill", `{"reason":"loop"}`},
		{"sessions_kill", map[string]any{"profile": "work"}, "POST", "/api/sessions/kill", `{"profile":"work"}`},
		{"sessions_kill", map[string]any{"all": true}, "POST", "/api/sessions/kill", `{"all":true}`},
		{"audit_query", map[string]any{"since": "24h", "kind": []string{"tool.call", "hook.decision"}, "decision": "deny", "limit": 5}, "GET", "/api/audit?decision=deny&kind=tool.call%2Chook.decision&limit=5&since=24h", ""},
		{"audit_verify", nil, "GET", "/api/audit/verify", ""},
		{"usage_summary", map[string]any{"by": "model", "profile": "work"}, "GET", "/api/usage?by=model&profile=work", ""},
		{"hooks_list", map[string]any{"profile": "work"}, "GET", "/api/hooks?profile=work", ""},
		{"hooks_add", map[string]any{"profile": "work", "event": "pre-tool-use", "shell": "true", "timeout": "5s"}, "POST", "/api/hooks", `{"profile":"work","event":"pre-tool-use","shell":"true","timeout":"5s"}`},
		{"hooks_remove", map[string]any{"profile": "work", "id": "h_0123abcd"}, "DELETE", "/api/hooks/work/h_0123abcd", ""},
		{"keychain_list", nil, "GET", "/api/keychain", ""},
		{"mcp_servers_list", map[string]any{"profile": "work"}, "GET", "/api/mcp/servers?profile=work", ""},
		{"mcp_servers_set", map[string]any{"profile": "work", "name": "gh", "env": map[string]any{"DEBUG": "1"}, "secrets": map[string]any{"GITHUB_TOKEN": "github/work"}, "unset_secrets": []string{"OLD"}},
			"PATCH", "/api/mcp/servers/work/gh", `{"env":{"DEBUG":"1"},"secrets":{"GITHUB_TOKEN":"github/work"},"unset_secrets":["OLD"]}`},
		{"mcp_tools_list", map[string]any{"profile": "work", "name": "gh"}, "GET", "/api/mcp/servers/work/gh/tools", ""},
		{"mcp_tools_set", map[string]any{"profile": "work", "name": "gh", "disable": []string{"write_*"}, "enable": []string{"write_note"}},
			"PATCH", "/api/mcp/servers/work/gh/tools", `{"enable":["write_note"],"disable":["write_*"]}`},
		{"mcp_tools_set", map[string]any{"profile": "work", "name": "docs", "disable_prompts": []string{"review_*"}, "enable_resources": []string{"file:///docs/*"}},
			"PATCH", "/api/mcp/servers/work/docs/tools", `{"disable_prompts":["review_*"],"enable_resources":["file:///docs/*"]}`},
		{"mcp_tools_default", map[string]any{"profile": "work", "default": "none"}, "PUT", "/api/mcp/tools-default/work", `{"default":"none"}`},
		{"mcp_servers_approve", map[string]any{"profile": "work", "name": "gh", "tools": []string{"read_file"}, "observed": "sha256:" + strings.Repeat("0", 64)},
			"POST", "/api/mcp/servers/work/gh/approve", `{"tools":["read_file"],"observed":"sha256:` + strings.Repeat("0", 64) + `"}`},
		{"mcp_servers_approve", map[string]any{"profile": "work", "name": "gh", "dry_run": true}, "POST", "/api/mcp/servers/work/gh/approve", `{"dry_run":true}`},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			before := len(w.apiCalls())
			args := tc.args
			if args == nil {
				args = map[string]any{}
			}
			r := c.tool(tc.tool, args)
			if r.IsError {
				t.Fatalf("got an error result: %s", r.text())
			}
			calls := w.apiCalls()[before:]
			if len(calls) != 1 {
				t.Fatalf("API calls: got %d, want 1", len(calls))
			}
			got := calls[0]
			if got.Method != tc.method || got.Target != tc.path || got.Body != tc.body {
				t.Errorf("got %s %s %s, want %s %s %s", got.Method, got.Target, got.Body, tc.method, tc.path, tc.body)
			}
			if !json.Valid(r.StructuredContent) || !strings.Contains(r.text(), `"target"`) {
				t.Errorf("result: got %q (structured %s), want the API's JSON answer", r.text(), r.StructuredContent)
			}
		})
	}
}

func TestAdminToolErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client(t, "admin")
	c.initialize("2025-11-25")
	// An error answer of the API is an error result with its message.
	r := c.tool("profiles_inspect", map[string]any{"alias": "missing"})
	if !r.IsError || !strings.Contains(r.text(), `no profile "missing"`) || !strings.Contains(r.text(), "HTTP 404") {
		t.Errorf("got isError=%v %q, want an error result with the API's message and status", r.IsError, r.text())
	}
	// Arguments the schema refuses never reach the API.
	c.refused(
		toolCall{"profiles_inspect", map[string]any{"alias": "../etc"}},
		toolCall{"profiles_inspect", map[string]any{}},
		toolCall{"profiles_inspect", map[string]any{"alias": "work", "extra": 1}},
		toolCall{"sessions_revoke", map[string]any{"id": "s_1/../../profiles"}},
		toolCall{"hooks_add", map[string]any{"profile": "work", "event": "whenever", "shell": "true"}},
		toolCall{"audit_query", map[string]any{"kind": []string{"no.such.kind"}}},
		toolCall{"audit_query", map[string]any{"limit": 0}},
		toolCall{"usage_summary", map[string]any{"by": "week"}},
	)
}

func TestSessionToolsSeeOnlyTheirSession(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client(t, "a1")
	c.initialize("2025-11-25")
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"session_info", nil, "/info"},
		{"session_audit", map[string]any{"decision": "deny", "limit": 3}, "/audit?decision=deny&limit=3"},
		{"session_usage", map[string]any{"by": "model"}, "/usage?by=model"},
	} {
		before := len(w.apiCalls())
		args := tc.args
		if args == nil {
			args = map[string]any{}
		}
		r := c.tool(tc.tool, args)
		calls := w.apiCalls()[before:]
		if len(calls) != 1 || calls[0].Session != "s_a1" || calls[0].Target != tc.want {
			t.Errorf("%s: got %+v (result %q), want one GET %s to session s_a1's API", tc.tool, calls, r.text(), tc.want)
		}
	}
	// Naming another session or profile is refused, not ignored.
	c.refused(
		toolCall{"session_audit", map[string]any{"session": "s_b1"}},
		toolCall{"session_audit", map[string]any{"profile": "b"}},
		toolCall{"session_usage", map[string]any{"profile": "b"}},
		toolCall{"session_info", map[string]any{"session": "s_b1"}},
	)
}

// TestAdminToolArgumentErrors: arguments that break a tool's schema are
// refused before the API is called, with messages a model can act on
// (not the validator's Go structures).
func TestAdminToolArgumentErrors(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	c := w.client(t, "admin")
	c.initialize("2025-11-25")
	for _, tc := range []struct {
		tool string
		args any
		want []string
	}{
		{"profiles_inspect", map[string]any{"bogus": 1}, []string{"missing property 'alias'", "'bogus' not allowed"}},
		{"profiles_inspect", map[string]any{"alias": "Not Valid!"}, []string{"alias: ", "does not match pattern"}},
		{"sessions_revoke", map[string]any{"id": 7}, []string{"id: ", "want string"}},
	} {
		r := c.tool(tc.tool, tc.args)
		text := r.text()
		if !r.IsError || strings.Contains(text, "&{") || !strings.HasPrefix(text, "invalid arguments: ") {
			t.Errorf("%s %v: got %v %q, want an error saying what is wrong", tc.tool, tc.args, r.IsError, text)
		}
		for _, w := range tc.want {
			if !strings.Contains(text, w) {
				t.Errorf("%s %v: got %q, want it to contain %q", tc.tool, tc.args, text, w)
			}
		}
	}
	if calls := w.apiCalls(); len(calls) != 0 {
		t.Errorf("the API was called %d times, want none for invalid arguments", len(calls))
	}
}

// TestToolSchemasCompile compiles every admin tool's input schema: they
// are compiled on a tool's first call, so a broken one would otherwise
// show only when that tool is called.
func TestToolSchemasCompile(t *testing.T) {
	t.Parallel()
	for _, tool := range adminTools() {
		if _, err := compileSchema(tool.Tool); err != nil {
			t.Errorf("got %v, want the schema of %s to compile", err, tool.Tool.Name)
		}
	}
	broken := mcpgo.NewTool("broken")
	broken.InputSchema.Type = "no-such-type"
	if _, err := compileSchema(broken); err == nil {
		t.Error("got no error for a schema of type no-such-type, want one")
	}
}
