package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// sdkRun is client.mjs's answer with each step as raw JSON.
type sdkRun struct {
	Capabilities map[string]json.RawMessage   `json:"capabilities"`
	Steps        []map[string]json.RawMessage `json:"steps"`
}

// runSDKPlan runs the SDK client with plan (runSDK checks that it
// connected) and returns its steps raw.
func runSDKPlan(t *testing.T, e *env, tok string, plan map[string]any) sdkRun {
	t.Helper()
	b, _ := json.Marshal(plan)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, "node", "client.mjs", string(b))
	cmd.Dir = mcpNodeDir
	cmd.Env = append(cmd.Env, "RINGLET_TEST_TOKEN="+tok)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\nstdout %s\nstderr %s", err, out.String(), errb.String())
	}
	var r sdkRun
	var conn struct {
		ConnectError string `json:"connectError"`
	}
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil || json.Unmarshal([]byte(out.String()), &conn) != nil || conn.ConnectError != "" {
		t.Fatalf("node client.mjs printed %q (%v)\nstderr %s", out.String(), err, errb.String())
	}
	if len(r.Steps) != len(plan["steps"].([]any)) {
		t.Fatalf("node client.mjs: got %d steps, want %d: %s", len(r.Steps), len(plan["steps"].([]any)), out.String())
	}
	return r
}

// step is the answer of step i; an error fails t.
func (r sdkRun) step(t *testing.T, i int) json.RawMessage {
	t.Helper()
	if e, ok := r.Steps[i]["error"]; ok {
		t.Errorf("step %d: error %s", i, e)
		return nil
	}
	b, _ := json.Marshal(r.Steps[i])
	return b
}

// TestMCPResourcesAndPrompts: the official TypeScript SDK client, through
// /mcp with a session token, sees the resources, templates and prompts of
// two real server-everything servers and of Ringlet's test server (which
// pages its lists and echoes a secret it was given), each under its
// server's name; reads and gets them; is refused what no server listed;
// gets a subscribed resource's updates; and never reads the secret. Each
// read and get is in the audit log with its size, and a pre-tool-use hook
// sees them, told their kind.
func TestMCPResourcesAndPrompts(t *testing.T) {
	requireMCPNode(t)
	requireSandbox(t)
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	modules, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol"))
	if err != nil {
		t.Fatal(err)
	}
	nodeModules := filepath.Dir(modules)
	everything := filepath.Join(modules, "server-everything", "dist", "index.js")
	for _, name := range []string{"ev1", "ev2"} {
		mustRun(t, e, "mcp", "add", "work", name, "--ro", nodeModules, "--", "node", everything, "stdio")
	}
	canary := newCanary(t, "mcpres")
	if _, stderr, code := e.RunInput(canary+"\n", "keychain", "set", "mcp", "restoken"); code != 0 {
		t.Fatalf("keychain set: exit %d, stderr %q", code, stderr)
	}
	mustRun(t, e, "mcp", "add", "work", "own", "--secret", "TOKEN=mcp/restoken", "--", bin, "-resources", "5", "-page", "2")
	// A hook that records what it is asked, and refuses reading doc 3.
	hookLog := filepath.Join(e.Root, "hook-seen")
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^own",
		"--shell", `printf '%s %s\n' "$RINGLET_TOOL_KIND" "$RINGLET_TOOL_NAME" >> `+hookLog+`; case "$RINGLET_TOOL_NAME" in *doc/3) echo "doc 3 is off limits" >&2; exit 1;; esac`)

	tok := mcpSessionToken(t, e, "work")
	out := runSDKPlan(t, e, tok, map[string]any{"url": d.URL + "/mcp", "steps": []any{
		map[string]any{"resources": true},
		map[string]any{"templates": true},
		map[string]any{"prompts": true},
		map[string]any{"read": "ev1+demo://resource/static/document/features.md"},
		map[string]any{"read": "ev2+demo://resource/dynamic/text/7"},
		map[string]any{"prompt": "ev1__args-prompt", "args": map[string]any{"city": "Lisbon", "state": "Lisboa"}},
		map[string]any{"read": "own+test://doc/4"},
		map[string]any{"read": "own+test://env/TOKEN"},
		map[string]any{"prompt": "own__greet", "args": map[string]any{"name": "Ann"}},
		map[string]any{"read": "demo://resource/static/document/features.md"},
		map[string]any{"read": "ev3+demo://resource/static/document/features.md"},
		map[string]any{"read": "own+test://doc/99"},
		map[string]any{"read": "own+test://doc/3"},
		map[string]any{"subscribe": "ev1+demo://resource/static/document/features.md"},
		map[string]any{"call": "ev1__toggle-subscriber-updates"},
		map[string]any{"awaitUpdate": "ev1+demo://resource/static/document/features.md"},
		map[string]any{"complete": map[string]any{"type": "ref/prompt", "name": "ev2__completable-prompt"}, "argument": map[string]any{"name": "department", "value": "E"}},
	}})
	raw, _ := json.Marshal(out)
	if _, ok := out.Capabilities["resources"]; !ok {
		t.Errorf("capabilities: got %v, want resources", out.Capabilities)
	}
	if _, ok := out.Capabilities["prompts"]; !ok {
		t.Errorf("capabilities: got %v, want prompts", out.Capabilities)
	}

	var list struct {
		URIs  []string `json:"uris"`
		Pages int      `json:"pages"`
	}
	json.Unmarshal(out.step(t, 0), &list)
	for _, want := range []string{"ev1+demo://resource/static/document/features.md", "ev2+demo://resource/static/document/features.md", "own+test://doc/1", "own+test://doc/5"} {
		if !slices.Contains(list.URIs, want) {
			t.Errorf("resources: missing %s in %q", want, list.URIs)
		}
	}
	// Every page of every server, each once: 7 of each everything, 5 of own (in 3 pages).
	if n := len(list.URIs); n != 19 || len(slices.Compact(slices.Clone(list.URIs))) != n {
		t.Errorf("resources: got %d (%q), want 19 distinct", n, list.URIs)
	}
	var tmpls struct{ URIs []string }
	json.Unmarshal(out.step(t, 1), &tmpls)
	if !slices.Contains(tmpls.URIs, "ev2+demo://resource/dynamic/text/{resourceId}") || !slices.Contains(tmpls.URIs, "own+test://env/{name}") {
		t.Errorf("templates: got %q", tmpls.URIs)
	}
	var prompts struct{ Tools []string }
	json.Unmarshal(out.step(t, 2), &prompts)
	for _, want := range []string{"ev1__simple-prompt", "ev2__args-prompt", "own__greet"} {
		if !slices.Contains(prompts.Tools, want) {
			t.Errorf("prompts: missing %s in %q", want, prompts.Tools)
		}
	}
	if got := string(out.step(t, 3)); !strings.Contains(got, `"uri":"ev1+demo://resource/static/document/features.md"`) || !strings.Contains(got, `"text":`) {
		t.Errorf("read features.md: got %s", got)
	}
	if got := string(out.step(t, 4)); !strings.Contains(got, "ev2+demo://resource/dynamic/text/7") {
		t.Errorf("read a templated resource: got %s", got)
	}
	if got := string(out.step(t, 5)); !strings.Contains(got, "Lisbon") {
		t.Errorf("get args-prompt: got %s", got)
	}
	if got := string(out.step(t, 6)); !strings.Contains(got, `"text":"doc 4"`) {
		t.Errorf("read own doc 4: got %s", got)
	}
	if got := string(out.step(t, 7)); !strings.Contains(got, `value: [redacted`) {
		t.Errorf("read own env TOKEN: got %s, want the secret given and redacted", got)
	}
	if got := string(out.step(t, 8)); !strings.Contains(got, "Hello, Ann") {
		t.Errorf("get own greet: got %s", got)
	}
	for i, what := range map[int]string{9: "a bare upstream URI", 10: "an unknown server's", 11: "an unlisted resource", 12: "a resource the hook refuses"} {
		if got := out.Steps[i]; got["error"] == nil {
			t.Errorf("read %s: got %s, want an error", what, out.step(t, i))
		}
	}
	if got := string(out.Steps[12]["error"]); !strings.Contains(got, "doc 3 is off limits") {
		t.Errorf("refused read: got %s, want the hook's reason", got)
	}
	if got := string(out.step(t, 15)); !strings.Contains(got, `"updated":true`) {
		t.Errorf("subscription: got %s, want an update of the subscribed resource", got)
	}
	if got := string(out.step(t, 16)); !strings.Contains(got, `"Engineering"`) {
		t.Errorf("completion of a prompt's argument: got %s, want server-everything's departments", got)
	}
	if _, ok := out.Capabilities["completions"]; !ok {
		t.Errorf("capabilities: got %v, want completions", out.Capabilities)
	}

	// The hook saw own's reads and gets, told their kind, and nothing it
	// did not match; no read of what no server listed reached it.
	seen, _ := os.ReadFile(hookLog)
	for _, want := range []string{"resource own+test://doc/4", "resource own+test://env/TOKEN", "prompt own__greet", "resource own+test://doc/3"} {
		if !strings.Contains(string(seen), want+"\n") {
			t.Errorf("hook input: missing %q in %q", want, seen)
		}
	}
	if strings.Contains(string(seen), "doc/99") || strings.Contains(string(seen), "ev1") {
		t.Errorf("hook input: got %q, want neither the unlisted read nor another server's", seen)
	}

	// One record per read and get, with the server, decision and size.
	reads := queryAll(t, e, 100, "--kind", "mcp.resource_read")
	gets := queryAll(t, e, 100, "--kind", "mcp.prompt_get")
	byTarget := map[string]auditRec{}
	for _, r := range append(reads, gets...) {
		byTarget[r.Target] = r
	}
	for target, want := range map[string]string{
		"ev1+demo://resource/static/document/features.md": "allow", "ev2+demo://resource/dynamic/text/7": "allow", "own+test://doc/4": "allow",
		"own+test://env/TOKEN": "allow", "own+test://doc/3": "deny", "ev1__args-prompt": "allow", "own__greet": "allow",
	} {
		r, ok := byTarget[target]
		if !ok {
			t.Errorf("audit: no record of %s in %d reads and %d gets", target, len(reads), len(gets))
			continue
		}
		d := r.detail(t)
		if r.Decision != want || d["server"] != strings.SplitN(strings.SplitN(target, "+", 2)[0], "__", 2)[0] {
			t.Errorf("audit %s: got %s %v, want %s and its server", target, r.Decision, d, want)
		}
	}
	// The size of what was read is recorded.
	sizes, _ := queryRecordsRaw(t, e, "--kind", "mcp.resource_read")
	if !strings.Contains(sizes, `"bytes_out":`) {
		t.Errorf("audit: no read's size recorded: %s", sizes)
	}
	if len(reads) != 5 || len(gets) != 2 {
		t.Errorf("audit: got %d reads and %d gets, want 5 and 2 (nothing for what no server listed)", len(reads), len(gets))
	}
	logs, _ := os.ReadFile(e.LogFile())
	assertNoLeak(t, "the daemon's log", append(logs, d.Stderr()...), canary)
	assertNoLeak(t, "the agent's MCP answers", raw, canary)
	assertNoLeak(t, "audit.db", dbBytes(t, filepath.Join(e.StateDir(), "audit.db")), canary)
	assertNoLeak(t, "the hook's input", seen, canary)
}

// queryRecordsRaw is `audit query --json` with args, as printed.
func queryRecordsRaw(t *testing.T, e *env, args ...string) (string, int) {
	t.Helper()
	stdout, stderr, code := e.Run(append([]string{"audit", "query", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("audit query: exit %d, stderr %q", code, stderr)
	}
	return stdout, code
}
