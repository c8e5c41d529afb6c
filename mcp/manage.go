package mcp

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// These are the operations behind /api/mcp/servers. The gateway checks
// the profile exists and audits each change before calling them.

var errNoStore = errors.New("this daemon has no MCP server store")

func (s *Server) pins(profile, name string, seen map[string]string) (map[string]string, error) {
	if s.opts.Store == nil {
		return nil, errNoStore
	}
	return s.opts.Store.pin(profile, name, seen)
}

// Servers reports a profile's upstream servers and their tools.
func (s *Server) Servers(profile string) ([]mcpserver.Status, error) {
	if s.opts.Store == nil {
		return nil, errNoStore
	}
	cfgs, err := s.opts.Store.List(profile)
	if err != nil {
		return nil, err
	}
	h, err := s.hub(profile)
	if err != nil {
		return nil, err
	}
	out := h.status(cfgs)
	if out == nil {
		out = []mcpserver.Status{}
	}
	return out, nil
}

// AddServer stores a new upstream server; it starts when a session of the
// profile next uses MCP.
func (s *Server) AddServer(profile string, c mcpserver.Config) (mcpserver.Config, error) {
	if s.opts.Store == nil {
		return mcpserver.Config{}, errNoStore
	}
	added, err := s.opts.Store.Add(profile, c)
	if err != nil {
		return mcpserver.Config{}, err
	}
	if h, err := s.hub(profile); err == nil {
		h.reload()
	}
	return added, nil
}

// ChangeServer changes a stored upstream server (its environment); a run
// of it with the old definition is stopped and started again with the new.
func (s *Server) ChangeServer(profile, name string, change func(*mcpserver.Config) error) (mcpserver.Config, error) {
	if s.opts.Store == nil {
		return mcpserver.Config{}, errNoStore
	}
	changed, err := s.opts.Store.Change(profile, name, change)
	if err != nil {
		return mcpserver.Config{}, err
	}
	if h, err := s.hub(profile); err == nil {
		before := h.upstream(name)
		h.reload()
		if after := h.upstream(name); after != nil && after == before {
			// The same variables and references: restarted all the same,
			// so that a key replaced in the store reaches it now.
			h.renew(name)
		}
	}
	changed.Pins = nil
	return changed, nil
}

// RemoveServer stops and forgets an upstream server.
func (s *Server) RemoveServer(profile, name string) (mcpserver.Config, error) {
	if s.opts.Store == nil {
		return mcpserver.Config{}, errNoStore
	}
	removed, err := s.opts.Store.Remove(profile, name)
	if err != nil {
		return mcpserver.Config{}, err
	}
	if h, err := s.hub(profile); err == nil {
		h.reload()
	}
	removed.Pins = nil
	return removed, nil
}

// Pending starts the server if needed and returns the hashes of its
// current tools and the names of those that differ from their pins (new
// tools are pinned on first sight and never pending).
func (s *Server) Pending(ctx context.Context, profile, name string) (current map[string]string, changed []string, err error) {
	if s.opts.Store == nil {
		return nil, nil, errNoStore
	}
	h, err := s.hub(profile)
	if err != nil {
		return nil, nil, err
	}
	u := h.upstream(name)
	if u == nil {
		return nil, nil, notFound(profile, name)
	}
	if err := u.ensure(ctx, false); err != nil {
		return nil, nil, fmt.Errorf("MCP server %s is not running, so its tools cannot be approved: %w", name, err)
	}
	_, _, _, tools := u.snapshot()
	current = map[string]string{}
	for _, t := range tools {
		current[t.Name] = t.hash
	}
	pins, err := s.pins(profile, name, current)
	if err != nil {
		return nil, nil, err
	}
	for tool, hash := range current {
		if pins[tool] != hash {
			changed = append(changed, tool)
		}
	}
	slices.Sort(changed)
	return current, changed, nil
}

// Approve pins exactly the given hashes, which Pending returned and the
// gateway audited: a tool that changed again since stays hidden.
func (s *Server) Approve(profile, name string, current map[string]string) error {
	if s.opts.Store == nil {
		return errNoStore
	}
	if err := s.opts.Store.approve(profile, name, maps.Clone(current)); err != nil {
		return err
	}
	h, err := s.hub(profile)
	if err != nil {
		return err
	}
	h.reload()
	return nil
}

// ForgetProfile stops a deleted profile's upstream servers and removes
// their definitions, so a new profile of the same name starts clean.
func (s *Server) ForgetProfile(profile string) error {
	s.mu.Lock()
	h := s.hubs[profile]
	delete(s.hubs, profile)
	s.mu.Unlock()
	if h != nil {
		h.stopAll()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.ep.http.Shutdown(ctx) // in-process endpoint: nothing is left to wait for
		cancel()
		s.ids.endScope("profile:" + profile)
	}
	if s.opts.Store == nil {
		return nil
	}
	return s.opts.Store.DeleteProfile(profile)
}

// KillServers ends at once the running stdio servers of a profile, for
// the kill switch: each one's process group gets SIGKILL, and it starts
// again when a session of the profile next calls it. Its calls in flight
// fail. It returns how many it ended.
func (s *Server) KillServers(profile string) int {
	s.mu.Lock()
	h := s.hubs[profile]
	s.mu.Unlock()
	if h == nil {
		return 0
	}
	var conns []*conn
	for _, u := range h.upstreams() {
		if c := u.reset(); c != nil {
			conns = append(conns, c)
		}
	}
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { s.endConn(c, []syscall.Signal{syscall.SIGKILL}) })
	}
	wg.Wait()
	return len(conns)
}
