package profile

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/sandbox"
)

// Profile binds an agent to a provider, a model and a workspace under an
// alias. It holds no secret: the key is in the credential store under
// <provider>/<alias>.
type Profile struct {
	Alias     string   `toml:"-" json:"alias"`
	Agent     string   `toml:"agent" json:"agent"`
	Provider  string   `toml:"provider" json:"provider"`
	Model     string   `toml:"model,omitempty" json:"model,omitempty"`
	Workspace string   `toml:"workspace,omitempty" json:"workspace,omitempty"`
	Endpoint  string   `toml:"endpoint,omitempty" json:"endpoint,omitempty"`
	Command   []string `toml:"command,omitempty" json:"command,omitempty"`
	// Sandbox settings for 'profiles run'.
	Network        string   `toml:"network,omitempty" json:"network,omitempty"` // provider (default), none, host
	ReadOnly       []string `toml:"ro,omitempty" json:"ro,omitempty"`
	ReadWrite      []string `toml:"rw,omitempty" json:"rw,omitempty"`
	AllowGitConfig bool     `toml:"allow_git_config,omitempty" json:"allow_git_config,omitempty"`
	// TrustWorkspace tells the agent that the user trusts the workspace's
	// files (Claude Code's and Codex's trust question is then not asked);
	// only with a Workspace. Ringlet writes it into the agent's own config
	// at every session start, and removes any other trust the agent's
	// HOME holds.
	TrustWorkspace bool `toml:"trust_workspace,omitempty" json:"trust_workspace,omitempty"`
	// AllowHosts are host names (host or host:port; port 443 when
	// omitted) the sandboxed agent may reach through Ringlet's CONNECT
	// proxy, besides its provider.
	AllowHosts []string `toml:"allow_hosts,omitempty" json:"allow_hosts,omitempty"`
	// Protect adds to the paths the sandbox keeps read-only in the
	// workspace and read-write directories (sandbox.DefaultProtected);
	// Unprotect lifts some of them. Protected is the result.
	Protect   []string `toml:"protect,omitempty" json:"protect,omitempty"`
	Unprotect []string `toml:"unprotect,omitempty" json:"unprotect,omitempty"`
	// Resource limits of the sandbox; 0 takes Ringlet's defaults. Sizes
	// are bytes.
	MaxProcs  int       `toml:"max_procs,omitempty" json:"max_procs,omitempty"`
	MaxMemory int64     `toml:"max_memory,omitempty" json:"max_memory,omitempty"`
	TmpSize   int64     `toml:"tmp_size,omitempty" json:"tmp_size,omitempty"`
	Created   time.Time `toml:"created" json:"created"`
	// MCPToolsDefault is whether the tools of the profile's MCP servers
	// that no 'ringlet mcp tools' rule names are served: "all" (empty:
	// the default) or "none" (each only once enabled).
	MCPToolsDefault string `toml:"mcp_tools_default,omitempty" json:"mcp_tools_default,omitempty"`
	// MCPToolSearch serves the profile's sessions the search_tools and
	// call_tool meta-tools instead of every upstream tool ('ringlet mcp
	// tools PROFILE --search on').
	MCPToolSearch bool `toml:"mcp_tool_search,omitempty" json:"mcp_tool_search,omitempty"`
	// StrictHooks refuses an MCP tool call of a Claude Code session that
	// no PreToolUse check allowed under its tool_use_id (the agent's own
	// hook was skipped); without it such a call is allowed and recorded
	// as hook.bypass (docs/audit.md, "Hook bypass").
	StrictHooks bool `toml:"strict_hooks,omitempty" json:"strict_hooks,omitempty"`
	// Budget caps what each session of the profile, and the profile per
	// day, week and month (UTC), may spend (docs/budgets.md). Zero: none.
	Budget budget.Budget `toml:"budget,omitempty" json:"budget,omitzero"`
	// RateLimits pace the profile's sessions ('ringlet ratelimits'); nil
	// is none.
	RateLimits *RateLimits `toml:"rate_limits,omitempty" json:"rate_limits,omitempty"`
}

// forget drops what was parsed of alias's file: file times are coarse (a
// clock tick) and inodes are reused, so a write of our own is not left to
// the stamp to notice.
func (s *Store) forget(alias string) {
	s.mu.Lock()
	delete(s.parsed, alias)
	s.mu.Unlock()
}

// clone copies p with its slices, so that a cached profile is never
// changed through a copy handed out.
func (p Profile) clone() Profile {
	p.Command, p.ReadOnly, p.ReadWrite = slices.Clone(p.Command), slices.Clone(p.ReadOnly), slices.Clone(p.ReadWrite)
	p.AllowHosts, p.Protect, p.Unprotect = slices.Clone(p.AllowHosts), slices.Clone(p.Protect), slices.Clone(p.Unprotect)
	return p
}

// Protected is the list of paths the profile's sandboxes keep read-only
// in the workspace and each read-write directory.
func (p Profile) Protected() ([]string, error) {
	return sandbox.ProtectedPaths(p.Protect, p.Unprotect)
}

// CredentialRef is where the profile's key lives.
func (p Profile) CredentialRef() credentials.Ref {
	return credentials.Ref{Provider: p.Provider, Alias: p.Alias}
}

// CheckNetwork checks a profile's sandbox network setting.
func CheckNetwork(n string) error {
	switch n {
	case "", "provider", "none", "host":
		return nil
	}
	return fmt.Errorf("invalid network %q; accepted values: provider, none, host", n)
}

// ErrNotFound means there is no such profile.
var ErrNotFound = errors.New("no such profile")

// ErrExists means a profile with that alias exists.
var ErrExists = errors.New("profile exists")

// Store keeps one TOML file per profile and one HOME directory each.
type Store struct {
	dir      string // $XDG_CONFIG_HOME/ringlet/profiles
	homeRoot string // $XDG_DATA_HOME/ringlet/profiles

	// Profiles parsed, each kept while its file's stamp is unchanged, so
	// that listing n profiles is n stats, not n TOML parses. A file
	// changed in any way (written, replaced, chmod-ed) is parsed and
	// checked again.
	mu     sync.Mutex
	parsed map[string]parsedProfile
	// now is the clock a parsed file's age is judged by (nil: time.Now):
	// one changed within privatefile.RacyWindow of its read is not kept.
	now func() time.Time
}

type parsedProfile struct {
	stamp privatefile.Stamp
	p     Profile
	path  string // s.path of its alias
	// data is what the file held when it was parsed, kept until the file
	// is settled (privatefile.Stamp.SettledAt): till then each Get reads
	// the file again and parses it only if it differs, since a change
	// within the same tick of the file's times leaves its stamp as it was.
	data    []byte
	settled bool
}

// NewStore returns a store with profile files in configDir/profiles and
// HOMEs in dataDir/profiles/<alias>/home.
func NewStore(configDir, dataDir string) *Store {
	return &Store{dir: filepath.Join(configDir, "profiles"), homeRoot: filepath.Join(dataDir, "profiles")}
}

// Home is the HOME of the profile's sandboxed agents and sandboxed MCP
// servers. They can write it, so nothing outside a sandbox may run with
// it, load from it, or take instructions from it.
func (s *Store) Home(alias string) string { return filepath.Join(s.homeRoot, alias, "home") }

// UnsandboxedHome is the HOME of the profile's agents that run without a
// sandbox ('profiles env', 'profiles run --no-sandbox') and of its MCP
// servers added with --no-sandbox. It is not Home: a sandboxed agent could
// otherwise plant configuration there (Claude Code's hooks, Codex's
// notify, OpenCode's plugins) that an unsandboxed run would execute as
// the user. No sandbox may bind it.
func (s *Store) UnsandboxedHome(alias string) string {
	return filepath.Join(s.homeRoot, alias, "home-unsandboxed")
}

// StateDir is the profile's own directory, which holds its HOMEs and
// what Ringlet keeps of them that no sandbox binds: the agent config the
// user approved, and what was reset aside (package agenthome).
func (s *Store) StateDir(alias string) string { return filepath.Join(s.homeRoot, alias) }

// HookHome is the HOME and working directory of the profile's hooks,
// which run on the host: a directory no agent or sandbox can write, kept
// empty by Ringlet unless a hook writes there itself.
func (s *Store) HookHome(alias string) string { return filepath.Join(s.homeRoot, alias, "hook-home") }

func (s *Store) path(alias string) string {
	// s.dir is clean (NewStore joins it) and an alias without a separator
	// is one element, so the join is a concatenation: one allocation
	// instead of two on every Get, which every proxied request makes.
	if !strings.ContainsAny(alias, `/`+string(filepath.Separator)) {
		return s.dir + string(filepath.Separator) + alias + ".toml"
	}
	return filepath.Join(s.dir, alias+".toml")
}

// Validate checks p against the catalog.
func (p *Profile) Validate(c *Catalog) error {
	if err := names.Check("profile", p.Alias); err != nil {
		return err
	}
	if p.RateLimits != nil {
		if err := p.RateLimits.Validate(); err != nil {
			return err
		}
	}
	a, err := c.Agent(p.Agent)
	if err != nil {
		return err
	}
	prov, err := c.Provider(p.Provider)
	if err != nil {
		return err
	}
	if err := p.Budget.Validate(); err != nil {
		return err
	}
	if !a.Supports(prov) {
		return fmt.Errorf("agent %s speaks %s, but provider %s speaks %s", a.ID, strings.Join(a.Formats, "/"), prov.ID, prov.Format)
	}
	switch p.MCPToolsDefault {
	case "", "all", "none":
	default:
		return fmt.Errorf("invalid MCP tools default %q; accepted values: all, none", p.MCPToolsDefault)
	}
	if p.Endpoint != "" {
		if _, ok := prov.Endpoints[p.Endpoint]; !ok {
			return fmt.Errorf("provider %s has no endpoint %q", prov.ID, p.Endpoint)
		}
	}
	if len(a.Command) == 0 && len(p.Command) == 0 {
		return fmt.Errorf("agent %s needs --command: the program to run", a.ID)
	}
	if len(a.Command) > 0 && len(p.Command) > 0 {
		return fmt.Errorf("agent %s has its own command; --command is only for the generic agent", a.ID)
	}
	if len(p.Model) > 200 || strings.ContainsAny(p.Model, "\"'") || strings.ContainsFunc(p.Model, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError }) {
		return fmt.Errorf("invalid model name %q: at most 200 characters, no quotes or control characters (e.g. claude-sonnet-4-5)", p.Model)
	}
	if p.Workspace != "" {
		if err := CheckWorkspace(p.Workspace); err != nil {
			return err
		}
	}
	if p.TrustWorkspace && p.Workspace == "" {
		// Without one, the agent works wherever it is started: trust
		// would follow it there.
		return fmt.Errorf("invalid --trust-workspace without --workspace: Ringlet marks only a named workspace as trusted")
	}
	if err := CheckNetwork(p.Network); err != nil {
		return err
	}
	for _, h := range p.AllowHosts {
		if err := CheckAllowHost(h); err != nil {
			return err
		}
	}
	if _, err := p.Protected(); err != nil {
		return fmt.Errorf("invalid %w", err)
	}
	if err := CheckLimits(p.MaxProcs, p.MaxMemory, p.TmpSize); err != nil {
		return err
	}
	for _, d := range append(append([]string{}, p.ReadOnly...), p.ReadWrite...) {
		if strings.ContainsAny(d, "\x00\n\r") || strings.HasPrefix(d, "-") || !filepath.IsAbs(d) || filepath.Clean(d) != d {
			return fmt.Errorf("invalid extra path %q: want a clean absolute path without newlines", d)
		}
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("extra path %s: %w", d, privatefile.WithoutPath(err))
		}
	}
	return nil
}

var hostRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,62})?(\.[a-z0-9]([a-z0-9-]{0,62})?)*(:[0-9]{1,5})?$`)
})

// CheckAllowHost checks an --allow-host entry: a lower-case host name
// (not an IP address: egress is allowed by name), optionally with a port.
func CheckAllowHost(h string) error {
	if !hostRE().MatchString(h) || len(h) > 260 {
		return fmt.Errorf("invalid --allow-host %q: want a lower-case host name such as github.com, optionally with :port", h)
	}
	host := h
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		host = h[:i]
		if n, err := strconv.Atoi(h[i+1:]); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("invalid --allow-host %q: the port must be 1 to 65535", h)
		}
	}
	if net.ParseIP(host) != nil {
		return fmt.Errorf("invalid --allow-host %q: name a host, not an IP address", h)
	}
	return nil
}

// CheckWorkspace refuses workspaces that are not plain absolute
// directories: a workspace is bound read-write into the agent's sandbox.
func CheckWorkspace(w string) error {
	if strings.ContainsAny(w, "\x00\n\r") || strings.HasPrefix(w, "-") {
		return fmt.Errorf("invalid workspace %q: no newlines, and it must not start with -", w)
	}
	if !filepath.IsAbs(w) || filepath.Clean(w) != w {
		return fmt.Errorf("invalid workspace %q: want a clean absolute path", w)
	}
	real, err := filepath.EvalSymlinks(w)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", w, privatefile.WithoutPath(err))
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("workspace %s: %w", w, privatefile.WithoutPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("workspace %s is not a directory", w)
	}
	if real == "/" {
		return fmt.Errorf("workspace %s is the root directory; choose a project directory", w)
	}
	return nil
}

// Create validates and stores a new profile and makes its HOME (0700).
func (s *Store) Create(c *Catalog, p Profile) (Profile, error) {
	if err := p.Validate(c); err != nil {
		return Profile{}, err
	}
	if p.Created.IsZero() {
		p.Created = time.Now().UTC().Truncate(time.Second)
	}
	data, err := toml.Marshal(p)
	if err != nil {
		return Profile{}, err
	}
	if err := privatefile.EnsureDir(s.dir); err != nil {
		return Profile{}, err
	}
	defer s.forget(p.Alias)
	if err := privatefile.Create(s.path(p.Alias), data); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return Profile{}, fmt.Errorf("profile %s already exists (delete it first, or choose another alias): %w", p.Alias, ErrExists)
		}
		return Profile{}, fmt.Errorf("write profile %s: %w", p.Alias, err)
	}
	if err := privatefile.EnsureDir(s.Home(p.Alias)); err != nil {
		os.Remove(s.path(p.Alias))
		return Profile{}, fmt.Errorf("profile HOME: %w", err)
	}
	return p, nil
}

// EnsureHomeDirs creates the directories dirs (relative, validated by
// Agent.Validate) inside home (one of alias's HOMEs), 0700, refusing to
// follow a symlink out of it.
func (s *Store) EnsureHomeDirs(home string, dirs []string) error {
	if err := privatefile.EnsureDir(home); err != nil {
		return fmt.Errorf("profile HOME: %w", err)
	}
	for _, d := range dirs {
		if !filepath.IsLocal(d) {
			return fmt.Errorf("profile HOME directory %q is not inside the HOME", d)
		}
		// The agent can write its HOME: a symlink planted there must not
		// lead the daemon to create directories elsewhere, even one
		// swapped in between the check and the mkdir (os.Root).
		root, err := os.OpenRoot(home)
		if err != nil {
			return fmt.Errorf("profile HOME: %w", err)
		}
		defer root.Close()
		rel := ""
		path := home
		for _, part := range strings.Split(d, string(filepath.Separator)) {
			rel, path = filepath.Join(rel, part), filepath.Join(path, part)
			fi, err := root.Lstat(rel)
			if errors.Is(err, fs.ErrNotExist) {
				if err := root.Mkdir(rel, privatefile.DirMode); err != nil {
					return fmt.Errorf("profile HOME directory %s: %w", d, privatefile.WithoutPath(err))
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("profile HOME directory %s: %w", d, privatefile.WithoutPath(err))
			}
			if !fi.IsDir() {
				return fmt.Errorf("profile HOME directory %s: %s is not a directory (a symlink is refused); remove it", d, path)
			}
		}
	}
	return nil
}

// Get reads one profile.
func (s *Store) Get(alias string) (Profile, error) {
	if err := names.Check("profile", alias); err != nil {
		return Profile{}, err
	}
	// The path of a profile parsed before is the one kept with it (Get is
	// on every proxied request's path, and the join allocates); the
	// entry is looked up again after the stamp, which must come first.
	s.mu.Lock()
	path := s.parsed[alias].path
	s.mu.Unlock()
	if path == "" {
		path = s.path(alias)
	}
	stamp, stamped := privatefile.StampOf(path)
	s.mu.Lock()
	c, ok := s.parsed[alias]
	s.mu.Unlock()
	if stamped && ok && c.stamp == stamp && c.settled {
		return c.p.clone(), nil
	}
	start := time.Now()
	if s.now != nil {
		start = s.now()
	}
	data, err := privatefile.Read(path, 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return Profile{}, fmt.Errorf("no profile %q ('ringlet profiles list' shows them): %w", alias, ErrNotFound)
	}
	if err != nil {
		return Profile{}, fmt.Errorf("profile %s: %w", alias, err)
	}
	settled := stamped && stamp.SettledAt(start)
	if stamped && ok && c.stamp == stamp && bytes.Equal(data, c.data) {
		// Changed lately, but not since it was parsed.
		if settled {
			s.keep(alias, parsedProfile{stamp: stamp, p: c.p, path: path, settled: true})
		}
		return c.p.clone(), nil
	}
	var p Profile
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return Profile{}, fmt.Errorf("profile file %s is not valid: %v", path, err)
	}
	p.Alias = alias
	if stamped {
		// A file changed just before this read may change again within
		// the same tick of its times, which its stamp would not show (a
		// hand edit tightening the profile must reach the next request):
		// until it is older, its contents are compared at each Get.
		kept := parsedProfile{stamp: stamp, p: p.clone(), path: path, settled: settled}
		if !settled {
			kept.data = data
		}
		s.keep(alias, kept)
	}
	return p, nil
}

// keep keeps what was parsed of alias's file.
func (s *Store) keep(alias string, c parsedProfile) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parsed == nil {
		s.parsed = map[string]parsedProfile{}
	}
	s.parsed[alias] = c
}

// List reads every profile, sorted by alias.
func (s *Store) List() ([]Profile, error) {
	entries, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Profile
	for _, e := range entries {
		alias, ok := strings.CutSuffix(e.Name(), ".toml")
		if !ok || names.Check("profile", alias) != nil {
			continue
		}
		p, err := s.Get(alias)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alias < out[j].Alias })
	return out, nil
}

// Update applies change to a stored profile, validates the result against
// the catalog and replaces the file atomically. The alias and creation
// time cannot change.
func (s *Store) Update(c *Catalog, alias string, change func(*Profile)) (Profile, error) {
	p, err := s.Get(alias)
	if err != nil {
		return Profile{}, err
	}
	created := p.Created
	change(&p)
	p.Alias, p.Created = alias, created
	if err := p.Validate(c); err != nil {
		return Profile{}, err
	}
	data, err := toml.Marshal(p)
	if err != nil {
		return Profile{}, err
	}
	defer s.forget(alias)
	if err := privatefile.WriteAtomic(s.path(alias), data, privatefile.FileMode); err != nil {
		return Profile{}, fmt.Errorf("write profile %s: %w", alias, err)
	}
	return p, nil
}

// Delete removes a profile and its HOME.
func (s *Store) Delete(alias string) (Profile, error) {
	p, err := s.Get(alias)
	if err != nil {
		return Profile{}, err
	}
	defer s.forget(alias)
	if err := os.Remove(s.path(alias)); err != nil {
		return Profile{}, fmt.Errorf("delete profile %s: %w", alias, err)
	}
	if err := os.RemoveAll(filepath.Join(s.homeRoot, alias)); err != nil {
		return p, fmt.Errorf("delete the HOME of profile %s: %w", alias, err)
	}
	return p, nil
}
