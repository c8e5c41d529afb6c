package mcp

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/internal/outbound"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/sandbox"
)

// Errors of the store.
var (
	ErrNotFound = errors.New("no such MCP server")
	ErrExists   = errors.New("MCP server exists")
)

// Limits of an upstream definition.
const (
	DefaultCallTimeout = 60 * time.Second
	MaxCallTimeout     = 30 * time.Minute
	maxArgv            = 256
	maxArgvBytes       = 64 << 10
	maxServers         = 64
)

// serverNameRE is what <server> in <server>__<tool> may be. No
// underscore, so the first "__" of an exposed name always ends the server
// name, and short, so the exposed name stays within 128 characters.
var serverNameRE = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$`)

// ServerConfig is one upstream MCP server of a profile.
type ServerConfig struct {
	Name string `json:"name"`
	// Command is the argv of a stdio server, started by the daemon.
	Command []string `json:"command,omitempty"`
	// URL is the endpoint of a streamable HTTP server (instead of Command).
	URL string `json:"url,omitempty"`
	// Credential names a key in the credential store (provider/alias)
	// that the gateway sends to an HTTP server as Authorization: Bearer.
	// The key is read when a request is made and never reaches the agent.
	Credential string `json:"credential,omitempty"`
	// Timeout bounds one tool call. Zero means DefaultCallTimeout.
	Timeout time.Duration `json:"timeout_ns,omitempty"`
	// A stdio server runs in the profile's sandbox: the system read-only,
	// the profile's HOME and workspace (and its --ro/--rw paths), and
	// ReadOnly and ReadWrite besides; Network is "none" (the default:
	// loopback only) or "host". NoSandbox runs it as a plain child of the
	// daemon instead: an explicit, audited opt-out.
	ReadOnly  []string  `json:"ro,omitempty"`
	ReadWrite []string  `json:"rw,omitempty"`
	Network   string    `json:"network,omitempty"`
	NoSandbox bool      `json:"no_sandbox,omitempty"`
	Created   time.Time `json:"created"`
	// Pins maps each upstream tool name to the hash of its definition
	// when it was first seen or last approved.
	Pins map[string]string `json:"pins,omitempty"`
	// Approved is when 'ringlet mcp approve' last re-pinned the tools.
	Approved *time.Time `json:"approved,omitempty"`
}

// Networks of a sandboxed stdio server.
const (
	NetworkNone = "none" // loopback only (the default)
	NetworkHost = "host" // the host's network
)

// ValidateServerName checks <server>.
func ValidateServerName(name string) error {
	if !serverNameRE.MatchString(name) {
		return fmt.Errorf("invalid MCP server name %q: use 1 to 32 lower-case letters, digits and '-', starting and ending with a letter or digit", name)
	}
	return nil
}

// Validate checks a definition and fills the default timeout.
var credentialRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}/[a-z0-9][a-z0-9._-]{0,63}$`)

func (c *ServerConfig) Validate() error {
	if err := ValidateServerName(c.Name); err != nil {
		return err
	}
	switch {
	case c.URL != "" && len(c.Command) > 0:
		return errors.New("an MCP server has a command or a URL, not both")
	case c.URL != "":
		if err := validateURL(c.URL); err != nil {
			return err
		}
	case len(c.Command) == 0 || strings.TrimSpace(c.Command[0]) == "":
		return errors.New("an MCP server needs a command or a URL: ringlet mcp add PROFILE NAME -- COMMAND [ARGS...], or --url URL")
	}
	if c.Credential != "" {
		if c.URL == "" {
			return errors.New("--credential is for HTTP servers (--url); a stdio server gets no keys")
		}
		if !credentialRE.MatchString(c.Credential) {
			return fmt.Errorf("invalid --credential %q: want <provider>/<alias>", c.Credential)
		}
	}
	if c.URL != "" && (len(c.ReadOnly)+len(c.ReadWrite) > 0 || c.Network != "" || c.NoSandbox) {
		return errors.New("--ro, --rw, --network and --no-sandbox are for stdio servers; an HTTP server runs elsewhere")
	}
	switch c.Network {
	case "", NetworkNone, NetworkHost:
	default:
		return fmt.Errorf("invalid --network %q; accepted values: none, host", c.Network)
	}
	if c.NoSandbox && (len(c.ReadOnly)+len(c.ReadWrite) > 0 || c.Network != "") {
		return errors.New("--no-sandbox runs the server unconfined; --ro, --rw and --network do not apply")
	}
	for _, p := range append(append([]string{}, c.ReadOnly...), c.ReadWrite...) {
		if err := sandbox.CheckPath("--ro/--rw path", p); err != nil {
			return err
		}
	}
	if len(c.Command) > maxArgv {
		return fmt.Errorf("the command has more than %d arguments", maxArgv)
	}
	n := 0
	for _, a := range c.Command {
		n += len(a)
		if strings.ContainsRune(a, 0) {
			return errors.New("the command contains a NUL byte")
		}
	}
	if n > maxArgvBytes {
		return fmt.Errorf("the command is longer than %d KiB", maxArgvBytes>>10)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultCallTimeout
	}
	if c.Timeout < time.Second || c.Timeout > MaxCallTimeout {
		return fmt.Errorf("timeout must be from 1s to %s", MaxCallTimeout)
	}
	return nil
}

// validateURL checks the endpoint of an HTTP server: what a tool call
// carries, and its credential, must not cross a network in the clear.
func validateURL(s string) error {
	_, err := outbound.ParseURL("MCP server URL", s)
	return err
}

// Store keeps each profile's upstream MCP servers in mcp/<profile>.json
// under the config directory (0600 files in a 0700 directory, replaced
// atomically). Only the daemon writes it.
type Store struct {
	dir string
	mu  sync.Mutex
}

// NewStore returns a store under configDir/mcp.
func NewStore(configDir string) *Store { return &Store{dir: filepath.Join(configDir, "mcp")} }

type storeFile struct {
	Version int            `json:"version"`
	Servers []ServerConfig `json:"servers"`
}

func (s *Store) path(profile string) string { return filepath.Join(s.dir, profile+".json") }

// List returns a profile's servers in the order they were added.
func (s *Store) List(profile string) ([]ServerConfig, error) {
	if err := credentials.ValidateName("profile", profile); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(profile)
}

func (s *Store) read(profile string) ([]ServerConfig, error) {
	var f storeFile
	found, err := privatefile.ReadJSON(s.path(profile), 4<<20, &f)
	if err != nil {
		return nil, fmt.Errorf("MCP servers of %s: %w", profile, err)
	}
	if found && f.Version != 1 {
		return nil, fmt.Errorf("MCP servers file %s has version %d; this ringlet reads version 1", s.path(profile), f.Version)
	}
	return f.Servers, nil
}

func (s *Store) write(profile string, servers []ServerConfig) error {
	if servers == nil {
		servers = []ServerConfig{}
	}
	return privatefile.WriteJSON(s.path(profile), storeFile{Version: 1, Servers: servers})
}

// Add validates c and appends it to the profile's servers.
func (s *Store) Add(profile string, c ServerConfig) (ServerConfig, error) {
	if err := credentials.ValidateName("profile", profile); err != nil {
		return ServerConfig{}, err
	}
	if err := c.Validate(); err != nil {
		return ServerConfig{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	servers, err := s.read(profile)
	if err != nil {
		return ServerConfig{}, err
	}
	for _, e := range servers {
		if e.Name == c.Name {
			return ServerConfig{}, fmt.Errorf("profile %s already has an MCP server %s; remove it first: %w", profile, c.Name, ErrExists)
		}
	}
	if len(servers) >= maxServers {
		return ServerConfig{}, fmt.Errorf("profile %s has %d MCP servers, the most it may have", profile, maxServers)
	}
	c.Created = time.Now().UTC().Truncate(time.Second)
	c.Pins, c.Approved = nil, nil
	if err := s.write(profile, append(servers, c)); err != nil {
		return ServerConfig{}, err
	}
	return c, nil
}

// Remove deletes a server by name.
func (s *Store) Remove(profile, name string) (ServerConfig, error) {
	if err := credentials.ValidateName("profile", profile); err != nil {
		return ServerConfig{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	servers, err := s.read(profile)
	if err != nil {
		return ServerConfig{}, err
	}
	for i, e := range servers {
		if e.Name == name {
			if err := s.write(profile, append(servers[:i:i], servers[i+1:]...)); err != nil {
				return ServerConfig{}, err
			}
			return e, nil
		}
	}
	return ServerConfig{}, notFound(profile, name)
}

func notFound(profile, name string) error {
	return fmt.Errorf("profile %s has no MCP server %s ('ringlet mcp list %s' shows them): %w", profile, name, profile, ErrNotFound)
}

// pin records the hashes of tools seen for the first time and returns the
// server's pins after that. Tools already pinned keep their pin, changed
// or not: only approve replaces a pin.
func (s *Store) pin(profile, name string, seen map[string]string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	servers, err := s.read(profile)
	if err != nil {
		return nil, err
	}
	for i := range servers {
		if servers[i].Name != name {
			continue
		}
		pins := servers[i].Pins
		added := false
		for tool, h := range seen {
			if _, ok := pins[tool]; !ok {
				if pins == nil {
					pins = map[string]string{}
				}
				pins[tool], added = h, true
			}
		}
		if added {
			servers[i].Pins = pins
			if err := s.write(profile, servers); err != nil {
				return nil, err
			}
		}
		return maps.Clone(pins), nil
	}
	return nil, notFound(profile, name)
}

// approve replaces a server's pins with current.
func (s *Store) approve(profile, name string, current map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	servers, err := s.read(profile)
	if err != nil {
		return err
	}
	for i := range servers {
		if servers[i].Name == name {
			now := time.Now().UTC().Truncate(time.Second)
			servers[i].Pins, servers[i].Approved = maps.Clone(current), &now
			return s.write(profile, servers)
		}
	}
	return notFound(profile, name)
}

// DeleteProfile removes a profile's servers.
func (s *Store) DeleteProfile(profile string) error {
	if err := credentials.ValidateName("profile", profile); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err := os.Remove(s.path(profile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
