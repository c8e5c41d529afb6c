package launch

import (
	"fmt"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// MCPServer is a profile's stdio MCP server to run in the profile's
// sandbox.
type MCPServer struct {
	Profile profile.Profile
	// Home is the profile's sandboxed HOME, at its own path inside.
	Home string
	// Dir is the server's working directory: the profile's workspace,
	// else Home.
	Dir string
	// Config is the server's definition: its own --ro/--rw paths and
	// network.
	Config mcpserver.Config
	// Argv and Env are the server's command line (its program absolute)
	// and whole environment.
	Argv, Env []string
}

// MCPServer builds the sandbox of a profile's stdio MCP server: the
// system read-only, its HOME and workspace read-write with their guards
// (git hooks and config, protected paths, hard links to outside files),
// the profile's and the server's --ro/--rw paths, the profile's limits,
// and no network unless the server was added with --network host. It sees
// no daemon socket, token, key or other profile. The server's trees are
// held in lease, which its caller keeps for as long as servers may run.
func (b *Builder) MCPServer(s MCPServer, lease *sandbox.Lease) (argv []string, files [][]byte, err error) {
	p, cfg := s.Profile, s.Config
	// Checked again at every start: the profile may predate the check at
	// create time, or its file may have been edited.
	paths := append(append(append(append([]string{s.Dir}, p.ReadOnly...), p.ReadWrite...), cfg.ReadOnly...), cfg.ReadWrite...)
	if err := b.CheckOwn(s.Home, paths...); err != nil {
		return nil, nil, err
	}
	tool, err := bubblewrap()
	if err != nil {
		// bwrap's own failure (user namespaces blocked) would reach 'mcp
		// list' as a closed transport; this says what to do.
		return nil, nil, fmt.Errorf("%w; or run this server unconfined: ringlet mcp remove %s %s, then add it again with --no-sandbox", err, p.Alias, cfg.Name)
	}
	runtimeDirs, err := sandbox.RuntimeDirs(s.Argv[0])
	if err != nil {
		return nil, nil, err
	}
	rw := append(append([]string{}, p.ReadWrite...), cfg.ReadWrite...)
	pinned, err := sandbox.PinnedFiles(append([]string{s.Dir}, rw...)...)
	if err != nil {
		return nil, nil, err
	}
	network := sandbox.NetNone
	if cfg.Network == mcpserver.NetworkHost {
		network = sandbox.NetHost
	}
	pol := &sandbox.Policy{
		Workspace: s.Dir, Home: s.Home, HomePath: s.Home, Command: s.Argv, Env: s.Env,
		ReadOnly: append(append([]string{}, p.ReadOnly...), cfg.ReadOnly...), ReadWrite: rw,
		Network: network, AllowGitConfig: p.AllowGitConfig, Runtime: runtimeDirs, Pinned: pinned,
		NoNestedUserns: noNestedUserns(tool),
		// The profile's limits, for each of its servers.
		Limits: sandbox.NewLimits(p.MaxProcs, p.MaxMemory, p.TmpSize), Limiter: b.opts.Executable,
		EmptyFile: b.opts.EmptyFile,
	}
	// The files host tools run are protected in a workspace; a server of
	// a profile without one works in the sandboxed HOME, which nothing
	// outside a sandbox reads.
	if s.Dir != s.Home {
		if pol.Protected, err = p.Protected(); err != nil {
			return nil, nil, err
		}
	}
	if err := lease.Hold(pol); err != nil {
		return nil, nil, err
	}
	return pol.ArgsFD(tool)
}
