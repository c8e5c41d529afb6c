package sandbox

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// Args returns the bubblewrap command line for the policy: bwrap, its
// options, "--", then the command. What the child sees is built, not
// inherited: read-only system dirs, empty tmpfs over /home, /root, /tmp,
// /run and /var/tmp, the profile's HOME and the workspace read-write, and
// nothing else of the host. It never binds $XDG_RUNTIME_DIR, D-Bus, SSH or
// GPG agent sockets, docker.sock, X11 or Ringlet's own config dir.
//
// bwrap loads the seccomp filter from descriptor 3 (--seccomp 3): the
// caller passes SeccompFilter() there (exec.Cmd.ExtraFiles[0]). Without
// it bwrap refuses to start; it never runs the command unfiltered.
func (p *Policy) Args(bwrap string) ([]string, error) {
	opts, command, err := p.build(bwrap, 3)
	if err != nil {
		return nil, err
	}
	return append(append(append(p.Limits.launcher(p.Limiter), opts...), "--"), command...), nil
}

// ArgsFD is Args with bwrap's options moved off its command line, which
// every user of the host can read in /proc, to file descriptor 3 (bwrap
// --args 3): they carry the agent's environment, session token included.
// files are what the caller passes on descriptors 3 and 4 (see Pipes):
// the options, NUL-separated, then the seccomp filter.
func (p *Policy) ArgsFD(bwrap string) (argv []string, files [][]byte, err error) {
	o, command, err := p.build(bwrap, 4)
	if err != nil {
		return nil, nil, err
	}
	filter, err := SeccompFilter()
	if err != nil {
		return nil, nil, err
	}
	var b bytes.Buffer
	for _, s := range o[1:] {
		b.WriteString(s)
		b.WriteByte(0)
	}
	return append(append(p.Limits.launcher(p.Limiter), bwrap, "--args", "3", "--"), command...), [][]byte{b.Bytes(), filter}, nil
}

// build returns bwrap and its options, and the command that follows "--".
// bwrap reads the seccomp filter from descriptor seccompFD.
func (p *Policy) build(bwrap string, seccompFD int) (opts, command []string, err error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	a := []string{bwrap,
		"--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL", "--clearenv",
		"--seccomp", strconv.Itoa(seccompFD)}
	if p.Network == NetHost {
		a = append(a, "--share-net")
	}
	if p.NoNestedUserns {
		a = append(a, "--unshare-user", "--disable-userns")
	}
	for _, d := range systemDirs {
		fi, err := os.Lstat(d)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			return nil, nil, err
		case fi.Mode()&fs.ModeSymlink != 0:
			// Merged /usr: /bin -> usr/bin and the like.
			target, err := os.Readlink(d)
			if err != nil {
				return nil, nil, err
			}
			a = append(a, "--symlink", target, d)
		default:
			a = append(a, "--ro-bind", d, d)
		}
	}
	for _, d := range tmpfsDirs {
		a = append(a, p.Limits.tmpfsArgs(d)...)
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev")
	a = append(a, p.Limits.devArgs()...)
	// HOME first, then the read-only paths, so that an agent installed
	// under the user's home (~/.local/bin/claude) or an --ro path there is
	// shown on top of the profile's HOME instead of hidden by it; Validate
	// refuses paths that would hide the HOME itself.
	a = append(a, "--bind", p.Home, p.HomePath)
	for _, d := range p.Runtime {
		a = append(a, "--ro-bind", d, d)
	}
	for _, d := range p.ReadOnly {
		a = append(a, "--ro-bind", d, d)
	}
	a = append(a, "--bind", p.Workspace, p.Workspace)
	for _, d := range p.ReadWrite {
		a = append(a, "--bind", d, d)
	}
	if !p.AllowGitConfig {
		// Code the agent runs must not plant something that later runs
		// on the host: git hooks and config (core.fsmonitor, aliases).
		g, err := guardGit(p.Workspace)
		if err != nil {
			return nil, nil, err
		}
		for _, d := range g.Self {
			a = append(a, "--bind", d, d)
		}
		for _, d := range g.Empty {
			a = append(a, "--tmpfs", d, "--remount-ro", d)
		}
		for _, d := range g.ReadOnly {
			a = append(a, "--ro-bind", d, d)
		}
	}
	// Files that host tools run (.vscode, .envrc, .claude, ...): read-only,
	// after the workspace and read-write binds they lie in.
	protect, err := p.protectArgs()
	if err != nil {
		return nil, nil, err
	}
	a = append(a, protect...)
	// Pinned hard links last: a later bind of a directory that holds one
	// (.git onto itself, for a clone made with hard links) would cover it.
	for _, f := range p.Pinned {
		a = append(a, "--ro-bind", f, f)
	}
	if p.Ringlet != "" {
		// The Claude Code hook in the profile's settings.json runs ringlet
		// by its host path. Bound after HOME and the workspace, so that
		// neither hides it (~/go/bin/ringlet). At InsideBinary it is the
		// forwarder, and 'ringlet' on the agent's PATH.
		a = append(a, "--ro-bind", p.Ringlet, p.Ringlet,
			"--dir", InsideDir, "--dir", InsideBinDir, "--ro-bind", p.Ringlet, InsideBinary)
	}
	if p.Network == NetProvider {
		a = append(a, "--ro-bind", filepath.Dir(p.Socket), InsideSocketDir)
	}
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		a = append(a, "--setenv", k, v)
	}
	// The root is bwrap's own tmpfs, half the RAM in size and writable:
	// read-only, once the last mount point in it is made.
	a = append(a, "--remount-ro", "/")
	a = append(a, "--chdir", p.Workspace)
	if p.Network == NetProvider {
		// The ringlet binary runs first inside, as the forwarder from
		// 127.0.0.1:ForwarderPort to the session socket, and then runs
		// the agent as its child.
		command = []string{InsideBinary, "sandbox", "forward", "--socket", InsideSocket, "--port", strconv.Itoa(ForwarderPort), "--"}
	}
	return a, append(command, p.Command...), nil
}

// Find returns the bubblewrap binary, or an error that says how to
// install it.
func Find() (string, error) {
	p, err := exec.LookPath("bwrap")
	if err != nil {
		return "", errors.New("bubblewrap (bwrap) is not installed; install it (Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap) — Ringlet never runs an agent unsandboxed unless you pass --no-sandbox")
	}
	return p, nil
}

var (
	usernsOnce      sync.Once
	usernsSupported bool
)

// DisableUsernsSupported reports whether bwrap knows --disable-userns
// (bubblewrap 0.8 and later) and it works here, by trying it once.
func DisableUsernsSupported(bwrap string) bool {
	usernsOnce.Do(func() {
		cmd := exec.Command(bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
			"--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "/bin/true")
		usernsSupported = cmd.Run() == nil
	})
	return usernsSupported
}

// Check runs a trivial command in a sandbox to see whether this machine
// allows it, and explains how to fix it when not.
func Check(bwrap string) error {
	cmd := exec.Command(bwrap, "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--", "/bin/true")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	msg := strings.TrimSpace(string(out))
	hint := ""
	if v, rerr := os.ReadFile("/proc/sys/kernel/apparmor_restrict_unprivileged_userns"); rerr == nil && strings.TrimSpace(string(v)) == "1" {
		hint = "; Ubuntu's AppArmor blocks unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): allow bwrap with an AppArmor profile, or run: sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0"
	} else if v, rerr := os.ReadFile("/proc/sys/kernel/unprivileged_userns_clone"); rerr == nil && strings.TrimSpace(string(v)) == "0" {
		hint = "; unprivileged user namespaces are disabled: sudo sysctl kernel.unprivileged_userns_clone=1"
	} else if v, rerr := os.ReadFile("/proc/sys/user/max_user_namespaces"); rerr == nil && strings.TrimSpace(string(v)) == "0" {
		hint = "; user namespaces are disabled: sudo sysctl user.max_user_namespaces=15000"
	}
	return fmt.Errorf("bubblewrap cannot create a sandbox here (%s)%s", msg, hint)
}

// BinDir is the directory, inside a sandbox whose policy names the ringlet
// binary, that holds it: InsideBinDir, which holds nothing else.
func BinDir(string) string { return InsideBinDir }

// ReplayArgs is the sandbox 'ringlet hooks test' runs a hook in, with
// the command to follow, and what it reads on descriptors 3, ... (its
// seccomp filter, ReplayFilter): the host's files as they are but
// read-only (a hook reads what it reads when it judges a real call), /run
// hidden (no daemon, keyring or session socket), /tmp, /var/tmp and
// /dev/shm empty and thrown away, no network, no unix socket (the filter:
// a read-only mount does not stop a connect(), and sockets live in $HOME
// and elsewhere too), a PID namespace that dies with its first process,
// and a throwaway TMPDIR. A hook that reads a file under /tmp sees none
// there (its HOME, dir, is kept). The ringlet binary self, bound at
// InsideBinary, runs first ('ringlet sandbox landlock'): it restricts
// writes with Landlock to those throwaway directories and /dev, and execs
// the hook, because a read-only mount does not stop a process opening a
// FIFO or a device for writing. Nothing the hook does there outlives it
// or reaches another process.
func ReplayArgs(bwrap, self, dir string) ([]string, [][]byte, error) {
	if err := CheckPath("the hook's directory", dir); err != nil {
		return nil, nil, err
	}
	if err := CheckPath("the ringlet binary", self); err != nil {
		return nil, nil, err
	}
	filter, err := ReplayFilter()
	if err != nil {
		return nil, nil, err
	}
	return []string{bwrap, "--die-with-parent", "--unshare-all", "--new-session",
		"--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/run",
		"--tmpfs", "/tmp", "--tmpfs", "/var/tmp", "--tmpfs", "/dev/shm",
		// The hook's HOME again, should it lie in one of those.
		"--ro-bind", dir, dir,
		"--ro-bind", self, InsideBinary,
		"--seccomp", "3", "--setenv", "TMPDIR", "/dev/shm", "--chdir", dir, "--",
		InsideBinary, "sandbox", "landlock", "--rw", "/tmp", "--rw", "/var/tmp", "--rw", "/dev", "--"}, [][]byte{filter}, nil
}
