package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/budget"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/sandbox"
)

func (a *app) profilesRunCmd() *cobra.Command {
	var noSandbox, remote bool
	var budgetSpec string
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
on 127.0.0.1:` + strconv.Itoa(sandbox.ForwarderPort) + ` inside the sandbox (whatever daemon.listen is) to this
session's socket: the provider proxy with the real key added by the
daemon, and hook checks.

If bubblewrap is missing or cannot create a sandbox here, run refuses and
says how to fix it. --no-sandbox is an explicit, warned and audited opt-out.

The session outlives a graceful restart of the daemon (an upgrade): run
holds it again from the next daemon within sessions.restart_grace (default
2m), the agent's requests failing to connect meanwhile. If no daemon comes
back in time, or it refuses the session (revoked meanwhile), run stops the
agent and says why. A --remote agent ends with the daemon.`,
		Example: `  ringlet profiles run work
  ringlet profiles run work -- -p "fix the failing test"
  ringlet profiles run bot --no-sandbox
  ringlet profiles run work --budget usd=1,runtime=30m -- -p "fix the failing test"`,
		Args: argsBetween(1, -1, "ALIAS [-- AGENT-ARGS...]"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := names.Check("profile", args[0]); err != nil {
				return usageError{err}
			}
			if remote && noSandbox {
				return usagef("--remote runs the agent in the sandbox; it cannot be combined with --no-sandbox")
			}
			a.remote = remote
			if cmd.Flags().Changed("budget") {
				l, err := budget.Parse(budgetSpec)
				if err != nil {
					return usageError{fmt.Errorf("--budget: %w", err)}
				}
				a.runBudget = &l
			}
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
	cmd.Flags().StringVar(&budgetSpec, "budget", "", "this session's own budget, under the profile's (e.g. usd=1,output=100k,runtime=30m; see 'ringlet budgets --help')")
	mustFlag(cmd.RegisterFlagCompletionFunc("budget", completeBudgetSpec))
	return cmd
}

// runProfile runs an agent and returns its exit code. The daemon builds
// its launch (package launch): the CLI says where it runs and what it was
// asked, and runs the plan it gets back as it is.
func (a *app) runProfile(ctx context.Context, alias string, extra []string, noSandbox bool) (int, error) {
	c, err := a.ensureDaemon(ctx)
	if err != nil {
		return 0, err
	}
	dir, _ := os.Getwd() // needed only by a profile without a workspace, which the daemon then refuses
	shims, err := a.agentShims(ctx, c, alias, dir)
	if err != nil {
		return 0, err
	}
	st, err := c.StartSession(ctx, api.SessionRequest{Profile: alias, Launch: &api.LaunchRequest{
		Dir: dir, Args: extra, Path: a.getenv("PATH"), Home: a.getenv("HOME"), Term: a.getenv("TERM"), Lang: a.getenv("LANG"), NoSandbox: noSandbox,
		Shims: shims}, Budget: a.runBudget})
	if err != nil {
		return 0, err
	}
	for _, w := range st.Warnings {
		fmt.Fprintln(a.stdio.Err, "ringlet: "+w)
	}
	var hold *runHold
	if !a.remote {
		// The session lives as long as this process: should it be killed
		// before it ends the session below, the daemon sees the lease go
		// and ends it. Released after that DELETE (defers run last first).
		// Across a restart of the daemon it is held again (runHold).
		hold, err = a.holdRun(ctx, c, st.ID)
		if err != nil {
			_, _ = c.RevokeSession(context.WithoutCancel(ctx), st.ID)
			return 0, fmt.Errorf("hold session %s for this run: %w", st.ID, err)
		}
		defer hold.release()
	}
	exit := -1
	defer func() {
		if a.remote && exit == remoteStarted {
			return // the daemon ends the session when the agent exits
		}
		if hold != nil {
			if hold.stopped() != "" {
				return // no daemon knows it any more
			}
			c = hold.client()
		}
		if err := c.EndSession(context.WithoutCancel(ctx), st.ID, exit); err != nil {
			fmt.Fprintf(a.stdio.Err, "ringlet: could not end session %s: %v\n", st.ID, err)
		}
	}()

	if a.remote {
		cols, rows := a.termSize()
		info, err := c.StartTerminal(ctx, st.ID, api.TerminalStart{Cols: cols, Rows: rows})
		if err != nil {
			return 0, err
		}
		exit = remoteStarted
		fmt.Fprintf(a.stdio.Out, "started %s remotely in session %s (pid %d); attach with: ringlet terminal attach %s\n", alias, st.ID, info.PID, st.ID)
		return 0, nil
	}
	// The daemon records the launch before it hands out the plan.
	plan, err := c.Plan(ctx, st.ID)
	if err != nil {
		return 0, err
	}
	// The daemon holds the sandbox's workspace until the session ends;
	// this process holds it too until its sandbox has exited, however
	// long after that it may be (the session revoked, expired).
	lease := sandbox.NewLease(a.paths.StateDir)
	defer lease.Release()
	if err := lease.HoldTrees(plan.Trees); err != nil {
		return 0, err
	}
	stop := stopper{stop: hold.stop, hard: hold.stopHard}
	if in, out, ok := a.terminals(); ok && plan.Sandbox {
		exit, err = runOnPTY(in, out, plan.Argv, stop, plan.Files)
	} else {
		exit, err = a.runAttached(ctx, plan.Argv, plan.Env, plan.Dir, stop, plan.Files...)
	}
	if why := hold.stopped(); why != "" && err == nil {
		return exit, fmt.Errorf("%s; the agent was stopped (start it again with 'ringlet profiles run %s')", why, alias)
	}
	return exit, err
}

// remoteStarted marks a session that the daemon now owns.
const remoteStarted = -2

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

// runAttached runs argv on this terminal, forwarding SIGINT, SIGTERM and
// SIGHUP, and returns its exit code; it stops argv when stop closes. fds
// are passed on pipes as descriptors 3, 4, ...
func (a *app) runAttached(ctx context.Context, argv, env []string, dir string, stop stopper, fds ...[]byte) (int, error) {
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
	return waitForwarding(cmd, sigs, stop)
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
	cmd.AddCommand(fwd, a.sandboxCheckCmd(), a.sandboxSyscallsCmd(), a.sandboxRlimitCmd(), a.sandboxLandlockCmd())
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
	helloDaemon(ctx, socket, port)
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
	return waitForwarding(cmd, sigs, stopper{})
}

// stopper says when an agent must stop (stop closes), and whether at
// once (hard: its session was killed).
type stopper struct {
	stop <-chan struct{}
	hard func() bool
}

// waitForwarding waits for a started child, passing it the signals that
// arrive on sigs, and returns its exit code (128+N when a signal killed
// it), as a shell would. When stop closes, the child gets SIGTERM, and
// SIGKILL if it is still there stopGrace later (at once when hard):
// bubblewrap dies of either, and its sandbox with it (--die-with-parent).
func waitForwarding(cmd *exec.Cmd, sigs <-chan os.Signal, st stopper) (int, error) {
	done := make(chan struct{})
	stop := st.stop
	var fwd sync.WaitGroup
	fwd.Go(func() {
		var kill <-chan time.Time
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s) // it may have exited already
			case <-stop:
				stop = nil
				if st.hard != nil && st.hard() {
					_ = cmd.Process.Kill() // it may have exited already
					continue
				}
				_ = cmd.Process.Signal(syscall.SIGTERM)
				t := time.NewTimer(stopGrace)
				defer t.Stop()
				kill = t.C
			case <-kill:
				_ = cmd.Process.Kill()
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

// helloDaemon makes one request to the session socket before the agent
// starts, answered once the daemon has learnt this sandbox's PID namespace
// from the connection (the kernel names the peer), for the kill switch: the
// preflight, which takes no token. A daemon not there is the agent's first
// request's problem, as before.
func helloDaemon(ctx context.Context, socket string, port int) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port))+"/proxy/", nil)
	if err != nil {
		return
	}
	if resp, err := tr.RoundTrip(req); err == nil {
		resp.Body.Close()
	}
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
		// Either side hanging up ends the copy; there is no one to tell.
		_, _ = io.Copy(u, c)
		if uc, ok := u.(*net.UnixConn); ok {
			_ = uc.CloseWrite()
		}
	})
	_, _ = io.Copy(c, u)
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
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

// stopGrace is how long a stopped agent has to exit before it is killed.
const stopGrace = 5 * time.Second

// runOnPTY runs argv (bwrap) on a new pseudo-terminal that Ringlet owns,
// relaying the user's terminal to it in raw mode and following its size.
// The agent inside never holds the user's real terminal, so nothing it
// does (TIOCSTI included) can type into the user's shell, and it still
// gets Ctrl-C as SIGINT and window-size changes as SIGWINCH.
func runOnPTY(in, out *os.File, argv []string, stop stopper, fds [][]byte) (int, error) {
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
		defer func() { _ = term.Restore(int(in.Fd()), old) }()
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
	go func() { _, _ = io.Copy(master, in) }()
	outDone := make(chan struct{})
	go func() {
		// Ends when the agent closes its terminal (EIO on the master).
		_, _ = io.Copy(out, master)
		close(outDone)
	}()
	code, err := waitForwarding(cmd, sigs, stop)
	close(done)
	wg.Wait()
	select {
	case <-outDone:
	case <-time.After(500 * time.Millisecond):
	}
	return code, err
}
