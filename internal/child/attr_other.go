//go:build !linux

package child

import "syscall"

// Attr puts a child in a process group of its own, so it and whatever it
// spawns can be killed together.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// Contained is Attr: this system has no PID namespaces, so a child's
// descendants that leave its process group can outlive it.
func Contained() (attr *syscall.SysProcAttr, ok bool) {
	return Attr(), false
}
