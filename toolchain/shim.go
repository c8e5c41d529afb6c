package toolchain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Shim is a version manager's stand-in for a program: a script or a link
// that runs the manager, which then picks the program by the user's
// settings (PYENV_VERSION, .python-version, .tool-versions, ...). In a
// sandbox the manager is not there to run, and its settings are not.
type Shim struct {
	// Path is the shim.
	Path string `json:"path"`
	// Manager names the version manager: pyenv, rbenv, nodenv, asdf,
	// mise, volta, rustup, ...
	Manager string `json:"manager"`
	// Tool is the command the shim stands for: its name.
	Tool string `json:"tool"`

	// command asks the manager which program it runs for Tool: the
	// manager (absolute, or a name on the user's PATH) and its arguments;
	// nil for a manager this package does not know how to ask.
	command []string
	// env is set for the command, as the shim itself sets it
	// (PYENV_ROOT).
	env []string
}

// Which is the command a user runs to ask the manager, e.g. "pyenv which
// python3"; "" when this package does not know it.
func (s Shim) Which() string {
	if len(s.command) == 0 {
		return ""
	}
	return strings.Join(append([]string{s.Manager}, s.command[1:]...), " ")
}

var (
	// pyenv, rbenv, nodenv, goenv, ...:
	//   export PYENV_ROOT="/home/u/.pyenv"
	//   exec "/home/u/.pyenv/libexec/pyenv" exec "$program" "$@"
	envExecRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*exec\s+"([^"\n]+)"\s+exec\s+"\$program"`) })
	envRootRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*export\s+([A-Z]+_ROOT)="([^"\n]*)"`) })
	// asdf: exec /home/u/.asdf/bin/asdf exec "node" "$@", or exec asdf exec ...
	asdfExecRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*exec\s+"?([^"\s]*asdf)"?\s+exec\s`) })
	// mise in its script mode: exec mise x -- node "$@"
	miseExecRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`(?m)^\s*exec\s+"?([^"\s]*mise)"?\s+(x|exec)\s`) })
)

// DetectShim reports whether p is a version manager's shim, and whose.
func DetectShim(p string) (Shim, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return Shim{}, false
	}
	// Shims find what to run by the name they were run as ($0), so the
	// tool is p's name even when p is a link to a shim.
	s := Shim{Path: p, Tool: filepath.Base(p)}
	if fi.Mode()&os.ModeSymlink != 0 {
		t, err := os.Readlink(p)
		if err != nil {
			return Shim{}, false
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		switch filepath.Base(t) {
		case "mise":
			// mise's shims are links to mise itself.
			if s.Tool != "mise" {
				s.Manager, s.command = "mise", []string{t, "which", s.Tool}
				return s, true
			}
		case "volta-shim":
			s.Manager, s.command = "volta", []string{filepath.Join(filepath.Dir(t), "volta"), "which", s.Tool}
			return s, true
		case "rustup", "rustup-init":
			if !rustupItself(s.Tool) {
				s.Manager, s.command = "rustup", []string{t, "which", s.Tool}
				return s, true
			}
		}
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return Shim{}, false
	}
	// rustup's proxies (cargo, rustc, ... in ~/.cargo/bin) are hard links
	// to rustup beside them.
	if rustup := filepath.Join(filepath.Dir(real), "rustup"); !rustupItself(s.Tool) && sameFile(real, rustup) {
		s.Manager, s.command = "rustup", []string{rustup, "which", s.Tool}
		return s, true
	}
	if filepath.Base(filepath.Dir(real)) != "shims" {
		return Shim{}, false
	}
	head := readHead(real, 8<<10)
	switch {
	case envExecRE().Match(head):
		bin := string(envExecRE().FindSubmatch(head)[1])
		s.Manager, s.command = filepath.Base(bin), []string{bin, "which", s.Tool}
		for _, m := range envRootRE().FindAllSubmatch(head, -1) {
			s.env = append(s.env, string(m[1])+"="+string(m[2]))
		}
	case asdfExecRE().Match(head):
		s.Manager, s.command = "asdf", []string{string(asdfExecRE().FindSubmatch(head)[1]), "which", s.Tool}
	case miseExecRE().Match(head):
		s.Manager, s.command = "mise", []string{string(miseExecRE().FindSubmatch(head)[1]), "which", s.Tool}
	default:
		// A shims directory of a manager this does not know: still not
		// something a sandbox can run.
		s.Manager = strings.TrimPrefix(filepath.Base(filepath.Dir(filepath.Dir(real))), ".")
	}
	return s, true
}

func rustupItself(tool string) bool { return tool == "rustup" || tool == "rustup-init" }

func sameFile(a, b string) bool {
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

func readHead(p string, n int64) []byte {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, n)) // a short read is judged as it is
	return b
}

// askTimeout bounds one question to a manager; a manager that installs
// on demand (mise, volta) may take a while.
const askTimeout = 30 * time.Second

// Ask runs the shim's manager as the user, in the user's environment env
// and working directory dir (where .python-version and .tool-versions
// pick a version), and returns the program it names for the shim. Only
// the user's side asks: the daemon never runs a version manager.
func (s Shim) Ask(ctx context.Context, env []string, dir string) (string, error) {
	if len(s.command) == 0 {
		return "", fmt.Errorf("Ringlet does not know how to ask %s which program it runs", s.Manager)
	}
	bin := s.command[0]
	if !filepath.IsAbs(bin) {
		if bin = LookPath(bin, getenv(env, "PATH")); bin == "" {
			return "", fmt.Errorf("%s is not on PATH", s.command[0])
		}
	}
	ctx, cancel := context.WithTimeout(ctx, askTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, s.command[1:]...)
	cmd.Env = append(append([]string{}, env...), s.env...)
	cmd.Dir = dir
	var out, errb capped
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if l := lastLine(errb.Bytes()); l != "" {
			return "", errors.New(l)
		}
		return "", err
	}
	for l := range strings.SplitSeq(out.String(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l, nil
		}
	}
	return "", fmt.Errorf("%s printed nothing", s.Which())
}

func getenv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > 300 {
		l = l[:300] + "..."
	}
	return l
}

// capped keeps the first 64 KiB written to it.
type capped struct{ bytes.Buffer }

func (c *capped) Write(p []byte) (int, error) {
	if room := 64<<10 - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// ShimError is a shim the sandbox cannot run and that has no answer.
type ShimError struct {
	Shim Shim
	// Via is the script whose #! line leads to the shim; "" when the shim
	// is the program itself.
	Via string
	// Err is the manager's failure to answer; nil when it was not asked
	// (the daemon never asks).
	Err error
}

func (e *ShimError) Error() string {
	var b strings.Builder
	if e.Via != "" {
		fmt.Fprintf(&b, "%s runs %s (its #! line), which is a %s shim (%s)", e.Via, e.Shim.Tool, e.Shim.Manager, e.Shim.Path)
	} else {
		fmt.Fprintf(&b, "%s is a %s shim (%s)", e.Shim.Tool, e.Shim.Manager, e.Shim.Path)
	}
	if e.Err != nil {
		w := e.Shim.Which()
		if w == "" {
			w = e.Shim.Manager
		}
		fmt.Fprintf(&b, ", and `%s` answered: %v", w, e.Err)
	}
	fmt.Fprintf(&b, "; the sandbox cannot run %s", e.Shim.Manager)
	return b.String()
}

// Words are argv, the command as the user gave it, with the program
// itself in place of the shim, unquoted: the shim replaced by the shell
// substitution "$(pyenv which python3)", or a script whose #! line leads
// to one run by that interpreter. Nil when the manager cannot be asked.
func (e *ShimError) Words(argv []string) []string {
	w := e.Shim.Which()
	if w == "" || len(argv) == 0 {
		return nil
	}
	words := []string{"$(" + w + ")"}
	if e.Via != "" {
		words = append(words, e.Via)
	}
	return append(words, argv[1:]...)
}

// Fix is Words as a line for the user's shell, each word quoted where it
// needs it; "" when the manager cannot be asked.
func (e *ShimError) Fix(argv []string) string {
	words := e.Words(argv)
	if words == nil {
		return ""
	}
	out := []string{`"` + words[0] + `"`}
	for _, w := range words[1:] {
		out = append(out, Quote(w))
	}
	return strings.Join(out, " ")
}

// Quote quotes s for a POSIX shell when it needs it.
func Quote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@%+=:,./_-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
