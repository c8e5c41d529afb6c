package profile

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	testBaseURL = "http://127.0.0.1:7777/proxy"
	testToken   = "rgl_sess_0123456789abcdef"
	testHome    = "/data/ringlet/profiles/work/home"
)

func envMap(l Launch) map[string]string {
	m := map[string]string{}
	for _, e := range l.Env {
		m[e.Name] = e.Value
	}
	return m
}

// keyVars are the variables whose value is the session token.
var keyVars = map[string]bool{"ANTHROPIC_API_KEY": true, "ANTHROPIC_AUTH_TOKEN": true, "OPENAI_API_KEY": true, "RINGLET_SESSION_TOKEN": true}

// checkToken asserts that the token is exactly the value of the key
// variables and appears nowhere else: not in other values, names, the
// command or the args.
func checkToken(t *testing.T, l Launch) {
	t.Helper()
	for _, e := range l.Env {
		if strings.Contains(e.Name, testToken) {
			t.Errorf("env name %q contains the token", e.Name)
		}
		if keyVars[e.Name] {
			if e.Value != testToken {
				t.Errorf("%s: got %q, want the token", e.Name, e.Value)
			}
		} else if strings.Contains(e.Value, testToken) {
			t.Errorf("%s=%q contains the token", e.Name, e.Value)
		}
	}
	for _, a := range append(slices.Clone(l.Command), l.Args...) {
		if strings.Contains(a, testToken) {
			t.Errorf("argument %q contains the token", a)
		}
	}
}

func TestLaunchFor(t *testing.T) {
	t.Parallel()
	c, err := LoadCatalog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	codexProvider := `model_providers.ringlet={name="Ringlet",base_url="` + testBaseURL + `",env_key="RINGLET_SESSION_TOKEN",wire_api="responses"}`
	// Off: analytics and plugin sync (traffic to chatgpt.com and
	// github.com), and the session token in the commands Codex runs; on:
	// its hooks, Ringlet's adapter among them.
	codexQuiet := []string{"-c", "analytics.enabled=false", "-c", "features.plugins=false", "-c", `shell_environment_policy.exclude=["RINGLET_SESSION_TOKEN"]`, "-c", "features.hooks=true"}
	codexEnv := map[string]string{"RINGLET_SESSION_TOKEN": testToken, "CODEX_HOME": testHome + "/.codex"}
	opencodeEnv := map[string]string{
		"ANTHROPIC_BASE_URL": testBaseURL + "/v1", "ANTHROPIC_API_KEY": testToken, "OPENAI_BASE_URL": testBaseURL, "OPENAI_API_KEY": testToken,
		"OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_SHARE": "1",
		"OPENCODE_DISABLE_PROJECT_CONFIG": "1", "OPENCODE_CONFIG": testHome + "/.config/opencode/opencode.json",
		"OPENCODE_CONFIG_DIR": testHome + "/.config/opencode-ringlet",
	}
	tests := []struct {
		name     string
		agent    string
		provider string
		profile  Profile
		// sandboxed: the agent runs in Ringlet's sandbox.
		sandboxed bool
		wantCmd   []string
		wantArgs  []string
		wantEnv   map[string]string
	}{
		{
			name: "claude with a model", agent: "claude", provider: "anthropic",
			profile: Profile{Model: "claude-opus-4-1"},
			wantCmd: []string{"claude"},
			wantEnv: map[string]string{
				"ANTHROPIC_BASE_URL": testBaseURL, "ANTHROPIC_AUTH_TOKEN": testToken, "ANTHROPIC_MODEL": "claude-opus-4-1",
				"CLAUDE_CONFIG_DIR": testHome + "/.claude", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
			},
		},
		{
			name: "claude without a model", agent: "claude", provider: "anthropic",
			wantCmd: []string{"claude"},
			wantEnv: map[string]string{
				"ANTHROPIC_BASE_URL": testBaseURL, "ANTHROPIC_AUTH_TOKEN": testToken,
				"CLAUDE_CONFIG_DIR": testHome + "/.claude", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
			},
		},
		{
			name: "codex with a model", agent: "codex", provider: "openai",
			profile:  Profile{Model: "gpt-5-codex"},
			wantCmd:  []string{"codex"},
			wantArgs: append([]string{"-c", "model_provider=ringlet", "-c", codexProvider, "-c", "model=gpt-5-codex"}, codexQuiet...),
			wantEnv:  codexEnv,
		},
		{
			// Ringlet's sandbox is the boundary; Codex's own cannot nest.
			name: "codex in Ringlet's sandbox: its own sandbox off", agent: "codex", provider: "openai",
			profile: Profile{Model: "gpt-5-codex"}, sandboxed: true,
			wantCmd:  []string{"codex"},
			wantArgs: append(append([]string{"-c", "model_provider=ringlet", "-c", codexProvider, "-c", "model=gpt-5-codex"}, codexQuiet...), "-c", `sandbox_mode="danger-full-access"`),
			wantEnv:  codexEnv,
		},
		{
			name: "claude in Ringlet's sandbox: nothing more", agent: "claude", provider: "anthropic", sandboxed: true,
			wantCmd: []string{"claude"},
			wantEnv: map[string]string{
				"ANTHROPIC_BASE_URL": testBaseURL, "ANTHROPIC_AUTH_TOKEN": testToken,
				"CLAUDE_CONFIG_DIR": testHome + "/.claude", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
			},
		},
		{
			name: "codex without a model drops the model pair", agent: "codex", provider: "openrouter",
			wantCmd:  []string{"codex"},
			wantArgs: append([]string{"-c", "model_provider=ringlet", "-c", codexProvider}, codexQuiet...),
			wantEnv:  codexEnv,
		},
		{
			name: "generic on openai", agent: "generic", provider: "openai",
			profile: Profile{Command: []string{"aider", "--no-git"}, Model: "gpt-4.1"},
			wantCmd: []string{"aider", "--no-git"},
			wantEnv: map[string]string{"OPENAI_BASE_URL": testBaseURL, "OPENAI_API_KEY": testToken, "OPENAI_MODEL": "gpt-4.1"},
		},
		{
			name: "generic on openai without a model", agent: "generic", provider: "openai",
			profile: Profile{Command: []string{"aider"}},
			wantCmd: []string{"aider"},
			wantEnv: map[string]string{"OPENAI_BASE_URL": testBaseURL, "OPENAI_API_KEY": testToken},
		},
		{
			name: "generic on anthropic", agent: "generic", provider: "anthropic",
			profile: Profile{Command: []string{"my-agent"}},
			wantCmd: []string{"my-agent"},
			wantEnv: map[string]string{"ANTHROPIC_BASE_URL": testBaseURL, "ANTHROPIC_API_KEY": testToken},
		},
		{
			// A model that looks like a template stays literal: the
			// replacement makes one pass.
			name: "templates in the model are not expanded", agent: "claude", provider: "anthropic",
			profile: Profile{Model: "{token}{base_url}"},
			wantCmd: []string{"claude"},
			wantEnv: map[string]string{
				"ANTHROPIC_BASE_URL": testBaseURL, "ANTHROPIC_AUTH_TOKEN": testToken, "ANTHROPIC_MODEL": "{token}{base_url}",
				"CLAUDE_CONFIG_DIR": testHome + "/.claude", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
			},
		},
		{
			name: "opencode on anthropic", agent: "opencode", provider: "anthropic",
			profile: Profile{Model: "claude-sonnet-4-5"},
			wantCmd: []string{"opencode"},
			wantEnv: withEnv(opencodeEnv, "OPENCODE_CONFIG_CONTENT", `{"model":"anthropic/claude-sonnet-4-5"}`),
		},
		{
			name: "opencode on openrouter without a model sets no inline config", agent: "opencode", provider: "openrouter",
			wantCmd: []string{"opencode"},
			wantEnv: withEnv(opencodeEnv, "OPENCODE_CONFIG_CONTENT", ""),
		},
		{
			name: "opencode with a template-like model", agent: "opencode", provider: "openai",
			profile: Profile{Model: "{format}{token}"},
			wantCmd: []string{"opencode"},
			wantEnv: withEnv(opencodeEnv, "OPENCODE_CONFIG_CONTENT", `{"model":"openai/{format}{token}"}`),
		},
		{
			// A model with quotes stays inside its JSON string: it cannot
			// add a plugin or an MCP server to OpenCode's config.
			name: "opencode with a model that tries to break out of the inline config", agent: "opencode", provider: "anthropic",
			profile: Profile{Model: `x","plugin":["file:///tmp/evil.js`},
			wantCmd: []string{"opencode"},
			wantEnv: withEnv(opencodeEnv, "OPENCODE_CONFIG_CONTENT", `{"model":"anthropic/x\",\"plugin\":[\"file:///tmp/evil.js"}`),
		},
		{
			name: "codex with a template-like model", agent: "codex", provider: "openai",
			profile:  Profile{Model: "{token}"},
			wantCmd:  []string{"codex"},
			wantArgs: append([]string{"-c", "model_provider=ringlet", "-c", codexProvider, "-c", "model={token}"}, codexQuiet...),
			wantEnv:  codexEnv,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, p := c.Agents[tt.agent], c.Providers[tt.provider]
			l := a.LaunchFor(tt.profile, p, testBaseURL, testToken, testHome, tt.sandboxed)
			if !slices.Equal(l.Command, tt.wantCmd) {
				t.Errorf("command: got %q, want %q", l.Command, tt.wantCmd)
			}
			if !slices.Equal(l.Args, tt.wantArgs) {
				t.Errorf("args: got %q, want %q", l.Args, tt.wantArgs)
			}
			got := envMap(l)
			if len(got) != len(l.Env) {
				t.Errorf("env has duplicate names: %v", l.Env)
			}
			for k, v := range tt.wantEnv {
				if got[k] != v {
					t.Errorf("env %s: got %q, want %q", k, got[k], v)
				}
			}
			for k := range got {
				if _, ok := tt.wantEnv[k]; !ok {
					t.Errorf("env %s=%q: want it absent", k, got[k])
				}
			}
			if !slices.IsSortedFunc(l.Env, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) }) {
				t.Errorf("env is not sorted by name: %v", l.Env)
			}
			checkToken(t, l)
		})
	}
}

// TestLaunchForCatalogToken checks that the token goes into an argument
// only where a catalog entry asks for it with {token}, and that agent env
// entries override the standard ones.
func TestLaunchForCatalogToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "agents.toml"), []byte(`
[agents.keyflag]
command = ["keyflag"]
formats = ["openai"]
standard_env = true
args = ["--api-key", "{token}", "--model", "{model}", "--url={base_url}", "--data={home}/x"]
[agents.keyflag.env]
OPENAI_BASE_URL = "{base_url}/v1"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	a := c.Agents["keyflag"]
	l := a.LaunchFor(Profile{}, c.Providers["openai"], testBaseURL, testToken, testHome, false)
	if want := []string{"--api-key", testToken, "--url=" + testBaseURL, "--data=" + testHome + "/x"}; !slices.Equal(l.Args, want) {
		t.Fatalf("args: got %q, want %q", l.Args, want)
	}
	env := envMap(l)
	if got := env["OPENAI_BASE_URL"]; got != testBaseURL+"/v1" {
		t.Fatalf("OPENAI_BASE_URL: got %q, want the agent's own %q", got, testBaseURL+"/v1")
	}
	if got := env["OPENAI_API_KEY"]; got != testToken {
		t.Fatalf("OPENAI_API_KEY: got %q, want the token", got)
	}
	if _, ok := env["OPENAI_MODEL"]; ok {
		t.Fatal("OPENAI_MODEL set without a model")
	}
	for i, arg := range l.Args {
		if strings.Contains(arg, testToken) && (i == 0 || l.Args[i-1] != "--api-key") {
			t.Fatalf("argument %d %q carries the token outside its {token} slot", i, arg)
		}
	}
}

// TestWithSession: the session's variables are added to every agent's
// environment, replace a catalog entry of the same name (Codex's
// RINGLET_SESSION_TOKEN), and the environment stays sorted.
func TestWithSession(t *testing.T) {
	t.Parallel()
	c, err := LoadCatalog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"claude", "codex", "opencode", "generic"} {
		t.Run(id, func(t *testing.T) {
			t.Parallel()
			prov := c.Providers["anthropic"]
			if id == "codex" {
				prov = c.Providers["openai"]
			}
			l := c.Agents[id].LaunchFor(Profile{}, prov, testBaseURL, testToken, testHome, false).
				WithSession(SessionEnv("s_1", "http://127.0.0.1:7777", testToken))
			env := envMap(l)
			if len(env) != len(l.Env) {
				t.Errorf("env has duplicate names: %v", l.Env)
			}
			if env[EnvSession] != "s_1" || env[EnvSessionToken] != testToken || env[EnvSessionURL] != "http://127.0.0.1:7777" {
				t.Errorf("env: got %v, want the session's id, token and URL", env)
			}
			if !slices.IsSortedFunc(l.Env, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) }) {
				t.Errorf("env is not sorted by name: %v", l.Env)
			}
			checkToken(t, l)
		})
	}
}

// withEnv is env with name set to value; an empty value checks the
// variable is absent (envMap gives "" for a missing name).
func withEnv(env map[string]string, name, value string) map[string]string {
	out := maps.Clone(env)
	out[name] = value
	return out
}
