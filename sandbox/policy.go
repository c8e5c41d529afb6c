// Package sandbox builds the native sandbox an agent runs in: bubblewrap
// on Linux, sandbox-exec on macOS. The policy is data (what is bound
// where, which network the agent gets); the platform file turns it into a
// command line.
package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Network modes.
const (
	// NetProvider: a fresh network namespace with loopback only; the
	// agent reaches Ringlet's session socket through a forwarder on
	// 127.0.0.1 inside the sandbox, and nothing else.
	NetProvider = "provider"
	// NetNone: loopback only, no way out at all.
	NetNone = "none"
	// NetHost: the host's network (an explicit, warned opt-in).
	NetHost = "host"
)

// Paths inside the sandbox.
const (
	InsideDir = "/run/ringlet"
	// InsideSocketDir is the session's socket directory, bound read-only:
	// a directory, not the socket file, so that a daemon started again
	// serves the session at the same path (a new socket file is a new
	// inode, which a bind of the old file would not show), and read-only,
	// so that the agent cannot put anything there while no daemon does.
	InsideSocketDir = InsideDir + "/session"
	InsideSocket    = InsideSocketDir + "/" + SocketFile
	// SocketFile is the name of the session socket in its directory.
	SocketFile = "s.sock"
	// InsideBinDir holds the ringlet binary alone, read-only, and is
	// first on the agent's PATH: 'ringlet mcp --stdio' and the hook
	// adapter run there as the session, whatever the host calls them.
	InsideBinDir = InsideDir + "/bin"
	InsideBinary = InsideBinDir + "/ringlet"
	// ForwarderPort is where the forwarder listens inside the sandbox's
	// own network namespace.
	ForwarderPort = 8765
)

// Policy describes one sandboxed run.
type Policy struct {
	Workspace      string   `json:"workspace"` // bound read-write, the working directory
	Home           string   `json:"home"`      // the profile's HOME on the host
	HomePath       string   `json:"home_path"` // where HOME appears inside
	Command        []string `json:"command"`   // absolute program path, then args
	Env            []string `json:"-"`         // KEY=VALUE, the whole environment
	ReadOnly       []string `json:"ro,omitempty"`
	ReadWrite      []string `json:"rw,omitempty"`
	Network        string   `json:"network"`
	Socket         string   `json:"-"` // the session socket on the host (NetProvider): SocketFile in a directory of its own, which is bound whole
	Ringlet        string   `json:"-"` // the ringlet binary on the host; shown at this path and at InsideBinary
	AllowGitConfig bool     `json:"allow_git_config,omitempty"`
	// NoNestedUserns adds --unshare-user --disable-userns, so the agent
	// cannot create user namespaces of its own (and mount inside them).
	// It needs bubblewrap 0.8 or later; see DisableUsernsSupported.
	NoNestedUserns bool `json:"no_nested_userns,omitempty"`
	// Runtime lists directories outside the system dirs that the program
	// needs (its own install dir, a Node prefix), bound read-only.
	Runtime []string `json:"runtime,omitempty"`
	// Pinned are files in the read-write trees that are hard links to
	// files outside them (see OutsideLinks), bound read-only onto
	// themselves so that no write through them reaches the outside file.
	Pinned []string `json:"pinned,omitempty"`
	// Protected are paths relative to the workspace and to each
	// read-write directory that the agent may read but not write or
	// create (see DefaultProtected and ProtectedPaths). EmptyFile (see
	// the function) stands in for those that are missing or empty; the
	// launcher holds a Lease on the trees while the sandbox runs.
	Protected []string `json:"protected,omitempty"`
	EmptyFile string   `json:"-"`
	// Limits bound the sandbox's processes, memory and tmpfs sizes (zero
	// fields: the defaults).
	Limits Limits `json:"limits"`
	// Limiter is the ringlet binary on the host, which sets the rlimits
	// and execs bwrap ('ringlet sandbox rlimit'); every launcher sets it.
	// Empty (in tests) leaves the rlimits as they are.
	Limiter string `json:"-"`
}

// systemDirs are bound read-only from the host.
var systemDirs = []string{"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt"}

// tmpfsDirs hide the host's content under empty, private filesystems.
var tmpfsDirs = []string{"/home", "/root", "/tmp", "/run", "/var/tmp"}

// CheckPath refuses paths that could be mistaken for options or break the
// argument list: they must be clean, absolute, and free of newlines.
func CheckPath(what, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s is empty", what)
	case strings.ContainsAny(p, "\x00\n\r"):
		return fmt.Errorf("%s %q contains a newline or NUL", what, p)
	case strings.HasPrefix(p, "-"):
		return fmt.Errorf("%s %q starts with '-'", what, p)
	case !filepath.IsAbs(p):
		return fmt.Errorf("%s %q is not an absolute path", what, p)
	case filepath.Clean(p) != p:
		return fmt.Errorf("%s %q is not a clean path", what, p)
	}
	return nil
}

// Validate checks the policy before anything is started.
func (p *Policy) Validate() error {
	var errs []error
	errs = append(errs, CheckPath("workspace", p.Workspace), CheckPath("profile HOME", p.Home), CheckPath("home path", p.HomePath))
	if p.Workspace != "" && CheckPath("workspace", p.Workspace) == nil {
		real, err := filepath.EvalSymlinks(p.Workspace)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("workspace %s: %w", p.Workspace, err))
		case real == "/":
			errs = append(errs, fmt.Errorf("workspace %s resolves to /; choose a project directory", p.Workspace))
		default:
			if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
				errs = append(errs, fmt.Errorf("workspace %s is not a directory", p.Workspace))
			}
		}
	}
	if len(p.Command) == 0 {
		errs = append(errs, errors.New("no command to run"))
	} else {
		errs = append(errs, CheckPath("command", p.Command[0]))
	}
	for _, f := range p.Pinned {
		errs = append(errs, CheckPath("pinned file", f))
	}
	for _, e := range p.Protected {
		errs = append(errs, CheckProtected(e))
	}
	if p.EmptyFile != "" {
		errs = append(errs, CheckPath("empty stand-in file", p.EmptyFile))
	}
	for _, d := range append(append(append([]string{}, p.ReadOnly...), p.ReadWrite...), p.Runtime...) {
		errs = append(errs, CheckPath("extra path", d))
		// A path that is or holds the home path would cover the profile's
		// HOME with the host's.
		if d == "/" || (p.HomePath != "" && (d == p.HomePath || strings.HasPrefix(p.HomePath, d+"/"))) {
			errs = append(errs, fmt.Errorf("extra path %s would cover the agent's HOME (%s); bind something inside it instead", d, p.HomePath))
		}
	}
	if p.Limiter != "" {
		errs = append(errs, CheckPath("ringlet binary", p.Limiter))
	}
	if l := p.Limits; l.Mechanism == LimitSystemd {
		errs = append(errs, CheckPath("systemd-run", l.SystemdRun))
	} else if l.Mechanism != "" && l.Mechanism != LimitRlimit {
		errs = append(errs, fmt.Errorf("limit mechanism %q; accepted values: rlimit, systemd", l.Mechanism))
	}
	switch p.Network {
	case NetProvider:
		errs = append(errs, CheckPath("session socket", p.Socket), CheckPath("ringlet binary", p.Ringlet))
		if p.Socket != "" && filepath.Base(p.Socket) != SocketFile {
			errs = append(errs, fmt.Errorf("session socket %s is not named %s", p.Socket, SocketFile))
		}
	case NetNone, NetHost:
		if p.Ringlet != "" {
			errs = append(errs, CheckPath("ringlet binary", p.Ringlet))
		}
	default:
		errs = append(errs, fmt.Errorf("network %q; accepted values: provider, none, host", p.Network))
	}
	for _, kv := range p.Env {
		if !strings.Contains(kv, "=") || strings.ContainsRune(kv, 0) {
			errs = append(errs, fmt.Errorf("invalid environment entry"))
		}
	}
	return errors.Join(errs...)
}

// Summary is what the audit records of a policy: paths and modes, never
// the environment (it holds the session token).
func (p *Policy) Summary() map[string]any {
	envNames := make([]string, 0, len(p.Env))
	for _, kv := range p.Env {
		k, _, _ := strings.Cut(kv, "=")
		envNames = append(envNames, k)
	}
	sort.Strings(envNames)
	l := p.Limits.WithDefaults()
	return map[string]any{
		"workspace": p.Workspace, "home": p.HomePath, "network": p.Network,
		"ro": p.ReadOnly, "rw": p.ReadWrite, "runtime": p.Runtime, "pinned_hard_links": len(p.Pinned),
		"git_config_writable": p.AllowGitConfig, "command": p.Command[0], "env": envNames, "protected": p.Protected,
		"limits": map[string]any{"procs": l.Procs, "memory": l.Memory, "tmp": l.Tmp, "mechanism": l.Mechanism},
	}
}

// SystemDir reports whether p is one of the system directories every
// sandbox shows read-only, or lies within one.
func SystemDir(p string) bool { return underSystem(p) }

func underSystem(p string) bool {
	for _, s := range systemDirs {
		if p == s || strings.HasPrefix(p, s+"/") {
			return true
		}
	}
	return false
}

func dedupe(s []string) []string {
	var out []string
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
