package test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/neullabs/ringlet/test/fakeprovider"
)

// connected is `ringlet connect --json`.
type connected struct {
	Profile, Agent, Server string
	Files                  []string
}

func connect(t *testing.T, e *env, args ...string) connected {
	t.Helper()
	var c connected
	if err := json.Unmarshal([]byte(mustRun(t, e, append([]string{"connect", "--json"}, args...)...)), &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Files) != 2 {
		t.Fatalf("connect: got %+v, want the sandboxed and the unsandboxed HOME's files", c)
	}
	return c
}

// assertNoTokenIn fails t if any of files holds one of the tokens.
func assertNoTokenIn(t *testing.T, files []string, tokens ...string) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range tokens {
			if tok != "" && strings.Contains(string(data), tok) {
				t.Errorf("%s holds a token (%.8s…); want none written", f, tok)
			}
		}
	}
}

// assertSessionTools checks that the model was told of the session's
// tools (up__echo, session_info) by the names in want, and of none of
// Ringlet's controls.
func assertSessionTools(t *testing.T, what string, reqs []fakeprovider.Request, name func(tool string) string) {
	t.Helper()
	body := ""
	for _, r := range reqs {
		body += string(r.Body)
	}
	for _, tool := range []string{"up__echo", "session_info"} {
		if !strings.Contains(body, name(tool)) {
			t.Errorf("%s: the model was not told of %s; got tools %v", what, name(tool), regexp.MustCompile(`[a-z_]*ringlet[a-z_]*`).FindAllString(body, 40))
		}
	}
	for _, admin := range adminTools {
		if strings.Contains(body, name(admin)) {
			t.Errorf("%s: the model was told of %s, want no admin tool", what, name(admin))
		}
	}
}

// TestConnectClaudeCode: `ringlet connect` writes Ringlet's MCP server
// into a claude profile's configuration in both its HOMEs, with no token
// in them; the real Claude Code then finds it connected and tells the
// model of the session's tools, in its sandbox (through the forwarder)
// and started with `profiles env`.
func TestConnectClaudeCode(t *testing.T) {
	t.Parallel()
	w, key, _ := sandboxWorld(t)
	mustRun(t, w.e, "mcp", "add", "box", "up", "--", buildMCPTestServer(t))
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"connect", "box", "--agent", "codex"}, 1, "runs claude"},
		{[]string{"connect", "box", "--agent", "vim"}, 2, "--agent must be"},
		{[]string{"connect", "nope"}, 1, "no profile"},
		{[]string{"connect"}, 2, "PROFILE"},
	} {
		if _, stderr, code := w.e.Run(tc.args...); code != tc.code || !strings.Contains(stderr, tc.want) {
			t.Errorf("ringlet %s: got exit %d, stderr %q; want %d saying %q", strings.Join(tc.args, " "), code, stderr, tc.code, tc.want)
		}
	}
	c := connect(t, w.e, "box")
	if c.Agent != "claude" || c.Server != "ringlet" || !strings.HasSuffix(c.Files[0], "/home/.claude/.claude.json") || !strings.HasSuffix(c.Files[1], "/home-unsandboxed/.claude/.claude.json") {
		t.Fatalf("connect: got %+v, want .claude.json in both HOMEs", c)
	}

	// In the sandbox.
	if out := mustRun(t, w.e, "profiles", "run", "box", "--", "mcp", "list"); !strings.Contains(out, "ringlet:") || !strings.Contains(out, "Connected") {
		t.Errorf("claude mcp list in the sandbox: got %q, want ringlet connected", out)
	}
	w.fake.Reset()
	if res := runBox(t, w, "-p", "say hi", "--output-format", "json"); res.IsError {
		t.Fatalf("claude -p in the sandbox: got %+v", res)
	}
	assertSessionTools(t, "in the sandbox", w.fake.Requests(), func(tool string) string { return "mcp__ringlet__" + tool })

	// With profiles env.
	s := w.startSession("box")
	env := clientEnv(t, s, t.TempDir(), key, claudeOffline...)
	work := t.TempDir()
	if out := runClientIn(t, work, env, 60*time.Second, claudeBin(t), "mcp", "list"); !strings.Contains(out, "ringlet:") || !strings.Contains(out, "Connected") {
		t.Errorf("claude mcp list with profiles env: got %q, want ringlet connected", out)
	}
	w.fake.Reset()
	if res := runClaude(t, work, env, "-p", "say hi", "--output-format", "json"); res.IsError {
		t.Fatalf("claude -p with profiles env: got %+v", res)
	}
	assertSessionTools(t, "with profiles env", w.fake.Requests(), func(tool string) string { return "mcp__ringlet__" + tool })

	assertNoTokenIn(t, c.Files, s.Token, w.e.Token(), key)
	if recs := auditOf(t, w.e, "box", "profile.update"); !slices.ContainsFunc(recs, func(r sessionRecord) bool { return r.Detail["connect"] == "claude" }) {
		t.Errorf("audit: got %+v, want a profile.update recording the connect", recs)
	}
}

// TestConnectCodex: the same with the real Codex CLI, whose config.toml
// gets [mcp_servers.ringlet] with the daemon as each HOME's Codex reaches
// it and the token read from RINGLET_SESSION_TOKEN.
func TestConnectCodex(t *testing.T) {
	t.Parallel()
	requireNode(t)
	requireBwrap(t)
	bin := nodeBin(t, "codex")
	binDir, err := filepath.EvalSymlinks(filepath.Dir(bin))
	if err != nil {
		t.Fatal(err)
	}
	w := newProxyWorld(t)
	work := t.TempDir()
	key := w.newProfile("codex", "cx", "fakeoa", "--model", "gpt-5.5", "--workspace", work)
	w.e.ExtraEnv = append(w.e.ExtraEnv, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	mustRun(t, w.e, "mcp", "add", "cx", "up", "--", buildMCPTestServer(t))
	c := connect(t, w.e, "cx")
	for i, want := range []string{`url = "http://127.0.0.1:8765/mcp"`, `url = "` + w.d.URL + `/mcp"`} {
		if data, err := os.ReadFile(c.Files[i]); err != nil || !strings.Contains(string(data), want) || !strings.Contains(string(data), `bearer_token_env_var = "RINGLET_SESSION_TOKEN"`) {
			t.Errorf("%s: got %q (%v), want %s and the token's variable", c.Files[i], data, err, want)
		}
	}
	// Codex 0.169 tells the model of an MCP server's namespace and its
	// instructions, not of its tools (they are deferred): the session's
	// instructions, never the admin's. That the upstream server started
	// shows the session listed its tools.
	namespace := func(t *testing.T, what string, reqs []fakeprovider.Request) {
		t.Helper()
		body := ""
		for _, r := range reqs {
			body += string(r.Body)
		}
		if !strings.Contains(body, "mcp__ringlet: Ringlet session tools:") || strings.Contains(body, "Ringlet's controls") {
			t.Errorf("%s: got %q, want the model told of mcp__ringlet with the session's instructions and not the admin's",
				what, regexp.MustCompile(`mcp__ringlet.{0,80}`).FindAllString(body, 3))
		}
	}
	if st := mcpServers(t, w.e, "cx"); len(st) != 1 || st[0].State != "idle" {
		t.Fatalf("mcp list before Codex ran: got %+v, want up idle", st)
	}

	// In the sandbox.
	w.fake.Reset()
	stdout, stderr, code := w.e.Run(append([]string{"profiles", "run", "cx", "--"}, codexArgs("say hi")...)...)
	if code != 0 {
		t.Fatalf("profiles run cx: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	namespace(t, "in the sandbox", w.fake.Requests())
	if st := mcpServers(t, w.e, "cx"); len(st) != 1 || st[0].State != "running" || len(st[0].Tools) == 0 {
		t.Errorf("mcp list after Codex ran in the sandbox: got %+v, want up running with its tools listed", st)
	}

	// With profiles env.
	s := w.startSession("cx")
	w.fake.Reset()
	runClientIn(t, work, clientEnv(t, s, w.unsandboxedHome("cx"), key), 90*time.Second, bin, append(slices.Clone(s.Launch.Args), codexArgs("say hi")...)...)
	namespace(t, "with profiles env", w.fake.Requests())
	assertNoTokenIn(t, c.Files, s.Token, w.e.Token(), key)

	// The session starts rewrote config.toml (Ringlet's hook adapter):
	// connect again still finds its own entry, and keeps one.
	again := connect(t, w.e, "cx")
	for _, f := range again.Files {
		if data, err := os.ReadFile(f); err != nil || strings.Count(string(data), "[mcp_servers.ringlet]") != 1 || !strings.Contains(string(data), "codex-pre-tool-use") {
			t.Errorf("%s after a second connect: got %q (%v), want one ringlet server and Ringlet's hook", f, data, err)
		}
	}
}

// TestConnectOpenCode: the same with the real OpenCode, whose global
// config in each HOME gets mcp.ringlet, a remote server whose address and
// token OpenCode substitutes from RINGLET_SESSION_URL and
// RINGLET_SESSION_TOKEN: `opencode mcp list` shows it connected and a run
// tells the model of the session's tools (ringlet_<tool>), in the sandbox
// and with `profiles env` (whose OPENCODE_CONFIG names the profile's
// file), with no token in the files.
func TestConnectOpenCode(t *testing.T) {
	t.Parallel()
	requireNode(t)
	requireBwrap(t)
	bin := nodeBin(t, "opencode")
	binDir, err := filepath.EvalSymlinks(filepath.Dir(bin))
	if err != nil {
		t.Fatal(err)
	}
	w := newProxyWorld(t)
	work := t.TempDir()
	key := w.newProfile("opencode", "oc", "fake", "--model", "claude-sonnet-4-5", "--workspace", work)
	w.e.ExtraEnv = append(w.e.ExtraEnv, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	mustRun(t, w.e, "mcp", "add", "oc", "up", "--", buildMCPTestServer(t))
	if _, stderr, code := w.e.Run("connect", "oc", "--agent", "codex"); code != 1 || !strings.Contains(stderr, "runs opencode") {
		t.Errorf("connect oc --agent codex: got exit %d, stderr %q; want 1 saying the profile runs opencode", code, stderr)
	}
	c := connect(t, w.e, "oc", "--agent", "opencode")
	if c.Agent != "opencode" || !strings.HasSuffix(c.Files[0], "/home/.config/opencode/opencode.json") || !strings.HasSuffix(c.Files[1], "/home-unsandboxed/.config/opencode/opencode.json") {
		t.Fatalf("connect: got %+v, want opencode.json in both HOMEs", c)
	}
	listed := func(t *testing.T, what, out string) {
		t.Helper()
		plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(out, "")
		if !regexp.MustCompile(`✓ ringlet\s+connected`).MatchString(plain) {
			t.Errorf("opencode mcp list %s: got %q, want ringlet connected", what, out)
		}
	}
	tools := func(tool string) string { return "ringlet_" + tool }

	// In the sandbox: any subcommand goes after what the catalog gives
	// (the model is in OPENCODE_CONFIG_CONTENT, not a -m that only its
	// TUI and 'run' take), and a run asks for the profile's model.
	// OpenCode takes more than the CLI's usual 30 s to start on a loaded
	// machine.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	out, err := w.e.command(ctx, ringletBin, "profiles", "run", "oc", "--", "mcp", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("profiles run oc -- mcp list: %v\n%s", err, out)
	}
	listed(t, "in the sandbox", string(out))
	w.fake.Reset()
	run := w.e.command(ctx, ringletBin, "profiles", "run", "oc", "--", "run", "say hi")
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("profiles run oc -- run: %v\n%s", err, out)
	}
	reqs := w.fake.Requests()
	assertSessionTools(t, "in the sandbox", reqs, tools)
	if !slices.ContainsFunc(reqs, func(r fakeprovider.Request) bool {
		return strings.Contains(string(r.Body), `"model":"claude-sonnet-4-5"`)
	}) {
		t.Errorf("profiles run oc -- run: no request asked for the profile's model claude-sonnet-4-5")
	}

	// With profiles env, in a HOME of the user's: OPENCODE_CONFIG names
	// the profile's unsandboxed file.
	s := w.startSession("oc")
	env := clientEnv(t, s, t.TempDir(), key)
	listed(t, "with profiles env", runClientIn(t, work, env, 3*time.Minute, bin, "mcp", "list"))
	w.fake.Reset()
	runClientIn(t, work, env, 3*time.Minute, bin, append(slices.Clone(s.Launch.Args), "run", "say hi")...)
	assertSessionTools(t, "with profiles env", w.fake.Requests(), tools)

	assertNoTokenIn(t, c.Files, s.Token, w.e.Token(), key)
	if recs := auditOf(t, w.e, "oc", "profile.update"); !slices.ContainsFunc(recs, func(r sessionRecord) bool { return r.Detail["connect"] == "opencode" }) {
		t.Errorf("audit: got %+v, want a profile.update recording the connect", recs)
	}
}
