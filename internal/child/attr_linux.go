package child

import "syscall"

// Attr puts a child in a process group of its own (so it and whatever it
// spawns can be killed together) and has the kernel kill it if the daemon
// dies first.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
