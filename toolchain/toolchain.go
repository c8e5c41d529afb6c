// Package toolchain finds what a command needs to run in a sandbox that
// shows the system and nothing of the user's HOME: the program behind a
// version manager's shim, the interpreters its #! lines name (recursively,
// to a bound), and the install roots that hold them, which the sandbox
// binds read-only, with the bin directories to put first on its PATH.
//
// A shim (pyenv, rbenv, nodenv, asdf, mise, volta, a rustup proxy) runs
// its manager, which the sandbox cannot: it is replaced by the program the
// manager names for it. Only the user's side asks a manager (Shim.Ask, in
// the user's shell environment and directory); the daemon takes the
// answers it is given (Options.Shims) and refuses a shim without one,
// saying what to run instead.
//
// What is bound is an install root (~/.pyenv/versions/3.12.1,
// ~/.nvm/versions/node/v20.11.0, a Python venv, an npm package), else the
// directory of the file, else the file alone: never HOME or a directory
// above it, a dot-directory of HOME itself (~/.cargo holds
// credentials.toml, ~/.config and ~/.ssh worse), ~/.local/share or
// anything under ~/.config.
package toolchain

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Bounds of one resolution: shims and interpreters followed from the
// program, and symbolic links followed from one path (the kernel's own
// limit is 40).
const (
	maxSteps = 8
	maxLinks = 40
)

// Options say where to look and what is already known.
type Options struct {
	// Path is the PATH a bare program name and a #! line's
	// `/usr/bin/env NAME` are found on (relative entries are skipped, as
	// os/exec does). For a sandboxed MCP server it is the PATH of the
	// shell that added it; for an agent, that of the shell that runs it.
	Path string
	// Dir is where a relative program path is found; "" refuses one.
	Dir string
	// Homes are the user's home directories (HOME, the launcher's HOME):
	// none of them, nothing above them and none of their dot-directories
	// is ever bound whole.
	Homes []string
	// Shims are answers already given: a shim's path, and the program its
	// manager runs for it.
	Shims map[string]string
	// Ask asks a shim's manager; nil (the daemon) leaves a shim that has
	// no answer in Shims refused.
	Ask func(Shim) (string, error)
}

// Step is one file on the way from the command to what runs.
type Step struct {
	Path string `json:"path"`
	// How it was reached: "given", "on PATH", "pyenv shim" (the program
	// its manager names), "#! interpreter", "#! env NAME".
	How string `json:"how"`
}

// Resolution is what a command needs in a sandbox.
type Resolution struct {
	// Program is what is executed: absolute, never a shim.
	Program string `json:"program"`
	// Steps are the files from the command to the last interpreter.
	Steps []Step `json:"steps"`
	// Binds are bound read-only: install roots, directories, files;
	// none lies within another.
	Binds []string `json:"binds,omitempty"`
	// Path goes first on the PATH inside the sandbox, so that a #! line's
	// env finds there what it was found as here, and a program finds its
	// own install's tools.
	Path []string `json:"path,omitempty"`
	// Shims are the managers' answers that were used: a shim's path, and
	// the program it stands for.
	Shims map[string]string `json:"shims,omitempty"`
}

// NotFoundError is a program that is not there to run.
type NotFoundError struct {
	Name   string
	Reason string
	// Via is the script whose #! line names it; "" for the command's
	// program itself.
	Via string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("cannot find %s: %s", e.Name, e.Reason) }

// Resolve finds program (a bare name on o.Path, a relative path in o.Dir,
// or an absolute path) and what it needs: the program behind a shim, the
// interpreters of its #! lines, the install roots to bind and the PATH
// entries that find them.
func Resolve(program string, o Options) (*Resolution, error) {
	r := &resolver{o: o, res: &Resolution{}}
	p, how, err := r.find(program)
	if err != nil {
		return nil, err
	}
	r.res.Program = p
	r.step(p, how)
	if err := r.walk(p); err != nil {
		return nil, err
	}
	r.res.Binds = outermost(r.res.Binds)
	return r.res, nil
}

type resolver struct {
	o   Options
	res *Resolution
}

func (r *resolver) step(p, how string) { r.res.Steps = append(r.res.Steps, Step{Path: p, How: how}) }

// find makes program absolute.
func (r *resolver) find(program string) (string, string, error) {
	if program == "" || strings.ContainsAny(program, "\x00\n\r") {
		return "", "", &NotFoundError{Name: fmt.Sprintf("%q", program), Reason: "not a program name"}
	}
	if !strings.Contains(program, "/") {
		if p := LookPath(program, r.o.Path); p != "" {
			return p, "on PATH", nil
		}
		return "", "", &NotFoundError{Name: program, Reason: "it is not on PATH"}
	}
	p := program
	if !filepath.IsAbs(p) {
		if !filepath.IsAbs(r.o.Dir) {
			return "", "", &NotFoundError{Name: program, Reason: "it is a relative path, and the directory it is relative to is unknown"}
		}
		p = filepath.Join(r.o.Dir, p)
	}
	p = filepath.Clean(p)
	if !executable(p) {
		return "", "", &NotFoundError{Name: p, Reason: "it is missing or not an executable file"}
	}
	return p, "given", nil
}

// walk follows cur, the program, through shims and interpreters.
func (r *resolver) walk(cur string) error {
	via := "" // the script whose #! line names cur; "" for the program
	for n := 0; ; n++ {
		if n == maxSteps {
			return fmt.Errorf("%s: more than %d shims and interpreters in a row", r.res.Program, maxSteps)
		}
		if sh, ok := DetectShim(cur); ok {
			if via != "" {
				// The kernel runs an absolute #! interpreter as it is: no
				// PATH inside can route around the shim.
				return &ShimError{Shim: sh, Via: via}
			}
			real, err := r.answer(sh)
			if err != nil {
				return err
			}
			r.step(real, sh.Manager+" shim")
			r.res.Program, cur = real, real
			continue
		}
		if via != "" && !executable(cur) {
			// Nothing is bound for an interpreter the kernel would not
			// run: a script in a workspace names its #! line, and the
			// agent can write that.
			return &NotFoundError{Name: cur, Reason: fmt.Sprintf("%s names it as its interpreter (its #! line), and it is missing or not an executable file", via), Via: via}
		}
		if err := r.bind(cur); err != nil {
			return err
		}
		next, how, err := r.interpreter(cur)
		if err != nil || next == "" {
			return err
		}
		r.step(next, how)
		via, cur = cur, next
	}
}

// answer is the program sh stands for: the answer given in Options.Shims,
// else the manager's, checked.
func (r *resolver) answer(sh Shim) (string, error) {
	real, ok := r.o.Shims[sh.Path]
	if !ok {
		if r.o.Ask == nil {
			return "", &ShimError{Shim: sh}
		}
		var err error
		if real, err = r.o.Ask(sh); err != nil {
			return "", &ShimError{Shim: sh, Err: err}
		}
	}
	switch {
	case !filepath.IsAbs(real) || filepath.Clean(real) != real || strings.ContainsAny(real, "\x00\n\r"):
		return "", &ShimError{Shim: sh, Err: fmt.Errorf("its answer %q is not a clean absolute path", real)}
	case !executable(real):
		return "", &ShimError{Shim: sh, Err: fmt.Errorf("its answer %s is missing or not an executable file", real)}
	}
	if _, ok := DetectShim(real); ok {
		return "", &ShimError{Shim: sh, Err: fmt.Errorf("its answer %s is a shim too", real)}
	}
	if r.res.Shims == nil {
		r.res.Shims = map[string]string{}
	}
	r.res.Shims[sh.Path] = real
	return real, nil
}

// bind adds what p needs to be seen inside: the root of p, of each
// symbolic link on the way from it, and of the file it is in the end;
// for a file in an npm package, that package and its installed
// dependencies.
func (r *resolver) bind(p string) error {
	hops, err := links(p)
	if err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	for _, h := range append(hops, real) {
		r.addRoot(h)
	}
	if real != p {
		// npm installs a bin symlink to a script inside a package; the
		// package root (where package.json is) holds what it loads.
		if root := packageRoot(real); root != "" && !underSystem(root) && !r.tooBroad(root) {
			r.res.Binds = append(r.res.Binds, root)
			for _, d := range packageDeps(root) {
				if !r.tooBroad(d) {
					r.res.Binds = append(r.res.Binds, d)
				}
			}
		}
	}
	return nil
}

// addRoot binds what holds file: its install root, else its directory,
// else (a directory too broad to show) the file alone.
func (r *resolver) addRoot(file string) {
	if underSystem(file) {
		return
	}
	if root := InstallRoot(file); root != "" && !r.tooBroad(root) {
		r.res.Binds = append(r.res.Binds, root)
		if bin := filepath.Join(root, "bin"); isDir(bin) {
			r.addPath(bin)
		}
		return
	}
	if d := filepath.Dir(file); !r.tooBroad(d) {
		r.res.Binds = append(r.res.Binds, d)
		return
	}
	r.res.Binds = append(r.res.Binds, file)
}

// standardPath are on every PATH inside a sandbox already.
var standardPath = []string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}

func (r *resolver) addPath(d string) {
	if !slices.Contains(standardPath, d) && !slices.Contains(r.res.Path, d) {
		r.res.Path = append(r.res.Path, d)
	}
}

// interpreter is what the kernel runs for the script p: its #! line's
// interpreter, or for `#!/usr/bin/env NAME` the NAME that env finds,
// first where the sandbox's PATH will look first. "" for no script.
func (r *resolver) interpreter(p string) (string, string, error) {
	line, err := readShebang(p)
	if err != nil {
		return "", "", err
	}
	interp, arg, ok := ParseShebang(line)
	if !ok {
		return "", "", nil
	}
	if !filepath.IsAbs(interp) {
		return "", "", fmt.Errorf("the #! line of %s names %q, which is not an absolute path", p, interp)
	}
	interp = filepath.Clean(interp)
	if filepath.Base(interp) != "env" {
		return interp, "#! interpreter", nil
	}
	if err := r.bind(interp); err != nil {
		return "", "", err
	}
	name := EnvProgram(arg)
	switch {
	case name == "":
		return "", "", fmt.Errorf("the #! line of %s runs env without a program", p)
	case strings.Contains(name, "/"):
		if !filepath.IsAbs(name) {
			return "", "", fmt.Errorf("the #! line of %s runs env with %q, which is not an absolute path", p, name)
		}
		return filepath.Clean(name), "#! env " + name, nil
	}
	found := LookPath(name, strings.Join(append(append([]string{}, r.res.Path...), r.o.Path), string(filepath.ListSeparator)))
	if found == "" {
		return "", "", &NotFoundError{Name: name, Reason: fmt.Sprintf("%s runs it through env (its #! line), and it is not on PATH", p), Via: p}
	}
	how := "#! env " + name
	if sh, ok := DetectShim(found); ok {
		real, err := r.answer(sh)
		if err != nil {
			var se *ShimError
			if errors.As(err, &se) {
				se.Via = p
			}
			return "", "", err
		}
		how, found = "#! env "+name+", "+sh.Manager+" shim", real
	}
	// env inside the sandbox must find what it found here.
	r.addPath(filepath.Dir(found))
	return found, how, nil
}

// LookPath finds name in the absolute directories of path; "" when none
// has it as an executable file.
func LookPath(name, path string) string {
	for _, d := range filepath.SplitList(path) {
		if !filepath.IsAbs(d) {
			continue
		}
		if p := filepath.Join(d, name); executable(p) {
			return p
		}
	}
	return ""
}

// links are p and each symbolic link's target from it, to the file.
func links(p string) ([]string, error) {
	out := []string{p}
	for range maxLinks {
		fi, err := os.Lstat(p)
		if err != nil {
			return nil, err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			return out, nil
		}
		t, err := os.Readlink(p)
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(t) {
			t = filepath.Join(filepath.Dir(p), t)
		}
		p = filepath.Clean(t)
		out = append(out, p)
	}
	return nil, fmt.Errorf("%s: too many levels of symbolic links", out[0])
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// outermost sorts binds and drops those within another.
func outermost(binds []string) []string {
	sort.Strings(binds)
	var out []string
	for _, b := range binds {
		if !slices.ContainsFunc(out, func(k string) bool { return b == k || within(b, k) }) {
			out = append(out, b)
		}
	}
	return out
}
