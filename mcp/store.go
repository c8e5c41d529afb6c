package mcp

import (
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
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

// toolRules decides tool of profile's server by the server's 'mcp
// tools' rules (mcpserver.Config.ToolEnabled with the default ToolsAll);
// found is false when the profile has no such server. On the path of
// every tool call, the stored definitions are read in place rather than
// copied.
func (s *Store) toolRules(profile, server, tool string) (on bool, by, rule string, found bool, err error) {
	err = s.files.View(profile, func(cfgs []mcpserver.Config) {
		for _, c := range cfgs {
			if c.Name == server {
				on, by, rule = c.ToolEnabled(tool, mcpserver.ToolsAll)
				found = true
				return
			}
		}
	})
	return on, by, rule, found, err
}

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
		// Pin is the identity Server.AddServer found, never a caller's.
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

// pinStore keeps what each server was approved as. The daemon's is
// Store; the interface is all pinning needs of it.
type pinStore interface {
	// observe pins what nothing pins yet (see Store.observe) and returns
	// the server's pin.
	observe(profile, name string, obs mcpserver.Pin, record func(PinEvent) error) (mcpserver.Pin, error)
	// approve replaces a server's pin with what apply makes of it.
	approve(profile, name string, apply func(mcpserver.Pin) (mcpserver.Pin, error)) error
}

// observe pins, of what a server serves now (obs), what nothing pins
// yet: its identity if it has none (a server added by an older version),
// and its tools at its first start if its identity is the one pinned
// when it was added (trust on first use). Pins of an older version (each
// tool's hash by name) become the tool set: a tool whose definition has
// that hash is pinned with it, any other keeps only the hash, so that it
// shows as changed. record is told of each pin taken so, before it is
// stored; its error stores nothing. The server's pin is returned.
func (s *Store) observe(profile, name string, obs mcpserver.Pin, record func(PinEvent) error) (mcpserver.Pin, error) {
	var out mcpserver.Pin
	err := s.files.Update(profile, func(servers []mcpserver.Config) ([]mcpserver.Config, error) {
		for i := range servers {
			c := &servers[i]
			if c.Name != name {
				continue
			}
			p := c.Pin.Clone()
			if p == nil {
				p = &mcpserver.Pin{}
			}
			out = *p
			var ev *PinEvent
			if p.Identity == nil && obs.Identity != nil {
				id := *obs.Identity
				p.Identity = &id
				ev = &PinEvent{Profile: profile, Server: name, Reason: PinFirst, Identity: id}
			}
			if !p.ToolsPinned {
				switch {
				case len(c.Pins) > 0:
					p.Tools = map[string]mcpserver.PinnedTool{}
					for tool, h := range c.Pins {
						if t, ok := obs.Tools[tool]; ok && t.Hash == h {
							p.Tools[tool] = t
						} else {
							p.Tools[tool] = mcpserver.PinnedTool{Hash: h}
						}
					}
					p.ToolsPinned = true
					ev = &PinEvent{Profile: profile, Server: name, Reason: PinMigrated, Identity: *p.Identity, Tools: slices.Sorted(maps.Keys(p.Tools))}
				case p.Identity != nil && obs.Identity != nil && p.Identity.Same(*obs.Identity):
					p.Tools, p.ToolsPinned = maps.Clone(obs.Tools), true
					ev = &PinEvent{Profile: profile, Server: name, Reason: PinFirst, Identity: *p.Identity, Tools: slices.Sorted(maps.Keys(p.Tools))}
				}
			}
			// Prompts, resources and templates seen for the first time (at
			// the first start, or by a pin of a version that pinned tools
			// alone) are pinned as the tools are: if the program is the
			// one pinned.
			if !p.CatalogPinned && obs.CatalogPinned && p.Identity != nil && obs.Identity != nil && p.Identity.Same(*obs.Identity) {
				p.CatalogPinned = true
				p.Prompts, p.Resources, p.Templates = maps.Clone(obs.Prompts), maps.Clone(obs.Resources), maps.Clone(obs.Templates)
				if ev == nil {
					ev = &PinEvent{Profile: profile, Server: name, Reason: PinCatalog, Identity: *p.Identity}
				}
				ev.Prompts, ev.Resources, ev.Templates = slices.Sorted(maps.Keys(p.Prompts)), slices.Sorted(maps.Keys(p.Resources)), slices.Sorted(maps.Keys(p.Templates))
			}
			if ev == nil {
				return nil, errUnchanged
			}
			if record != nil {
				if err := record(*ev); err != nil {
					return nil, fmt.Errorf("the audit record of the pin could not be written: %w", err)
				}
			}
			c.Pin, c.Pins, out = p, nil, *p.Clone()
			return servers, nil
		}
		return nil, notFound(profile, name)
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		return mcpserver.Pin{}, err
	}
	return out, nil
}

// approve replaces a server's pin with apply's answer.
func (s *Store) approve(profile, name string, apply func(mcpserver.Pin) (mcpserver.Pin, error)) error {
	return s.files.Update(profile, func(servers []mcpserver.Config) ([]mcpserver.Config, error) {
		for i := range servers {
			if servers[i].Name != name {
				continue
			}
			cur := servers[i].Pin.Clone()
			if cur == nil {
				cur = &mcpserver.Pin{}
			}
			next, err := apply(*cur)
			if err != nil {
				return nil, err
			}
			now := time.Now().UTC().Truncate(time.Second)
			servers[i].Pin, servers[i].Pins, servers[i].Approved = next.Clone(), nil, &now
			return servers, nil
		}
		return nil, notFound(profile, name)
	})
}

// DeleteProfile removes a profile's servers.
func (s *Store) DeleteProfile(profile string) error { return s.files.DeleteProfile(profile) }
