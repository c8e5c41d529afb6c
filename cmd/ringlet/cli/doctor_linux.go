package cli

import "github.com/neullabs/ringlet/sandbox"

// seccompBuilds reports whether the sandbox's seccomp filter assembles
// for this architecture.
func seccompBuilds() error {
	_, err := sandbox.SeccompFilter()
	return err
}
