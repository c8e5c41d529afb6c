package mcp

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/neullabs/ringlet/mcp/mcpserver"
)

// These are the operations behind /api/mcp/servers. The gateway checks
// the profile exists and audits each change before calling them.

var errNoStore = errors.New("this daemon has no MCP server store")

// pinDiff pins what nothing pins yet of u's last run (see
// Store.observe) and compares the rest with the pin: what u serves now,
// and how it differs from what was approved.
func (s *Server) pinDiff(profile string, u *upstream) (mcpserver.Pin, mcpserver.PinDiff, error) {
	if s.opts.Store == nil {
		return mcpserver.Pin{}, mcpserver.PinDiff{}, errNoStore
	}
	o := u.observation()
	diff, err := s.pinDiffOf(profile, u.cfg.Name, o)
	return o.pin, diff, err
}

// pinDiffOf is pinDiff of the observation o of server name.
func (s *Server) pinDiffOf(profile, name string, o *observation) (mcpserver.PinDiff, error) {
	if s.opts.Store == nil {
		return mcpserver.PinDiff{}, errNoStore
	}
	var ps pinStore = s.opts.Store
	pinned, err := ps.observe(profile, name, o.pin, s.opts.OnPin)
	if err != nil {
		return mcpserver.PinDiff{}, err
	}
	return mcpserver.DiffDigest(pinned, o.pin, o.digest), nil
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
	c.Pin = nil
	if id, ok := s.identity(profile, c); ok {
		// Pinned now, so that a program changed before the first start
		// (by whoever can write it) is a change too.
		c.Pin = &mcpserver.Pin{Identity: &id}
	}
	added, err := s.opts.Store.Add(profile, c)
	if err != nil {
		return mcpserver.Config{}, err
	}
	if h, err := s.hub(profile); err == nil {
		h.reload()
	}
	return shown(added), nil
}

// shown is c as answers show it: its pin by identity alone (the pinned
// definitions are for 'mcp approve' to diff).
func shown(c mcpserver.Config) mcpserver.Config {
	c.Pins = nil
	if c.Pin != nil {
		c.Pin = &mcpserver.Pin{Identity: c.Pin.Identity, ToolsPinned: c.Pin.ToolsPinned}
	}
	return c
}

// identity is c's identity as a start now would find it; not ok when it
// cannot be found (its first start pins it then).
func (s *Server) identity(profile string, c mcpserver.Config) (mcpserver.Identity, bool) {
	if c.URL != "" {
		return mcpserver.Identity{URL: c.URL}, true
	}
	if len(c.Command) == 0 || s.opts.Launch == nil {
		return mcpserver.Identity{}, false
	}
	where, err := s.opts.Launch(profile)
	if err != nil {
		return mcpserver.Identity{}, false
	}
	bin, _, err := resolveProgram(c, s.opts.Path)
	if err != nil {
		return mcpserver.Identity{}, false
	}
	dir := where.Dir
	if c.NoSandbox {
		dir = where.UnsandboxedDir
	}
	return s.digests.identityOf(bin, c.Command[1:], dir), true
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
	changed = shown(changed)
	return changed, nil
}

// Reconnect ends the current run of a server and connects to it again,
// now: after 'mcp auth' stored a new authorization (or --revoke removed
// it), so that the run uses what the credential store holds now.
func (s *Server) Reconnect(profile, name string) error {
	if s.opts.Store == nil {
		return errNoStore
	}
	h, err := s.hub(profile)
	if err != nil {
		return err
	}
	if h.upstream(name) == nil {
		return notFound(profile, name)
	}
	h.renewStart(name, true)
	return nil
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
	removed = shown(removed)
	return removed, nil
}

// Pending starts the server if needed and returns what it serves now
// and how that differs from what was approved.
func (s *Server) Pending(ctx context.Context, profile, name string) (mcpserver.Pin, mcpserver.PinDiff, error) {
	if s.opts.Store == nil {
		return mcpserver.Pin{}, mcpserver.PinDiff{}, errNoStore
	}
	h, err := s.hub(profile)
	if err != nil {
		return mcpserver.Pin{}, mcpserver.PinDiff{}, err
	}
	u := h.upstream(name)
	if u == nil {
		return mcpserver.Pin{}, mcpserver.PinDiff{}, notFound(profile, name)
	}
	if err := u.ensure(ctx, false); err != nil {
		return mcpserver.Pin{}, mcpserver.PinDiff{}, fmt.Errorf("MCP server %s is not running, so its tools cannot be approved: %w", name, err)
	}
	return s.pinDiff(profile, u)
}

// Approve pins observed, which Pending returned and the gateway showed
// and audited: all of it, or only the named tools (mcpserver.Approve).
// What the server changed since stays hidden. Sessions are told
// (tools/list_changed) of the tools that appear.
func (s *Server) Approve(profile, name string, observed mcpserver.Pin, tools []string) error {
	if s.opts.Store == nil {
		return errNoStore
	}
	var ps pinStore = s.opts.Store
	err := ps.approve(profile, name, func(cur mcpserver.Pin) (mcpserver.Pin, error) {
		return mcpserver.Approve(cur, observed, tools)
	})
	if err != nil {
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
