//go:build !linux

package child

import "syscall"

// Attr puts a child in a process group of its own, so it and whatever it
// spawns can be killed together.
func Attr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
