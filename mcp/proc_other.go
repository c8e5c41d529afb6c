//go:build !linux

package mcp

import "syscall"

// childAttr puts an upstream server in a process group of its own, so it
// and whatever it spawns can be killed together.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
