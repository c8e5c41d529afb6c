//go:build !linux

package cli

import "errors"

// probeResult is what one system call probe found.
type probeResult struct {
	Call   string `json:"call"`
	Passed bool   `json:"passed"`
	Got    string `json:"got"`
	Want   string `json:"want"`
}

// runSyscallProbes has nothing to probe: only Linux sandboxes have a
// seccomp filter.
func runSyscallProbes() ([]probeResult, error) {
	return nil, errors.New("the seccomp filter and its probes are Linux only")
}
