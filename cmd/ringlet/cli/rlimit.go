//go:build linux || darwin

package cli

import (
	"fmt"
	"os/exec"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// sandboxRlimitCmd runs outside the sandbox, in front of bwrap (or
// sandbox-exec): it sets the rlimits on itself and execs the sandbox, so
// they hold from its first instruction and everything in it inherits
// them. The sandbox package puts it on the command line (Limits).
func (a *app) sandboxRlimitCmd() *cobra.Command {
	var procs int
	var memory int64
	var setenv []string
	cmd := &cobra.Command{
		Use:    "rlimit [--procs N] [--memory BYTES] [--setenv KEY=VALUE]... -- PROGRAM [ARGS...]",
		Short:  "Set the sandbox's rlimits and exec PROGRAM",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := exec.LookPath(args[0])
			if err != nil {
				return err
			}
			if err := applyRlimits(procs, memory); err != nil {
				return fmt.Errorf("set the sandbox's resource limits: %w", err)
			}
			env := a.environ()
			for _, kv := range setenv {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					return usagef("--setenv %q: want KEY=VALUE", kv)
				}
				env = append(env, kv)
			}
			return syscall.Exec(path, args, env)
		},
	}
	cmd.Flags().IntVar(&procs, "procs", 0, "processes (threads on Linux) the sandbox may start beyond the user's current count")
	cmd.Flags().Int64Var(&memory, "memory", 0, "RLIMIT_DATA of each process, in bytes")
	cmd.Flags().StringArrayVar(&setenv, "setenv", nil, "add KEY=VALUE to PROGRAM's environment (repeatable)")
	return cmd
}

// applyRlimits lowers this process's limits (never raises a hard one):
// RLIMIT_CORE to 0, and with procs and memory RLIMIT_NPROC and
// RLIMIT_DATA.
func applyRlimits(procs int, memory int64) error {
	set := func(res int, v uint64) error {
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err != nil {
			return err
		}
		v = min(v, cur.Max)
		return unix.Setrlimit(res, &unix.Rlimit{Cur: v, Max: v})
	}
	if err := set(unix.RLIMIT_CORE, 0); err != nil {
		return fmt.Errorf("RLIMIT_CORE: %w", err)
	}
	if memory > 0 {
		if err := set(unix.RLIMIT_DATA, uint64(memory)); err != nil {
			return fmt.Errorf("RLIMIT_DATA: %w", err)
		}
	}
	if procs > 0 {
		// The kernel counts every process of the user against
		// RLIMIT_NPROC, so the bound is relative to what runs now.
		n, err := userTasks(unix.Getuid())
		if err != nil {
			return fmt.Errorf("count the user's processes: %w", err)
		}
		if err := set(unix.RLIMIT_NPROC, uint64(n+procs)); err != nil {
			return fmt.Errorf("RLIMIT_NPROC: %w", err)
		}
	}
	return nil
}
