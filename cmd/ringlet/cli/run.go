package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

func (a *app) profilesRunCmd() *cobra.Command {
	var noSandbox, remote bool
	cmd := &cobra.Command{
		Use:   "run ALIAS [-- AGENT-ARGS...]",
		Short: "Run the profile's agent in the sandbox, attached to this terminal",
		Long: `Start a session and run the profile's agent inside the sandbox (bubblewrap on
Linux), attached to this terminal; return the agent's exit code; end the
session however the agent exits.

The agent sees a constructed filesystem: the system read-only, empty /home,
/root, /tmp and /run, its profile's HOME at your home path, and the
workspace (the profile's, or the current directory) read-write, with
.git/hooks and .git/config read-only unless the profile allows them. With
the default network (provider) it has no network at all except a forwarder
on 127.0.0.1:8765 inside the sandbox to this session's socket: the provider
proxy with the real key added by the daemon, and hook checks.

If bubblewrap is missing or cannot create a sandbox here, run refuses and
says how to fix it. --no-sandbox is an explicit, warned and audited opt-out.`,
		Example: `  ringlet profiles run work
  ringlet profiles run work -- -p "fix the failing test"
  ringlet profiles run bot --no-sandbox`,
		Args: argsBetween(1, -1, "ALIAS [-- AGENT-ARGS...]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := names.Check("profile", args[0]); err != nil {
				return usageError{err}
			}
			if remote && noSandbox {
				return usagef("--remote runs the agent in the sandbox; it cannot be combined with --no-sandbox")
			}
			a.remote = remote
			code, err := a.runProfile(cmd.Context(), args[0], args[1:], noSandbox)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noSandbox, "no-sandbox", false, "run the agent WITHOUT a sandbox, with your privileges (warned and audited)")
	cmd.Flags().BoolVar(&remote, "remote", false, "let the daemon run the agent under a pseudo-terminal; attach with 'ringlet terminal attach'")
	return cmd
}

// runProfile runs an agent and returns its exit code.
func (a *app) runProfile(ctx context.Context, alias string, extra []string, noSandbox bool) (int, error) {
	var bwrap string
	if !noSandbox {
		var err error
		if bwrap, err = sandbox.Find(); err != nil {
			return 0, err
		}
		if runtime.GOOS == "linux" {
			if err := sandbox.Check(bwrap); err != nil {
				return 0, err
			}
		}
	}
	c, err := a.ensureDaemon(ctx)
	if err != nil {
		return 0, err
	}
	view, err := c.Profile(ctx, alias)
	if err != nil {
		return 0, err
	}
	cat, err := profile.LoadCatalog(a.paths.ConfigDir)
	if err != nil {
		return 0, err
	}
	agent, err := cat.Agent(view.Agent)
	if err != nil {
		return 0, err
	}
	command := agent.Command
	if len(view.Command) > 0 {
		command = view.Command
	}
	if len(command) == 0 {
		return 0, fmt.Errorf("profile %s has no command to run", alias)
	}
	program, err := exec.LookPath(command[0])
	if err != nil {
		return 0, fmt.Errorf("cannot find the agent's program %q on PATH: install it first", command[0])
	}
	program, _ = filepath.Abs(program)
	workspace := view.Workspace
	if workspace == "" {
		if workspace, err = os.Getwd(); err != nil {
			return 0, err
		}
	}
	// What the sandbox would refuse is refused before a session starts,
	// so a bad profile never gets as far as session.start.
	if err := profile.CheckWorkspace(workspace); err != nil {
		return 0, usageError{err}
	}
	own := a.ownFiles()
	for _, d := range append(append([]string{workspace}, view.ReadOnly...), view.ReadWrite...) {
		if err := sandbox.CheckPath("path", d); err != nil {
			return 0, usageError{err}
		}
		if !noSandbox {
			if err := exposesOwnFiles(d, view.Home, own); err != nil {
				return 0, err
			}
		}
	}
	homePath := a.getenv("HOME")
	if sandbox.CheckPath("home", homePath) != nil {
		homePath = "/home/ringlet"
	}
	network := view.Network
	if network == "" {
		network = sandbox.NetProvider
	}
	if noSandbox {
		network = sandbox.NetHost
		fmt.Fprintf(a.stdio.Err, "ringlet: warning: running %s WITHOUT a sandbox: it can read and write everything you can\n", alias)
	} else if network == sandbox.NetHost {
		fmt.Fprintf(a.stdio.Err, "ringlet: warning: profile %s uses network = host: the agent shares your network, localhost included\n", alias)
	}

	req := api.SessionRequest{Profile: alias}
	if !noSandbox {
		// A sandboxed agent gets the profile's sandboxed HOME, which no
		// unsandboxed run shares.
		req.Sandbox = true
		req.Home = homePath
		if network == sandbox.NetProvider {
			req.Socket = true
			req.BaseURL = fmt.Sprintf("http://127.0.0.1:%d/proxy", sandbox.ForwarderPort)
		}
	}
	st, err := c.StartSession(ctx, req)
	if err != nil {
		return 0, err
	}
	if !a.remote {
		// The session lives as long as this process: should it be killed
		// before it ends the session below, the daemon sees the lease go
		// and ends it. Released after that DELETE (defers run last first).
		release, _, err := c.HoldSession(ctx, st.ID)
		if err != nil {
			_, _ = c.RevokeSession(context.WithoutCancel(ctx), st.ID)
			return 0, fmt.Errorf("hold session %s for this run: %w", st.ID, err)
		}
		defer release()
	}
	exit := -1
	defer func() {
		if a.remote && exit == remoteStarted {
			return // the daemon ends the session when the agent exits
		}
		if err := c.EndSession(context.WithoutCancel(ctx), st.ID, exit); err != nil {
			fmt.Fprintf(a.stdio.Err, "ringlet: could not end session %s: %v\n", st.ID, err)
		}
	}()

	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + homePath, "LANG=" + orDefault(a.getenv("LANG"), "C.UTF-8")}
	if t := a.getenv("TERM"); t != "" {
		env = append(env, "TERM="+t)
	}
	for _, e := range st.Launch.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	if network == sandbox.NetProvider && len(view.AllowHosts) > 0 && !noSandbox {
		// HTTPS to the allowed hosts goes through the CONNECT proxy on the
		// forwarder; the provider (plain http to the forwarder) does not.
		proxy := fmt.Sprintf("http://127.0.0.1:%d", sandbox.ForwarderPort)
		env = append(env, "HTTPS_PROXY="+proxy, "https_proxy="+proxy, "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	}
	// The profile's command line (a generic agent's --command 'python
	// agent.py'), then the catalog's arguments, then the user's.
	argv := append(append(append([]string{program}, command[1:]...), st.Launch.Args...), extra...)

	if noSandbox {
		summary := map[string]any{"sandbox": false, "command": program, "workspace": workspace}
		if err := c.RecordLaunch(ctx, st.ID, summary); err != nil {
			return 0, err
		}
		unsafeEnv := append(env[:0:0], env...)
		unsafeEnv[1] = "HOME=" + st.Home
		exit, err = a.runAttached(ctx, argv, unsafeEnv, workspace)
		return exit, err
	}

	runtimeDirs, err := sandbox.RuntimeDirs(program)
	if err != nil {
		return 0, err
	}
	for _, d := range runtimeDirs {
		if err := exposesOwnFiles(d, "", own); err != nil {
			return 0, err
		}
	}
	ringlet, err := os.Executable()
	if err != nil {
		return 0, err
	}
	// A hard link in the workspace to a file outside it is that file:
	// each one is bound read-only onto itself.
	pinned, err := sandbox.PinnedFiles(append([]string{workspace}, view.ReadWrite...)...)
	if err != nil {
		return 0, err
	}
	if len(pinned) > 0 {
		fmt.Fprintf(a.stdio.Err, "ringlet: %d file(s) in the workspace are hard links to files outside it (the first: %s); they are read-only in the sandbox\n", len(pinned), pinned[0])
	}
	pol := &sandbox.Policy{
		Workspace: workspace, Home: st.Home, HomePath: homePath, Command: argv, Env: env,
		ReadOnly: view.ReadOnly, ReadWrite: view.ReadWrite, Network: network, Socket: st.Socket, Ringlet: ringlet,
		AllowGitConfig: view.AllowGitConfig, Runtime: runtimeDirs, Pinned: pinned, Protected: view.Protected,
		Limits: sandbox.NewLimits(view.MaxProcs, view.MaxMemory, view.TmpSize), Limiter: ringlet,
	}
	// Protected paths that do not exist are made empty and get an empty
	// read-only stand-in, so that the agent cannot create them; the lease
	// removes them again once no sandbox uses the workspace (the daemon
	// takes it over for a remote agent).
	if pol.EmptyFile, err = sandbox.EmptyFile(a.paths.StateDir); err != nil {
		return 0, err
	}
	lease := sandbox.NewLease(a.paths.StateDir)
	defer lease.Release()
	if err := lease.Hold(pol); err != nil {
		return 0, usageError{err}
	}
	if runtime.GOOS == "linux" {
		if sandbox.DisableUsernsSupported(bwrap) {
			pol.NoNestedUserns = true
		} else {
			fmt.Fprintln(a.stdio.Err, "ringlet: warning: this bubblewrap cannot stop the agent from creating nested user namespaces (needs bubblewrap 0.8 or later)")
		}
	}
	// bwrap's options carry the session token, so they go on a pipe, not
	// on a command line that every user can read in /proc; its seccomp
	// filter on another.
	bargs, fds, err := pol.ArgsFD(bwrap)
	if err != nil {
		return 0, usageError{err}
	}
	summary := pol.Summary()
	summary["sandbox"] = true
	if err := c.RecordLaunch(ctx, st.ID, summary); err != nil {
		return 0, err
	}
	if a.remote {
		cols, rows := a.termSize()
		start := api.TerminalStart{Argv: bargs, Files: fds, Env: []string{}, Cols: cols, Rows: rows, Trees: pol.Trees()}
		info, err := c.StartTerminal(ctx, st.ID, start)
		if err != nil {
			return 0, err
		}
		exit = remoteStarted
		fmt.Fprintf(a.stdio.Out, "started %s remotely in session %s (pid %d); attach with: ringlet terminal attach %s\n", alias, st.ID, info.PID, st.ID)
		return 0, nil
	}
	if in, out, ok := a.terminals(); ok {
		exit, err = runOnPTY(in, out, bargs, fds)
		return exit, err
	}
	exit, err = a.runAttached(ctx, bargs, nil, "", fds...)
	return exit, err
}

// remoteStarted marks a session that the daemon now owns.
const remoteStarted = -2

// exposesOwnFiles refuses a path to bind into the sandbox that is or holds
// Ringlet's token, keys, audit or profile HOMEs (a workspace of ~, when
// run from ~ with no workspace), or lies inside them.
// A path within home (the profile's own HOME) is allowed, as the daemon
// allows it. own is what a.ownFiles returns.
func exposesOwnFiles(p, home string, own []string) error {
	if err := sandbox.ExposesOwn(p, home, own); err != nil {
		return usageError{err}
	}
	return nil
}

// ownFiles is what no sandbox of this CLI may show, the audit log being
// the one the running daemon writes (else audit.path).
func (a *app) ownFiles() []string {
	db, _ := a.auditDB("")
	return OwnFiles(a.paths, db)
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// runAttached runs argv on this terminal, forwarding SIGINT, SIGTERM and
// SIGHUP, and returns its exit code. fds are passed on pipes as
// descriptors 3, 4, ...
func (a *app) runAttached(ctx context.Context, argv, env []string, dir string, fds ...[]byte) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	if env == nil {
		cmd.Env = []string{}
	}
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = a.stdio.In, a.stdio.Out, a.stdio.Err
	pipes, err := sandbox.NewPipes(fds)
	if err != nil {
		return 0, err
	}
	cmd.ExtraFiles = pipes.Files()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	err = cmd.Start()
	pipes.Started(err == nil)
	if err != nil {
		return 0, fmt.Errorf("start the agent: %w", err)
	}
	return waitForwarding(cmd, sigs)
}

func (a *app) sandboxCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Check the sandbox, and the forwarder that runs inside it",
	}
	var port int
	var socket string
	fwd := &cobra.Command{
		Use:    "forward --socket PATH --port N -- COMMAND [ARGS...]",
		Short:  "Inside a sandbox: forward 127.0.0.1:N to the session socket and run COMMAND",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := forwardAndRun(cmd.Context(), socket, port, args, a.stdio)
			if err != nil {
				return err
			}
			if code != 0 {
				return exitCode(code)
			}
			return nil
		},
	}
	fwd.Flags().StringVar(&socket, "socket", sandbox.InsideSocket, "the session socket")
	fwd.Flags().IntVar(&port, "port", sandbox.ForwarderPort, "the port to listen on, on 127.0.0.1")
	cmd.AddCommand(fwd, a.sandboxCheckCmd(), a.sandboxSyscallsCmd(), a.sandboxRlimitCmd())
	return cmd
}

// forwardAndRun listens on 127.0.0.1:port inside the sandbox's network
// namespace, relays each connection to the session socket byte for byte,
// and runs the agent as its child, returning its exit code.
func forwardAndRun(ctx context.Context, socket string, port int, argv []string, stdio Stdio) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return 0, fmt.Errorf("sandbox forwarder: %w", err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	conns.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { relay(c, socket) })
		}
	})
	path, err := exec.LookPath(argv[0])
	if err != nil {
		ln.Close()
		return 127, fmt.Errorf("cannot run %s inside the sandbox: %w", argv[0], err)
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	cmd.Env = os.Environ()
	if f, ok := stdio.In.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		// bwrap's --new-session left us without a controlling terminal.
		// The agent gets the pseudo-terminal on its stdin as its own, in a
		// session of its own: the line discipline then sends it SIGINT on
		// Ctrl-C and SIGWINCH on resize. The pty is Ringlet's, not the
		// user's terminal, so TIOCSTI on it reaches only the agent itself.
		// When the terminal is the user's own (stdin a terminal, stdout
		// not, so no pty of Ringlet's), it is another session's controlling
		// terminal and the kernel refuses to hand it over (EPERM): then
		// the agent runs without one, as before.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	err = cmd.Start()
	if errors.Is(err, syscall.EPERM) && cmd.SysProcAttr != nil {
		cmd = exec.Command(path, argv[1:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
		cmd.Env = os.Environ()
		err = cmd.Start()
	}
	if err != nil {
		ln.Close()
		return 127, err
	}
	defer ln.Close()
	return waitForwarding(cmd, sigs)
}

// waitForwarding waits for a started child, passing it the signals that
// arrive on sigs, and returns its exit code (128+N when a signal killed
// it), as a shell would.
func waitForwarding(cmd *exec.Cmd, sigs <-chan os.Signal) (int, error) {
	done := make(chan struct{})
	var fwd sync.WaitGroup
	fwd.Go(func() {
		for {
			select {
			case s := <-sigs:
				cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	})
	err := cmd.Wait()
	close(done)
	fwd.Wait()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exitErr.ExitCode(), nil
	}
	return 0, err
}

func relay(c net.Conn, socket string) {
	defer c.Close()
	u, err := net.Dial("unix", socket)
	if err != nil {
		return
	}
	defer u.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		io.Copy(u, c)
		if uc, ok := u.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
	})
	io.Copy(c, u)
	if tc, ok := c.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	wg.Wait()
}

// terminals returns the user's terminal when both stdin and stdout are one.
func (a *app) terminals() (in, out *os.File, ok bool) {
	in, ok1 := a.stdio.In.(*os.File)
	out, ok2 := a.stdio.Out.(*os.File)
	if !ok1 || !ok2 || !term.IsTerminal(int(in.Fd())) || !term.IsTerminal(int(out.Fd())) {
		return nil, nil, false
	}
	return in, out, true
}

// runOnPTY runs argv (bwrap) on a new pseudo-terminal that Ringlet owns,
// relaying the user's terminal to it in raw mode and following its size.
// The agent inside never holds the user's real terminal, so nothing it
// does (TIOCSTI included) can type into the user's shell, and it still
// gets Ctrl-C as SIGINT and window-size changes as SIGWINCH.
func runOnPTY(in, out *os.File, argv []string, fds [][]byte) (int, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return 0, fmt.Errorf("open a pseudo-terminal: %w", err)
	}
	defer master.Close()
	_ = pty.InheritSize(in, master)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	pipes, err := sandbox.NewPipes(fds)
	if err != nil {
		slave.Close()
		return 0, err
	}
	cmd.ExtraFiles = pipes.Files()
	err = cmd.Start()
	slave.Close()
	pipes.Started(err == nil)
	if err != nil {
		return 0, fmt.Errorf("start the agent: %w", err)
	}
	if old, err := term.MakeRaw(int(in.Fd())); err == nil {
		defer term.Restore(int(in.Fd()), old)
	}
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	// SIGINT and friends reach the agent through the pty as keystrokes;
	// sent to this process (kill), they are passed on to bwrap.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(winch)
	defer signal.Stop(sigs)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-winch:
				_ = pty.InheritSize(in, master)
			case <-done:
				return
			}
		}
	})
	// Keystrokes to the agent; this copy ends with the process (the read
	// on the user's terminal is not interruptible, so it is not waited for).
	go io.Copy(master, in)
	outDone := make(chan struct{})
	go func() {
		io.Copy(out, master)
		close(outDone)
	}()
	code, err := waitForwarding(cmd, sigs)
	close(done)
	wg.Wait()
	select {
	case <-outDone:
	case <-time.After(500 * time.Millisecond):
	}
	return code, err
}
