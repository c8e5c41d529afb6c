package mcp

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/privatefile"
)

// maxServers bounds the upstream servers of one profile.
const maxServers = 64

// Errors of the store.
var (
	ErrNotFound = errors.New("no such MCP server")
	ErrExists   = errors.New("MCP server exists")
)

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
	Version int                `json:"version"`
	Servers []mcpserver.Config `json:"servers"`
}

func (s *Store) path(profile string) string { return filepath.Join(s.dir, profile+".json") }

// List returns a profile's servers in the order they were added.
func (s *Store) List(profile string) ([]mcpserver.Config, error) {
	if err := names.Check("profile", profile); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read(profile)
}

func (s *Store) read(profile string) ([]mcpserver.Config, error) {
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

func (s *Store) write(profile string, servers []mcpserver.Config) error {
	if servers == nil {
		servers = []mcpserver.Config{}
	}
	return privatefile.WriteJSON(s.path(profile), storeFile{Version: 1, Servers: servers})
}

// Add validates c and appends it to the profile's servers.
func (s *Store) Add(profile string, c mcpserver.Config) (mcpserver.Config, error) {
	if err := names.Check("profile", profile); err != nil {
		return mcpserver.Config{}, err
	}
	if err := c.Validate(); err != nil {
		return mcpserver.Config{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	servers, err := s.read(profile)
	if err != nil {
		return mcpserver.Config{}, err
	}
	for _, e := range servers {
		if e.Name == c.Name {
			return mcpserver.Config{}, fmt.Errorf("profile %s already has an MCP server %s; remove it first: %w", profile, c.Name, ErrExists)
		}
	}
	if len(servers) >= maxServers {
		return mcpserver.Config{}, fmt.Errorf("profile %s has %d MCP servers, the most it may have", profile, maxServers)
	}
	c.Created = time.Now().UTC().Truncate(time.Second)
	c.Pins, c.Approved = nil, nil
	if err := s.write(profile, append(servers, c)); err != nil {
		return mcpserver.Config{}, err
	}
	return c, nil
}

// Remove deletes a server by name.
func (s *Store) Remove(profile, name string) (mcpserver.Config, error) {
	if err := names.Check("profile", profile); err != nil {
		return mcpserver.Config{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	servers, err := s.read(profile)
	if err != nil {
		return mcpserver.Config{}, err
	}
	for i, e := range servers {
		if e.Name == name {
			if err := s.write(profile, append(servers[:i:i], servers[i+1:]...)); err != nil {
				return mcpserver.Config{}, err
			}
			return e, nil
		}
	}
	return mcpserver.Config{}, notFound(profile, name)
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
	if err := names.Check("profile", profile); err != nil {
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
