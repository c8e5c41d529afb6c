package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/audit/auditlog"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/config"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/gateway"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/token"
	"github.com/neullabs/ringlet/version"
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

It listens on daemon.listen (default 127.0.0.1:8765). It never listens on a
non-loopback address unless --listen names one, and then warns. On first
start it creates the bearer token in ~/.config/ringlet/http_token (0600).

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
			return a.runDaemon(cmd.Context(), f, cmd.Flags().Changed("listen"))
		},
	}
	cmd.Flags().StringVar(&f.auditLog, "audit-log", "", "the SQLite audit database (default audit.path: $XDG_STATE_HOME/ringlet/audit.db)")
	cmd.Flags().BoolVar(&f.noAuditLog, "no-audit-log", false, "run without an audit log (not recommended; said in the daemon log)")
	cmd.Flags().StringVar(&f.listen, "listen", "", "address to listen on (HOST:PORT); a non-loopback address is allowed only here, with a warning")
	cmd.Flags().BoolVar(&f.stayAlive, "stay-alive", false, "keep running when idle instead of exiting after daemon.idle_timeout")
	cmd.Flags().BoolVar(&f.detached, "detached", false, "internal: run as a background daemon started by the CLI")
	cmd.Flags().MarkHidden("detached")
	cmd.AddCommand(a.daemonStartCmd(), a.daemonStatusCmd(), a.daemonStopCmd(), a.daemonRotateCmd())
	return cmd
}

// daemonState is written to daemon.json while the daemon runs, so the CLI
// can find it and tell the user which process holds what.
type daemonState struct {
	PID       int       `json:"pid"`
	Listen    string    `json:"listen"`
	URL       string    `json:"url"`
	Started   time.Time `json:"started"`
	Version   string    `json:"version"`
	StayAlive bool      `json:"stay_alive"`
	AuditLog  string    `json:"audit_log"` // "" when the daemon runs with --no-audit-log
}

// runDaemon is the one place the daemon is wired together.
func (a *app) runDaemon(ctx context.Context, f daemonFlags, listenExplicit bool) (err error) {
	var ready *os.File
	if f.detached {
		ready = os.NewFile(readyFD, "ready")
		defer func() {
			if ready != nil {
				fmt.Fprintf(ready, "error %s\n", oneLine(orErr(err, errors.New("daemon exited before it was ready"))))
				ready.Close()
			}
		}()
	}
	paths, err := a.needPaths()
	if err != nil {
		return err
	}
	cfg, err := config.Load(paths.ConfigFile())
	if err != nil {
		return err
	}
	var listen config.Listen
	if listenExplicit {
		if listen, err = config.ParseListen(f.listen, true); err != nil {
			return usageError{err}
		}
	} else if listen, err = config.ParseListen(cfg.Listen(), false); err != nil {
		return err
	}

	// A token file that is there must be sound before anything is bound
	// or created; a missing one is created below.
	if _, err := token.Load(paths.TokenFile()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}

	ln, err := net.Listen("tcp", listen.Addr())
	if err != nil {
		return a.listenError(paths, listen, err)
	}
	defer ln.Close()
	if !listen.Loopback {
		fmt.Fprintf(a.stdio.Err, "ringlet: warning: listening on %s, which is not a loopback address: anyone who can reach it can try to guess the token\n", ln.Addr())
	}

	if err := privatefile.EnsureDir(paths.StateDir); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	unlock, err := lockDaemon(paths)
	if err != nil {
		return err
	}
	defer unlock()

	logger, closeLog, err := a.daemonLogger(paths, cfg.LogLevel(), f.detached)
	if err != nil {
		return err
	}
	defer closeLog()
	// A daemon or CLI killed between writing a temporary file and
	// renaming it (the token, daemon.json, a profile) leaves the file
	// behind; no daemon holds any now, and a CLI's lives milliseconds.
	for _, dir := range []string{paths.ConfigDir, paths.StateDir} {
		if n, err := privatefile.SweepStaleTemps(dir, staleTempAge); err != nil {
			logger.Warn("could not remove stale temporary files", "dir", dir, "err", err)
		} else if n > 0 {
			logger.Info("removed stale temporary files", "dir", dir, "count", n)
		}
	}

	// Under the lock: what a killed daemon of this state dir left of its
	// session sockets is removed, and a fresh directory made for ours.
	sockRoot, cleanSockets, err := gateway.PrepareSocketRoot(paths.StateDir, os.TempDir(), logger)
	if err != nil {
		return err
	}
	defer cleanSockets()

	tok, created, err := token.LoadOrCreate(paths.TokenFile())
	if err != nil {
		return err
	}
	if created {
		logger.Info("created bearer token", "file", paths.TokenFile())
	}

	keys, err := keystore.Open(keystore.Options{
		Dir:        paths.ConfigDir,
		Backend:    cfg.Credentials.Backend,
		SessionBus: a.sessionBus(),
		OnChoose: func(backend, why string) {
			logger.Info("credentials backend chosen", "backend", backend, "why", why)
		},
	})
	if err != nil {
		return err
	}
	var auditPath string
	if !f.noAuditLog {
		auditPath, err = a.auditPath(cfg, f.auditLog)
		if err != nil {
			return err
		}
	}
	keyed, err := auditKey(keys)
	if err != nil {
		return err
	}
	var (
		log        *auditlog.Log
		auditor    gateway.Auditor
		collectors []prometheus.Collector
		srv        *gateway.Server
	)
	if auditPath != "" {
		log, err = auditlog.Open(auditlog.Options{Path: auditPath, Sync: cfg.AuditSync(), Logger: logger, OnCommit: func(recs []audit.Record) {
			if srv != nil {
				srv.PublishRecords(recs)
			}
		}})
		if err != nil {
			return err
		}
		defer log.Close()
		// Watches the log's files and file system, so that provider
		// requests are refused before they are forwarded, and recovery
		// does not wait for some other action to write. Stopped before
		// the log closes (defers run last in, first out).
		runCtx, stopRun := context.WithCancel(context.Background())
		var runDone sync.WaitGroup
		runDone.Go(func() { log.Run(runCtx) })
		defer func() {
			stopRun()
			runDone.Wait()
		}()
		auditor, collectors = log, log.Metrics().Collectors()
	} else {
		logger.Warn("the audit log is off (--no-audit-log): actions are not recorded")
	}
	idle := cfg.IdleTimeout()
	var writable func() error
	if log != nil {
		writable = log.Writable
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the ringlet binary: %w", err)
	}
	emptyFile, err := sandbox.EmptyFile(paths.StateDir)
	if err != nil {
		return err
	}
	srv, err = gateway.New(gateway.Options{
		EmptyFile:        emptyFile,
		StateDir:         paths.StateDir,
		Hooks:            hook.NewStore(paths.ConfigDir),
		MCPStore:         mcp.NewStore(paths.ConfigDir),
		MCPPath:          a.getenv("PATH"),
		SocketDir:        sockRoot,
		Executable:       exe,
		Profiles:         profile.NewStore(paths.ConfigDir, paths.DataDir),
		CatalogDir:       paths.ConfigDir,
		ProxyIdleTimeout: cfg.ProxyIdleTimeout(),
		AuditWritable:    writable,
		Audit:            auditor,
		AuditPath:        auditPath,
		Keyed:            keyed,
		Collectors:       collectors,
		Keys:             keys,
		Token:            tok,
		TokenFile:        paths.TokenFile(),
		OwnDirs:          ownFiles(paths, auditPath),
		ListenHost:       listenHostForGuard(listen),
		StayAlive:        f.stayAlive,
		IdleTimeout:      idle,
		Logger:           logger,

		ProxyResponseHeaderTimeout: cfg.ProxyResponseHeaderTimeout(),
	})
	if err != nil {
		return err
	}
	state := daemonState{PID: os.Getpid(), Listen: ln.Addr().String(), URL: clientURL(ln.Addr().(*net.TCPAddr)), Started: time.Now().UTC(), Version: version.Get().Version, StayAlive: f.stayAlive, AuditLog: auditPath}
	if err := writeState(paths, state); err != nil {
		return err
	}
	defer os.Remove(paths.StateFile())

	if auditor != nil {
		_, err := auditor.Append(ctx, audit.Record{Kind: audit.KindDaemonStart, Actor: audit.ActorDaemon, Target: state.Listen, Decision: audit.Allow,
			Detail: audit.DetailJSON(map[string]any{"pid": state.PID, "version": state.Version, "stay_alive": f.stayAlive, "audit_sync": cfg.AuditSync()})})
		if err != nil {
			return fmt.Errorf("refusing to start: %w", err)
		}
		// Sessions live in the daemon's memory: any that a previous daemon
		// did not end (it crashed or was killed) are over now, and the log
		// says so.
		lost, err := audit.OpenSessions(ctx, auditPath)
		if err != nil {
			return fmt.Errorf("refusing to start: %w", err)
		}
		for _, r := range lost {
			if _, err := auditor.Append(ctx, audit.Record{Kind: audit.KindSessionEnd, Profile: r.Profile, Session: r.Session, Actor: audit.ActorDaemon, Decision: audit.Allow,
				Detail: audit.DetailJSON(map[string]any{"reason": "lost: the daemon that ran it stopped without ending it", "started_seq": r.Seq})}); err != nil {
				return fmt.Errorf("refusing to start: %w", err)
			}
		}
		if len(lost) > 0 {
			logger.Warn("ended sessions lost by the previous daemon", "count", len(lost))
		}
	}
	logger.Info("daemon listening", "addr", state.Listen, "pid", state.PID, "version", state.Version, "stay_alive", f.stayAlive, "idle_timeout", idle.String())
	if ready != nil {
		fmt.Fprintf(ready, "ready %s\n", state.URL)
		ready.Close()
		ready = nil
	}
	// Upstream MCP servers are children of the daemon: they stop with it.
	mcpCtx, stopMCP := context.WithCancel(context.Background())
	var mcpDone sync.WaitGroup
	mcpDone.Go(func() { srv.RunMCP(mcpCtx) })
	reason, err := srv.Serve(ctx, ln)
	stopMCP()
	mcpDone.Wait()
	logger.Info("daemon stopped", "reason", reason)
	return err
}

func orErr(err, fallback error) error {
	if err != nil {
		return err
	}
	return fallback
}

// listenHostForGuard is the host the Host guard must accept besides the
// loopback names: the IP of an explicit non-loopback --listen.
func listenHostForGuard(l config.Listen) string {
	if l.Loopback || l.Host == "" {
		return ""
	}
	return l.Host
}

// clientURL is how a client on this machine reaches a listener: an
// unspecified address is reached through loopback.
func clientURL(addr *net.TCPAddr) string {
	ip := addr.IP
	if ip.IsUnspecified() {
		if ip.To4() != nil || ip.Equal(net.IPv4zero) {
			ip = net.IPv4(127, 0, 0, 1)
		} else {
			ip = net.IPv6loopback
		}
	}
	return "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))
}

func (a *app) listenError(paths config.Paths, l config.Listen, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		if st, ok := readState(paths); ok && processAlive(st.PID) {
			return fmt.Errorf("a ringlet daemon is already running (pid %d, listening on %s); stop it with 'ringlet daemon stop'", st.PID, st.Listen)
		}
		return fmt.Errorf("%s is already in use by another program; find it with: ss -ltnp 'sport = :%d' (or lsof -i :%d), or choose another address with --listen", l.Addr(), l.Port, l.Port)
	}
	if errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("cannot listen on %s: no network interface has that address", l.Addr())
	}
	if errors.Is(err, syscall.EACCES) {
		return fmt.Errorf("cannot listen on %s: permission denied (ports below 1024 need privileges); choose another port", l.Addr())
	}
	return fmt.Errorf("listen on %s: %w", l.Addr(), err)
}

// staleTempAge is how old a temporary file must be before a starting
// daemon takes it for one a killed writer left.
const staleTempAge = time.Minute

// lockDaemon takes an exclusive lock so that one user runs one daemon.
func lockDaemon(paths config.Paths) (func(), error) {
	f, err := os.OpenFile(paths.LockFile(), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, privatefile.FileMode)
	if err != nil {
		return nil, fmt.Errorf("open daemon lock %s: %w", paths.LockFile(), err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if st, ok := readState(paths); ok {
			return nil, fmt.Errorf("a ringlet daemon is already running (pid %d, listening on %s); stop it with 'ringlet daemon stop'", st.PID, st.Listen)
		}
		return nil, errors.New("another ringlet daemon is starting or running; check with 'ringlet daemon status'")
	}
	return func() { f.Close() }, nil
}

func (a *app) daemonLogger(paths config.Paths, level slog.Level, detached bool) (*slog.Logger, func(), error) {
	opts := &slog.HandlerOptions{Level: level}
	if !detached {
		return slog.New(slog.NewTextHandler(a.stdio.Err, opts)), func() {}, nil
	}
	f, err := os.OpenFile(paths.LogFile(), os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, privatefile.FileMode)
	if err != nil {
		return nil, nil, fmt.Errorf("open daemon log %s: %w", paths.LogFile(), err)
	}
	if err := privatefile.Check(paths.LogFile()); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("daemon log: %w", err)
	}
	return slog.New(slog.NewJSONHandler(f, opts)), func() { f.Close() }, nil
}

func writeState(paths config.Paths, st daemonState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := privatefile.WriteAtomic(paths.StateFile(), append(data, '\n'), privatefile.FileMode); err != nil {
		return fmt.Errorf("write daemon state: %w", err)
	}
	return nil
}

// readState returns the state of the daemon that last ran, if any.
func readState(paths config.Paths) (daemonState, bool) {
	var st daemonState
	data, err := privatefile.Read(paths.StateFile(), 64<<10)
	if err != nil || json.Unmarshal(data, &st) != nil || st.PID <= 0 {
		return daemonState{}, false
	}
	return st, true
}

// processAlive reports whether pid runs. A zombie (exited, not yet
// reaped by its parent) does not count: it no longer holds the port.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	if err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	if stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// The state follows the parenthesised command name.
		if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			return false
		}
	}
	return true
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
			if st, ok := readState(paths); ok && processAlive(st.PID) {
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
			var st gateway.Status
			if err == nil {
				err = c.Do(cmd.Context(), "GET", "/api/status", nil, &st)
			}
			if errors.Is(err, client.ErrNotRunning) {
				if asJSON {
					writeJSONOut(a.stdio.Out, map[string]any{"running": false})
				} else {
					fmt.Fprintln(a.stdio.Out, "ringlet daemon is not running")
				}
				return silentExit{}
			}
			if err != nil {
				return err
			}
			if asJSON {
				writeJSONOut(a.stdio.Out, struct {
					Running bool `json:"running"`
					gateway.Status
				}{true, st})
				return nil
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
		Use:     "stop",
		Short:   "Stop the running daemon",
		Long:    "Stop the running daemon gracefully and wait until it has exited. Stopping a daemon that is not running succeeds.",
		Example: `  ringlet daemon stop`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.daemonClient()
			var resp struct {
				PID int `json:"pid"`
			}
			if err == nil {
				err = c.Do(cmd.Context(), "POST", "/api/daemon/stop", nil, &resp)
			}
			if errors.Is(err, client.ErrNotRunning) {
				fmt.Fprintln(a.stdio.Out, "ringlet daemon is not running")
				return nil
			}
			if err != nil {
				return err
			}
			deadline := time.Now().Add(20 * time.Second)
			for processAlive(resp.PID) {
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
				err = c.Do(cmd.Context(), "POST", "/api/daemon/rotate-token", nil, nil)
				if err == nil {
					fmt.Fprintf(a.stdio.Out, "rotated the token; the new one is in %s and the old one no longer works\n", paths.TokenFile())
					return nil
				}
			}
			if !errors.Is(err, client.ErrNotRunning) && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			if st, ok := readState(paths); ok && processAlive(st.PID) {
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

// ownFiles are what no sandbox may show: Ringlet's config, state and
// data directories and the audit log's files.
func ownFiles(paths config.Paths, auditDB string) []string {
	own := []string{paths.ConfigDir, paths.StateDir, paths.DataDir}
	if auditDB != "" {
		own = append(own, audit.Files(auditDB)...)
	}
	return own
}

// auditKeyRef names the audit HMAC key in the credential store.
var auditKeyRef = credentials.Ref{Provider: "ringlet", Alias: "audit-hmac"}

// auditKey returns the audit log's HMAC keyer, creating its key in the
// credential store on first use. The key is never in the database, so the
// HMACs there cannot be reversed by guessing.
func auditKey(keys *keystore.Store) (*audit.Keyed, error) {
	s, err := keys.Get(auditKeyRef)
	if errors.Is(err, credentials.ErrNotFound) {
		t, gerr := token.Generate()
		if gerr != nil {
			return nil, gerr
		}
		if _, err := keys.Set(auditKeyRef, credentials.NewSecret(t.Value())); err != nil {
			return nil, fmt.Errorf("store the audit HMAC key: %w", err)
		}
		s, err = keys.Get(auditKeyRef)
	}
	if err != nil {
		return nil, fmt.Errorf("read the audit HMAC key from the credential store: %w", err)
	}
	return audit.NewKeyed([]byte(s.Reveal())), nil
}
