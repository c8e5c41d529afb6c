//go:build !linux

package cli

// seccompBuilds: only Linux sandboxes have a seccomp filter.
func seccompBuilds() error { return nil }
