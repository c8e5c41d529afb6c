package test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// importView is one row of 'mcp import --json'.
type importView struct {
	Name       string            `json:"name"`
	SourceName string            `json:"source_name"`
	Action     string            `json:"action"`
	Reason     string            `json:"reason"`
	Result     string            `json:"result"`
	Error      string            `json:"error"`
	Secrets    map[string]string `json:"secrets"`
	Env        []string          `json:"env"`
	// An HTTP server's headers: plain names, and where each key is stored.
	Headers       []string          `json:"headers"`
	HeaderSecrets map[string]string `json:"header_secrets"`
}

// TestMCPImport: 'ringlet mcp import' reads the MCP servers of Claude
// Code (the workspace's .mcp.json, ~/.claude.json), Claude Desktop, Codex
// and VS Code, and adds them to a profile: secrets found in their
// variables go to the credential store (and reach the server), never into
// Ringlet's files or output. Without a terminal it needs --yes; a dry run
// writes nothing; a server in the workspace (which the agents can write)
// may not run what they can write nor take secrets from the user's shell;
// a broken or huge file is one clear line.
func TestMCPImport(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, _ := newMCPEnv(t)
	ws := filepath.Join(e.Root, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := e.RunInput("sk-ant-imp", "profiles", "create", "claude", "imp", "--provider", "local", "--workspace", ws); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	slackKey, linearKey, shellSecret := newCanary(t, "slack"), newCanary(t, "linear"), newCanary(t, "shell")
	searchKey, svcKey := newCanary(t, "search"), newCanary(t, "svc")
	quote := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	writeFile(t, filepath.Join(e.ConfigHome, "Claude", "claude_desktop_config.json"),
		`{"mcpServers": {"Slack": {"command": `+quote(bin)+`, "env": {"SLACK_BOT_TOKEN": `+quote(slackKey)+`, "SLACK_TEAM_ID": "T01"}},
		 "old": {"type": "sse", "url": "https://mcp.example.com/sse"},
		 "search": {"type": "http", "url": "https://search.example.com/mcp", "headers": {"X-API-Key": `+quote(searchKey)+`, "X-Team": "infra"}},
		 "svc": {"type": "http", "url": "https://svc.example.com/mcp", "headers": {"Authorization": `+quote("Token "+svcKey)+`}},
		 "hop": {"type": "http", "url": "https://hop.example.com/mcp", "headers": {"Host": "evil.example.com"}}}}`, 0o600)
	writeFile(t, filepath.Join(e.Home, ".codex", "config.toml"),
		"model = \"o3\"\n[mcp_servers.linear]\ncommand = "+quote(bin)+"\nenv = { LINEAR_API_KEY = "+quote(linearKey)+" }\n", 0o600)
	writeFile(t, filepath.Join(e.Home, ".claude.json"),
		`{"numStartups": 3, "mcpServers": {"memory": {"command": `+quote(bin)+`}}, "projects": {`+quote(ws)+`: {"mcpServers": {"proj": {"command": `+quote(bin)+`}}}}}`, 0o600)
	// What an agent could have written in the workspace.
	evil := filepath.Join(ws, "evil.sh")
	writeFile(t, evil, "#!/bin/sh\nexit 0\n", 0o755)
	writeFile(t, filepath.Join(ws, ".mcp.json"),
		`{"mcpServers": {"evil": {"command": `+quote(evil)+`}, "leak": {"command": `+quote(bin)+`, "env": {"STOLEN": "${SHELL_SECRET}"}}}}`, 0o644)
	writeFile(t, filepath.Join(ws, ".vscode", "mcp.json"), "{\n  // VS Code's\n  \"servers\": {\"fetch\": {\"command\": "+quote(bin)+",},},\n}\n", 0o644)
	e.ExtraEnv = append(e.ExtraEnv, "SHELL_SECRET="+shellSecret)

	keysOf := func() string { return mustRun(t, e, "keychain", "list") }
	if out := mustRun(t, e, "__complete", "mcp", "import", "imp", "--from", ""); !strings.Contains(out, "claude-desktop") || !strings.Contains(out, "codex") {
		t.Errorf("completion of --from: got %q", out)
	}

	// Not a terminal, no --yes: refused, nothing done.
	_, stderr, code := e.Run("mcp", "import", "imp")
	if code == 0 || !strings.Contains(stderr, "--yes") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
		t.Errorf("import without a terminal: exit %d, stderr %q; want refused in one line naming --yes", code, stderr)
	}
	if s := mcpServers(t, e, "imp"); len(s) != 0 || strings.Contains(keysOf(), "mcp ") {
		t.Errorf("after the refused import: servers %+v, keys %s; want none", s, keysOf())
	}

	// A dry run shows and writes nothing.
	before := snapshot(t, e.ConfigHome)
	out := mustRun(t, e, "mcp", "import", "imp", "--dry-run", "--json")
	var dry struct {
		DryRun  bool         `json:"dry_run"`
		Servers []importView `json:"servers"`
	}
	if err := json.Unmarshal([]byte(out), &dry); err != nil || !dry.DryRun {
		t.Fatalf("mcp import --dry-run --json: %v; got %s", err, out)
	}
	if d := diffSnapshots(before, snapshot(t, e.ConfigHome)); len(d) != 0 {
		t.Errorf("the dry run changed files: %v", d)
	}
	text := mustRun(t, e, "mcp", "import", "imp", "--dry-run")
	if !strings.Contains(text, "SLACK_BOT_TOKEN=mcp/slack-slack-bot-token") || !strings.Contains(text, "dry run") {
		t.Errorf("mcp import --dry-run: got %q, want the table with the secret's name and where it would be stored", text)
	}

	// The import.
	out, stderr, code = e.Run("mcp", "import", "imp", "--yes", "--json")
	var done struct {
		Servers []importView `json:"servers"`
	}
	if err := json.Unmarshal([]byte(out), &done); err != nil {
		t.Fatalf("mcp import --yes --json: %v; got %s (stderr %q)", err, out, stderr)
	}
	if code == 0 || !strings.Contains(stderr, "could not be added") {
		t.Errorf("import with a refused server: exit %d, stderr %q; want a failure saying so", code, stderr)
	}
	rows := map[string]importView{}
	for _, r := range done.Servers {
		rows[r.SourceName] = r
	}
	for _, name := range []string{"Slack", "linear", "memory", "proj", "fetch", "search", "svc"} {
		if rows[name].Result != "added" {
			t.Errorf("%s: got %+v, want added", name, rows[name])
		}
	}
	if r := rows["Slack"]; r.Name != "slack" || r.Secrets["SLACK_BOT_TOKEN"] != "mcp/slack-slack-bot-token" || !slices.Contains(r.Env, "SLACK_TEAM_ID") {
		t.Errorf("Slack: got %+v, want slack with SLACK_BOT_TOKEN stored as a secret and SLACK_TEAM_ID plain", r)
	}
	// Headers: a key goes to the store (after its scheme word for
	// Authorization), the rest is plain; a reserved header skips the server.
	if r := rows["search"]; r.HeaderSecrets["X-Api-Key"] != "mcp/search-x-api-key" || !slices.Equal(r.Headers, []string{"X-Team"}) {
		t.Errorf("search: got %+v, want X-Api-Key stored as a secret and X-Team plain", r)
	}
	if r := rows["svc"]; r.HeaderSecrets["Authorization"] != "Token mcp/svc-authorization" {
		t.Errorf("svc: got %+v, want Authorization sent as Token and the stored key", r)
	}
	if r := rows["hop"]; r.Action != "skip" || !strings.Contains(r.Reason, "Host is set by") {
		t.Errorf("hop (a Host header): got %+v, want skipped", r)
	}
	if out := mustRun(t, e, "mcp", "show", "imp", "svc"); !strings.Contains(out, "Authorization: secret Token mcp/svc-authorization") {
		t.Errorf("mcp show imp svc: got %q, want its header secret", out)
	}
	if r := rows["evil"]; r.Result == "added" || !strings.Contains(r.Error, "which the agents of profile imp can write") {
		t.Errorf("evil (a command in the workspace): got %+v, want refused as mcp add refuses it", r)
	}
	if r := rows["leak"]; r.Action != "skip" || !strings.Contains(r.Reason, "agents can write") {
		t.Errorf("leak (${SHELL_SECRET} in the workspace's file): got %+v, want skipped", r)
	}
	if r := rows["old"]; r.Action != "skip" || !strings.Contains(r.Reason, "SSE") {
		t.Errorf("old (SSE): got %+v, want skipped", r)
	}
	keys := keysOf()
	if !strings.Contains(keys, "slack-slack-bot-token") || !strings.Contains(keys, "linear-linear-api-key") || !strings.Contains(keys, "search-x-api-key") ||
		!strings.Contains(keys, "svc-authorization") || strings.Contains(keys, "leak") {
		t.Errorf("keychain list: got %s, want the two imported secrets and nothing of leak", keys)
	}

	// The imported server gets its secret, redacted from its answers.
	got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "imp")}, stdioInit, stdioInitialized,
		stdioCall(2, "slack__getenv", map[string]string{"name": "SLACK_BOT_TOKEN"}), stdioCall(3, "slack__getenv", map[string]string{"name": "SLACK_TEAM_ID"}))
	if text, _ := callText(t, got["2"]); text != "value: [redacted]" {
		t.Errorf("slack's SLACK_BOT_TOKEN: got %q, want it given and redacted", text)
	}
	if text, _ := callText(t, got["3"]); text != "value: T01" {
		t.Errorf("slack's SLACK_TEAM_ID: got %q", text)
	}
	raw, _ := json.Marshal(got)

	// Again: names taken are skipped unless --replace.
	out = mustRun(t, e, "mcp", "import", "imp", "--from", "claude-desktop", "--yes")
	if !strings.Contains(out, "skip Slack: profile imp has an MCP server slack already") || !strings.Contains(out, "nothing to add") {
		t.Errorf("a second import: got %q, want slack skipped", out)
	}
	// Hostile files: one line each.
	bad := filepath.Join(e.Root, "bad.json")
	writeFile(t, bad, `{"mcpServers": {"a": `, 0o600)
	huge := filepath.Join(e.Root, "huge.json")
	writeFile(t, huge, `{"mcpServers": {}, "pad": "`+strings.Repeat("x", 17<<20)+`"}`, 0o600)
	for file, want := range map[string]string{bad: "not valid JSON", huge: "larger than 16 MiB"} {
		_, stderr, code := e.Run("mcp", "import", "imp", "--from", file, "--yes")
		if code == 0 || !strings.Contains(stderr, want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("import of %s: exit %d, stderr %q; want one line saying %q", filepath.Base(file), code, stderr, want)
		}
	}

	// No secret in Ringlet's files but the credential store, in any
	// output, or in the audit log; the shell's secret nowhere at all.
	assertNoLeak(t, "the MCP answers", raw, slackKey)
	assertNoLeak(t, "audit.db", dbBytes(t, filepath.Join(e.StateDir(), "audit.db")), slackKey, linearKey, shellSecret, searchKey, svcKey)
	for _, dir := range []string{e.ConfigDir(), e.StateDir(), filepath.Join(e.DataHome, "ringlet")} {
		filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
			if err != nil || !de.Type().IsRegular() {
				return nil
			}
			data, _ := os.ReadFile(p)
			assertNoLeak(t, p, data, shellSecret)
			if de.Name() != "credentials.toml" {
				assertNoLeak(t, p, data, slackKey, linearKey, searchKey, svcKey)
			}
			return nil
		})
	}
	e.AssertNoSecret(slackKey, linearKey, shellSecret, searchKey, svcKey, e.Token())
}
