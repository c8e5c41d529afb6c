package cli

import "golang.org/x/sys/unix"

// userTasks counts the processes of uid, which is what RLIMIT_NPROC
// counts on macOS.
func userTasks(uid int) (int, error) {
	procs, err := unix.SysctlKinfoProcSlice("kern.proc.ruid", uid)
	if err != nil {
		return 0, err
	}
	return len(procs), nil
}
