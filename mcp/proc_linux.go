package mcp

import "syscall"

// childAttr puts an upstream server in a process group of its own (so it
// and whatever it spawns can be killed together) and has the kernel kill
// it if the daemon dies without stopping it.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
