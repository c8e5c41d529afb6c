package launch

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// ProbeRequest asks for the probes of 'ringlet sandbox check'.
type ProbeRequest struct {
	// Workspace and Home are the checker's throwaway directories, the
	// probes' workspace and HOME.
	Workspace, Home string
	// HostHome is the user's HOME on the host, which the probes look for
	// from inside.
	HostHome string
	// Profile, when set, adds its extra --ro/--rw paths, its .git setting
	// and its limits; never its workspace, HOME or network.
	Profile *profile.Profile
	// DaemonPort is the daemon's TCP port, which must be unreachable
	// from inside; "" leaves that probe out.
	DaemonPort string
}

// Probe is one escape attempt in a throwaway sandbox built like an
// agent's (no network): it passes when its plan exits 0 (each script
// exits 0 only when the escape failed) and nothing in Absent exists on
// the host afterwards.
type Probe struct {
	Name   string
	Plan   *Plan
	Absent []string
}

// Probes are the plans of 'ringlet sandbox check', and the tool and
// limits they run with.
type Probes struct {
	Tool   string
	Limits sandbox.Limits
	Probes []Probe
}

// Probes builds the escape probes of r.
func (b *Builder) Probes(r ProbeRequest) (*Probes, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("sandbox check runs its probes on Linux only")
	}
	for what, v := range map[string]string{"HOME": r.HostHome, "the probes' workspace": r.Workspace, "the probes' HOME": r.Home} {
		if err := checkText(what, v); err != nil {
			return nil, err
		}
	}
	if err := b.CheckOwn("", r.Workspace, r.Home); err != nil {
		return nil, err
	}
	tool, err := bubblewrap()
	if err != nil {
		return nil, err
	}
	var extraRO, extraRW []string
	allowGit := false
	limits := sandbox.NewLimits(0, 0, 0)
	if p := r.Profile; p != nil {
		if err := b.CheckOwn("", append(append([]string{}, p.ReadOnly...), p.ReadWrite...)...); err != nil {
			return nil, err
		}
		extraRO, extraRW, allowGit = p.ReadOnly, p.ReadWrite, p.AllowGitConfig
		limits = sandbox.NewLimits(p.MaxProcs, p.MaxMemory, p.TmpSize)
	}
	nested := noNestedUserns(tool)
	out := &Probes{Tool: tool, Limits: limits}
	for _, pr := range b.probes(r.HostHome, r.DaemonPort, limits) {
		pol := &sandbox.Policy{Workspace: r.Workspace, Home: r.Home, HomePath: "/home/probe", Command: []string{"/bin/bash", "-c", pr.script},
			Env: []string{"PATH=/usr/bin:/bin", "HOME=/home/probe"}, Network: sandbox.NetNone, Ringlet: b.opts.Executable,
			Limits: limits, Limiter: b.opts.Executable,
			ReadOnly: extraRO, ReadWrite: extraRW, AllowGitConfig: allowGit,
			NoNestedUserns: nested}
		argv, files, err := pol.ArgsFD(tool)
		if err != nil {
			return nil, err
		}
		out.Probes = append(out.Probes, Probe{Name: pr.name, Absent: pr.absent,
			Plan: &Plan{Argv: argv, Env: []string{}, Files: files, Sandboxed: true, Workspace: r.Workspace, Trees: pol.Trees(), Summary: pol.Summary()}})
	}
	return out, nil
}

type probe struct {
	name, script string
	absent       []string
}

func (b *Builder) probes(hostHome, daemonPort string, limits sandbox.Limits) []probe {
	l := limits.WithDefaults()
	ringlet := b.opts.Executable
	var escapes []string
	for _, d := range []string{"/", "/var", "/opt", "/home", "/root", "/tmp", hostHome} {
		if d != "" {
			escapes = append(escapes, filepath.Join(d, ".ringlet-probe-escape"))
		}
	}
	ps := []probe{
		// The binary makes each refused system call and compares the
		// errno with the filter's; Seccomp: 2 is filter mode.
		{name: "seccomp filter refuses namespaces, mounts, keyring, io_uring, ptrace, perf, bpf and TIOCSTI", script: fmt.Sprintf(`grep -q '^Seccomp:[[:space:]]*2$' /proc/self/status && %q sandbox syscalls >/dev/null`, ringlet)},
		{name: "host home is not visible", script: fmt.Sprintf(`! ls -A %q/.ssh >/dev/null 2>&1 && ! test -e %q/.bash_history`, hostHome, hostHome)},
		{name: "Ringlet's config dir (token, keys) is not visible", script: fmt.Sprintf(`! test -e %q`, b.opts.ConfigDir)},
		{name: "system dirs are read-only", script: `! touch /usr/.ringlet-probe 2>/dev/null && ! touch /etc/.ringlet-probe 2>/dev/null`},
		{name: "writes outside the workspace never reach the host", script: `for d in / /var /opt /home /root /tmp; do touch "$d/.ringlet-probe-escape" 2>/dev/null; done; true`,
			absent: escapes},
		{name: "no capabilities", script: `grep -q '^CapEff:[[:space:]]*0*$' /proc/self/status`},
		{name: "no new privileges", script: `grep -q '^NoNewPrivs:[[:space:]]*1$' /proc/self/status`},
		{name: "no nested user namespaces (no mounting)", script: `! unshare -Ur true 2>/dev/null`},
		{name: "host processes are not visible", script: `test "$(ls /proc | grep -c '^[0-9]')" -lt 10`},
		// Not find -xdev: every bind mount is another device, so it
		// would look at nothing. And find -type s trusts the directory
		// entry, which for a socket bound onto a placeholder file says
		// "file": every mount point is tested as well.
		{name: "no host sockets", script: `! find / -path /proc -prune -o -type s -print 2>/dev/null | grep -q . && ! cut -d' ' -f5 /proc/self/mountinfo | while read -r m; do test -S "$m" && echo "$m"; done | grep -q .`},
	}
	ps = append(ps,
		probe{name: fmt.Sprintf("/tmp, /var/tmp and /dev/shm hold %s at most; / and /dev are read-only", profile.FormatSize(l.Tmp)),
			script: fmt.Sprintf(`for d in /tmp /var/tmp /dev/shm; do set -- $(stat -f -c '%%b %%S' "$d") && [ $(($1 * $2)) -le %d ] || exit 1; done; ! touch /.ringlet-probe 2>/dev/null && ! touch /dev/.ringlet-probe 2>/dev/null`, l.Tmp)},
		probe{name: "no core dumps", script: `[ "$(ulimit -c)" = 0 ]`})
	if l.Mechanism == sandbox.LimitRlimit {
		ps = append(ps, probe{name: "processes and per-process memory are bounded (RLIMIT_NPROC, RLIMIT_DATA)",
			script: fmt.Sprintf(`[ "$(ulimit -u)" != unlimited ] && [ "$(ulimit -d)" -le %d ]`, l.Memory>>10)})
	}
	if daemonPort != "" {
		ps = append(ps, probe{name: "the daemon's TCP port is unreachable", script: fmt.Sprintf(`! (exec 3<>/dev/tcp/127.0.0.1/%s) 2>/dev/null`, daemonPort)})
	}
	return ps
}
