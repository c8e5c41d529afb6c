package toolchain

import (
	"path/filepath"
	"strings"

	"github.com/neullabs/ringlet/sandbox"
)

// InstallRoot is the install that holds file, by the layout of the tools
// that install interpreters and programs per version: the directory a
// sandbox binds whole so that the program finds its libraries, or "".
func InstallRoot(file string) string {
	if strings.HasPrefix(file, "/nix/store/") {
		// Store paths refer to each other; the store holds no secrets.
		return "/nix/store"
	}
	for d := filepath.Dir(file); d != "/" && d != "."; d = filepath.Dir(d) {
		parent := filepath.Dir(d)
		grand := filepath.Dir(parent)
		pb, gb := filepath.Base(parent), filepath.Base(grand)
		switch {
		// A Python venv (pipx's and uv's tools, a project's .venv), or
		// a conda environment.
		case exists(filepath.Join(d, "pyvenv.cfg")), isDir(filepath.Join(d, "conda-meta")):
			return d
		// pyenv, rbenv, nodenv, goenv, ...: <root>/versions/<version>.
		case pb == "versions" && envRoot(grand):
			return d
		// nvm: <root>/versions/node/<version>.
		case (pb == "node" || pb == "io.js") && gb == "versions" && nvmRoot(filepath.Dir(grand)):
			return d
		// asdf, mise: <root>/installs/<tool>/<version>.
		case gb == "installs" && installsRoot(filepath.Dir(grand)):
			return d
		// volta: <root>/tools/image/<tool>/<version>.
		case gb == "image" && filepath.Base(filepath.Dir(grand)) == "tools":
			return d
		// rustup: <root>/toolchains/<toolchain>.
		case pb == "toolchains" && (gb == ".rustup" || gb == "rustup" || exists(filepath.Join(grand, "settings.toml"))):
			return d
		// fnm: <root>/node-versions/<version>.
		case pb == "node-versions" && (gb == "fnm" || gb == ".fnm"):
			return d
		// uv's Pythons: <root>/uv/python/<name>.
		case pb == "python" && gb == "uv":
			return d
		// SDKMAN!: <root>/candidates/<tool>/<version>.
		case gb == "candidates" && filepath.Base(filepath.Dir(grand)) == ".sdkman":
			return d
		}
	}
	return ""
}

// envRoot: a pyenv-style root (pyenv, rbenv, nodenv, goenv, ...).
func envRoot(d string) bool {
	return isDir(filepath.Join(d, "shims")) || strings.HasSuffix(filepath.Base(d), "env") && strings.HasPrefix(filepath.Base(d), ".")
}

func nvmRoot(d string) bool { return filepath.Base(d) == ".nvm" || exists(filepath.Join(d, "nvm.sh")) }

func installsRoot(d string) bool {
	b := filepath.Base(d)
	return b == ".asdf" || b == "asdf" || b == "mise" || isDir(filepath.Join(d, "shims"))
}

// secretDirs are directories of HOME that hold keys and tokens: nothing
// in them is bound but the one file that runs.
var secretDirs = []string{".config", ".ssh", ".gnupg", ".aws", ".azure", ".kube", ".docker", ".password-store", ".netrc"}

// tooBroad reports whether d holds more than installs, so that a sandbox
// must not see it whole: the root, HOME or a directory above it, a
// dot-directory of HOME itself (~/.cargo holds credentials.toml, ~/.local
// the data of every program), ~/.local/share and ~/.local/state, and
// anything in the directories of keys and configuration.
func (r *resolver) tooBroad(d string) bool {
	if d == "/" {
		return true
	}
	for _, h := range r.homes() {
		if d == h || within(h, d) {
			return true
		}
		if !within(d, h) {
			continue
		}
		rel := strings.TrimPrefix(d, h+"/")
		first, rest, _ := strings.Cut(rel, "/")
		switch {
		case rest == "" && strings.HasPrefix(first, "."):
			return true
		case rel == ".local/share", rel == ".local/state":
			return true
		}
		for _, s := range secretDirs {
			if first == s {
				return true
			}
		}
	}
	return false
}

// homes are Options.Homes, clean and absolute, each also as its real
// path: a link on the way to a file names it by the real one.
func (r *resolver) homes() []string {
	var out []string
	for _, h := range r.o.Homes {
		if !filepath.IsAbs(h) {
			continue
		}
		out = append(out, filepath.Clean(h))
		if real, err := filepath.EvalSymlinks(h); err == nil && real != filepath.Clean(h) {
			out = append(out, real)
		}
	}
	return out
}

// within reports whether p lies strictly inside dir.
func within(p, dir string) bool {
	return dir == "/" && p != "/" || strings.HasPrefix(p, dir+"/")
}

func underSystem(p string) bool { return sandbox.SystemDir(p) }
