// Package launch builds every sandbox Ringlet starts: an agent's (run in
// the foreground by 'ringlet profiles run', or by the daemon for
// --remote), a profile's stdio MCP server's, and the throwaway ones of
// 'ringlet sandbox check'. It is the one place a sandbox.Policy is
// assembled: the binds and their guards (Ringlet's own files, git,
// protected paths, hard links), the network and the forwarder, the
// allowed hosts' proxy, the limits and their launcher, the seccomp
// filter, the nested user namespace switch, the environment.
//
// Only the daemon uses it. What it builds is a Plan: a command line and
// the payloads for its descriptors 3, 4, ... (bwrap's options, which hold
// the session token, and the seccomp filter), which a launcher runs as it
// is: the CLI for a foreground agent and the probes, the daemon for a
// remote agent and an MCP server.
package launch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/neullabs/ringlet/sandbox"
	"github.com/neullabs/ringlet/toolchain"
)

// Options configure a Builder.
type Options struct {
	// OwnPaths are Ringlet's own files and directories (its config, state
	// and data directories, the audit log's files): no sandbox may bind a
	// path that is, holds or lies inside one of them, a profile's own HOME
	// aside.
	OwnPaths []string
	// Executable is the ringlet binary on the host: the forwarder inside
	// a sandbox on the provider network, the rlimit helper in front of
	// bubblewrap, and what the Claude Code hook runs.
	Executable string
	// StateDir is Ringlet's state directory, where workspace leases keep
	// their lock files (sandbox.Lease).
	StateDir string
	// EmptyFile is an empty file no sandbox can write, bound over the
	// protected paths that are missing or empty (sandbox.EmptyFile).
	EmptyFile string
	// ConfigDir is Ringlet's config directory (the token, the keys file),
	// which the probes look for from inside.
	ConfigDir string
	// Home is the user's HOME: what a program needs is never bound by a
	// directory that holds it, is it, or is one of its dot-directories
	// (toolchain.Options.Homes).
	Home string
}

// Builder builds sandboxes from profiles. It holds no state of its own
// beyond its options; the leases it takes belong to what it returns.
type Builder struct {
	opts Options
}

// New returns a Builder.
func New(opts Options) *Builder {
	return &Builder{opts: opts}
}

// CheckOwn refuses a path that a sandbox of a profile whose HOME is home
// would bind when it would show Ringlet's own files (OwnPaths). A path
// within home is allowed: it is bound anyway. Empty paths are skipped.
func (b *Builder) CheckOwn(home string, paths ...string) error {
	for _, p := range paths {
		if p == "" {
			continue
		}
		if err := sandbox.ExposesOwn(p, home, b.opts.OwnPaths); err != nil {
			return err
		}
	}
	return nil
}

// resolve finds what program needs to run in a sandbox: the program
// behind a shim (from the answers in o.Shims; the daemon never asks a
// version manager), its interpreters, and the install roots to bind
// read-only, none of which may show Ringlet's own files.
func (b *Builder) resolve(program string, o toolchain.Options, sandboxed bool) (*toolchain.Resolution, error) {
	o.Homes = append(append([]string{}, o.Homes...), b.opts.Home)
	res, err := toolchain.Resolve(program, o)
	if err != nil {
		return nil, err
	}
	if sandboxed {
		if err := b.CheckOwn("", res.Binds...); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// withPath is env with dirs put first on its PATH.
func withPath(env []string, dirs []string) []string {
	if len(dirs) == 0 {
		return env
	}
	out := append([]string{}, env...)
	for i, kv := range out {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			out[i] = "PATH=" + strings.Join(append(append([]string{}, dirs...), v), string(filepath.ListSeparator))
			return out
		}
	}
	return append(out, "PATH="+strings.Join(dirs, string(filepath.ListSeparator)))
}

// bubblewrap finds the sandbox tool and, on Linux, checks that it can
// create a sandbox here; the error says how to fix it.
func bubblewrap() (string, error) {
	tool, err := sandbox.Find()
	if err != nil {
		return "", err
	}
	if runtime.GOOS == "linux" {
		if err := sandbox.Check(tool); err != nil {
			return "", err
		}
	}
	return tool, nil
}

// noNestedUserns reports whether the sandbox can refuse nested user
// namespaces (bubblewrap 0.8 and later); a sandbox runs without that
// refusal otherwise, with a warning.
func noNestedUserns(tool string) bool {
	return runtime.GOOS == "linux" && sandbox.DisableUsernsSupported(tool)
}

// findProgram finds name as a shell of the launcher would: a name with a
// slash relative to dir, its working directory; any other in each
// absolute directory of path, its PATH. Relative PATH entries are
// skipped, as os/exec refuses them (exec.ErrDot).
func findProgram(name, path, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) {
			if !filepath.IsAbs(dir) {
				return "", fmt.Errorf("cannot find the agent's program %q: it is relative, and the launcher's directory is unknown", name)
			}
			p = filepath.Join(dir, p)
		}
		if executable(p) {
			return filepath.Clean(p), nil
		}
		return "", fmt.Errorf("cannot run the agent's program %s: it is missing or not executable", p)
	}
	if p := toolchain.LookPath(name, path); p != "" {
		return p, nil
	}
	return "", fmt.Errorf("cannot find the agent's program %q on PATH: install it first", name)
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// checkText refuses a value from a launcher that could cut a command
// line or an environment entry in two.
func checkText(what, v string) error {
	if strings.ContainsRune(v, 0) {
		return fmt.Errorf("%s contains a NUL byte", what)
	}
	return nil
}

// HookReplay is the sandbox a hook runs in for 'ringlet hooks test', in
// dir (the profile's hook HOME), and what it reads on descriptors 3, ...:
// see sandbox.ReplayArgs.
func (b *Builder) HookReplay(dir string) ([]string, [][]byte, error) {
	tool, err := bubblewrap()
	if err != nil {
		return nil, nil, err
	}
	if b.opts.Executable == "" {
		return nil, nil, errors.New("the ringlet binary is unknown: it restricts the sandbox a hook is replayed in")
	}
	return sandbox.ReplayArgs(tool, b.opts.Executable, dir)
}
