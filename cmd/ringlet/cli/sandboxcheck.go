package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// probe is one escape attempt run inside a throwaway sandbox; it passes
// when the shell snippet exits 0 (each snippet exits 0 only when the
// escape failed).
type probe struct {
	name, script string
	// hostCheck, when set, must also hold on the host after the run.
	hostCheck func() bool
}

func sandboxProbes(hostHome, configDir, daemonPort, ringlet string, limits sandbox.Limits) []probe {
	l := limits.WithDefaults()
	ps := []probe{
		// The binary makes each refused system call and compares the
		// errno with the filter's; Seccomp: 2 is filter mode.
		{name: "seccomp filter refuses namespaces, mounts, keyring, io_uring, ptrace, perf, bpf and TIOCSTI", script: fmt.Sprintf(`grep -q '^Seccomp:[[:space:]]*2$' /proc/self/status && %q sandbox syscalls >/dev/null`, ringlet)},
		{name: "host home is not visible", script: fmt.Sprintf(`! ls -A %q/.ssh >/dev/null 2>&1 && ! test -e %q/.bash_history`, hostHome, hostHome)},
		{name: "Ringlet's config dir (token, keys) is not visible", script: fmt.Sprintf(`! test -e %q`, configDir)},
		{name: "system dirs are read-only", script: `! touch /usr/.ringlet-probe 2>/dev/null && ! touch /etc/.ringlet-probe 2>/dev/null`},
		{name: "writes outside the workspace never reach the host", script: `for d in / /var /opt /home /root /tmp; do touch "$d/.ringlet-probe-escape" 2>/dev/null; done; true`,
			hostCheck: func() bool {
				for _, d := range []string{"/", "/var", "/opt", "/home", "/root", "/tmp", hostHome} {
					if _, err := os.Lstat(filepath.Join(d, ".ringlet-probe-escape")); err == nil {
						return false
					}
				}
				return true
			}},
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

func (a *app) sandboxCheckCmd() *cobra.Command {
	var asJSON bool
	var profileName string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Show whether the sandbox works here, and run escape probes in a throwaway sandbox",
		Long: `Check that bubblewrap is installed and can create a sandbox on this machine
(saying how to fix it when not), then run escape probes inside a throwaway
sandbox built like an agent's (empty HOME and workspace, no network) and
print a pass/fail table: among them, every system call the seccomp filter
refuses, and the resource limits. The second line says how processes and
memory are bounded here (a systemd scope, or rlimits). Exits 1 if the
sandbox does not work or any probe fails. With --profile, the throwaway sandbox also gets that profile's extra
--ro/--rw paths and .git setting (its network stays none, and the probes
never touch the profile's workspace or HOME).`,
		Example: "  ringlet sandbox check\n  ringlet sandbox check --profile work --json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runtime.GOOS != "linux" {
				return fmt.Errorf("sandbox check runs its probes on Linux only")
			}
			bwrap, err := sandbox.Find()
			if err != nil {
				return err
			}
			if err := sandbox.Check(bwrap); err != nil {
				return err
			}
			tmp, err := os.MkdirTemp("", "ringlet-check-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
			ws, home := filepath.Join(tmp, "ws"), filepath.Join(tmp, "home")
			for _, d := range []string{ws, home} {
				if err := os.Mkdir(d, 0o700); err != nil {
					return err
				}
			}
			var extraRO, extraRW []string
			allowGit := false
			limits := sandbox.NewLimits(0, 0, 0)
			if profileName != "" {
				if err := names.Check("profile", profileName); err != nil {
					return usageError{err}
				}
				c, err := a.ensureDaemon(cmd.Context())
				if err != nil {
					return err
				}
				view, err := c.Profile(cmd.Context(), profileName)
				if err != nil {
					return err
				}
				extraRO, extraRW, allowGit = view.ReadOnly, view.ReadWrite, view.AllowGitConfig
				limits = sandbox.NewLimits(view.MaxProcs, view.MaxMemory, view.TmpSize)
			}
			hostHome := a.getenv("HOME")
			port := ""
			if st, ok := client.ReadState(a.paths.StateFile()); ok && client.ProcessAlive(st.PID) {
				if i := strings.LastIndex(st.Listen, ":"); i >= 0 {
					port = st.Listen[i+1:]
				}
			}
			type result struct {
				Probe  string `json:"probe"`
				Passed bool   `json:"passed"`
			}
			ringlet, err := os.Executable()
			if err != nil {
				return err
			}
			var results []result
			failed := 0
			for _, p := range sandboxProbes(hostHome, a.paths.ConfigDir, port, ringlet, limits) {
				pol := &sandbox.Policy{Workspace: ws, Home: home, HomePath: "/home/probe", Command: []string{"/bin/bash", "-c", p.script},
					Env: []string{"PATH=/usr/bin:/bin", "HOME=/home/probe"}, Network: sandbox.NetNone, Ringlet: ringlet,
					Limits: limits, Limiter: ringlet,
					ReadOnly: extraRO, ReadWrite: extraRW, AllowGitConfig: allowGit,
					NoNestedUserns: sandbox.DisableUsernsSupported(bwrap)}
				ok, err := runProbe(pol, bwrap)
				if err != nil {
					return err
				}
				if ok && p.hostCheck != nil {
					ok = p.hostCheck()
				}
				if !ok {
					failed++
				}
				results = append(results, result{p.name, ok})
			}
			if asJSON {
				l := limits.WithDefaults()
				writeJSONOut(a.stdio.Out, map[string]any{"bwrap": bwrap, "seccomp": true, "probes": results,
					"limits": map[string]any{"mechanism": l.Mechanism, "procs": l.Procs, "memory": l.Memory, "tmp": l.Tmp, "procs_bounded": limitsBindProcs(l)}})
			} else {
				fmt.Fprintf(a.stdio.Out, "sandbox: %s works here, with a seccomp filter\n", bwrap)
				fmt.Fprintf(a.stdio.Out, "limits: %s\n", describeLimits(limits))
				t := newTable(a.stdio.Out)
				t.row("RESULT", "PROBE")
				for _, r := range results {
					res := "PASS"
					if !r.Passed {
						res = "FAIL"
					}
					t.row(res, r.Probe)
				}
				t.flush()
			}
			if failed > 0 {
				return fmt.Errorf("%d sandbox probe(s) failed", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&profileName, "profile", "", "also apply this profile's extra paths")
	return cmd
}

// sandboxSyscallsCmd runs inside a sandbox (sandbox check runs it there):
// it makes each system call the seccomp filter refuses and reports
// whether the filter answered.
func (a *app) sandboxSyscallsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:    "syscalls",
		Short:  "Inside a sandbox: check that the seccomp filter refuses what it should",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			results, err := runSyscallProbes()
			if err != nil {
				return err
			}
			failed := 0
			for _, r := range results {
				if !r.Passed {
					failed++
				}
			}
			if asJSON {
				writeJSONOut(a.stdio.Out, results)
			} else {
				t := newTable(a.stdio.Out)
				t.row("RESULT", "CALL", "GOT", "WANT")
				for _, r := range results {
					res := "PASS"
					if !r.Passed {
						res = "FAIL"
					}
					t.row(res, r.Call, r.Got, r.Want)
				}
				t.flush()
			}
			if failed > 0 {
				return fmt.Errorf("%d system call(s) were not refused as the seccomp filter should: is this inside a Ringlet sandbox?", failed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// runProbe runs a probe's sandbox the way agents' are run (options and
// seccomp filter on descriptors) and reports whether it exited 0.
func runProbe(pol *sandbox.Policy, bwrap string) (bool, error) {
	argv, fds, err := pol.ArgsFD(bwrap)
	if err != nil {
		return false, err
	}
	pipes, err := sandbox.NewPipes(fds)
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	c := exec.Command(argv[0], argv[1:]...)
	c.Env = []string{}
	c.Stdout, c.Stderr = &out, &out
	c.ExtraFiles = pipes.Files()
	err = c.Start()
	pipes.Started(err == nil)
	if err != nil {
		return false, fmt.Errorf("start the sandbox: %w", err)
	}
	return c.Wait() == nil, nil
}

// limitsBindProcs reports whether the process bound holds: root is exempt
// from RLIMIT_NPROC (a systemd scope binds it too).
func limitsBindProcs(l sandbox.Limits) bool {
	return l.WithDefaults().Mechanism == sandbox.LimitSystemd || os.Geteuid() != 0
}

// describeLimits says how the sandbox's resources are bounded here.
func describeLimits(limits sandbox.Limits) string {
	l := limits.WithDefaults()
	tmp := profile.FormatSize(l.Tmp) + " per writable tmpfs (/tmp, /var/tmp, /dev/shm), no core dumps"
	if l.Mechanism == sandbox.LimitSystemd {
		return fmt.Sprintf("systemd scope (cgroup v2): at most %d processes and %s of memory for the sandbox; %s", l.Procs, profile.FormatSize(l.Memory), tmp)
	}
	procs := fmt.Sprintf("%d processes more than the user runs when it starts", l.Procs)
	if !limitsBindProcs(l) {
		procs = "processes NOT bounded (root is exempt from RLIMIT_NPROC; run as a user, or where a systemd manager is reachable)"
	}
	return fmt.Sprintf("rlimits (no systemd scope here): %s, %s of data per process; %s", procs, profile.FormatSize(l.Memory), tmp)
}
