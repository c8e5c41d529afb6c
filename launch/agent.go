package launch

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
)

// Request is what only the launcher of an agent knows: where it runs and
// what it was asked, from the user's shell.
type Request struct {
	// Dir is its working directory: the workspace of a profile that names
	// none, and where a relative program name is found.
	Dir string
	// Args follow the agent's own arguments.
	Args []string
	// Path is its PATH, where the agent's program is found.
	Path string
	// Home is its HOME: where the agent's HOME appears inside the sandbox
	// (at /home/ringlet when it is not a clean absolute path).
	Home string
	// Term and Lang are passed to the agent; LANG is C.UTF-8 when empty.
	Term, Lang string
	// NoSandbox runs the agent without a sandbox, with the user's
	// privileges: an explicit, warned and audited opt-out.
	NoSandbox bool
	// Shims are version managers' answers, asked by the launcher in the
	// user's shell: a shim's path, and the program it stands for
	// (toolchain.Options.Shims).
	Shims map[string]string
}

// Agent is an agent's launch checked before its session starts: what the
// sandbox would refuse is refused then, so that a bad profile never gets
// as far as session.start.
type Agent struct {
	p          profile.Profile
	argv       []string // the program (absolute), then the profile's command arguments
	extra      []string
	workspace  string
	network    string
	homePath   string
	term, lang string
	// path goes first on the agent's PATH: where its #! lines' env finds
	// what it found here, and its install's bin directory.
	path []string
	// Without a sandbox, tool is "" and the rest is unset.
	tool    string
	runtime []string
	pinned  []string
	nested  bool
	// Warnings are for the user, one sentence each.
	Warnings []string
}

// maxShims bounds the version managers' answers one launch may carry.
const maxShims = 16

// ForwarderBase is the daemon as an agent on the provider network
// reaches it: the forwarder inside its sandbox, to its session's socket.
var ForwarderBase = fmt.Sprintf("http://127.0.0.1:%d", sandbox.ForwarderPort)

// ForwarderURL is the provider proxy there.
var ForwarderURL = ForwarderBase + "/proxy"

// Agent checks the launch of agent a of profile p, whose sandboxed HOME
// is home, as req asks.
func (b *Builder) Agent(p profile.Profile, a profile.Agent, home string, req Request) (*Agent, error) {
	for what, v := range map[string]string{"the working directory": req.Dir, "PATH": req.Path, "HOME": req.Home, "TERM": req.Term, "LANG": req.Lang} {
		if err := checkText(what, v); err != nil {
			return nil, err
		}
	}
	for _, arg := range req.Args {
		if err := checkText("an agent argument", arg); err != nil {
			return nil, err
		}
	}
	command := a.Command
	if len(p.Command) > 0 {
		command = p.Command
	}
	if len(command) == 0 {
		return nil, fmt.Errorf("profile %s has no command to run", p.Alias)
	}
	program, err := findProgram(command[0], req.Path, req.Dir)
	if err != nil {
		return nil, err
	}
	if len(req.Shims) > maxShims {
		return nil, fmt.Errorf("more than %d shims", maxShims)
	}
	for shim, real := range req.Shims {
		if err := errors.Join(sandbox.CheckPath("shim", shim), sandbox.CheckPath("shim's program", real)); err != nil {
			return nil, err
		}
	}
	// The program behind a shim runs in its place, sandbox or not: its
	// manager would run with the profile's HOME, not the user's.
	res, err := b.resolve(program, toolchain.Options{Path: req.Path, Homes: []string{req.Home}, Shims: req.Shims}, !req.NoSandbox)
	if err != nil {
		return nil, agentFix(err, p, command)
	}
	l := &Agent{p: p, argv: append([]string{res.Program}, command[1:]...), extra: req.Args, term: req.Term, lang: req.Lang, path: res.Path}
	if l.lang == "" {
		l.lang = "C.UTF-8"
	}
	l.workspace = p.Workspace
	if l.workspace == "" {
		l.workspace = req.Dir
	}
	if err := profile.CheckWorkspace(l.workspace); err != nil {
		return nil, err
	}
	for _, d := range append(append([]string{l.workspace}, p.ReadOnly...), p.ReadWrite...) {
		if err := sandbox.CheckPath("path", d); err != nil {
			return nil, err
		}
		if !req.NoSandbox {
			if err := b.CheckOwn(home, d); err != nil {
				return nil, err
			}
		}
	}
	l.homePath = req.Home
	if sandbox.CheckPath("home", l.homePath) != nil {
		l.homePath = "/home/ringlet"
	}
	l.network = p.Network
	if l.network == "" {
		l.network = sandbox.NetProvider
	}
	if req.NoSandbox {
		l.network = sandbox.NetHost
		l.Warnings = append(l.Warnings, fmt.Sprintf("warning: running %s WITHOUT a sandbox: it can read and write everything you can", p.Alias))
		return l, nil
	}
	if l.network == sandbox.NetHost {
		l.Warnings = append(l.Warnings, fmt.Sprintf("warning: profile %s uses network = host: the agent shares your network, localhost included", p.Alias))
	}
	if l.tool, err = bubblewrap(); err != nil {
		return nil, err
	}
	l.runtime = res.Binds
	// A hard link in the workspace to a file outside it is that file:
	// each one is bound read-only onto itself.
	if l.pinned, err = sandbox.PinnedFiles(append([]string{l.workspace}, p.ReadWrite...)...); err != nil {
		return nil, err
	}
	if len(l.pinned) > 0 {
		l.Warnings = append(l.Warnings, fmt.Sprintf("%d file(s) in the workspace are hard links to files outside it (the first: %s); they are read-only in the sandbox", len(l.pinned), l.pinned[0]))
	}
	if runtime.GOOS == "linux" {
		if l.nested = sandbox.DisableUsernsSupported(l.tool); !l.nested {
			l.Warnings = append(l.Warnings, "warning: this bubblewrap cannot stop the agent from creating nested user namespaces (needs bubblewrap 0.8 or later)")
		}
	}
	return l, nil
}

// Sandboxed reports whether the agent runs in a sandbox.
func (a *Agent) Sandboxed() bool { return a.tool != "" }

// Socket reports whether its session needs a socket: on the provider
// network, the sandbox reaches the daemon only through it.
func (a *Agent) Socket() bool { return a.Sandboxed() && a.network == sandbox.NetProvider }

// BaseURL is where the agent reaches the provider proxy from its
// sandbox; "" when it reaches the daemon's own address.
func (a *Agent) BaseURL() string {
	if a.Socket() {
		return ForwarderURL
	}
	return ""
}

// HomePath is where the agent's HOME appears in its sandbox; "" without
// one, where its HOME is the session's on the host.
func (a *Agent) HomePath() string {
	if !a.Sandboxed() {
		return ""
	}
	return a.homePath
}

// Workspace is where the agent works.
func (a *Agent) Workspace() string { return a.workspace }

// Session is what the agent's session gives its launch.
type Session struct {
	// Home is the agent's HOME on the host: the profile's sandboxed HOME,
	// or its unsandboxed one.
	Home string
	// Socket is the session's socket on the host (the provider network).
	Socket string
	// Launch is the agent's environment and arguments for the session,
	// its session token among them.
	Launch profile.Launch
}

// Plan is a launch, built: what a launcher runs as it is.
type Plan struct {
	// Argv is the command line, its program absolute. It carries no
	// secret: every user of the host can read it in /proc.
	Argv []string
	// Env is the whole environment of Argv: empty for a sandbox (bwrap's
	// options set the agent's), the agent's own without one, its session
	// token among them.
	Env []string
	// Dir is the working directory of Argv: the workspace without a
	// sandbox, "" in one (bwrap changes into the workspace itself).
	Dir string
	// Files are handed to Argv on descriptors 3, 4, ... through pipes
	// (sandbox.Pipes): bwrap's options, which hold the session token, and
	// the seccomp filter.
	Files [][]byte
	// Sandboxed says whether Argv runs the agent in a sandbox.
	Sandboxed bool
	// Workspace is where the agent works.
	Workspace string
	// Trees are the sandbox's workspace and read-write directories:
	// whatever runs the plan holds a sandbox.Lease on them
	// (Lease.HoldTrees) until its sandbox has exited.
	Trees []string
	// Summary is what the audit log records of the launch: paths and
	// modes, never the environment's values.
	Summary map[string]any

	lease *sandbox.Lease
}

// Release gives back the plan's lease on its trees; the protected paths
// it made are removed once no sandbox holds their tree.
func (p *Plan) Release() {
	if p.lease != nil {
		p.lease.Release()
	}
}

// Plan builds the launch of a for its session s. A sandbox's plan holds
// a lease on its trees, which the protected paths that are missing need
// as mount points: its owner releases it when the session ends.
func (b *Builder) Plan(a *Agent, s Session) (*Plan, error) {
	env := withPath([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + a.homePath, "LANG=" + a.lang}, a.path)
	if a.Sandboxed() && b.opts.Executable != "" {
		// 'ringlet' on the agent's PATH is the daemon's own binary, bound
		// read-only: 'ringlet mcp --stdio' there serves the session. It
		// goes first, before the interpreters' installs.
		env = withPath(env, []string{sandbox.BinDir(b.opts.Executable)})
	}
	if a.term != "" {
		env = append(env, "TERM="+a.term)
	}
	for _, e := range s.Launch.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	if a.Socket() {
		// Every host but the provider goes through the proxy on the
		// forwarder: HTTPS by CONNECT, tunnelled to the hosts the profile
		// allows; the rest, and plain HTTP, refused and recorded there, so
		// that an attempt shows in the audit log instead of failing
		// silently at DNS. The provider (plain http to the forwarder) is
		// reached directly.
		proxy := "http://127.0.0.1:" + strconv.Itoa(sandbox.ForwarderPort)
		env = append(env, ProxyEnv(proxy)...)
	}
	// The profile's command line (a generic agent's --command 'python
	// agent.py'), then the catalog's arguments, then the user's.
	argv := append(append(append([]string{}, a.argv...), s.Launch.Args...), a.extra...)

	if !a.Sandboxed() {
		env[1] = "HOME=" + s.Home
		return &Plan{Argv: argv, Env: env, Dir: a.workspace, Workspace: a.workspace,
			Summary: map[string]any{"sandbox": false, "command": argv[0], "workspace": a.workspace}}, nil
	}
	protected, err := a.p.Protected()
	if err != nil {
		return nil, err
	}
	pol := &sandbox.Policy{
		Workspace: a.workspace, Home: s.Home, HomePath: a.homePath, Command: argv, Env: env,
		ReadOnly: a.p.ReadOnly, ReadWrite: a.p.ReadWrite, Network: a.network, Socket: s.Socket, Ringlet: b.opts.Executable,
		AllowGitConfig: a.p.AllowGitConfig, Runtime: a.runtime, Pinned: a.pinned, Protected: protected,
		Limits: sandbox.NewLimits(a.p.MaxProcs, a.p.MaxMemory, a.p.TmpSize), Limiter: b.opts.Executable,
		NoNestedUserns: a.nested,
		// Protected paths that do not exist are made empty and get an
		// empty read-only stand-in, so that the agent cannot create them;
		// the lease removes them again once no sandbox uses the workspace.
		EmptyFile: b.opts.EmptyFile,
	}
	plan, err := b.sandboxed(pol, a.tool)
	if err != nil {
		return nil, err
	}
	plan.Summary["sandbox"] = true
	return plan, nil
}

// sandboxed holds a lease on pol's trees and builds its command line,
// the options and the seccomp filter on descriptors.
func (b *Builder) sandboxed(pol *sandbox.Policy, tool string) (*Plan, error) {
	lease := sandbox.NewLease(b.opts.StateDir)
	if err := lease.Hold(pol); err != nil {
		lease.Release()
		return nil, err
	}
	// bwrap's options carry the session token, so they go on a pipe, not
	// on a command line that every user can read in /proc; its seccomp
	// filter on another.
	argv, files, err := pol.ArgsFD(tool)
	if err != nil {
		lease.Release()
		return nil, err
	}
	return &Plan{Argv: argv, Env: []string{}, Files: files, Sandboxed: true, Workspace: pol.Workspace, Trees: pol.Trees(),
		Summary: pol.Summary(), lease: lease}, nil
}

// agentFix adds to a shim that has no answer what the user can do: 'ringlet
// profiles run' asks the manager itself, so this is a launch from another
// client, or a #! line that names a shim.
func agentFix(err error, p profile.Profile, command []string) error {
	var se *toolchain.ShimError
	if !errors.As(err, &se) {
		return err
	}
	if se.Via != "" {
		if words := se.Words(command); words != nil && len(p.Command) > 0 {
			// --command is one string of words.
			return fmt.Errorf("%w: run it with the interpreter itself, in a profile created with --command \"%s\", or run it with --no-sandbox", err, strings.Join(words, " "))
		}
		return fmt.Errorf("%w: make its #! line name the program itself, or run it with --no-sandbox", err)
	}
	if w := se.Shim.Which(); w != "" {
		return fmt.Errorf("%w: start it with 'ringlet profiles run %s', which asks `%s` for the program, or run it with --no-sandbox", err, p.Alias, w)
	}
	return fmt.Errorf("%w: give the profile the program's own path (--command), or run it with --no-sandbox", err)
}

// ProxyEnv is the proxy variables of a provider-network sandbox, both
// spellings, since programs read one or the other.
func ProxyEnv(proxy string) []string {
	return []string{"HTTPS_PROXY=" + proxy, "https_proxy=" + proxy, "HTTP_PROXY=" + proxy, "http_proxy=" + proxy,
		"NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost"}
}
