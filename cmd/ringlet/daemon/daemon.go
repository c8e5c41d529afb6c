// Package daemon is the daemon side of the ringlet binary: 'ringlet
// daemon' wires the gateway, the MCP gateway, the audit log's writer and
// the credential store together here, and nowhere else. main hands it to
// the CLI (package cli), which links none of it: the CLI reaches the
// daemon's state only through its API.
package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

	"github.com/prometheus/client_golang/prometheus"

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/audit"
	"github.com/neullabs/ringlet/audit/auditlog"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/cmd/ringlet/cli"
	"github.com/neullabs/ringlet/config"
	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/credentials/keystore"
	"github.com/neullabs/ringlet/gateway"
	"github.com/neullabs/ringlet/hook"
	"github.com/neullabs/ringlet/launch"
	"github.com/neullabs/ringlet/mcp"
	"github.com/neullabs/ringlet/otelexport"
	"github.com/neullabs/ringlet/privatefile"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/provider"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/sessionstore"
	"github.com/neullabs/ringlet/token"
	"github.com/neullabs/ringlet/version"
)

// Daemon is the daemon side of the binary, as cli.Daemon.
type Daemon struct{}

var _ cli.Daemon = Daemon{}

// Run runs the daemon in the foreground until ctx ends or it stops
// (idle, or asked to). It is the one place the daemon is wired together.
func (Daemon) Run(ctx context.Context, o cli.DaemonOptions) (err error) {
	ready := o.Ready
	if ready != nil {
		defer func() {
			if ready != nil {
				fmt.Fprintf(ready, "error %s\n", oneLine(orErr(err, errors.New("daemon exited before it was ready"))))
				ready.Close()
			}
		}()
	}
	paths := o.Paths
	cfg, err := config.Load(paths.ConfigFile())
	if err != nil {
		return err
	}
	var listen config.Listen
	if o.Listen != nil {
		listen = *o.Listen
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
		return listenError(paths, listen, err)
	}
	defer ln.Close()
	if !listen.Loopback {
		fmt.Fprintf(o.Stderr, "ringlet: warning: listening on %s, which is not a loopback address: anyone who can reach it can try to guess the token\n", ln.Addr())
	}

	if err := privatefile.EnsureDir(paths.StateDir); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	unlock, err := lockDaemon(paths)
	if err != nil {
		return err
	}
	defer unlock()

	logger, closeLog, err := daemonLogger(paths, cfg.LogLevel(), o.Stderr, o.Ready != nil)
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
	sockRoot, err := gateway.PrepareSocketRoot(paths.StateDir, os.TempDir(), logger)
	if err != nil {
		return err
	}
	var srv *gateway.Server
	// Kept when the stop kept a session whose sandbox is bound to a
	// socket directory in it, for the next daemon.
	defer func() { sockRoot.Close(srv != nil && srv.KeptSockets()) }()

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
		SessionBus: sessionBus(o.Getenv),
		OnChoose: func(backend, why string) {
			logger.Info("credentials backend chosen", "backend", backend, "why", why)
		},
	})
	if err != nil {
		return err
	}
	var auditPath string
	if !o.NoAuditLog {
		if auditPath, err = auditPathOf(o, cfg); err != nil {
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
		export     gateway.RecordExporter
	)
	// Started before the audit log opens, so that it stops after the
	// log's last record (defers run last in, first out).
	if exporter, err := startOTel(ctx, cfg, keys, paths, logger); err != nil {
		return err
	} else if exporter != nil {
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), otelFlush)
			defer cancel()
			if err := exporter.Shutdown(sctx); err != nil {
				logger.Warn("OpenTelemetry export: not all records were sent before the daemon stopped", "err", err)
			}
		}()
		export, collectors = exporter, exporter.Collectors()
	}
	if auditPath != "" {
		// The open sessions are read on the log's connection as it opens:
		// no record of a session is written before they are handled
		// below, so they are those the log shows after daemon.start too.
		log, err = auditlog.Open(auditlog.Options{Path: auditPath, Sync: cfg.AuditSync(), Logger: logger, FindOpenSessions: true, OnCommit: func(recs []audit.Record) {
			if srv != nil {
				srv.PublishRecords(recs)
			}
		}})
		if err != nil {
			return err
		}
		defer func() {
			if err := log.Close(); err != nil {
				logger.Error("closing the audit log", "err", err)
			}
		}()
		// Watches the log's files and file system, so that provider
		// requests are refused before they are forwarded, and recovery
		// does not wait for some other action to write. Stopped before
		// the log closes (defers run last in, first out).
		runCtx, stopRun := context.WithCancel(context.Background())
		var runDone sync.WaitGroup
		runDone.Go(func() { _ = log.Run(runCtx) }) // returns when runCtx ends
		defer func() {
			stopRun()
			runDone.Wait()
		}()
		auditor = log
		collectors = append(collectors, log.Metrics().Collectors()...)
	} else {
		logger.Warn("the audit log is off (--no-audit-log): actions are not recorded")
	}
	idle := cfg.IdleTimeout()
	var writable, auditState func() error
	if log != nil {
		writable, auditState = log.Writable, log.State
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find the ringlet binary: %w", err)
	}
	emptyFile, err := sandbox.EmptyFile(paths.StateDir)
	if err != nil {
		return err
	}
	launcher := launch.New(launch.Options{
		OwnPaths:   ownPaths(paths, auditPath),
		Executable: exe,
		StateDir:   paths.StateDir,
		EmptyFile:  emptyFile,
		ConfigDir:  paths.ConfigDir,
		Home:       o.Getenv("HOME"),
	})
	srv, err = gateway.New(gateway.Options{
		Launch:              launcher,
		StateDir:            paths.StateDir,
		Hooks:               hook.NewStore(paths.ConfigDir),
		MCPStore:            mcp.NewStore(paths.ConfigDir),
		MCPPath:             o.Getenv("PATH"),
		SocketDir:           sockRoot.Dir,
		Executable:          exe,
		Profiles:            profile.NewStore(paths.ConfigDir, paths.DataDir),
		CatalogDir:          paths.ConfigDir,
		PricesFile:          paths.PricesFile(),
		ProxyIdleTimeout:    cfg.ProxyIdleTimeout(),
		AuditWritable:       writable,
		AuditState:          auditState,
		Audit:               auditor,
		AuditPath:           auditPath,
		HMAC:                keyed,
		Collectors:          collectors,
		Export:              export,
		Keys:                keys,
		Token:               tok,
		TokenFile:           paths.TokenFile(),
		ListenHost:          listenHostForGuard(listen),
		StayAlive:           o.StayAlive,
		IdleTimeout:         idle,
		Logger:              logger,
		SessionStore:        sessionstore.NewDir(paths.SessionsDir(), sessionstore.Options{Legacy: paths.LegacySessionsFile(), Log: logger}),
		SessionTTL:          cfg.SessionMaxTTL(),
		SessionIdle:         sessionIdle(cfg),
		SessionRestartGrace: restartGrace(cfg),

		ProxyResponseHeaderTimeout: cfg.ProxyResponseHeaderTimeout(),
	})
	if err != nil {
		return err
	}
	state := api.DaemonState{PID: os.Getpid(), Listen: ln.Addr().String(), URL: clientURL(ln.Addr().(*net.TCPAddr)), Started: time.Now().UTC(), Version: version.Get().Version, StayAlive: o.StayAlive, AuditLog: auditPath}
	if err := writeState(paths, state); err != nil {
		return err
	}
	defer os.Remove(paths.StateFile())

	if auditor != nil {
		_, err := auditor.Append(ctx, audit.Record{Kind: audit.KindDaemonStart, Actor: audit.ActorDaemon, Target: state.Listen, Decision: audit.Allow,
			Detail: audit.DetailJSON(map[string]any{"pid": state.PID, "version": state.Version, "stay_alive": o.StayAlive, "audit_sync": cfg.AuditSync()})})
		if err != nil {
			return fmt.Errorf("refusing to start: %w", err)
		}
		// The sessions a previous daemon kept are admitted again, those
		// the log shows live among them. Any other it did not end (it
		// crashed or was killed: it keeps 'profiles run' sessions only at
		// a graceful stop) is over now, and the log says so.
		open := log.OpenSessions()
		live := make(map[string]bool, len(open))
		for _, r := range open {
			live[r.Session] = true
		}
		handled := map[string]bool{}
		for _, id := range srv.RestoreSessions(ctx, live) {
			handled[id] = true
		}
		lost := 0
		for _, r := range open {
			if handled[r.Session] {
				continue
			}
			if _, err := auditor.Append(ctx, audit.Record{Kind: audit.KindSessionEnd, Profile: r.Profile, Session: r.Session, Actor: audit.ActorDaemon, Decision: audit.Allow,
				Detail: audit.DetailJSON(map[string]any{"reason": "lost: the daemon that ran it stopped without ending it", "started_seq": r.Seq})}); err != nil {
				return fmt.Errorf("refusing to start: %w", err)
			}
			lost++
		}
		if lost > 0 {
			logger.Warn("ended sessions lost by the previous daemon", "count", lost)
		}
	} else {
		// No log to check the stored sessions against: the store alone
		// says which are live.
		srv.RestoreSessions(ctx, nil)
	}
	// What a killed daemon left of its session sockets, and what a
	// stopped one kept for sessions not admitted again, goes.
	sockRoot.Sweep(srv.SocketDirs())
	logger.Info("daemon listening", "addr", state.Listen, "pid", state.PID, "version", state.Version, "stay_alive", o.StayAlive, "idle_timeout", idle.String())
	if ready != nil {
		fmt.Fprintf(ready, "ready %s\n", state.URL)
		ready.Close()
		ready = nil
	}
	// Upstream MCP servers are children of the daemon: they stop with it.
	mcpCtx, stopMCP := context.WithCancel(context.Background())
	var mcpDone sync.WaitGroup
	mcpDone.Go(func() {
		if err := srv.RunMCP(mcpCtx); err != nil {
			logger.Error("the MCP servers stopped", "err", err)
		}
	})
	reason, err := srv.Serve(ctx, ln)
	stopMCP()
	mcpDone.Wait()
	logger.Info("daemon stopped", "reason", reason)
	return err
}

// otelFlush bounds how long a stopping daemon waits for the collector.
const otelFlush = 5 * time.Second

// startOTel starts the OpenTelemetry export that otel.endpoint asks for
// (nil when it is unset), with the values of otel.headers read from the
// credential store now: they are in no file, argument or log.
func startOTel(ctx context.Context, cfg *config.Config, keys *keystore.Store, paths config.Paths, logger *slog.Logger) (*otelexport.Exporter, error) {
	if cfg.OTel.Endpoint == "" {
		return nil, nil
	}
	endpoint, err := config.ParseOTelEndpoint(cfg.OTel.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("otel.endpoint: %w", err)
	}
	refs, err := config.ParseOTelHeaders(cfg.OTel.Headers)
	if err != nil {
		return nil, fmt.Errorf("otel.headers: %w", err)
	}
	headers := make(map[string]string, len(refs))
	for _, h := range refs {
		v, err := keys.Get(h.Ref)
		if err != nil || v.IsZero() {
			return nil, fmt.Errorf("otel.headers: header %s names credential %s, which could not be read; store it with 'ringlet keychain set %s %s' or unset otel.headers", h.Name, h.Ref, h.Ref.Provider, h.Ref.Alias)
		}
		headers[h.Name] = h.Value(v.Reveal())
	}
	spans, logs, err := otelexport.NewOTLP(ctx, otelexport.Collector{Endpoint: endpoint, Protocol: cfg.OTelProtocol(), Headers: headers})
	if err != nil {
		return nil, err
	}
	// Prices as they are now; a provider request whose model has none
	// goes unpriced.
	var cost audit.CostFunc
	if prices, err := provider.LoadPrices(paths.ConfigDir, paths.PricesFile()); err == nil {
		cost = prices.Cost
	}
	e, err := otelexport.New(otelexport.Options{Spans: spans, Logs: logs, Content: cfg.OTelContent(), Version: version.Get().Version, Cost: cost, Logger: logger})
	if err != nil {
		return nil, err
	}
	logger.Info("OpenTelemetry export on", "endpoint", endpoint.Redacted(), "protocol", cfg.OTelProtocol(), "content", cfg.OTelContent(), "headers", len(headers))
	return e, nil
}

// sessionIdle is sessions.idle_timeout as the gateway takes it: negative
// for never.
func sessionIdle(cfg *config.Config) time.Duration {
	if d := cfg.SessionIdle(); d > 0 {
		return d
	}
	return -1
}

// restartGrace is sessions.restart_grace as the gateway takes it:
// negative for none.
func restartGrace(cfg *config.Config) time.Duration {
	if d := cfg.RestartGrace(); d > 0 {
		return d
	}
	return -1
}

// ownPaths are what no sandbox may show: Ringlet's config, state and
// data directories and the audit log's files.
func ownPaths(paths config.Paths, auditDB string) []string {
	own := []string{paths.ConfigDir, paths.StateDir, paths.DataDir}
	if auditDB != "" {
		own = append(own, audit.Files(auditDB)...)
	}
	return own
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

func listenError(paths config.Paths, l config.Listen, err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		if st, ok := client.ReadState(paths.StateFile()); ok && client.ProcessAlive(st.PID) {
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
		if st, ok := client.ReadState(paths.StateFile()); ok {
			return nil, fmt.Errorf("a ringlet daemon is already running (pid %d, listening on %s); stop it with 'ringlet daemon stop'", st.PID, st.Listen)
		}
		return nil, errors.New("another ringlet daemon is starting or running; check with 'ringlet daemon status'")
	}
	return func() { f.Close() }, nil
}

// daemonLogger logs to stderr in the foreground, and to the daemon log
// (JSON lines, 0600) when detached.
func daemonLogger(paths config.Paths, level slog.Level, stderr io.Writer, detached bool) (*slog.Logger, func(), error) {
	opts := &slog.HandlerOptions{Level: level}
	if !detached {
		return slog.New(slog.NewTextHandler(stderr, opts)), func() {}, nil
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

// writeState publishes where the daemon is (daemon.json), for the CLI.
func writeState(paths config.Paths, st api.DaemonState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := privatefile.WriteAtomic(paths.StateFile(), append(data, '\n'), privatefile.FileMode); err != nil {
		return fmt.Errorf("write daemon state: %w", err)
	}
	return nil
}

// oneLine folds a (possibly joined) error into one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

// NewEpoch accepts, on purpose, an audit log that no longer matches its
// anchor ('ringlet audit new-epoch'): under the daemon lock, so that no
// daemon writes the log meanwhile, nor starts and refuses, it appends the
// audit.epoch record (actor cli: someone at the command line, with no
// daemon running) and anchors it.
func (Daemon) NewEpoch(ctx context.Context, o cli.DaemonOptions, reason string) (audit.Record, error) {
	paths := o.Paths
	if err := privatefile.EnsureDir(paths.StateDir); err != nil {
		return audit.Record{}, fmt.Errorf("state directory: %w", err)
	}
	unlock, err := lockDaemon(paths)
	if err != nil {
		return audit.Record{}, fmt.Errorf("%w; a new epoch needs it stopped", err)
	}
	defer unlock()
	cfg, err := config.Load(paths.ConfigFile())
	if err != nil {
		return audit.Record{}, err
	}
	path, err := auditPathOf(o, cfg)
	if err != nil {
		return audit.Record{}, err
	}
	return auditlog.NewEpoch(ctx, auditlog.Options{Path: path, Sync: cfg.AuditSync()}, reason, audit.ActorCLI)
}

// auditPathOf is the audit database: --audit-log (made absolute by the
// CLI), else audit.path.
func auditPathOf(o cli.DaemonOptions, cfg *config.Config) (string, error) {
	if o.AuditLog != "" {
		return o.AuditLog, nil
	}
	return cfg.AuditPath(o.Paths)
}

// sessionBus is the D-Bus session bus address the keyring would use, or ""
// when there is none; go-keyring finds the same one.
func sessionBus(getenv func(string) string) string {
	if v := getenv("DBUS_SESSION_BUS_ADDRESS"); v != "" && v != "autolaunch:" {
		return v
	}
	if rd := getenv("XDG_RUNTIME_DIR"); filepath.IsAbs(rd) {
		p := filepath.Join(rd, "bus")
		if fi, err := os.Stat(p); err == nil && fi.Mode()&fs.ModeSocket != 0 {
			return "unix:path=" + p
		}
	}
	return ""
}

// auditKeyRef names the audit HMAC key in the credential store.
var auditKeyRef = credentials.Ref{Provider: "ringlet", Alias: "audit-hmac"}

// auditKey returns the audit log's HMAC keyer, creating its key in the
// credential store on first use. The key is never in the database, so the
// HMACs there cannot be reversed by guessing.
func auditKey(keys *keystore.Store) (*audit.HMAC, error) {
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
	return audit.NewHMAC([]byte(s.Reveal())), nil
}
