package mcpimport

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func env(vars map[string]string) Getenv {
	return func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
}

func byName(t *testing.T, servers []Server) map[string]Server {
	t.Helper()
	out := map[string]Server{}
	for _, s := range servers {
		out[s.Name] = s
	}
	return out
}

func TestParseEachFormat(t *testing.T) {
	t.Parallel()
	vars := env(map[string]string{"GITHUB_TOKEN": "ghp_from-the-shell-0123", "MY_SECRET": "passed", "REMOTE_TOKEN": "rt-0123456789", "VS_TOKEN": "vs-tok"})

	mcpJSON, err := ParseClaude(fixture(t, "mcp.json"), ".mcp.json", vars)
	if err != nil {
		t.Fatal(err)
	}
	m := byName(t, mcpJSON)
	if gh := m["github"]; gh.Type != "stdio" || !slices.Equal(gh.Command, []string{"npx", "-y", "@modelcontextprotocol/server-github"}) ||
		gh.Env["GITHUB_PERSONAL_ACCESS_TOKEN"] != "ghp_from-the-shell-0123" || gh.Env["GITHUB_TOOLSETS"] != "repos" || gh.Problem != "" {
		t.Errorf(".mcp.json github: got %+v", gh)
	}
	if d := m["docs"]; d.Type != "http" || d.Headers["Authorization"] != "Bearer none-set" {
		t.Errorf(".mcp.json docs: got %+v, want ${DOCS_TOKEN:-none-set} defaulted", d)
	}
	if l := m["legacy"]; !strings.Contains(l.Problem, "SSE") {
		t.Errorf(".mcp.json legacy: got %+v, want SSE refused", l)
	}
	// Unset in the shell: said so.
	mcpJSON, _ = ParseClaude(fixture(t, "mcp.json"), ".mcp.json", env(nil))
	if gh := byName(t, mcpJSON)["github"]; !strings.Contains(gh.Problem, "${GITHUB_TOKEN}, which is not set") {
		t.Errorf("github without GITHUB_TOKEN: got %q", gh.Problem)
	}

	user, err := ParseClaudeUser(fixture(t, "claude.json"), "~/.claude.json", "/home/u/src/app", vars)
	if err != nil {
		t.Fatal(err)
	}
	if got := []string{user[0].Name, user[1].Name}; len(user) != 2 || !slices.Equal(got, []string{"sentry", "memory"}) {
		t.Errorf("~/.claude.json: got %+v, want the project's sentry then the user's memory, not the other project's", user)
	}
	if user[0].Env["SENTRY_AUTH_TOKEN"] != "sntrys_canary0123456789" || !strings.Contains(user[0].From, "project /home/u/src/app") {
		t.Errorf("sentry: got %+v", user[0])
	}

	desk, err := ParseClaude(fixture(t, "claude_desktop_config.json"), "desktop", vars)
	if err != nil || len(desk) != 2 || byName(t, desk)["slack"].Env["SLACK_BOT_TOKEN"] != "xoxb-canary-0123456789" {
		t.Errorf("Claude Desktop: got %+v, %v", desk, err)
	}

	codex, err := ParseCodex(fixture(t, "config.toml"), "config.toml", vars)
	if err != nil {
		t.Fatal(err)
	}
	c := byName(t, codex)
	if l := c["linear"]; l.Type != "stdio" || l.Env["LINEAR_API_KEY"] != "lin_api_canary0123456789" || len(l.Command) != 4 {
		t.Errorf("codex linear: got %+v", l)
	}
	if p := c["passthrough"]; p.Env["MY_SECRET"] != "passed" || p.Problem != "" {
		t.Errorf("codex env_vars: got %+v, want MY_SECRET read from the shell", p)
	}
	if r := c["remote"]; r.Type != "http" || r.Headers["Authorization"] != "Bearer rt-0123456789" {
		t.Errorf("codex bearer_token_env_var: got %+v", r)
	}
	if o := c["off"]; !strings.Contains(o.Problem, "disabled") {
		t.Errorf("codex enabled = false: got %+v", o)
	}
	codex, _ = ParseCodex(fixture(t, "config.toml"), "config.toml", env(nil))
	if p := byName(t, codex)["passthrough"]; !strings.Contains(p.Problem, "MY_SECRET") {
		t.Errorf("codex env_vars unset: got %+v", p)
	}

	vs, err := ParseVSCode(fixture(t, "vscode-mcp.json"), ".vscode/mcp.json", vars)
	if err != nil {
		t.Fatal(err)
	}
	v := byName(t, vs)
	if f := v["fetch"]; f.Type != "stdio" || !slices.Equal(f.Command, []string{"uvx", "mcp-server-fetch"}) {
		t.Errorf("vscode fetch: got %+v", f)
	}
	if p := v["prompted"]; !strings.Contains(p.Problem, "only VS Code can answer") {
		t.Errorf("vscode ${input:key}: got %+v", p)
	}
	if e := v["fromenv"]; e.Env["TOKEN"] != "vs-tok" || e.Env["URL"] != "http://a//b" {
		t.Errorf("vscode ${env:VS_TOKEN} and a // in a string: got %+v", e)
	}
}

func TestDetect(t *testing.T) {
	t.Parallel()
	for file, want := range map[string]string{"mcp.json": FormatClaude, "claude_desktop_config.json": FormatClaude, "config.toml": FormatCodex, "vscode-mcp.json": FormatVSCode} {
		if got := Detect(file, fixture(t, file)); got != want {
			t.Errorf("Detect(%s): got %s, want %s", file, got, want)
		}
	}
	if got := Detect("x.json", []byte(`{"other": 1}`)); got != FormatUnknown {
		t.Errorf("Detect of another JSON: got %s", got)
	}
}

func TestHostileInput(t *testing.T) {
	t.Parallel()
	huge := make([]byte, MaxFile+1)
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"invalid JSON", []byte(`{"mcpServers": {"a": `), "not valid JSON"},
		{"a key twice", []byte(`{"mcpServers": {"a": {"command": "x"}, "a": {"command": "evil"}}}`), "twice"},
		{"huge", huge, "larger than"},
		{"a server not an object", []byte(`{"mcpServers": {"a": 3}}`), `server "a"`},
	} {
		if _, err := ParseClaude(tc.data, "f", env(nil)); err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line saying %q", tc.name, err, tc.want)
		}
	}
	if _, err := ParseCodex([]byte("[mcp_servers.a\ncommand = 1"), "f", env(nil)); err == nil || !strings.Contains(err.Error(), "not valid TOML") {
		t.Errorf("invalid TOML: got %v", err)
	}
	if _, err := ParseVSCode([]byte(`{"servers": {} /* open`), "f", env(nil)); err == nil {
		t.Error("an unended comment: got no error")
	}
}

func TestRingletName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"github": "github", "GitHub_Server": "github-server", "my.server v2": "my-server-v2", "--x--": "x",
		strings.Repeat("a", 40): strings.Repeat("a", 32), "a__b": "a-b"} {
		if got, ok := RingletName(in); !ok || got != want {
			t.Errorf("RingletName(%q): got %q %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "___", "日本"} {
		if got, ok := RingletName(bad); ok {
			t.Errorf("RingletName(%q): got %q, want refused", bad, got)
		}
	}
}

func TestLooksSecret(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, value string
		want        bool
	}{
		{"GITHUB_PERSONAL_ACCESS_TOKEN", "x", true},
		{"OPENAI_API_KEY", "", true},
		{"DB_PASSWORD", "hunter2", true},
		{"SENTRY_DSN", "https://k@sentry.io/1", true},
		{"GITHUB_PAT", "x", true},
		{"X", "ghp_abcdefghijklmnop", true},
		{"X", "xoxb-1234-5678-abcdefgh", true},
		{"DATABASE_URL", "postgres://user:pw@db/x", true},
		{"X", "a8F3kd93Jd02kdLq9sPz0", true},
		{"GITHUB_TOOLSETS", "repos,issues", false},
		{"PATH_PREFIX", "/usr/local/bin", false},
		{"LOG_LEVEL", "debug", false},
		{"HOMEPAGE", "https://example.com/docs/page-2024", false},
		{"ALLOWED_DIR", "/home/user/projects/app2024", false},
		{"PATHS", "a", false},
	} {
		if got := LooksSecret(tc.name, tc.value); got != tc.want {
			t.Errorf("LooksSecret(%s, %q): got %v, want %v", tc.name, tc.value, got, tc.want)
		}
	}
}

func TestStripJSONC(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`{"a": 1, // c` + "\n" + `}`:           `{"a": 1` + "\n" + `}`,
		`{"a": "//not", /* c */ "b": [1,2,],}`: `{"a": "//not",   "b": [1,2]}`,
		`{"a": "x\"/*y"}`:                      `{"a": "x\"/*y"}`,
	} {
		got, err := StripJSONC([]byte(in))
		if err != nil || strings.Join(strings.Fields(string(got)), "") != strings.Join(strings.Fields(want), "") {
			t.Errorf("StripJSONC(%q): got %q %v, want %q", in, got, err, want)
		}
	}
}
