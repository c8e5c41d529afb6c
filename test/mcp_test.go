package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// mcpNodeDir holds the official MCP TypeScript SDK and the reference MCP
// servers, pinned in its package-lock.json.
const mcpNodeDir = "mcpnode"

// requireMCPNode skips t without node or test/mcpnode/node_modules, and
// fails it under CI=true, where `npm ci` has installed them.
func requireMCPNode(t *testing.T) {
	t.Helper()
	why := ""
	if _, err := exec.LookPath("node"); err != nil {
		why = "node is not on PATH"
	} else if _, err := os.Stat(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		why = "test/mcpnode/node_modules is missing; run 'npm ci --prefix test/mcpnode' (make test does)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true, so this test must run)", why)
	}
	t.Skip(why)
}

// newMCPEnv starts a daemon with two claude profiles, work and other, on
// a loopback provider, each with a key.
func newMCPEnv(t *testing.T) (*env, *daemon) {
	t.Helper()
	e := newEnv(t)
	d := e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	for _, alias := range []string{"work", "other"} {
		if out, stderr, code := e.RunInput("sk-ant-mcp-canary-"+alias, "profiles", "create", "claude", alias, "--provider", "local"); code != 0 {
			t.Fatalf("profiles create %s: exit %d, stdout %q, stderr %q", alias, code, out, stderr)
		}
	}
	return e, d
}

// mcpSessionToken starts a session of alias and returns its token.
func mcpSessionToken(t *testing.T, e *env, alias string) string {
	t.Helper()
	var s struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "env", alias, "--json")), &s); err != nil || !strings.HasPrefix(s.Token, "rlt_") {
		t.Fatalf("profiles env %s --json: %v, token %q", alias, err, s.Token)
	}
	return s.Token
}

// buildMCPTestServer builds the mcp package's test upstream server.
func buildMCPTestServer(t *testing.T) string {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "mcptestserver")
	cmd := exec.Command("go", "build", "-o", bin, "./mcp/internal/testserver/mcptestserver")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the test MCP server: %v\n%s", err, out)
	}
	if err := os.Chmod(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin
}

// rpcLine is one JSON-RPC message `ringlet mcp --stdio` wrote.
type rpcLine struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Method  string          `json:"method"`
	Result  json.RawMessage `json:"result"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// stdioBridge runs `ringlet mcp --stdio` with extra environment, sends
// each message (waiting for the answer to a request before the next),
// closes stdin and returns the answers by id. It fails t if stdout
// carries anything but JSON-RPC, or if the bridge does not exit 0.
func stdioBridge(t *testing.T, e *env, extraEnv []string, msgs ...string) map[string]rpcLine {
	t.Helper()
	return stdioBridgeArgs(t, e, []string{"mcp", "--stdio"}, extraEnv, msgs...)
}

// stdioAdmin is stdioBridge as `ringlet mcp --stdio --admin`: Ringlet's
// controls, with the admin token.
func stdioAdmin(t *testing.T, e *env, extraEnv []string, msgs ...string) map[string]rpcLine {
	t.Helper()
	return stdioBridgeArgs(t, e, []string{"mcp", "--stdio", "--admin"}, extraEnv, msgs...)
}

// stdioBridgeArgs is stdioBridge with ringlet's arguments.
func stdioBridgeArgs(t *testing.T, e *env, args, extraEnv []string, msgs ...string) map[string]rpcLine {
	t.Helper()
	// A message unanswered this long is lost (hangReport); the context
	// ends the bridge if the report cannot.
	hang := time.NewTimer(90 * time.Second)
	defer hang.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 120*time.Second)
	defer cancel()
	cmd := e.command(ctx, ringletBin, args...)
	cmd.Env = append(cmd.Env, extraEnv...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	got := map[string]rpcLine{}
	take := func(line string) {
		var m rpcLine
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.JSONRPC != "2.0" {
			t.Errorf("stdout of mcp --stdio carried a line that is not JSON-RPC: %q", line)
			return
		}
		if len(m.ID) > 0 {
			got[string(m.ID)] = m
		} else if m.Method != "" {
			got[m.Method] = m
		}
	}
	for _, msg := range msgs {
		if _, err := io.WriteString(stdin, msg+"\n"); err != nil {
			t.Fatalf("write to mcp --stdio: %v; stderr %s", err, stderr.String())
		}
		var head struct {
			ID json.RawMessage `json:"id"`
		}
		json.Unmarshal([]byte(msg), &head)
		if len(head.ID) == 0 {
			continue
		}
		for _, ok := got[string(head.ID)]; !ok; _, ok = got[string(head.ID)] {
			select {
			case line, open := <-lines:
				if !open {
					t.Fatalf("mcp --stdio closed stdout before answering %s; stderr %s", head.ID, stderr.String())
				}
				take(line)
			case <-hang.C:
				before := stderr.String()
				t.Fatalf("no answer to %s from mcp --stdio; stderr %s\n%s", head.ID, before, hangReport(e, cmd, &stderr, got))
			}
		}
	}
	stdin.Close()
	for line := range lines {
		take(line)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mcp --stdio: %v; stderr %s", err, stderr.String())
	}
	e.transcript.WriteString(stderr.String())
	if strings.Contains(stderr.String(), "did not answer a request") {
		// The client was told, but an answer was lost on the way.
		t.Errorf("mcp --stdio: the daemon left a request unanswered; stderr %s", stderr.String())
		for _, d := range e.daemons {
			t.Logf("daemon (pid %d) log:\n%s", d.Pid, d.stderr.String())
		}
	}
	return got
}

// hangReport is what can be learnt of a bridge that answered nothing:
// the answers it gave, and the goroutines of the bridge and of the
// daemons, which SIGQUIT (sent to all at once, so that none has moved on
// when the others write theirs) makes them write and exit, after the
// daemons' logs.
func hangReport(e *env, bridge *exec.Cmd, bridgeErr *lockedBuffer, got map[string]rpcLine) string {
	var b strings.Builder
	fmt.Fprintf(&b, "answers so far: %v\n", slices.Sorted(maps.Keys(got)))
	for _, d := range e.daemons {
		if !d.exited() {
			_ = d.cmd.Process.Signal(syscall.SIGQUIT) // one that exited meanwhile has nothing to say
		}
	}
	_ = bridge.Process.Signal(syscall.SIGQUIT) // likewise
	_ = bridge.Wait()                          // it ends on SIGQUIT, or is killed after WaitDelay
	fmt.Fprintf(&b, "--- mcp --stdio (pid %d) after SIGQUIT:\n%s\n", bridge.Process.Pid, bridgeErr.String())
	for _, d := range e.daemons {
		select {
		case <-d.done:
		case <-time.After(exitTimeout):
		}
		log := d.stderr.String()
		if len(log) > 512<<10 {
			log = "…" + log[len(log)-512<<10:]
		}
		fmt.Fprintf(&b, "--- daemon (pid %d) log, and its goroutines after SIGQUIT:\n%s\n", d.Pid, log)
	}
	return b.String()
}

const stdioInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`
const stdioInitialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`

func stdioCall(id int, tool string, args any) string {
	a, _ := json.Marshal(args)
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, a)
}

// callText is the text and isError of a tools/call answer.
func callText(t *testing.T, m rpcLine) (string, bool) {
	t.Helper()
	if m.Error != nil {
		t.Fatalf("tools/call: JSON-RPC error %d %s", m.Error.Code, m.Error.Message)
	}
	var r struct {
		Content []struct{ Text string }
		IsError bool `json:"isError"`
	}
	json.Unmarshal(m.Result, &r)
	var b strings.Builder
	for _, c := range r.Content {
		b.WriteString(c.Text)
	}
	return b.String(), r.IsError
}

// mcpServers is `ringlet mcp list PROFILE --json`.
type mcpServerView struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Error     string `json:"error"`
	Network   string `json:"network"`
	NoSandbox bool   `json:"no_sandbox"`
	Tools     []struct {
		Name, Exposed, State, Reason string
	} `json:"tools"`
}

func mcpServers(t *testing.T, e *env, profile string) []mcpServerView {
	t.Helper()
	var out []mcpServerView
	if err := json.Unmarshal([]byte(mustRun(t, e, "mcp", "list", profile, "--json")), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMCPCommands drives the README's MCP section with the CLI and
// `ringlet mcp --stdio`: add, list, a call through hooks, pinning and
// approval, remove.
func TestMCPCommands(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, _ := newMCPEnv(t)
	// The server runs in the profile's sandbox: what it writes is in a
	// directory added with --rw.
	files := filepath.Join(e.Root, "up-files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	rec, pidFile := filepath.Join(files, "received"), filepath.Join(files, "pid")

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"mcp", "add", "work", "Bad_Name", "--", "x"}, 2},
		{[]string{"mcp", "add", "work", "up"}, 2},
		{[]string{"mcp", "add", "work", "up", "x", "--", "y"}, 2},
		{[]string{"mcp", "add", "nope", "up", "--", "true"}, 1},
		{[]string{"mcp", "add", "work", "up", "--", "no-such-program-" + sbRandomHex(4)}, 1},
		{[]string{"mcp", "add", "work", "up", "--network", "wifi", "--", "x"}, 2},
		{[]string{"mcp", "add", "work", "up", "--no-sandbox", "--rw", "/tmp", "--", "x"}, 2},
		{[]string{"mcp", "add", "work", "up", "--url", "http://127.0.0.1:9/mcp", "--ro", "/tmp"}, 2},
		{[]string{"mcp", "add", "work", "up", "--ro", "/nonexistent-" + sbRandomHex(4), "--", "true"}, 1},
		{[]string{"mcp", "list"}, 2},
		{[]string{"mcp", "remove", "work", "missing"}, 1},
	} {
		if _, stderr, code := e.Run(tc.args...); code != tc.code || !strings.HasPrefix(stderr, "ringlet: ") {
			t.Errorf("ringlet %s: exit %d, stderr %q; want exit %d with one ringlet: line", strings.Join(tc.args, " "), code, stderr, tc.code)
		}
	}
	// The refused remove is audited as allowed, then as an error: never
	// as an allowed removal alone.
	var removes struct {
		Records []struct{ Target, Decision string }
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "mcp.remove", "--json")), &removes); err != nil || len(removes.Records) != 2 ||
		removes.Records[0].Decision != "error" || removes.Records[1].Decision != "allow" || removes.Records[0].Target != "missing" {
		t.Errorf("audit of the refused mcp remove: got %+v (%v), want the allow followed by an error (newest first)", removes.Records, err)
	}
	out := mustRun(t, e, "mcp", "add", "work", "up", "--timeout", "20s", "--rw", files, "--", bin, "-record", rec, "-pid", pidFile)
	if !strings.Contains(out, "added MCP server up to profile work") {
		t.Errorf("mcp add: got %q", out)
	}
	if s := mcpServers(t, e, "work"); len(s) != 1 || s[0].Name != "up" || s[0].State != "idle" {
		t.Errorf("mcp list before use: got %+v, want up idle", s)
	}
	if s := mcpServers(t, e, "other"); len(s) != 0 {
		t.Errorf("other's servers: got %+v, want none", s)
	}

	work := []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}
	got := stdioBridge(t, e, work, stdioInit, stdioInitialized,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		stdioCall(3, "up__echo", map[string]string{"text": "hello from stdio"}))
	if !strings.Contains(string(got["2"].Result), `"up__echo"`) || strings.Contains(string(got["2"].Result), `"profiles_list"`) {
		t.Errorf("a session's tools/list: got %s, want up__echo and no admin tool", got["2"].Result)
	}
	if text, isErr := callText(t, got["3"]); isErr || text != `{"text":"hello from stdio"}` {
		t.Errorf("up__echo: got %v %q", isErr, text)
	}
	if s := mcpServers(t, e, "work"); len(s) != 1 || s[0].State != "running" {
		t.Errorf("mcp list after use: got %+v, want up running", s)
	}

	// The README's hook stops the call; the upstream receives nothing.
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^up__",
		"--shell", `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf" || { echo "refused: no rm -rf" >&2; exit 1; }`)
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "rm -rf /"}))
	if text, isErr := callText(t, got["2"]); !isErr || !strings.HasPrefix(text, "refused: no rm -rf [refused by Ringlet hook ") {
		t.Errorf("denied call: got %v %q, want the hook's reason as an error result", isErr, text)
	}
	if data, _ := os.ReadFile(rec); strings.Contains(string(data), "rm -rf") {
		t.Error("the upstream received the denied call")
	}

	// A post-tool-use hook sees the result (in RINGLET_TOOL_OUTPUT and on
	// stdin) and can withhold it; the upstream did run the call.
	mustRun(t, e, "hooks", "add", "work", "--on", "post-tool-use", "--match", "^up__echo$",
		"--shell", `printenv RINGLET_TOOL_OUTPUT | grep -q "hello from stdio" || exit 0; grep -q '"tool_output"' || exit 3; echo "withheld: the result names stdio" >&2; exit 1`)
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized,
		stdioCall(2, "up__echo", map[string]string{"text": "hello from stdio"}),
		stdioCall(3, "up__echo", map[string]string{"text": "plain"}))
	if text, isErr := callText(t, got["2"]); !isErr || !strings.HasPrefix(text, "withheld: the result names stdio [refused by Ringlet hook ") {
		t.Errorf("a result a post-tool-use hook refuses: got %v %q, want the hook's reason as an error result", isErr, text)
	}
	if text, isErr := callText(t, got["3"]); isErr || text != `{"text":"plain"}` {
		t.Errorf("a result the post-tool-use hook allows: got %v %q, want it unchanged", isErr, text)
	}
	if data, _ := os.ReadFile(rec); strings.Count(string(data), "hello from stdio") < 2 {
		t.Errorf("the upstream's record: got %q, want the withheld call received (post-tool-use runs after the call)", data)
	}
	var decisions struct {
		Records []struct {
			Decision string
			Detail   map[string]any
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "hook.decision", "--json")), &decisions); err != nil {
		t.Fatal(err)
	}
	var post []string // newest first
	for _, r := range decisions.Records {
		if r.Detail["event"] == "post-tool-use" {
			post = append(post, r.Decision)
		}
	}
	if !slices.Equal(post, []string{"allow", "deny"}) {
		t.Errorf("audit of the post-tool-use hooks: got %q, want a deny, then an allow", post)
	}
	hooks := mustRun(t, e, "hooks", "list", "work", "--json")
	var hl []struct{ ID, Event string }
	json.Unmarshal([]byte(hooks), &hl)
	for _, h := range hl {
		if h.Event == "post-tool-use" {
			mustRun(t, e, "hooks", "remove", "work", h.ID)
		}
	}
	var page struct {
		Records []struct{ Kind, Target, Decision string }
	}
	// The pre-tool-use refusal and the withheld result.
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "tool.call", "--decision", "deny", "--json")), &page); err != nil || len(page.Records) != 2 || page.Records[0].Target != "up__echo" || page.Records[1].Target != "up__echo" {
		t.Errorf("audit of the denied calls: got %+v (%v), want two tool.call denies of up__echo", page.Records, err)
	}

	// The server rewrites a tool: hidden until approved.
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__set_desc", map[string]string{"desc": "Now also uploads your files."}))
	if _, isErr := callText(t, got["2"]); isErr {
		t.Fatal("set_desc failed")
	}
	if !waitFor(10*time.Second, func() bool {
		out, _, _ := e.Run("mcp", "list", "work")
		return strings.Contains(out, "up: tool echo is changed") && strings.Contains(out, "ringlet mcp approve work up")
	}) {
		out, _, _ := e.Run("mcp", "list", "work")
		t.Fatalf("mcp list after the tool changed: got %q, want echo changed and how to approve", out)
	}
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, stdioCall(3, "up__echo", map[string]string{}))
	if strings.Contains(string(got["2"].Result), `"up__echo"`) || got["3"].Error == nil {
		t.Errorf("a changed tool: listed %s, call %+v; want hidden and refused", got["2"].Result, got["3"].Error)
	}
	if _, stderr, code := e.Run("mcp", "approve", "work", "up"); code != 2 || !strings.Contains(stderr, "refusing to approve without confirmation") {
		t.Errorf("mcp approve off a terminal without --yes: exit %d, stderr %q; want 2 and a refusal", code, stderr)
	}
	if out := mustRun(t, e, "mcp", "approve", "work", "up", "--yes"); !strings.Contains(out, "approved up: echo") || !strings.Contains(out, "+Now also uploads your files.") {
		t.Errorf("mcp approve: got %q", out)
	}
	page.Records = nil
	if err := json.Unmarshal([]byte(mustRun(t, e, "audit", "query", "--kind", "mcp.approve", "--json")), &page); err != nil || len(page.Records) != 1 || page.Records[0].Target != "up" {
		t.Errorf("audit of the approval: got %+v (%v)", page.Records, err)
	}
	got = stdioBridge(t, e, work, stdioInit, stdioInitialized, stdioCall(2, "up__echo", map[string]string{"text": "back"}))
	if text, isErr := callText(t, got["2"]); isErr || !strings.Contains(text, "back") {
		t.Errorf("echo after approval: got %v %q", isErr, text)
	}

	// With --admin, the admin token (from the token file) sees Ringlet's
	// controls; without it and without a session, the bridge refuses.
	if _, stderr, code := bridgeOnce(t, e, nil, stdioInit+"\n"); code != 1 || !strings.Contains(stderr, "no Ringlet session in the environment") {
		t.Errorf("mcp --stdio without a session or --admin: got exit %d, stderr %q; want 1 and a refusal", code, stderr)
	}
	got = stdioAdmin(t, e, nil, stdioInit, stdioInitialized, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	for _, want := range []string{`"profiles_list"`, `"hooks_add"`, `"keychain_list"`} {
		if !strings.Contains(string(got["2"].Result), want) {
			t.Errorf("admin tools/list over stdio: missing %s", want)
		}
	}

	// Its pid is one of the sandbox's own pid namespace: the host's
	// processes are found by the pid file's path on their command line.
	if len(markedProcesses(pidFile)) == 0 {
		t.Fatal("no process on the host runs the server")
	}
	mustRun(t, e, "mcp", "remove", "work", "up")
	if !waitFor(10*time.Second, func() bool { return len(markedProcesses(pidFile)) == 0 }) {
		t.Errorf("the removed server still runs: %v", markedProcesses(pidFile))
	}
	e.AssertNoSecret(e.Token())
}

// TestMCPUpstreamsStopWithDaemon: upstream servers are children of the
// daemon and go when it stops.
func TestMCPUpstreamsStopWithDaemon(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	marker := filepath.Join(e.Root, "pid-"+sbRandomHex(4))
	mustRun(t, e, "mcp", "add", "work", "up", "--", bin, "-pid", marker)
	stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}, stdioInit, stdioInitialized, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if len(markedProcesses(marker)) == 0 {
		t.Fatal("no process on the host runs the server")
	}
	mustRun(t, e, "daemon", "stop")
	d.Wait()
	if !waitFor(5*time.Second, func() bool { return len(markedProcesses(marker)) == 0 }) {
		t.Errorf("the upstream outlived the daemon: %v", markedProcesses(marker))
	}
}

// nodeResult is what test/mcpnode/client.mjs prints.
type nodeResult struct {
	ProtocolVersion string `json:"protocolVersion"`
	SessionID       string `json:"sessionId"`
	ConnectError    string `json:"connectError"`
	Steps           []struct {
		Tools  []string `json:"tools"`
		Error  string   `json:"error"`
		Result *struct {
			Content []struct{ Type, Text string }
			IsError bool `json:"isError"`
		} `json:"result"`
		Progress []struct {
			Progress float64 `json:"progress"`
			Total    float64 `json:"total"`
		} `json:"progress"`
		// Of an exec step: what the command printed, and whether
		// notifications/tools/list_changed came after it.
		Stdout      string `json:"stdout"`
		ListChanged bool   `json:"listChanged"`
	} `json:"steps"`
}

// runSDK runs the official TypeScript SDK client with plan.
func runSDK(t *testing.T, e *env, tok string, plan map[string]any) nodeResult {
	t.Helper()
	b, _ := json.Marshal(plan)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := e.command(ctx, "node", "client.mjs", string(b))
	cmd.Dir = mcpNodeDir
	cmd.Env = append(cmd.Env, "RINGLET_TEST_TOKEN="+tok)
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("node client.mjs: %v\nstdout %s\nstderr %s", err, out.String(), errb.String())
	}
	var r nodeResult
	if err := json.Unmarshal([]byte(out.String()), &r); err != nil {
		t.Fatalf("node client.mjs printed %q: %v", out.String(), err)
	}
	if r.ConnectError != "" {
		t.Fatalf("the SDK client could not connect: %s\nstderr %s", r.ConnectError, errb.String())
	}
	return r
}

func (r nodeResult) text(i int) (string, bool) {
	s := r.Steps[i]
	if s.Result == nil {
		return "error: " + s.Error, true
	}
	var b strings.Builder
	for _, c := range s.Result.Content {
		b.WriteString(c.Text)
	}
	return b.String(), s.Result.IsError
}

// TestMCPWithTheOfficialSDK connects the official MCP TypeScript SDK to
// the daemon over streamable HTTP (and over `ringlet mcp --stdio`), with
// the reference servers everything and filesystem aggregated for a
// profile.
func TestMCPWithTheOfficialSDK(t *testing.T) {
	requireMCPNode(t)
	t.Parallel()
	e, d := newMCPEnv(t)
	modules, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol"))
	if err != nil {
		t.Fatal(err)
	}
	url := d.URL + "/mcp"

	// The admin token: Ringlet's controls, protocol 2025-11-25, a Ringlet session id.
	admin := runSDK(t, e, e.Token(), map[string]any{"url": url, "steps": []any{
		map[string]any{"list": true}, map[string]any{"call": "profiles_list"}}})
	if admin.ProtocolVersion != "2025-11-25" || !strings.HasPrefix(admin.SessionID, "rmcp_") {
		t.Errorf("admin connection: version %q, session %q", admin.ProtocolVersion, admin.SessionID)
	}
	if len(admin.Steps[0].Tools) != 27 || !slices.Contains(admin.Steps[0].Tools, "sessions_revoke") {
		t.Errorf("admin tools: got %v, want the 27 controls", admin.Steps[0].Tools)
	}
	if text, isErr := admin.text(1); isErr || !strings.Contains(text, `"alias":"work"`) {
		t.Errorf("profiles_list: got %v %q", isErr, text)
	}

	// everything runs behind a tee, so the test sees every byte it gets.
	// Both run in the profile's sandbox, with test/mcpnode's packages
	// read-only and their own directories read-write.
	recDir := filepath.Join(e.Root, "rec")
	dir := filepath.Join(e.Root, "shared")
	for _, d := range []string{recDir, dir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rec := filepath.Join(recDir, "everything.in")
	nodeModules := filepath.Dir(modules)
	mustRun(t, e, "mcp", "add", "work", "everything", "--ro", nodeModules, "--rw", recDir, "--", "/bin/sh", "-c", `tee -a "$0" | exec node "$1" stdio`,
		rec, filepath.Join(modules, "server-everything", "dist", "index.js"))
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello from the workspace"), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, e, "mcp", "add", "work", "fs", "--ro", nodeModules, "--rw", dir, "--", "node", filepath.Join(modules, "server-filesystem", "dist", "index.js"), dir)

	workTok, otherTok := mcpSessionToken(t, e, "work"), mcpSessionToken(t, e, "other")
	work := runSDK(t, e, workTok, map[string]any{"url": url, "steps": []any{
		map[string]any{"list": true},
		map[string]any{"call": "everything__echo", "args": map[string]any{"message": "hello through ringlet"}},
		map[string]any{"call": "fs__read_text_file", "args": map[string]any{"path": filepath.Join(dir, "hello.txt")}},
		map[string]any{"call": "session_info"},
		map[string]any{"call": "everything__trigger-long-running-operation", "args": map[string]any{"duration": 0.3, "steps": 3}, "progress": true},
	}})
	for _, want := range []string{"everything__echo", "fs__read_text_file", "session_info"} {
		if !slices.Contains(work.Steps[0].Tools, want) {
			t.Errorf("work's tools: missing %s in %v", want, work.Steps[0].Tools)
		}
	}
	if slices.Contains(work.Steps[0].Tools, "profiles_list") {
		t.Error("a session token sees admin tools")
	}
	if text, isErr := work.text(1); isErr || text != "Echo: hello through ringlet" {
		t.Errorf("everything__echo: got %v %q", isErr, text)
	}
	if text, isErr := work.text(2); isErr || !strings.Contains(text, "hello from the workspace") {
		t.Errorf("fs__read_text_file: got %v %q", isErr, text)
	}
	if text, isErr := work.text(3); isErr || !strings.Contains(text, `"profile":"work"`) {
		t.Errorf("session_info: got %v %q", isErr, text)
	}
	// everything's progress reaches the client, under the client's token
	// (the SDK matches it to the call).
	if text, isErr := work.text(4); isErr || !strings.Contains(text, "Long running operation completed") {
		t.Errorf("everything__trigger-long-running-operation: got %v %q", isErr, text)
	}
	// Progress is best effort in MCP: mcp-go's server can drop a
	// notification that races the answer (Ringlet waits a moment to make
	// that rare). What arrives must be this call's, in order.
	p := work.Steps[4].Progress
	ok := len(p) >= 1
	for i := range p {
		ok = ok && p[i].Total == 3 && p[i].Progress == float64(i+1)
	}
	if !ok {
		t.Errorf("progress of the long-running operation: got %+v, want 1, 2, 3 of 3 in order (the last may be lost)", p)
	} else if len(p) < 3 {
		t.Logf("got %d of 3 progress notifications (the rest raced the answer in mcp-go)", len(p))
	}

	// Another profile's session sees none of it and cannot call it.
	other := runSDK(t, e, otherTok, map[string]any{"url": url, "steps": []any{
		map[string]any{"list": true},
		map[string]any{"call": "everything__echo", "args": map[string]any{"message": "from other"}},
	}})
	if slices.ContainsFunc(other.Steps[0].Tools, func(n string) bool { return strings.Contains(n, "__") }) {
		t.Errorf("other's tools: got %v, want none of work's servers", other.Steps[0].Tools)
	}
	if text, isErr := other.text(1); !isErr {
		t.Errorf("other called work's everything__echo: got %q", text)
	}

	// A denying hook: an error result with its reason; everything gets nothing.
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^everything__",
		"--shell", `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf" || { echo "refused by a ringlet hook" >&2; exit 1; }`)
	denied := runSDK(t, e, workTok, map[string]any{"url": url, "steps": []any{
		map[string]any{"call": "everything__echo", "args": map[string]any{"message": "rm -rf /"}},
	}})
	if text, isErr := denied.text(0); !isErr || !strings.HasPrefix(text, "refused by a ringlet hook [refused by Ringlet hook ") {
		t.Errorf("denied call: got %v %q", isErr, text)
	}
	data, err := os.ReadFile(rec)
	if err != nil || !strings.Contains(string(data), "hello through ringlet") {
		t.Fatalf("everything's input: got %q (%v), want the allowed call", data, err)
	}
	if strings.Contains(string(data), "rm -rf") {
		t.Error("everything received the denied call")
	}

	// The same SDK over `ringlet mcp --stdio`, spawned as a stdio server.
	// With --admin it is the admin token, which has no upstream tools.
	adminStdio := runSDK(t, e, "", map[string]any{
		"stdio": map[string]any{"command": ringletBin, "args": []string{"mcp", "--stdio", "--admin"}},
		"steps": []any{map[string]any{"call": "everything__echo", "args": map[string]any{"message": "as admin"}}},
	})
	if text, isErr := adminStdio.text(0); !isErr {
		t.Errorf("the admin token called a profile's upstream tool: %q", text)
	}
	stdioWork := runSDKEnv(t, e, []string{"RINGLET_SESSION_TOKEN=" + workTok}, map[string]any{
		"stdio": map[string]any{"command": ringletBin, "args": []string{"mcp", "--stdio"}},
		"steps": []any{map[string]any{"list": true}, map[string]any{"call": "everything__echo", "args": map[string]any{"message": "over stdio"}}},
	})
	if !slices.Contains(stdioWork.Steps[0].Tools, "everything__echo") {
		t.Errorf("tools over stdio: got %v", stdioWork.Steps[0].Tools)
	}
	if text, isErr := stdioWork.text(1); isErr || text != "Echo: over stdio" {
		t.Errorf("everything__echo over stdio: got %v %q", isErr, text)
	}
	e.AssertNoSecret(e.Token())
}

// runSDKEnv is runSDK with extra environment and no HTTP token.
func runSDKEnv(t *testing.T, e *env, extra []string, plan map[string]any) nodeResult {
	t.Helper()
	saved := e.ExtraEnv
	e.ExtraEnv = append(slices.Clone(saved), extra...)
	defer func() { e.ExtraEnv = saved }()
	return runSDK(t, e, "", plan)
}
