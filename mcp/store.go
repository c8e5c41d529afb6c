package mcp

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"time"

	"github.com/neullabs/ringlet/internal/perprofile"
	"github.com/neullabs/ringlet/mcp/mcpserver"
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
// atomically; see perprofile). Only the daemon writes it.
type Store struct {
	files *perprofile.Store[mcpserver.Config]
}

// NewStore returns a store under configDir/mcp.
func NewStore(configDir string) *Store {
	return &Store{files: perprofile.New[mcpserver.Config](filepath.Join(configDir, "mcp"), "servers", "MCP servers")}
}

// List returns a profile's servers in the order they were added.
func (s *Store) List(profile string) ([]mcpserver.Config, error) { return s.files.List(profile) }

// Add validates c and appends it to the profile's servers.
func (s *Store) Add(profile string, c mcpserver.Config) (mcpserver.Config, error) {
	if err := c.Validate(); err != nil {
		return mcpserver.Config{}, err
	}
	err := s.files.Update(profile, func(servers []mcpserver.Config) ([]mcpserver.Config, error) {
		for _, e := range servers {
			if e.Name == c.Name {
				return nil, fmt.Errorf("profile %s already has an MCP server %s; remove it first: %w", profile, c.Name, ErrExists)
			}
		}
		if len(servers) >= maxServers {
			return nil, fmt.Errorf("profile %s has %d MCP servers, the most it may have", profile, maxServers)
		}
		c.Created = time.Now().UTC().Truncate(time.Second)
		c.Pins, c.Approved = nil, nil
		return append(servers, c), nil
	})
	if err != nil {
		return mcpserver.Config{}, err
	}
	return c, nil
}

// Change applies change to a stored server and keeps the result once it
// validates; it returns the server as stored. The server's pins are kept.
func (s *Store) Change(profile, name string, change func(*mcpserver.Config) error) (mcpserver.Config, error) {
	var out mcpserver.Config
	err := s.files.Update(profile, func(servers []mcpserver.Config) ([]mcpserver.Config, error) {
		for i := range servers {
			if servers[i].Name != name {
				continue
			}
			c := servers[i]
			c.Env, c.Secrets = maps.Clone(c.Env), maps.Clone(c.Secrets)
			if err := change(&c); err != nil {
				return nil, err
			}
			if err := c.Validate(); err != nil {
				return nil, err
			}
			servers[i], out = c, c
			return servers, nil
		}
		return nil, notFound(profile, name)
	})
	return out, err
}

// Remove deletes a server by name.
func (s *Store) Remove(profile, name string) (mcpserver.Config, error) {
	var removed mcpserver.Config
	err := s.files.Update(profile, func(servers []mcpserver.Config) ([]mcpserver.Config, error) {
		for i, e := range servers {
			if e.Name == name {
				removed = e
				return append(servers[:i:i], servers[i+1:]...), nil
			}
		}
		return nil, notFound(profile, name)
	})
	return removed, err
}

func notFound(profile, name string) error {
	return fmt.Errorf("profile %s has no MCP server %s ('ringlet mcp list %s' shows them): %w", profile, name, profile, ErrNotFound)
}

// errUnchanged ends an Update that has nothing to write.
var errUnchanged = errors.New("unchanged")

// pin records the hashes of tools seen for the first time and returns the
// server's pins after that. Tools already pinned keep their pin, changed
// or not: only approve replaces a pin.
func (s *Store) pin(profile, name string, seen map[string]string) (map[string]string, error) {
	var pins map[string]string
	err := s.files.Update(profile, func(servers []mcpserver.Config) ([]mcpserver.Config, error) {
		for i := range servers {
			if servers[i].Name != name {
				continue
			}
			pins = servers[i].Pins
			added := false
			for tool, h := range seen {
				if _, ok := pins[tool]; !ok {
					if pins == nil {
						pins = map[string]string{}
					}
					pins[tool], added = h, true
				}
			}
			if !added {
				return nil, errUnchanged
			}
			servers[i].Pins = pins
			return servers, nil
		}
		return nil, notFound(profile, name)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return nil, err
	}
	return maps.Clone(pins), nil
}

// approve replaces a server's pins with current.
func (s *Store) approve(profile, name string, current map[string]string) error {
	return s.files.Update(profile, func(servers []mcpserver.Config) ([]mcpserver.Config, error) {
		for i := range servers {
			if servers[i].Name == name {
				now := time.Now().UTC().Truncate(time.Second)
				servers[i].Pins, servers[i].Approved = maps.Clone(current), &now
				return servers, nil
			}
		}
		return nil, notFound(profile, name)
	})
}

// DeleteProfile removes a profile's servers.
func (s *Store) DeleteProfile(profile string) error { return s.files.DeleteProfile(profile) }
