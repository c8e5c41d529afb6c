package test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestMCPRealServerTokenFromEnvironment runs a real server from npm that
// reads its token from its environment, @modelcontextprotocol/server-github
// (pinned in test/mcpnode), behind the gateway with the token given by
// mcp add --secret. The official SDK lists its tools through the daemon;
// the token is in the server process's environment (the control) and
// nowhere else: no command line, Ringlet's files, log, audit database,
// mcp list or show, or answer. A tool that needs GitHub fails (the server
// has no network in its sandbox) without quoting the token.
func TestMCPRealServerTokenFromEnvironment(t *testing.T) {
	requireMCPNode(t)
	requireSandbox(t)
	t.Parallel()
	modules, err := filepath.Abs(filepath.Join(mcpNodeDir, "node_modules", "@modelcontextprotocol"))
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(modules, "server-github", "dist", "index.js")
	if _, err := os.Stat(script); err != nil {
		why := "test/mcpnode/node_modules lacks @modelcontextprotocol/server-github (pinned in test/mcpnode/package-lock.json); run 'npm ci --prefix test/mcpnode'"
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s (CI=true, so this test must run)", why)
		}
		t.Skip(why)
	}
	e, d := newMCPEnv(t)
	canary := newCanary(t, "ghpat")
	if _, stderr, code := e.RunInput(canary+"\n", "keychain", "set", "github", "work"); code != 0 {
		t.Fatalf("keychain set: exit %d, stderr %q", code, stderr)
	}
	mustRun(t, e, "mcp", "add", "work", "github", "--ro", filepath.Dir(modules), "--secret", "GITHUB_PERSONAL_ACCESS_TOKEN=github/work",
		"--", "node", script)

	res := runSDK(t, e, mcpSessionToken(t, e, "work"), map[string]any{"url": d.URL + "/mcp", "steps": []any{
		map[string]any{"list": true},
		map[string]any{"call": "github__get_file_contents", "args": map[string]any{"owner": "neullabs", "repo": "ringlet", "path": "README.md"}},
	}})
	if res.ConnectError != "" || len(res.Steps) != 2 {
		t.Fatalf("the SDK client: connect error %q, %d steps", res.ConnectError, len(res.Steps))
	}
	for _, want := range []string{"github__get_file_contents", "github__search_repositories", "github__create_issue"} {
		if !slices.Contains(res.Steps[0].Tools, want) {
			t.Errorf("tools: missing %s in %v", want, res.Steps[0].Tools)
		}
	}
	if text, isErr := res.text(1); !isErr || text == "" {
		t.Errorf("github__get_file_contents offline: got error=%v %q, want an error (the sandbox has no network)", isErr, text)
	}
	answers, _ := json.Marshal(res)

	// The control: the server that runs has the token in its environment.
	pids := markedProcesses(script)
	inEnviron := 0
	for _, pid := range pids {
		env, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if slices.Contains(strings.Split(string(env), "\x00"), "GITHUB_PERSONAL_ACCESS_TOKEN="+canary) {
			inEnviron++
		}
	}
	if inEnviron == 0 {
		t.Errorf("processes running server-github with the token in their environment: got none of %v, want the server", pids)
	}
	entries, _ := os.ReadDir("/proc")
	for _, de := range entries {
		if _, err := strconv.Atoi(de.Name()); err != nil {
			continue
		}
		if cmdline, _ := os.ReadFile("/proc/" + de.Name() + "/cmdline"); strings.Contains(string(cmdline), canary) {
			t.Errorf("process %s has the token on its command line", de.Name())
		}
	}
	for _, args := range [][]string{{"mcp", "list", "work"}, {"mcp", "list", "work", "--json"}, {"mcp", "show", "work", "github"}, {"mcp", "show", "work", "github", "--json"}} {
		out := mustRun(t, e, args...)
		assertNoLeak(t, strings.Join(args, " "), []byte(out), canary)
		if !strings.Contains(out, "GITHUB_PERSONAL_ACCESS_TOKEN") || !strings.Contains(out, "github/work") {
			t.Errorf("%v: got %q, want the variable's name and the secret's reference", args, out)
		}
	}
	if recs := auditOf(t, e, "work", "mcp.secrets"); !slices.ContainsFunc(recs, func(r sessionRecord) bool {
		s, _ := r.Detail["secrets"].(map[string]any)
		return r.Target == "github" && s["GITHUB_PERSONAL_ACCESS_TOKEN"] == "github/work"
	}) {
		t.Errorf("mcp.secrets records: got %+v, want github's GITHUB_PERSONAL_ACCESS_TOKEN=github/work", recs)
	}

	logs, _ := os.ReadFile(e.LogFile())
	assertNoLeak(t, "the daemon's log", append(logs, d.Stderr()...), canary)
	assertNoLeak(t, "the SDK client's answers", answers, canary)
	assertNoLeak(t, "audit.db", dbBytes(t, filepath.Join(e.StateDir(), "audit.db")), canary)
	_ = filepath.WalkDir(e.Root, func(p string, de fs.DirEntry, err error) error { // an unreadable entry is skipped: the daemon wrote none
		if err != nil || de.IsDir() || !de.Type().IsRegular() || de.Name() == "credentials.toml" {
			return nil
		}
		data, _ := os.ReadFile(p)
		assertNoLeak(t, p, data, canary)
		return nil
	})
	e.AssertNoSecret(canary, e.Token())
}
