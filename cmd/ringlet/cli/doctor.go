package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/config"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
	"github.com/neullabs/ringlet/version"
)

// A finding's status.
const (
	checkOK   = "ok"
	checkInfo = "info" // worth knowing, nothing to fix
	checkWarn = "warn" // works, but not as well as it could
	checkFail = "fail" // something Ringlet needs does not work
)

// finding is one line of `ringlet doctor`: what was checked, how it went,
// what was found, and the command or step that fixes it.
type finding struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// Thresholds for the audit log's file system.
const (
	lowDiskBytes   = 512 << 20
	lowDiskPercent = 5
)

func (a *app) doctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check everything Ringlet depends on and say how to fix what is wrong",
		Long: `Check, in one report, what Ringlet needs: its configuration, the token
file's permissions, the daemon (running, reachable, the same version as this
binary), where keys are stored and why, the audit log (writable, its size,
the free space where it lives), the sandbox (bubblewrap, user namespaces, the
seccomp filter, how limits are set) and the agents found on PATH with their
versions. Each problem comes with the step that fixes it.

doctor never starts the daemon or changes anything; with no daemon running
it checks what it can without one. For the sandbox's own probes (what an
agent can and cannot reach), run 'ringlet sandbox check'.

Exits 1 when a check fails, 0 otherwise (warnings included).`,
		Example: "  ringlet doctor\n  ringlet doctor --json | jq '.checks[] | select(.status != \"ok\")'",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := a.doctor(cmd.Context())
			failed := slices.ContainsFunc(fs, func(f finding) bool { return f.Status == checkFail })
			if asJSON {
				if err := writeJSONOut(a.stdio.Out, map[string]any{"ok": !failed, "checks": fs}); err != nil {
					return err
				}
			} else {
				t := newTable(a.stdio.Out)
				for _, f := range fs {
					t.row(strings.ToUpper(f.Status), f.Check, f.Detail)
					if f.Fix != "" {
						t.row("", "", "fix: "+f.Fix)
					}
				}
				if err := t.flush(); err != nil {
					return err
				}
			}
			if failed {
				return silentExit{}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON: {ok, checks: [{check, status, detail, fix}]}")
	return cmd
}

// doctor runs every check, in the order a user would fix them.
func (a *app) doctor(ctx context.Context) []finding {
	v := version.Get()
	commit := "commit " + v.Short()
	if v.Dirty {
		commit += ", dirty"
	}
	out := []finding{{Check: "ringlet", Status: checkInfo, Detail: fmt.Sprintf("%s (%s; %s %s)", v.Version, commit, v.GoVersion, v.Platform)}}
	paths, err := a.needPaths()
	if err != nil {
		return append(out, finding{Check: "paths", Status: checkFail, Detail: err.Error(), Fix: "set HOME (or XDG_CONFIG_HOME, XDG_STATE_HOME and XDG_DATA_HOME)"})
	}
	cfg, err := config.Load(paths.ConfigFile())
	if err != nil {
		out = append(out, finding{Check: "config", Status: checkFail, Detail: err.Error(), Fix: "correct " + paths.ConfigFile() + " ('ringlet config list' shows every key and its default)"})
	} else {
		out = append(out, finding{Check: "config", Status: checkOK, Detail: paths.ConfigFile()})
	}
	out = append(out, a.doctorToken(paths)...)
	out = append(out, a.doctorDaemon(ctx, paths, cfg)...)
	out = append(out, doctorSandbox()...)
	out = append(out, a.doctorAgents(ctx, paths)...)
	return out
}

// doctorToken checks that the bearer token file and its directory are the
// user's alone.
func (a *app) doctorToken(paths config.Paths) []finding {
	var out []finding
	if st, err := os.Stat(paths.ConfigDir); err == nil && st.Mode().Perm()&0o022 != 0 {
		out = append(out, finding{Check: "config directory", Status: checkFail,
			Detail: fmt.Sprintf("%s is writable by others (mode %04o): they could replace the token file or the catalogs", paths.ConfigDir, st.Mode().Perm()),
			Fix:    "chmod 700 " + shellQuote(paths.ConfigDir)})
	}
	st, err := os.Lstat(paths.TokenFile())
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return append(out, finding{Check: "token file", Status: checkInfo, Detail: "none yet; the daemon creates " + paths.TokenFile() + " when it first starts"})
	case err != nil:
		return append(out, finding{Check: "token file", Status: checkFail, Detail: err.Error(), Fix: "make " + paths.TokenFile() + " readable by you"})
	case !st.Mode().IsRegular():
		return append(out, finding{Check: "token file", Status: checkFail, Detail: paths.TokenFile() + " is not a regular file (a symlink or other); the daemon refuses it",
			Fix: "rm " + shellQuote(paths.TokenFile()) + " and restart the daemon to create a new one"})
	case st.Mode().Perm()&0o077 != 0:
		return append(out, finding{Check: "token file", Status: checkFail,
			Detail: fmt.Sprintf("%s can be read by others (mode %04o): anyone who reads it controls the daemon", paths.TokenFile(), st.Mode().Perm()),
			Fix:    "chmod 600 " + shellQuote(paths.TokenFile()) + ", then 'ringlet daemon rotate-token' (it may have been read)"})
	}
	if uid, ok := fileOwner(st); ok && uid != os.Getuid() {
		return append(out, finding{Check: "token file", Status: checkFail, Detail: fmt.Sprintf("%s belongs to uid %d, not you (uid %d)", paths.TokenFile(), uid, os.Getuid()),
			Fix: "remove it and restart the daemon as yourself"})
	}
	return append(out, finding{Check: "token file", Status: checkOK, Detail: paths.TokenFile() + " (mode 0600)"})
}

// notRunning is the daemon's finding when none runs.
var notRunning = finding{Check: "daemon", Status: checkInfo,
	Detail: "not running; commands that need it start it in the background ('ringlet daemon start', then doctor again, checks the keys and the audit log through it)"}

// doctorDaemon checks the daemon and, through it, the key store and the
// audit log; without a daemon, the audit log's file and file system.
func (a *app) doctorDaemon(ctx context.Context, paths config.Paths, cfg *config.Config) []finding {
	var out []finding
	auditPath := ""
	if cfg != nil {
		auditPath, _ = cfg.AuditPath(paths)
	}
	c, err := a.daemonClient()
	if errors.Is(err, client.ErrNotRunning) {
		out = append(out, notRunning)
		return append(out, doctorAuditFile(auditPath, nil)...)
	}
	if err != nil {
		out = append(out, finding{Check: "daemon", Status: checkFail, Detail: err.Error()})
		return append(out, doctorAuditFile(auditPath, nil)...)
	}
	st, err := c.Status(ctx)
	if errors.Is(err, client.ErrNotRunning) {
		out = append(out, notRunning)
		return append(out, doctorAuditFile(auditPath, nil)...)
	}
	if err != nil {
		out = append(out, finding{Check: "daemon", Status: checkFail, Detail: "not answering at " + c.BaseURL() + ": " + err.Error(),
			Fix: "see " + paths.LogFile() + "; 'ringlet daemon stop' and start it again"})
		return append(out, doctorAuditFile(auditPath, nil)...)
	}
	d := finding{Check: "daemon", Status: checkOK, Detail: fmt.Sprintf("pid %d on %s, version %s, %d profile(s), %d session(s)", st.PID, st.Listen, st.Version, st.Profiles, st.Sessions)}
	if mine := version.Get().Version; st.Version != mine {
		d.Status = checkWarn
		d.Detail += "; this binary is " + mine
		d.Fix = "restart the daemon to run this version: 'ringlet daemon stop', then any command starts it"
	}
	out = append(out, d)
	h, err := c.Health(ctx)
	if err != nil {
		// An older daemon without /api/health.
		out = append(out, finding{Check: "keys", Status: checkWarn, Detail: "the daemon did not say: " + err.Error(), Fix: "restart the daemon to run this version"})
		return append(out, doctorAuditFile(auditPath, nil)...)
	}
	switch {
	case h.Keys.Error != "":
		out = append(out, finding{Check: "keys", Status: checkFail, Detail: h.Keys.Error,
			Fix: "start a Secret Service (e.g. gnome-keyring) in your session, or 'ringlet config set credentials.backend file'"})
	case h.Keys.Backend == "keyring":
		out = append(out, finding{Check: "keys", Status: checkOK, Detail: "in the OS keyring (" + h.Keys.Why + ")"})
	default:
		f := finding{Check: "keys", Status: checkWarn, Detail: "in a 0600 file (" + h.Keys.Why + ")",
			Fix: "to keep keys in the OS keyring: start a Secret Service (e.g. gnome-keyring), then 'ringlet keychain migrate --to keyring'"}
		if strings.HasPrefix(h.Keys.Why, "credentials.backend is file") {
			f.Status, f.Fix = checkOK, ""
		}
		out = append(out, f)
	}
	if h.Audit.Off {
		return append(out, finding{Check: "audit log", Status: checkWarn, Detail: "off: the daemon runs with --no-audit-log, so nothing it does is recorded",
			Fix: "restart the daemon without --no-audit-log"})
	}
	return append(out, doctorAuditFile(h.Audit.Path, &h.Audit.Error)...)
}

// doctorAuditFile checks the audit database's size and the free space of
// its file system; writeErr is the daemon's answer to whether it can write
// the log (nil without a daemon).
func doctorAuditFile(path string, writeErr *string) []finding {
	if path == "" {
		return nil
	}
	var out []finding
	switch {
	case writeErr != nil && *writeErr != "":
		out = append(out, finding{Check: "audit log", Status: checkFail, Detail: path + ": the daemon cannot write it, so it refuses every action: " + *writeErr,
			Fix: "fix the cause above; the daemon resumes by itself once it can write (see 'ringlet audit verify')"})
	default:
		detail := path
		if st, err := os.Stat(path); err == nil {
			detail += ", " + humanBytes(uint64(st.Size()))
		} else if errors.Is(err, fs.ErrNotExist) {
			detail += " (not created yet)"
		}
		if writeErr != nil {
			detail += ", writable"
		}
		out = append(out, finding{Check: "audit log", Status: checkOK, Detail: detail})
	}
	dir := filepath.Dir(path)
	for {
		if _, err := os.Stat(dir); err == nil || dir == filepath.Dir(dir) {
			break
		}
		dir = filepath.Dir(dir)
	}
	free, total, err := diskSpace(dir)
	switch {
	case err != nil:
		out = append(out, finding{Check: "disk space", Status: checkWarn, Detail: "could not read the free space of " + dir + ": " + err.Error()})
	case free < lowDiskBytes || (total > 0 && free*100 < total*lowDiskPercent):
		out = append(out, finding{Check: "disk space", Status: checkWarn,
			Detail: fmt.Sprintf("%s free of %s where the audit log lives (%s); when it is full, every action is refused", humanBytes(free), humanBytes(total), dir),
			Fix:    "free space there, or move the log: 'ringlet config set audit.path <file>' on another file system"})
	default:
		out = append(out, finding{Check: "disk space", Status: checkOK, Detail: fmt.Sprintf("%s free of %s where the audit log lives", humanBytes(free), humanBytes(total))})
	}
	return out
}

// doctorSandbox checks what the sandbox is built from; 'sandbox check'
// runs the probes.
func doctorSandbox() []finding {
	tool, err := sandbox.Find()
	if err != nil {
		return []finding{{Check: "sandbox", Status: checkFail, Detail: err.Error(), Fix: "install it; until then 'profiles run' refuses to start an agent (or runs it unsandboxed with --no-sandbox)"}}
	}
	if err := sandbox.Check(tool); err != nil {
		return []finding{{Check: "sandbox", Status: checkFail, Detail: tool + " cannot make a sandbox here: " + err.Error(), Fix: "see the hint above; 'ringlet sandbox check' shows more"}}
	}
	if runtime.GOOS != "linux" {
		return []finding{{Check: "sandbox", Status: checkOK, Detail: tool + " works"}}
	}
	ver := "bubblewrap"
	if b, err := exec.Command(tool, "--version").Output(); err == nil {
		ver = strings.TrimSpace(string(b))
	}
	out := []finding{{Check: "sandbox", Status: checkOK, Detail: fmt.Sprintf("%s (%s) works: user, PID, network and mount namespaces", tool, ver)}}
	if !sandbox.DisableUsernsSupported(tool) {
		out = append(out, finding{Check: "nested namespaces", Status: checkWarn, Detail: ver + " cannot refuse user namespaces inside the sandbox (needs bubblewrap 0.8 or later)",
			Fix: "upgrade bubblewrap"})
	}
	if err := seccompBuilds(); err != nil {
		out = append(out, finding{Check: "seccomp", Status: checkFail, Detail: err.Error()})
	} else {
		out = append(out, finding{Check: "seccomp", Status: checkOK, Detail: "the filter builds for " + runtime.GOARCH})
	}
	if p, err := exec.LookPath("prlimit"); err == nil {
		out = append(out, finding{Check: "limits", Status: checkOK, Detail: "process, memory and file limits set with " + p})
	} else {
		out = append(out, finding{Check: "limits", Status: checkInfo, Detail: "no prlimit on PATH; ringlet sets the limits itself", Fix: "install util-linux for prlimit"})
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		out = append(out, finding{Check: "cgroups", Status: checkInfo, Detail: "cgroup v2 is mounted (limits.mechanism = systemd can use it)"})
	}
	return out
}

// doctorAgents lists the catalog's agents found on PATH with their
// versions; an agent that is not installed is not a problem, none at all
// is.
func (a *app) doctorAgents(ctx context.Context, paths config.Paths) []finding {
	cat, err := profile.LoadCatalog(paths.ConfigDir)
	if err != nil {
		return []finding{{Check: "agents", Status: checkFail, Detail: err.Error(), Fix: "correct the agents catalog ('ringlet agents list')"}}
	}
	type found struct {
		id, path, version string
	}
	var (
		mu   sync.Mutex
		got  []found
		wg   sync.WaitGroup
		miss []string
	)
	for _, id := range cat.AgentIDs() {
		ag := cat.Agents[id]
		if len(ag.Command) == 0 {
			continue
		}
		p := toolchain.LookPath(ag.Command[0], a.getenv("PATH"))
		if p == "" {
			miss = append(miss, id)
			continue
		}
		wg.Go(func() {
			v := agentVersion(ctx, p)
			mu.Lock()
			got = append(got, found{id, p, v})
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.SortFunc(got, func(x, y found) int { return strings.Compare(x.id, y.id) })
	var out []finding
	for _, f := range got {
		out = append(out, finding{Check: "agent " + f.id, Status: checkOK, Detail: f.path + " " + f.version})
	}
	if len(got) == 0 {
		return append(out, finding{Check: "agents", Status: checkWarn, Detail: "none of the catalog's agents is on PATH (" + strings.Join(miss, ", ") + ")",
			Fix: "install one, e.g. 'npm install -g @anthropic-ai/claude-code', or run any command with 'profiles create <alias> generic --command ...'"})
	}
	if len(miss) > 0 {
		out = append(out, finding{Check: "agents", Status: checkInfo, Detail: "not on PATH: " + strings.Join(miss, ", ")})
	}
	return out
}

// agentVersion runs program --version and returns the first line it
// prints, or why it printed none.
func agentVersion(ctx context.Context, program string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, program, "--version")
	cmd.WaitDelay = time.Second
	b, err := cmd.Output()
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if line == "" {
		if err != nil {
			return "(--version failed: " + err.Error() + ")"
		}
		return "(--version printed nothing)"
	}
	if len(line) > 80 {
		line = line[:80] + "…"
	}
	return line
}

// humanBytes is n in B, KiB, MiB, GiB or TiB.
func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 3; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGT"[exp])
}
