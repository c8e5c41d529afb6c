package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/config"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/token"
)

// readyFD is the descriptor on which a detached daemon reports to the
// process that started it: "ready ADDR" or "error MESSAGE".
const readyFD = 3

type daemonFlags struct {
	listen     string
	stayAlive  bool
	detached   bool
	auditLog   string
	noAuditLog bool
}

func (a *app) daemonCmd() *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the Ringlet daemon in the foreground",
		Long: `Run the Ringlet daemon in the foreground until Ctrl-C or SIGTERM.

  address:  ` + listenMark + `
  token:    ` + tokenMark + ` (created 0600 on first start)

It never listens on a non-loopback address unless --listen names one, and
then warns.

Without --stay-alive the daemon exits after daemon.idle_timeout (default
10m) with no requests and nothing open; daemons that other commands start
in the background rely on this to go away when unused.`,
		Example: `  ringlet daemon --stay-alive
  ringlet daemon --listen 127.0.0.1:9000
  ringlet daemon status --json
  ringlet daemon stop`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.noAuditLog && cmd.Flags().Changed("audit-log") {
				return usagef("--audit-log and --no-audit-log contradict each other; pass one")
			}
			o, err := a.daemonOptions(cmd, f)
			if f.detached {
				o.Ready = os.NewFile(readyFD, "ready")
				if err != nil {
					// The CLI that started this daemon waits for one line.
					fmt.Fprintf(o.Ready, "error %s\n", oneLine(err))
					o.Ready.Close()
				}
			}
			if err != nil {
				return err
			}
			return a.daemon.Run(cmd.Context(), o)
		},
	}
	cmd.Flags().StringVar(&f.auditLog, "audit-log", "", "the SQLite audit database (default audit.path: $XDG_STATE_HOME/ringlet/audit.db)")
	cmd.Flags().BoolVar(&f.noAuditLog, "no-audit-log", false, "run without an audit log (not recommended; said in the daemon log)")
	cmd.Flags().StringVar(&f.listen, "listen", "", "address to listen on (HOST:PORT); a non-loopback address is allowed only here, with a warning")
	cmd.Flags().BoolVar(&f.stayAlive, "stay-alive", false, "keep running when idle instead of exiting after daemon.idle_timeout")
	cmd.Flags().BoolVar(&f.detached, "detached", false, "internal: run as a background daemon started by the CLI")
	mustFlag(cmd.Flags().MarkHidden("detached"))
	cmd.AddCommand(a.daemonStartCmd(), a.daemonStatusCmd(), a.daemonStopCmd(), a.daemonRotateCmd())
	return cmd
}

// daemonOptions are the settings of 'ringlet daemon' from its flags.
func (a *app) daemonOptions(cmd *cobra.Command, f daemonFlags) (DaemonOptions, error) {
	paths, err := a.needPaths()
	if err != nil {
		return DaemonOptions{}, err
	}
	o := DaemonOptions{Paths: paths, StayAlive: f.stayAlive, NoAuditLog: f.noAuditLog, Stderr: a.stdio.Err, Getenv: a.getenv}
	if cmd.Flags().Changed("listen") {
		l, err := config.ParseListen(f.listen, true)
		if err != nil {
			return DaemonOptions{}, usageError{err}
		}
		o.Listen = &l
	}
	if f.auditLog != "" {
		if o.AuditLog, err = a.auditPath(nil, f.auditLog); err != nil {
			return DaemonOptions{}, err
		}
	}
	return o, nil
}

// Daemon is the daemon side of the binary, which main hands to Main: the
// CLI links none of the daemon's parts (a dependency test checks it), and
// reaches its state only through its API. 'ringlet daemon' runs it in this
// process; so does 'ringlet audit new-epoch', which needs no daemon
// running and must not start one.
type Daemon interface {
	// Run runs the daemon in the foreground until ctx ends or it stops.
	Run(ctx context.Context, o DaemonOptions) error
	// NewEpoch accepts, under the daemon lock, an audit log that no longer
	// matches its anchor, recording reason; it returns the audit.epoch
	// record.
	NewEpoch(ctx context.Context, o DaemonOptions, reason string) (audit.Record, error)
	// SandboxProbes builds the escape probes of 'sandbox check' with the
	// daemon's sandbox builder (package launch, which the CLI does not
	// link), for the CLI to run; no daemon needs to be running.
	SandboxProbes(o DaemonOptions, r ProbeRequest) (Probes, error)
}

// ProbeRequest asks for the probes of 'sandbox check'.
type ProbeRequest struct {
	// Workspace and Home are the checker's throwaway directories, the
	// probes' workspace and HOME.
	Workspace, Home string
	// HostHome is the user's HOME, which the probes look for from inside.
	HostHome string
	// Profile, when set, adds its extra paths, .git setting and limits.
	Profile *profile.Profile
	// DaemonPort is the running daemon's TCP port, which must be
	// unreachable from inside; "" when none runs.
	DaemonPort string
}

// Probes are the plans of 'sandbox check' and what they run with.
type Probes struct {
	Bwrap  string
	Limits SandboxLimits
	Probes []Probe
}

// SandboxLimits say how the probes' sandboxes are bounded ('sandbox check
// --json' prints them).
type SandboxLimits struct {
	Mechanism string `json:"mechanism"` // rlimit or systemd
	Procs     int    `json:"procs"`
	Memory    int64  `json:"memory"`
	Tmp       int64  `json:"tmp"`
	// ProcsBounded says whether the bound on processes holds: root is
	// exempt from RLIMIT_NPROC (a systemd scope binds it too).
	ProcsBounded bool `json:"procs_bounded"`
}

// Probe is one escape attempt: it passes when its plan exits 0 and none
// of Absent exists on the host afterwards.
type Probe struct {
	Name   string
	Plan   api.LaunchPlan
	Absent []string
}

// DaemonOptions are the daemon's settings from its command line; the
// rest it reads from config.toml.
type DaemonOptions struct {
	Paths config.Paths
	// Listen is --listen, nil for daemon.listen.
	Listen *config.Listen
	// StayAlive is --stay-alive.
	StayAlive bool
	// AuditLog is --audit-log, absolute; "" for audit.path. NoAuditLog is
	// --no-audit-log.
	AuditLog   string
	NoAuditLog bool
	// Ready, for a daemon the CLI started in the background, is where it
	// says "ready URL" or "error MESSAGE" (one line); its log then goes to
	// the daemon log instead of Stderr.
	Ready  *os.File
	Stderr io.Writer
	// Getenv reads the environment: PATH for MCP servers, the D-Bus
	// session bus for the keyring.
	Getenv func(string) string
}

func (a *app) daemonStartCmd() *cobra.Command {
	var stayAlive bool
	var listen string
	cmd := &cobra.Command{
		Use:   "start",
		Short: "Start the daemon in the background",
		Long: `Start the daemon in the background and return once it answers.

Its log goes to $XDG_STATE_HOME/ringlet/daemon.log (JSON lines, 0600).
Without --stay-alive it exits after daemon.idle_timeout of inactivity.`,
		Example: `  ringlet daemon start --stay-alive`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := a.needPaths()
			if err != nil {
				return err
			}
			if st, ok := client.ReadState(paths.StateFile()); ok && client.ProcessAlive(st.PID) {
				// Flags the running daemon already matches are fine (the
				// README's 'daemon start --stay-alive' may be repeated);
				// others would silently not apply.
				differs := stayAlive && !st.StayAlive
				if cmd.Flags().Changed("listen") {
					l, err := config.ParseListen(listen, true)
					differs = differs || err != nil || l.Addr() != st.Listen
				}
				if differs {
					return fmt.Errorf("a ringlet daemon is already running (pid %d, listening on %s, stay-alive %v), and --listen/--stay-alive would not apply to it; stop it with 'ringlet daemon stop' and start again", st.PID, st.Listen, st.StayAlive)
				}
				fmt.Fprintf(a.stdio.Out, "ringlet daemon is already running (pid %d, %s)\n", st.PID, st.URL)
				return nil
			}
			var extra []string
			if cmd.Flags().Changed("listen") {
				l, err := config.ParseListen(listen, true)
				if err != nil {
					return usageError{err}
				}
				if !l.Loopback {
					// The detached daemon's stderr goes nowhere: say it here.
					fmt.Fprintf(a.stdio.Err, "ringlet: warning: the daemon will listen on %s, which is not a loopback address: anyone who can reach it can try to guess the token\n", l.Addr())
				}
				extra = []string{"--listen", listen}
			}
			st, err := a.startBackground(cmd.Context(), stayAlive, extra)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "started ringlet daemon (pid %d, %s); log: %s\n", st.PID, st.URL, paths.LogFile())
			return nil
		},
	}
	cmd.Flags().BoolVar(&stayAlive, "stay-alive", false, "keep running when idle")
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (HOST:PORT)")
	return cmd
}

func (a *app) daemonStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the daemon is running, where, and for how long",
		Long: `Show whether the daemon is running. Exits 0 when it is running and
answers, 1 when it is not.`,
		Example: `  ringlet daemon status
  ringlet daemon status --json | jq .uptime_seconds`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.daemonClient()
			var st api.Status
			if err == nil {
				st, err = c.Status(cmd.Context())
			}
			if errors.Is(err, client.ErrNotRunning) {
				if asJSON {
					if err := writeJSONOut(a.stdio.Out, map[string]any{"running": false}); err != nil {
						return err
					}
				} else {
					fmt.Fprintln(a.stdio.Out, "ringlet daemon is not running")
				}
				return silentExit{}
			}
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(a.stdio.Out, struct {
					Running bool `json:"running"`
					api.Status
				}{true, st})
			}
			idle := "never (--stay-alive)"
			if st.IdleTimeout != "never" {
				idle = "after " + st.IdleTimeout + " idle"
			}
			t := newTable(a.stdio.Out)
			fmt.Fprintln(a.stdio.Out, "ringlet daemon is running")
			t.row("pid", strconv.Itoa(st.PID))
			t.row("listen", st.Listen)
			t.row("version", st.Version)
			t.row("started", st.Started)
			t.row("uptime", (time.Duration(st.UptimeSeconds * float64(time.Second))).Round(time.Second).String())
			t.row("exits", idle)
			t.row("event streams", strconv.Itoa(st.EventStreams))
			return t.flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) daemonStopCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "stop",
		Short: "Stop the running daemon",
		Long: `Stop the running daemon gracefully and wait until it has exited. Stopping a
daemon that is not running succeeds.

The sessions of 'profiles env', and those of 'profiles run' whose agent
runs, are kept for the next daemon: a 'profiles run' keeps its agent
running and holds its session again once a daemon is back, within
sessions.restart_grace (default 2m); --remote agents stop with the daemon.
To end every session first: ringlet sessions revoke --all --yes`,
		Example: `  ringlet daemon stop`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.daemonClient()
			var resp api.Stopping
			if err == nil {
				resp, err = c.StopDaemon(cmd.Context())
			}
			if errors.Is(err, client.ErrNotRunning) {
				fmt.Fprintln(a.stdio.Out, "ringlet daemon is not running")
				return nil
			}
			if err != nil {
				return err
			}
			deadline := time.Now().Add(20 * time.Second)
			for client.ProcessAlive(resp.PID) {
				if time.Now().After(deadline) {
					return fmt.Errorf("the daemon (pid %d) accepted the stop request but is still running after 20s; check its log", resp.PID)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
			fmt.Fprintf(a.stdio.Out, "stopped ringlet daemon (pid %d)\n", resp.PID)
			return nil
		},
	}
}

func (a *app) daemonRotateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-token",
		Short: "Replace the bearer token; the old one stops working at once",
		Long: `Replace the bearer token in ~/.config/ringlet/http_token atomically.

With the daemon running, the daemon rotates it: the old token is refused
from that moment and every WebSocket or stream opened with it is closed.
Without a daemon, the file is replaced directly.`,
		Example: `  ringlet daemon rotate-token`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			paths, err := a.needPaths()
			if err != nil {
				return err
			}
			c, err := a.daemonClient()
			if err == nil {
				_, err = c.RotateToken(cmd.Context())
				if err == nil {
					fmt.Fprintf(a.stdio.Out, "rotated the token; the new one is in %s and the old one no longer works\n", paths.TokenFile())
					return nil
				}
			}
			if !errors.Is(err, client.ErrNotRunning) && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if st, ok := client.ReadState(paths.StateFile()); ok && client.ProcessAlive(st.PID) {
				return fmt.Errorf("the daemon (pid %d) is running but could not be reached to rotate the token: %v", st.PID, err)
			}
			if _, err := token.Replace(paths.TokenFile()); err != nil {
				return err
			}
			fmt.Fprintf(a.stdio.Out, "rotated the token in %s (the daemon is not running)\n", paths.TokenFile())
			return nil
		},
	}
}

// silentExit makes a command exit 1 after it has printed its own answer.
type silentExit struct{}

func (silentExit) Error() string { return "" }

// auditPath is the audit database: --audit-log, else audit.path, with ~
// expanded (for --audit-log=~/x, which the shell leaves alone).
func (a *app) auditPath(cfg *config.Config, flag string) (string, error) {
	if flag != "" || cfg == nil {
		p, err := a.paths.ExpandHome(flag)
		if err != nil {
			return "", err
		}
		return filepath.Abs(p)
	}
	return cfg.AuditPath(a.paths)
}
