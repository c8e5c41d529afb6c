// Package profile holds Ringlet's profiles (an agent, a provider, a model
// and a workspace under an alias), the catalogs of providers and agents
// they refer to, and how an agent is told where its provider is.
package profile

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/internal/outbound"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/provider"
)

//go:embed catalog.toml
var builtinCatalog []byte

// Provider is an LLM API: where it is, its wire format, and how the key
// is sent.
type Provider struct {
	ID        string            `toml:"-" json:"id"`
	Name      string            `toml:"name,omitempty" json:"name"`
	BaseURL   string            `toml:"base_url" json:"base_url"`
	Format    string            `toml:"format" json:"format"`
	Auth      string            `toml:"auth" json:"auth"`
	Endpoints map[string]string `toml:"endpoints,omitempty" json:"endpoints,omitempty"`
	Builtin   bool              `toml:"-" json:"builtin"`
}

// Auth schemes.
const (
	AuthXAPIKey = "x-api-key"
	AuthBearer  = "bearer"
)

// Agent is a coding agent and how it learns its provider's address and key.
type Agent struct {
	ID      string            `toml:"-" json:"id"`
	Name    string            `toml:"name,omitempty" json:"name"`
	Command []string          `toml:"command,omitempty" json:"command,omitempty"`
	Formats []string          `toml:"formats" json:"formats"`
	Env     map[string]string `toml:"env,omitempty" json:"env,omitempty"`
	Args    []string          `toml:"args,omitempty" json:"args,omitempty"`
	// JSONEnv are variables whose value is a JSON object built from
	// templates (OpenCode's OPENCODE_CONFIG_CONTENT): each member's value
	// is filled and the object encoded, so a model name cannot break out of
	// its string; a member that needs a missing model is left out, and a
	// variable with no member left is not set.
	JSONEnv map[string]map[string]string `toml:"json_env,omitempty" json:"json_env,omitempty"`
	// SandboxArgs follow Args when the agent runs in Ringlet's sandbox,
	// and only then (Codex's own sandbox, which cannot nest in it, off).
	SandboxArgs []string `toml:"sandbox_args,omitempty" json:"sandbox_args,omitempty"`
	// StandardEnv gives the agent the standard variables of its
	// provider's format: ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY, or
	// OPENAI_BASE_URL and OPENAI_API_KEY.
	StandardEnv bool `toml:"standard_env,omitempty" json:"standard_env,omitempty"`
	// HomeDirs are directories, relative to the profile's HOME, that the
	// agent needs to exist before it starts (Codex refuses to run when
	// its CODEX_HOME is missing). They are created 0700 at session start.
	HomeDirs []string `toml:"home_dirs,omitempty" json:"home_dirs,omitempty"`
	Builtin  bool     `toml:"-" json:"builtin"`
}

type catalogFile struct {
	Providers map[string]Provider `toml:"providers"`
	Agents    map[string]Agent    `toml:"agents"`
}

// Catalog is the built-in catalog plus the user's additions.
type Catalog struct {
	Providers map[string]Provider
	Agents    map[string]Agent
	dir       string
}

// LoadCatalog reads the built-in catalog and overrides from
// dir/providers.toml and dir/agents.toml.
func LoadCatalog(dir string) (*Catalog, error) {
	c := &Catalog{Providers: map[string]Provider{}, Agents: map[string]Agent{}, dir: dir}
	base, err := parseCatalog(builtinCatalog)
	if err != nil {
		return nil, fmt.Errorf("built-in catalog: %w", err)
	}
	for id, p := range base.Providers {
		p.ID, p.Builtin = id, true
		c.Providers[id] = p
	}
	for id, a := range base.Agents {
		a.ID, a.Builtin = id, true
		c.Agents[id] = a
	}
	for _, name := range []string{"providers.toml", "agents.toml"} {
		path := filepath.Join(dir, name)
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		f, err := parseCatalog(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for id, p := range f.Providers {
			p.ID = id
			c.Providers[id] = p
		}
		for id, a := range f.Agents {
			a.ID = id
			c.Agents[id] = a
		}
	}
	return c, nil
}

func parseCatalog(data []byte) (*catalogFile, error) {
	var f catalogFile
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) && len(strict.Errors) > 0 {
			row, _ := strict.Errors[0].Position()
			return nil, fmt.Errorf("line %d: unknown key %q", row, strings.Join(strict.Errors[0].Key(), "."))
		}
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("line %d: %s", row, de.Error())
		}
		return nil, err
	}
	for id, p := range f.Providers {
		p.ID = id
		if err := p.Validate(); err != nil {
			return nil, err
		}
	}
	for id, a := range f.Agents {
		a.ID = id
		if err := a.Validate(); err != nil {
			return nil, err
		}
	}
	return &f, nil
}

// Validate checks a provider definition.
func (p Provider) Validate() error {
	if err := names.Check("provider", p.ID); err != nil {
		return err
	}
	if _, err := ParseBaseURL(p.BaseURL); err != nil {
		return fmt.Errorf("provider %s: %w", p.ID, err)
	}
	for name, u := range p.Endpoints {
		if err := names.Check("endpoint", name); err != nil {
			return fmt.Errorf("provider %s: %w", p.ID, err)
		}
		if _, err := ParseBaseURL(u); err != nil {
			return fmt.Errorf("provider %s endpoint %s: %w", p.ID, name, err)
		}
	}
	if p.Format != provider.FormatAnthropic && p.Format != provider.FormatOpenAI {
		return fmt.Errorf("provider %s: format %q; accepted values: anthropic, openai", p.ID, p.Format)
	}
	if p.Auth != AuthXAPIKey && p.Auth != AuthBearer {
		return fmt.Errorf("provider %s: auth %q; accepted values: x-api-key, bearer", p.ID, p.Auth)
	}
	return nil
}

// ParseBaseURL checks a provider base URL: the rules of every server a
// key is sent to (outbound.ParseURL), and a plain path, since request
// paths are joined to it.
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := outbound.ParseURL("base URL", s)
	if err != nil {
		return nil, err
	}
	if strings.Contains(u.Path, "..") || strings.Contains(u.Path, "//") || strings.Contains(s, "\\") {
		return nil, fmt.Errorf("base URL %q: the path must be plain", s)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	return u, nil
}

// Validate checks an agent definition.
func (a Agent) Validate() error {
	if err := names.Check("agent", a.ID); err != nil {
		return err
	}
	if len(a.Formats) == 0 {
		return fmt.Errorf("agent %s: formats is empty", a.ID)
	}
	for _, f := range a.Formats {
		if f != provider.FormatAnthropic && f != provider.FormatOpenAI {
			return fmt.Errorf("agent %s: format %q; accepted values: anthropic, openai", a.ID, f)
		}
	}
	for _, d := range a.HomeDirs {
		if !filepath.IsLocal(d) || d != filepath.Clean(d) || strings.ContainsAny(d, "\x00\n\r") {
			return fmt.Errorf("agent %s: home_dirs entry %q must be a clean path inside the profile's HOME (like \".codex\")", a.ID, d)
		}
	}
	return nil
}

// Provider finds a provider by id.
func (c *Catalog) Provider(id string) (Provider, error) {
	p, ok := c.Providers[id]
	if !ok {
		return Provider{}, fmt.Errorf("unknown provider %q; known: %s (add one with 'ringlet providers add')", id, strings.Join(c.ProviderIDs(), ", "))
	}
	return p, nil
}

// Agent finds an agent by id.
func (c *Catalog) Agent(id string) (Agent, error) {
	a, ok := c.Agents[id]
	if !ok {
		return Agent{}, fmt.Errorf("unknown agent %q; known: %s", id, strings.Join(c.AgentIDs(), ", "))
	}
	return a, nil
}

// ProviderIDs lists provider ids, sorted.
func (c *Catalog) ProviderIDs() []string { return sortedKeys(c.Providers) }

// AgentIDs lists agent ids, sorted.
func (c *Catalog) AgentIDs() []string { return sortedKeys(c.Agents) }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// AddProvider validates p and writes it to providers.toml, replacing a user
// provider of the same id. Built-in providers are overridden the same way.
func (c *Catalog) AddProvider(p Provider) error {
	if err := p.Validate(); err != nil {
		return err
	}
	path := filepath.Join(c.dir, "providers.toml")
	var f catalogFile
	if data, err := os.ReadFile(path); err == nil {
		g, err := parseCatalog(data)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		f = *g
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if f.Providers == nil {
		f.Providers = map[string]Provider{}
	}
	u, _ := ParseBaseURL(p.BaseURL)
	p.BaseURL = u.String()
	f.Providers[p.ID] = p
	// Agents defined in providers.toml are kept, not dropped.
	data, err := toml.Marshal(f)
	if err != nil {
		return err
	}
	if err := privatefile.EnsureDir(c.dir); err != nil {
		return err
	}
	if err := privatefile.WriteAtomic(path, data, privatefile.FileMode); err != nil {
		return err
	}
	c.Providers[p.ID] = p
	return nil
}

// Supports reports whether the agent speaks the provider's format.
func (a Agent) Supports(p Provider) bool { return slices.Contains(a.Formats, p.Format) }
