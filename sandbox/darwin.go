//go:build darwin

package sandbox

import (
	"errors"
	"os/exec"
	"path/filepath"
)

// Args returns the sandbox-exec command line on macOS. The agent reaches
// Ringlet through a per-session listener on localhost (there are no
// network namespaces), which the profile allows and nothing else.
func (p *Policy) Args(sandboxExec string) ([]string, error) {
	prof, err := p.SBPL(ForwarderPort)
	if err != nil {
		return nil, err
	}
	// The rlimits apply on macOS too (RLIMIT_NPROC and RLIMIT_CORE; macOS
	// does not enforce RLIMIT_DATA); there is no tmpfs to size.
	return append(append(p.Limits.launcher(p.Limiter), sandboxExec, "-p", prof, "--"), p.Command...), nil
}

// ArgsFD is Args: sandbox-exec's command line carries no secret, so
// there are no options to pass on a file descriptor, and macOS has no
// seccomp.
func (p *Policy) ArgsFD(sandboxExec string) (argv []string, files [][]byte, err error) {
	argv, err = p.Args(sandboxExec)
	return argv, nil, err
}

// Find returns sandbox-exec.
func Find() (string, error) {
	p, err := exec.LookPath("sandbox-exec")
	if err != nil {
		return "", errors.New("sandbox-exec is missing; it ships with macOS at /usr/bin/sandbox-exec")
	}
	return p, nil
}

// Check runs /usr/bin/true under a deny-default profile.
func Check(sandboxExec string) error {
	return exec.Command(sandboxExec, "-p", "(version 1)(allow default)", "/usr/bin/true").Run()
}

// DisableUsernsSupported is a bubblewrap feature; macOS has no user
// namespaces to disable.
func DisableUsernsSupported(string) bool { return false }

// BinDir is the directory, inside a sandbox whose policy names the ringlet
// binary ringlet, that holds it: sandbox-exec shows files at their own
// paths, so its own directory.
func BinDir(ringlet string) string { return filepath.Dir(ringlet) }

// ReplayArgs is not available on macOS yet: 'hooks test --input' needs
// bubblewrap.
func ReplayArgs(string, string, string) ([]string, [][]byte, error) {
	return nil, nil, errors.New("'hooks test --input' runs hooks in a bubblewrap sandbox, on Linux only")
}
