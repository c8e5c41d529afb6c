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

	"github.com/neullabs/ringlet/api"
	"github.com/neullabs/ringlet/client"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

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
			if profileName != "" {
				if err := names.Check("profile", profileName); err != nil {
					return usageError{err}
				}
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
			req := ProbeRequest{Workspace: ws, Home: home, HostHome: a.getenv("HOME")}
			if profileName != "" {
				c, err := a.ensureDaemon(cmd.Context())
				if err != nil {
					return err
				}
				view, err := c.Profile(cmd.Context(), profileName)
				if err != nil {
					return err
				}
				req.Profile = &view.Profile
			}
			o := DaemonOptions{Paths: a.paths, Stderr: a.stdio.Err, Getenv: a.getenv}
			if st, ok := client.ReadState(a.paths.StateFile()); ok && client.ProcessAlive(st.PID) {
				if i := strings.LastIndex(st.Listen, ":"); i >= 0 {
					req.DaemonPort = st.Listen[i+1:]
				}
				// The audit log the running daemon writes is one of
				// Ringlet's own files too.
				o.AuditLog = st.AuditLog
			}
			// The daemon's sandbox builder makes the probes' sandboxes, as
			// it makes every agent's; they run here.
			plans, err := a.daemon.SandboxProbes(o, req)
			if err != nil {
				return err
			}
			type result struct {
				Probe  string `json:"probe"`
				Passed bool   `json:"passed"`
			}
			var results []result
			failed := 0
			for _, p := range plans.Probes {
				ok, err := runProbe(p.Plan)
				if err != nil {
					return err
				}
				for _, f := range p.Absent {
					if _, err := os.Lstat(f); err == nil {
						ok = false
					}
				}
				if !ok {
					failed++
				}
				results = append(results, result{p.Name, ok})
			}
			if asJSON {
				if err := writeJSONOut(a.stdio.Out, map[string]any{"bwrap": plans.Bwrap, "seccomp": true, "probes": results, "limits": plans.Limits}); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdio.Out, "sandbox: %s works here, with a seccomp filter\n", plans.Bwrap)
				fmt.Fprintf(a.stdio.Out, "limits: %s\n", describeLimits(plans.Limits))
				t := newTable(a.stdio.Out)
				t.row("RESULT", "PROBE")
				for _, r := range results {
					res := "PASS"
					if !r.Passed {
						res = "FAIL"
					}
					t.row(res, r.Probe)
				}
				if err := t.flush(); err != nil {
					return err
				}
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
				if err := writeJSONOut(a.stdio.Out, results); err != nil {
					return err
				}
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
				if err := t.flush(); err != nil {
					return err
				}
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
func runProbe(plan api.LaunchPlan) (bool, error) {
	pipes, err := sandbox.NewPipes(plan.Files)
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	c := exec.Command(plan.Argv[0], plan.Argv[1:]...)
	c.Env = append([]string{}, plan.Env...)
	c.Dir = plan.Dir
	c.Stdout, c.Stderr = &out, &out
	c.ExtraFiles = pipes.Files()
	err = c.Start()
	pipes.Started(err == nil)
	if err != nil {
		return false, fmt.Errorf("start the sandbox: %w", err)
	}
	return c.Wait() == nil, nil
}

// describeLimits says how the sandbox's resources are bounded here.
func describeLimits(l SandboxLimits) string {
	tmp := profile.FormatSize(l.Tmp) + " per writable tmpfs (/tmp, /var/tmp, /dev/shm), no core dumps"
	if l.Mechanism == sandbox.LimitSystemd {
		return fmt.Sprintf("systemd scope (cgroup v2): at most %d processes and %s of memory for the sandbox; %s", l.Procs, profile.FormatSize(l.Memory), tmp)
	}
	procs := fmt.Sprintf("%d processes more than the user runs when it starts", l.Procs)
	if !l.ProcsBounded {
		procs = "processes NOT bounded (root is exempt from RLIMIT_NPROC; run as a user, or where a systemd manager is reachable)"
	}
	return fmt.Sprintf("rlimits (no systemd scope here): %s, %s of data per process; %s", procs, profile.FormatSize(l.Memory), tmp)
}
