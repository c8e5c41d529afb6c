package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// adminTools are Ringlet's own controls, which only the admin token sees
// on /mcp: an agent that saw them could remove its own guard hook.
var adminTools = []string{"profiles_list", "profiles_delete", "sessions_revoke", "hooks_add", "hooks_remove", "keychain_list"}

// shellExports parses the `export NAME='value'` lines of `profiles env`.
func shellExports(t *testing.T, out string) map[string]string {
	t.Helper()
	vars := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(line, "export ")
		if !ok {
			continue
		}
		name, quoted, ok := strings.Cut(rest, "=")
		if !ok || len(quoted) < 2 || quoted[0] != '\'' || quoted[len(quoted)-1] != '\'' {
			t.Fatalf("profiles env: cannot parse %q", line)
		}
		vars[name] = strings.ReplaceAll(quoted[1:len(quoted)-1], `'\''`, `'`)
	}
	return vars
}

// authRecorder is a reverse proxy in front of the daemon that keeps the
// Authorization header of every request it passes on.
type authRecorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newAuthRecorder(t *testing.T, daemonURL string) *authRecorder {
	t.Helper()
	target, err := url.Parse(daemonURL)
	if err != nil {
		t.Fatal(err)
	}
	r := &authRecorder{}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		r.mu.Lock()
		r.seen = append(r.seen, pr.In.Header.Get("Authorization"))
		r.mu.Unlock()
		pr.SetURL(target) // and the Host the daemon's guard wants
	}, FlushInterval: -1}
	r.Server = httptest.NewServer(rp)
	t.Cleanup(r.Close)
	return r
}

// take returns the headers seen since the last take.
func (r *authRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.seen
	r.seen = nil
	return out
}

// bridgeOnce runs `ringlet mcp --stdio` with env added, writes input and
// closes stdin, and returns what it printed and its exit code.
func bridgeOnce(t *testing.T, e *env, env []string, input string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()
	cmd := e.command(ctx, ringletBin, "mcp", "--stdio")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(input)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	e.transcript.WriteString(errb.String())
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("mcp --stdio did not end within %s; stderr %q", runTimeout, errb.String())
	case err == nil:
		return out.String(), errb.String(), 0
	case !errors.As(err, &ee):
		t.Fatalf("mcp --stdio: %v", err)
	}
	return out.String(), errb.String(), ee.ExitCode()
}

// toolNames are the names in a tools/list result.
func toolNames(t *testing.T, m rpcLine) []string {
	t.Helper()
	if m.Error != nil {
		t.Fatalf("tools/list: JSON-RPC error %d %s", m.Error.Code, m.Error.Message)
	}
	var r struct {
		Tools []struct{ Name string } `json:"tools"`
	}
	if err := json.Unmarshal(m.Result, &r); err != nil {
		t.Fatalf("tools/list result %s: %v", m.Result, err)
	}
	var names []string
	for _, tl := range r.Tools {
		names = append(names, tl.Name)
	}
	return names
}

// TestMCPBridgeForSessionEnv: an agent started in a shell where
// `profiles env` ran, which spawns the documented `ringlet mcp --stdio`,
// gets its session's tools and never Ringlet's controls, though the admin
// token file is right there for the taking; with a session in the
// environment whose token is missing, not one, or revoked, the bridge
// refuses to start, and never sends the admin token anywhere.
func TestMCPBridgeForSessionEnv(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	mustRun(t, e, "mcp", "add", "work", "up", "--", bin)
	mustRun(t, e, "hooks", "add", "work", "--on", "pre-tool-use", "--match", "^Bash$", "--shell", `echo "$RINGLET_TOOL_INPUT" | grep -qv "rm -rf"`)
	guard := hkList(t, e, "work")
	if len(guard) != 1 {
		t.Fatalf("hooks list work: got %+v, want the one guard", guard)
	}
	admin := "Bearer " + e.Token()
	rec := newAuthRecorder(t, d.URL)
	// Every address the bridge could find the daemon at is the recorder:
	// RINGLET_URL wins over the daemon's state file.
	viaRecorder := []string{"RINGLET_URL=" + rec.URL}

	// The control: outside any session, with --admin, the bridge uses the
	// token file, and the recorder sees it. This is what an agent got
	// before, without --admin.
	got := stdioAdmin(t, e, viaRecorder, stdioInit, stdioInitialized, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	if names := toolNames(t, got["2"]); !strings.Contains(strings.Join(names, " "), "hooks_remove") {
		t.Fatalf("admin tools/list (the control): got %v, want Ringlet's controls", names)
	}
	if seen := rec.take(); len(seen) == 0 || seen[0] != admin {
		t.Fatalf("the control's requests: got %d, want them to carry the admin token", len(seen))
	}

	exports := shellExports(t, mustRun(t, e, "profiles", "env", "work"))
	tok := exports["RINGLET_SESSION_TOKEN"]
	if !strings.HasPrefix(tok, "rlt_") || exports["RINGLET_SESSION"] == "" || exports["RINGLET_SESSION_URL"] != d.URL || exports["ANTHROPIC_AUTH_TOKEN"] != tok {
		t.Fatalf("profiles env: got %v, want RINGLET_SESSION, RINGLET_SESSION_TOKEN (the agent's key) and RINGLET_SESSION_URL %s", exports, d.URL)
	}
	var sessionEnv []string
	for k, v := range exports {
		if k == "RINGLET_SESSION_URL" {
			v = rec.URL
		}
		sessionEnv = append(sessionEnv, k+"="+v)
	}
	sessionEnv = append(sessionEnv, viaRecorder...)

	got = stdioBridge(t, e, sessionEnv, stdioInit, stdioInitialized,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		stdioCall(3, "hooks_remove", map[string]string{"profile": "work", "id": guard[0].ID}),
		stdioCall(4, "up__echo", map[string]string{"text": "from the session"}))
	names := toolNames(t, got["2"])
	if !strings.Contains(strings.Join(names, " "), "up__echo") {
		t.Errorf("the session's tools/list: got %v, want its profile's upstream tools (up__echo)", names)
	}
	for _, admin := range adminTools {
		if strings.Contains(" "+strings.Join(names, " ")+" ", " "+admin+" ") {
			t.Errorf("the session's tools/list: got %v, want no admin tool (%s)", names, admin)
		}
	}
	if m := got["3"]; m.Error == nil {
		if _, isErr := callText(t, m); !isErr {
			t.Errorf("hooks_remove from the session: got %s, want it refused", m.Result)
		}
	}
	if text, isErr := callText(t, got["4"]); isErr || text != `{"text":"from the session"}` {
		t.Errorf("up__echo from the session: got %v %q, want its echo", isErr, text)
	}
	if hooks := hkList(t, e, "work"); len(hooks) != 1 || hooks[0].ID != guard[0].ID {
		t.Errorf("hooks after the session's hooks_remove: got %+v, want the guard still there", hooks)
	}
	if recs := auditOf(t, e, "work", "hook.remove"); len(recs) != 0 {
		t.Errorf("audit: got %d hook.remove records, want none", len(recs))
	}
	for _, h := range rec.take() {
		if h != "Bearer "+tok {
			t.Errorf("a request of the session's bridge carried %q, want only the session token", strings.TrimPrefix(h, "Bearer ")[:4]+"…")
		}
	}

	// Refusals: one line on stderr, nothing on stdout, and no request with
	// the admin token, whatever the environment holds.
	revoked := shellExports(t, mustRun(t, e, "profiles", "env", "work"))
	mustRun(t, e, "sessions", "revoke", revoked["RINGLET_SESSION"])
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"a revoked session", []string{"RINGLET_SESSION=" + revoked["RINGLET_SESSION"], "RINGLET_SESSION_TOKEN=" + revoked["RINGLET_SESSION_TOKEN"], "RINGLET_SESSION_URL=" + rec.URL}, "has ended"},
		{"a revoked session's token in ANTHROPIC_API_KEY alone", []string{"ANTHROPIC_API_KEY=" + revoked["RINGLET_SESSION_TOKEN"], "ANTHROPIC_BASE_URL=" + rec.URL + "/proxy"}, "has ended"},
		{"a revoked session without its URL", []string{"RINGLET_SESSION_TOKEN=" + revoked["RINGLET_SESSION_TOKEN"]}, "has ended"},
		{"an empty session token", []string{"RINGLET_SESSION=" + exports["RINGLET_SESSION"], "RINGLET_SESSION_TOKEN=", "RINGLET_SESSION_URL=" + rec.URL}, "holds no session token"},
		{"a session id alone", []string{"RINGLET_SESSION=" + exports["RINGLET_SESSION"]}, "holds no session token"},
		{"a session URL alone", []string{"RINGLET_SESSION_URL=" + rec.URL}, "holds no session token"},
		{"the admin token as the session token", []string{"RINGLET_SESSION_TOKEN=" + e.Token(), "RINGLET_SESSION_URL=" + rec.URL}, "is not a Ringlet session token"},
		{"a session beside RINGLET_TOKEN", []string{"RINGLET_SESSION_TOKEN=" + revoked["RINGLET_SESSION_TOKEN"], "RINGLET_SESSION_URL=" + rec.URL, "RINGLET_TOKEN=" + e.Token()}, "has ended"},
		// An agent that passes its MCP servers none of its variables
		// (Codex passes a few by name) gets a refusal, not the token file.
		{"no session at all", nil, "never uses the admin token unless asked with --admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := bridgeOnce(t, e, append(tc.env, viaRecorder...), stdioInit+"\n")
			last := strings.TrimSpace(stderr)
			if i := strings.LastIndex(last, "\n"); i >= 0 {
				last = last[i+1:]
			}
			if code != 1 || stdout != "" || !strings.HasPrefix(last, "ringlet: ") || !strings.Contains(last, tc.want) || !strings.Contains(last, "never uses the admin token") {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit 1, no output and a line saying %q", code, stdout, stderr, tc.want)
			}
			for _, h := range rec.take() {
				if h == admin {
					t.Error("the bridge sent the admin token")
				}
			}
		})
	}
	if hooks := hkList(t, e, "work"); len(hooks) != 1 {
		t.Errorf("hooks at the end: got %+v, want the guard", hooks)
	}
}

// TestMCPBridgeInSandbox: inside a `profiles run` sandbox, `ringlet` is on
// PATH (the daemon's own binary, read-only) and `ringlet mcp --stdio`
// there serves the session's tools through the forwarder and the
// session's socket, which never admits the admin token: no admin tool is
// listed, and one called is refused.
func TestMCPBridgeInSandbox(t *testing.T) {
	requireBwrap(t)
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, _ := newMCPEnv(t)
	ws := t.TempDir()
	if err := os.Chmod(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.RunInput("sk-ant-box", "profiles", "create", "generic", "box", "--provider", "local", "--workspace", ws, "--command", "/bin/bash"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	mustRun(t, e, "mcp", "add", "box", "up", "--", bin)
	mustRun(t, e, "hooks", "add", "box", "--on", "pre-tool-use", "--match", "^Bash$", "--shell", "true")
	guard := hkList(t, e, "box")[0].ID

	msgs := strings.Join([]string{stdioInit, stdioInitialized,
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`,
		stdioCall(3, "hooks_remove", map[string]string{"profile": "box", "id": guard}),
		stdioCall(4, "up__echo", map[string]string{"text": "from the sandbox"})}, "\n")
	// An admin command in the sandbox has no token and starts no daemon.
	script := `command -v ringlet >&2
test -z "$RINGLET_TOKEN" || echo "RINGLET_TOKEN is set" >&2
ringlet hooks list box >/dev/null 2>"$HOME/admin.err" && echo "hooks list ran" >&2
printf '%s\n' "$MSGS" | ringlet mcp --stdio`
	stdout, stderr, code := e.Run("profiles", "run", "box", "--", "-c", "MSGS='"+strings.ReplaceAll(msgs, "'", `'\''`)+"'\n"+script)
	if code != 0 {
		t.Fatalf("profiles run: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "/run/ringlet/bin/ringlet") || strings.Contains(stderr, "RINGLET_TOKEN is set") || strings.Contains(stderr, "hooks list ran") {
		t.Errorf("stderr %q: want ringlet found at /run/ringlet/bin/ringlet, no RINGLET_TOKEN, and hooks list refused", stderr)
	}
	var homes profileHomes
	if err := json.Unmarshal([]byte(mustRun(t, e, "profiles", "inspect", "box", "--json")), &homes); err != nil {
		t.Fatal(err)
	}
	if data, err := os.ReadFile(filepath.Join(homes.Home, "admin.err")); err != nil || !strings.Contains(string(data), "never start a daemon") {
		t.Errorf("hooks list in the sandbox: got %q (%v), want it refused for a session", data, err)
	}
	if _, err := os.Stat(filepath.Join(homes.Home, ".config", "ringlet")); err == nil {
		t.Errorf("%s/.config/ringlet exists: a command in the sandbox tried to start a daemon there", homes.Home)
	}
	got := map[string]rpcLine{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var m rpcLine
		if err := json.Unmarshal([]byte(line), &m); err != nil || m.JSONRPC != "2.0" {
			t.Fatalf("stdout of mcp --stdio in the sandbox carried a line that is not JSON-RPC: %q", line)
		}
		got[string(m.ID)] = m
	}
	names := toolNames(t, got["2"])
	if !strings.Contains(strings.Join(names, " "), "up__echo") || !strings.Contains(strings.Join(names, " "), "session_info") {
		t.Errorf("tools/list in the sandbox: got %v, want the session's tools (up__echo, session_info)", names)
	}
	for _, admin := range adminTools {
		if strings.Contains(" "+strings.Join(names, " ")+" ", " "+admin+" ") {
			t.Errorf("tools/list in the sandbox: got %v, want no admin tool (%s)", names, admin)
		}
	}
	if m := got["3"]; m.Error == nil {
		if _, isErr := callText(t, m); !isErr {
			t.Errorf("hooks_remove from the sandbox: got %s, want it refused", m.Result)
		}
	}
	if text, isErr := callText(t, got["4"]); isErr || text != `{"text":"from the sandbox"}` {
		t.Errorf("up__echo from the sandbox: got %v %q, want its echo", isErr, text)
	}
	if hooks := hkList(t, e, "box"); len(hooks) != 1 || hooks[0].ID != guard {
		t.Errorf("hooks after the sandbox's hooks_remove: got %+v, want the guard still there", hooks)
	}
}

// ringletTool is the name Claude Code gives a tool of the MCP server it
// calls ringlet.
var ringletTool = regexp.MustCompile(`mcp__ringlet__[A-Za-z0-9_]+`)

// requestTools are Ringlet's MCP tools that Claude Code told the model of
// in the requests the provider got: in the request's tools, or (Claude
// Code 2 defers MCP tools behind ToolSearch) by name in its messages.
func requestTools(reqs []fakeprovider.Request) map[string]bool {
	out := map[string]bool{}
	for _, r := range reqs {
		for _, m := range ringletTool.FindAll(r.Body, -1) {
			out[string(m)] = true
		}
	}
	return out
}

// TestClaudeCodeMCPHookupInSandbox follows docs/mcp.md with the real
// Claude Code in its sandbox: `profiles run box -- mcp add ringlet --
// ringlet mcp --stdio` writes the server into the sandboxed HOME's
// config, `profiles config approve box` keeps it, `mcp list` finds it
// connected from inside, and a turn tells
// the model of the session's tools (mcp__ringlet__up__echo) and of none
// of Ringlet's controls.
func TestClaudeCodeMCPHookupInSandbox(t *testing.T) {
	t.Parallel()
	w, _, _ := sandboxWorld(t)
	bin := buildMCPTestServer(t)
	mustRun(t, w.e, "mcp", "add", "box", "up", "--", bin)

	out := mustRun(t, w.e, "profiles", "run", "box", "--", "mcp", "add", "ringlet", "--", "ringlet", "mcp", "--stdio")
	t.Logf("claude mcp add: %s", out)
	// An MCP server in Claude Code's config is code it runs at start: the
	// next sandboxed start resets it unless approved (docs/mcp.md).
	mustRun(t, w.e, "profiles", "config", "approve", "box")
	if out := mustRun(t, w.e, "profiles", "run", "box", "--", "mcp", "list"); !strings.Contains(out, "ringlet: ringlet mcp --stdio") || !strings.Contains(out, "Connected") {
		t.Fatalf("claude mcp list in the sandbox: got %q, want ringlet connected", out)
	}
	w.fake.Reset()
	res := runBox(t, w, "-p", "say hi", "--output-format", "json")
	if res.IsError {
		t.Fatalf("claude -p: got %+v", res)
	}
	tools := requestTools(w.fake.Requests())
	if !tools["mcp__ringlet__up__echo"] || !tools["mcp__ringlet__session_info"] {
		t.Errorf("tools offered to the model: got %v, want the session's (mcp__ringlet__up__echo, mcp__ringlet__session_info)", tools)
	}
	for _, admin := range adminTools {
		if tools["mcp__ringlet__"+admin] {
			t.Errorf("tools offered to the model: got mcp__ringlet__%s, want no admin tool", admin)
		}
	}
}

// TestClaudeCodeMCPHookupProfilesEnv is the case with the real
// Claude Code, started with the variables `profiles env` prints and able
// to find the admin token file (the CLI's own XDG directories): after the
// documented `claude mcp add ringlet -- ringlet mcp --stdio`, a turn tells
// the model of the session's tools and of none of Ringlet's controls.
func TestClaudeCodeMCPHookupProfilesEnv(t *testing.T) {
	t.Parallel()
	requireNode(t)
	claudeBin(t)
	w := newProxyWorld(t)
	key := w.newProfile("claude", "cc", "fake", "--model", "claude-sonnet-4-5")
	mustRun(t, w.e, "mcp", "add", "cc", "up", "--", buildMCPTestServer(t))
	s := w.startSession("cc")
	env := clientEnv(t, s, t.TempDir(), key, slices.Concat(claudeOffline, []string{
		"PATH=" + filepath.Dir(ringletBin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"XDG_CONFIG_HOME=" + w.e.ConfigHome, "XDG_STATE_HOME=" + w.e.StateHome, "XDG_DATA_HOME=" + w.e.DataHome,
	})...)
	if _, err := os.Stat(w.e.TokenFile()); err != nil {
		t.Fatalf("the admin token file: %v, want it there for the taking", err)
	}
	work := t.TempDir()
	runClientIn(t, work, env, 60*time.Second, claudeBin(t), "mcp", "add", "ringlet", "--", "ringlet", "mcp", "--stdio")
	w.fake.Reset()
	if res := runClaude(t, work, env, "-p", "say hi", "--output-format", "json"); res.IsError {
		t.Fatalf("claude -p: got %+v", res)
	}
	tools := requestTools(w.fake.Requests())
	if !tools["mcp__ringlet__up__echo"] || !tools["mcp__ringlet__session_info"] {
		t.Errorf("tools told to the model: got %v, want the session's (mcp__ringlet__up__echo, mcp__ringlet__session_info)", tools)
	}
	for _, admin := range adminTools {
		if tools["mcp__ringlet__"+admin] {
			t.Errorf("tools told to the model: got mcp__ringlet__%s, want no admin tool", admin)
		}
	}
	w.assertNoKeyLeak(t, key)
}
