package launch

import (
	"fmt"
	"strings"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
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
	// Found again at every start: what was installed may have changed.
	res, err := b.MCPRuntime(cfg, s.Argv[0], pathOf(s.Env))
	if err != nil {
		return nil, nil, cfg.ShimFix(err, p.Alias, false)
	}
	command := append([]string{res.Program}, s.Argv[1:]...)
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
		Workspace: s.Dir, Home: s.Home, HomePath: s.Home, Command: command, Env: withPath(s.Env, res.Path),
		ReadOnly: append(append([]string{}, p.ReadOnly...), cfg.ReadOnly...), ReadWrite: rw,
		Network: network, AllowGitConfig: p.AllowGitConfig, Runtime: res.Binds, Pinned: pinned,
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

// MCPRuntime is what the stdio server cfg runs and what its sandbox binds
// read-only: program (its command's program, a bare name found on path,
// the PATH it was added with) resolved with the version managers'
// answers it was added with (cfg.Shims). For a server without a sandbox
// only the program counts: nothing is bound, and Binds is empty.
func (b *Builder) MCPRuntime(cfg mcpserver.Config, program, path string) (*toolchain.Resolution, error) {
	res, err := b.resolve(program, toolchain.Options{Path: path, Shims: cfg.Shims}, !cfg.NoSandbox)
	if err != nil {
		return nil, err
	}
	if cfg.NoSandbox {
		res.Binds = nil
	}
	return res, nil
}

// pathOf is the PATH in env.
func pathOf(env []string) string {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			return v
		}
	}
	return ""
}
