package cli

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

// sandboxLandlockCmd runs inside the sandbox 'hooks test' replays a hook
// in (sandbox.ReplayArgs), after bubblewrap built it: it restricts itself
// with Landlock (read and execute everywhere, write only under the
// sandbox's throwaway /tmp, /var/tmp and /dev) and execs PROGRAM, which
// inherits that. The read-only bind mounts alone still let a process
// open a FIFO (or a device) elsewhere for writing and so reach a process
// outside; Landlock refuses it. Without Landlock the replay is refused.
func (a *app) sandboxLandlockCmd() *cobra.Command {
	var writable []string
	cmd := &cobra.Command{
		Use:    "landlock [--rw DIR]... -- PROGRAM [ARGS...]",
		Short:  "Restrict writes with Landlock and exec PROGRAM",
		Hidden: true,
		Args:   cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := exec.LookPath(args[0])
			if err != nil {
				return err
			}
			if err := restrictWrites(writable); err != nil {
				return err
			}
			return syscall.Exec(path, args, a.environ())
		},
	}
	cmd.Flags().StringArrayVar(&writable, "rw", nil, "a directory that stays writable (repeatable)")
	return cmd
}

// restrictWrites applies Landlock to this process: everything readable
// and executable, writable only under dirs (and device ioctls there).
// It fails when the kernel has no Landlock.
func restrictWrites(dirs []string) error {
	abi, _, errno := unix.Syscall(unix.SYS_LANDLOCK_CREATE_RULESET, 0, 0, unix.LANDLOCK_CREATE_RULESET_VERSION)
	if errno != 0 || abi < 1 {
		return errors.New("this kernel has no Landlock (Linux 5.13 or later, with landlock in its lsm= list): a hook is replayed only where it cannot write outside its sandbox")
	}
	// The newest version this library knows, down to what the kernel has
	// (at least version 1, checked above: every write right is in it).
	err := landlock.V11.BestEffort().RestrictPaths(
		landlock.RODirs("/"),
		landlock.RWDirs(dirs...).WithIoctlDev(),
	)
	if err != nil {
		return fmt.Errorf("restrict the sandbox with Landlock: %w", err)
	}
	return nil
}
