package profile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadCatalogBuiltin(t *testing.T) {
	t.Parallel()
	c, err := LoadCatalog(t.TempDir())
	if err != nil {
		t.Fatalf("LoadCatalog: %v", err)
	}
	if got, want := c.ProviderIDs(), []string{"anthropic", "openai", "openrouter"}; !slices.Equal(got, want) {
		t.Fatalf("providers: got %v, want %v", got, want)
	}
	if got, want := c.AgentIDs(), []string{"claude", "codex", "generic", "opencode"}; !slices.Equal(got, want) {
		t.Fatalf("agents: got %v, want %v", got, want)
	}
	formats := map[string]string{"anthropic": "anthropic", "openai": "openai", "openrouter": "openai"}
	for id, p := range c.Providers {
		if p.ID != id || !p.Builtin {
			t.Errorf("provider %s: got ID %q Builtin %v, want %q true", id, p.ID, p.Builtin, id)
		}
		if p.Format != formats[id] {
			t.Errorf("provider %s: got format %q, want %q", id, p.Format, formats[id])
		}
		if !strings.HasPrefix(p.BaseURL, "https://") {
			t.Errorf("provider %s: got base URL %q, want https", id, p.BaseURL)
		}
		if err := p.Validate(); err != nil {
			t.Errorf("provider %s: Validate: %v", id, err)
		}
	}
	for id, a := range c.Agents {
		if a.ID != id || !a.Builtin {
			t.Errorf("agent %s: got ID %q Builtin %v, want %q true", id, a.ID, a.Builtin, id)
		}
		if err := a.Validate(); err != nil {
			t.Errorf("agent %s: Validate: %v", id, err)
		}
	}
	if len(c.Agents["generic"].Command) != 0 {
		t.Errorf("generic agent: got command %v, want none", c.Agents["generic"].Command)
	}
	if _, err := c.Provider("nope"); err == nil || !strings.Contains(err.Error(), "anthropic") {
		t.Errorf("Provider(nope): got %v, want an error listing the known providers", err)
	}
	if _, err := c.Agent("nope"); err == nil || !strings.Contains(err.Error(), "claude") {
		t.Errorf("Agent(nope): got %v, want an error listing the known agents", err)
	}
}

func TestLoadCatalogOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "providers.toml"), `
[providers.anthropic]
name = "Anthropic via corporate proxy"
base_url = "https://llm-proxy.corp.example/anthropic/"
format = "anthropic"
auth = "bearer"

[providers.local]
base_url = "http://127.0.0.1:4000/v1"
format = "openai"
auth = "bearer"
[providers.local.endpoints]
eu = "https://eu.local.example/v1"
`)
	writeFile(t, filepath.Join(dir, "agents.toml"), `
[agents.aider]
command = ["aider"]
formats = ["openai"]
standard_env = true
`)
	c, err := LoadCatalog(dir)
	if err != nil {
		t.Fatalf("LoadCatalog: %v", err)
	}
	a := c.Providers["anthropic"]
	if a.BaseURL != "https://llm-proxy.corp.example/anthropic/" || a.Auth != AuthBearer || a.Builtin {
		t.Fatalf("overridden anthropic: got %+v, want the file's base URL and auth, not built-in", a)
	}
	if l, ok := c.Providers["local"]; !ok || l.ID != "local" || l.Endpoints["eu"] != "https://eu.local.example/v1" {
		t.Fatalf("added provider: got %+v, %v", l, ok)
	}
	if o := c.Providers["openai"]; !o.Builtin || o.BaseURL != "https://api.openai.com/v1" {
		t.Fatalf("untouched openai: got %+v, want the built-in one", o)
	}
	if ag, ok := c.Agents["aider"]; !ok || ag.ID != "aider" || ag.Builtin || !ag.StandardEnv {
		t.Fatalf("added agent: got %+v, %v", ag, ok)
	}
}

func TestLoadCatalogErrors(t *testing.T) {
	t.Parallel()
	const ok = "base_url = \"https://x.example\"\nformat = \"openai\"\nauth = \"bearer\"\n"
	tests := []struct {
		name, file, content string
		want                []string // substrings of the error
	}{
		{"unknown key", "providers.toml", "[providers.x]\n" + ok + "bogus = 1\n", []string{"line 5", `unknown key "providers.x.bogus"`}},
		{"unknown top-level table", "providers.toml", "[provider.x]\n" + ok, []string{"line 1", "unknown key"}},
		{"unknown agent key", "agents.toml", "[agents.y]\nformats = [\"openai\"]\nstandard-env = true\n", []string{"line 3", "standard-env"}},
		{"syntax error", "providers.toml", "[providers.x]\nformat = openai\n", []string{"line 2"}},
		{"bad format", "providers.toml", "[providers.x]\nbase_url = \"https://x.example\"\nformat = \"grpc\"\nauth = \"bearer\"\n", []string{"format", "grpc"}},
		{"bad auth", "providers.toml", "[providers.x]\nbase_url = \"https://x.example\"\nformat = \"openai\"\nauth = \"basic\"\n", []string{"auth", "basic"}},
		{"missing auth", "providers.toml", "[providers.x]\nbase_url = \"https://x.example\"\nformat = \"openai\"\n", []string{"auth"}},
		{"bad base URL", "providers.toml", "[providers.x]\nbase_url = \"ftp://x.example\"\nformat = \"openai\"\nauth = \"bearer\"\n", []string{"base URL"}},
		{"plain http", "providers.toml", "[providers.x]\nbase_url = \"http://x.example\"\nformat = \"openai\"\nauth = \"bearer\"\n", []string{"plain http"}},
		{"bad endpoint", "providers.toml", "[providers.x]\n" + ok + "[providers.x.endpoints]\neu = \"http://eu.x.example\"\n", []string{"endpoint eu"}},
		{"bad endpoint name", "providers.toml", "[providers.x]\n" + ok + "[providers.x.endpoints]\nEU = \"https://eu.x.example\"\n", []string{"endpoint"}},
		{"bad provider id", "providers.toml", "[providers.X]\n" + ok, []string{"provider"}},
		{"agent without formats", "agents.toml", "[agents.y]\ncommand = [\"y\"]\n", []string{"formats"}},
		{"agent with bad format", "agents.toml", "[agents.y]\nformats = [\"gemini\"]\n", []string{"gemini"}},
		{"home_dirs climbing out", "agents.toml", "[agents.y]\nformats = [\"openai\"]\nhome_dirs = [\"../x\"]\n", []string{"home_dirs", "../x"}},
		{"home_dirs absolute", "agents.toml", "[agents.y]\nformats = [\"openai\"]\nhome_dirs = [\"/etc\"]\n", []string{"home_dirs", "/etc"}},
		{"home_dirs not clean", "agents.toml", "[agents.y]\nformats = [\"openai\"]\nhome_dirs = [\"a//b\"]\n", []string{"home_dirs"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, tt.file)
			writeFile(t, path, tt.content)
			_, err := LoadCatalog(dir)
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.want)
			}
			for _, w := range append(tt.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("got error %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestParseBaseURL(t *testing.T) {
	t.Parallel()
	accepted := []struct{ in, path string }{
		{"https://api.anthropic.com", ""},
		{"https://api.openai.com/v1", "/v1"},
		{"https://openrouter.ai/api/v1/", "/api/v1"},
		{"https://10.1.2.3:8443/v1", "/v1"},
		{"http://127.0.0.1:8080", ""},
		{"http://127.5.6.7/v1", "/v1"},
		{"http://[::1]:9000/v1", "/v1"},
		{"http://[0:0:0:0:0:0:0:1]/v1", "/v1"},
		{"http://localhost:4000/v1", "/v1"},
	}
	for _, tt := range accepted {
		u, err := ParseBaseURL(tt.in)
		if err != nil {
			t.Errorf("ParseBaseURL(%q): got error %v, want it accepted", tt.in, err)
			continue
		}
		if u.Path != tt.path {
			t.Errorf("ParseBaseURL(%q): got path %q, want %q", tt.in, u.Path, tt.path)
		}
	}
	refused := []string{
		"",
		"api.openai.com/v1",
		"https://",
		"https:///v1",
		"ftp://api.example.com",
		"file:///etc/passwd",
		"mailto:a@b.example",
		"https:api.example.com",
		// Plain http off loopback.
		"http://api.example.com/v1",
		"http://10.0.0.1:8080",
		"http://0.0.0.0:8080",
		"http://[::2]/v1",
		"http://127.evil.example/v1",
		"http://127.0.0.1.evil.example/v1",
		"http://localhost.evil.example",
		// Ports that are none.
		"http://127.0.0.1:99999",
		"http://127.0.0.1:0/v1",
		"https://api.example.com:http/v1",
		// Credentials, query, fragment.
		"https://user:pw@api.example.com",
		"https://user@api.example.com",
		"https://:pw@api.example.com",
		"https://api.example.com/v1?x=1",
		"https://api.example.com/v1?",
		"https://api.example.com/v1#frag",
		// Paths that are not plain.
		"https://api.example.com/v1/../admin",
		"https://api.example.com/v1/%2e%2e/admin",
		"https://api.example.com/..",
		"https://api.example.com//v1",
		"https://api.example.com/v1//x",
		"https://api.example.com/v1%2f%2fx",
		"https://api.example.com\\@evil.example",
		"https://api.example.com/v1\\x",
	}
	for _, in := range refused {
		if u, err := ParseBaseURL(in); err == nil {
			t.Errorf("ParseBaseURL(%q): got %s accepted, want an error", in, u)
		}
	}
}

func TestAddProvider(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "config") // made by AddProvider
	c, err := LoadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := Provider{ID: "corp", Name: "Corp", BaseURL: "https://llm.corp.example/v1/", Format: "openai", Auth: AuthBearer}
	if err := c.AddProvider(p); err != nil {
		t.Fatalf("AddProvider: %v", err)
	}
	path := filepath.Join(dir, "providers.toml")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Fatalf("providers.toml mode: got %04o, want 0600", got)
	}
	if got := c.Providers["corp"].BaseURL; got != "https://llm.corp.example/v1" {
		t.Fatalf("in-memory base URL: got %q, want the trailing slash trimmed", got)
	}
	// A second provider keeps the first; a built-in one can be overridden.
	if err := c.AddProvider(Provider{ID: "anthropic", BaseURL: "http://localhost:9999", Format: "anthropic", Auth: AuthXAPIKey}); err != nil {
		t.Fatalf("AddProvider(anthropic): %v", err)
	}
	c2, err := LoadCatalog(dir)
	if err != nil {
		t.Fatalf("LoadCatalog after AddProvider: %v", err)
	}
	corp, ok := c2.Providers["corp"]
	if !ok || corp.BaseURL != "https://llm.corp.example/v1" || corp.Name != "Corp" || corp.Builtin {
		t.Fatalf("reloaded corp: got %+v, %v", corp, ok)
	}
	if a := c2.Providers["anthropic"]; a.BaseURL != "http://localhost:9999" || a.Builtin {
		t.Fatalf("reloaded anthropic: got %+v, want the override", a)
	}
	if _, ok := c2.Providers["openai"]; !ok {
		t.Fatal("reloaded catalog lost the built-in openai provider")
	}

	// Invalid providers are refused and the file is left alone.
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Provider{
		{ID: "x", BaseURL: "http://llm.example", Format: "openai", Auth: AuthBearer},
		{ID: "x", BaseURL: "https://llm.example", Format: "soap", Auth: AuthBearer},
		{ID: "x", BaseURL: "https://llm.example", Format: "openai", Auth: "none"},
		{ID: "Bad Id", BaseURL: "https://llm.example", Format: "openai", Auth: AuthBearer},
	} {
		if err := c.AddProvider(bad); err == nil {
			t.Errorf("AddProvider(%+v): got no error, want one", bad)
		}
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(before) {
		t.Fatalf("refused providers changed providers.toml:\n%s", after)
	}
	if _, ok := c.Providers["x"]; ok {
		t.Fatal("a refused provider is in the catalog")
	}
}

// TestAddProviderKeepsAgents checks that agents a user defined in
// providers.toml survive AddProvider rewriting that file.
func TestAddProviderKeepsAgents(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "providers.toml"), "[agents.mine]\ncommand = [\"mine\"]\nformats = [\"openai\"]\nstandard_env = true\n")
	c, err := LoadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddProvider(Provider{ID: "corp", BaseURL: "https://llm.corp.example", Format: "openai", Auth: AuthBearer}); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := c2.Agents["mine"]; !ok || !slices.Equal(a.Command, []string{"mine"}) || !a.StandardEnv {
		t.Fatalf("agent mine after AddProvider: got %+v, %v; want it kept", a, ok)
	}
	if _, ok := c2.Providers["corp"]; !ok {
		t.Fatal("provider corp missing after AddProvider")
	}
}

func TestAddProviderMalformedFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "providers.toml")
	c, err := LoadCatalog(dir)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "[providers.x\n")
	err = c.AddProvider(Provider{ID: "corp", BaseURL: "https://llm.corp.example", Format: "openai", Auth: AuthBearer})
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want an error naming %s", err, path)
	}
	if data, _ := os.ReadFile(path); string(data) != "[providers.x\n" {
		t.Fatalf("malformed providers.toml was rewritten: got %q", data)
	}
}

func TestAgentSupports(t *testing.T) {
	t.Parallel()
	c, err := LoadCatalog(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		agent, provider string
		want            bool
	}{
		{"claude", "anthropic", true},
		{"claude", "openai", false},
		{"codex", "openai", true},
		{"codex", "openrouter", true},
		{"codex", "anthropic", false},
		{"generic", "anthropic", true},
		{"generic", "openai", true},
	}
	for _, tt := range tests {
		if got := c.Agents[tt.agent].Supports(c.Providers[tt.provider]); got != tt.want {
			t.Errorf("%s supports %s: got %v, want %v", tt.agent, tt.provider, got, tt.want)
		}
	}
}
