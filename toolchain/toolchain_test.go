package toolchain

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A fake HOME: files and links made from a map of path -> content, with
// "->" content for a symbolic link.
func layout(t *testing.T, home string, files map[string]string) {
	t.Helper()
	for rel, content := range files {
		p := filepath.Join(home, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(strings.ReplaceAll(target, "$HOME", home), p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "$HOME", home)), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

const (
	binary = "\x7fELF not a script"
	// A pyenv shim as pyenv writes it.
	pyenvShim = `#!/usr/bin/env bash
set -e
[ -n "$PYENV_DEBUG" ] && set -x

program="${0##*/}"

export PYENV_ROOT="$HOME/.pyenv"
exec "$HOME/.pyenv/libexec/pyenv" exec "$program" "$@"
`
	// pyenv itself, as far as `pyenv which` goes: the version in
	// $PYENV_ROOT/version, failing for one that is not installed.
	fakePyenv = `#!/bin/sh
[ "$1" = which ] || exit 64
v=$(cat "$PYENV_ROOT/version")
p="$PYENV_ROOT/versions/$v/bin/$2"
if [ ! -x "$p" ]; then echo "pyenv: version '$v' is not installed (set by $PYENV_ROOT/version)" >&2; exit 1; fi
echo "$p"
`
)

// pyenvHome is a HOME with pyenv, Python 3.12.1 (whose python3 is a
// shell script) and a credentials file beside the versions.
func pyenvHome(t *testing.T) string {
	home := t.TempDir()
	layout(t, home, map[string]string{
		".pyenv/shims/python3":                        pyenvShim,
		".pyenv/libexec/pyenv":                        fakePyenv,
		".pyenv/version":                              "3.12.1\n",
		".pyenv/versions/3.12.1/bin/python3":          "#!/bin/sh\necho python\n",
		".pyenv/versions/3.12.1/lib/python3.12/os.py": "",
		".pypirc": "[pypi]\npassword = canary\n",
	})
	return home
}

func TestPyenvShim(t *testing.T) {
	t.Parallel()
	home := pyenvHome(t)
	shim := filepath.Join(home, ".pyenv", "shims", "python3")
	root := filepath.Join(home, ".pyenv", "versions", "3.12.1")
	real := filepath.Join(root, "bin", "python3")
	path := filepath.Join(home, ".pyenv", "shims") + ":/usr/bin:/bin"
	ask := func(s Shim) (string, error) {
		return s.Ask(t.Context(), []string{"PATH=/usr/bin:/bin", "HOME=" + home}, home)
	}

	check := func(t *testing.T, res *Resolution) {
		t.Helper()
		if res.Program != real {
			t.Errorf("program: got %s, want %s", res.Program, real)
		}
		if want := []string{root}; !slices.Equal(res.Binds, want) {
			t.Errorf("binds: got %v, want %v (never %s)", res.Binds, want, filepath.Join(home, ".pyenv"))
		}
		if want := []string{filepath.Join(root, "bin")}; !slices.Equal(res.Path, want) {
			t.Errorf("path: got %v, want %v", res.Path, want)
		}
		if res.Shims[shim] != real {
			t.Errorf("shims: got %v, want %s -> %s", res.Shims, shim, real)
		}
		// The fake python3 is a shell script.
		if want := []Step{{shim, "on PATH"}, {real, "pyenv shim"}, {"/bin/sh", "#! interpreter"}}; !slices.Equal(res.Steps, want) {
			t.Errorf("steps: got %+v, want %+v", res.Steps, want)
		}
	}

	t.Run("the user's side asks pyenv", func(t *testing.T) {
		t.Parallel()
		res, err := Resolve("python3", Options{Path: path, Homes: []string{home}, Ask: ask})
		if err != nil {
			t.Fatal(err)
		}
		check(t, res)
	})
	t.Run("the daemon takes the answer it was given", func(t *testing.T) {
		t.Parallel()
		res, err := Resolve("python3", Options{Path: path, Homes: []string{home}, Shims: map[string]string{shim: real},
			Ask: func(Shim) (string, error) { t.Error("asked the manager although the answer was given"); return "", nil }})
		if err != nil {
			t.Fatal(err)
		}
		check(t, res)
	})
	t.Run("without an answer it is refused with the fix", func(t *testing.T) {
		t.Parallel()
		_, err := Resolve("python3", Options{Path: path, Homes: []string{home}})
		var se *ShimError
		if !errors.As(err, &se) {
			t.Fatalf("got %v, want a ShimError", err)
		}
		for _, want := range []string{"python3 is a pyenv shim (" + shim + ")", "the sandbox cannot run pyenv"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("got %q, want %q in it", err, want)
			}
		}
		if got, want := se.Fix([]string{"python3", "server.py", "--dir", "my dir"}), `"$(pyenv which python3)" server.py --dir 'my dir'`; got != want {
			t.Errorf("fix: got %s, want %s", got, want)
		}
	})
	t.Run("a manager that cannot answer is refused with its reason", func(t *testing.T) {
		t.Parallel()
		h := pyenvHome(t)
		layout(t, h, map[string]string{".pyenv/version.new": "3.9.0\n"})
		if err := os.Rename(filepath.Join(h, ".pyenv", "version.new"), filepath.Join(h, ".pyenv", "version")); err != nil {
			t.Fatal(err)
		}
		_, err := Resolve("python3", Options{Path: filepath.Join(h, ".pyenv", "shims"), Homes: []string{h},
			Ask: func(s Shim) (string, error) { return s.Ask(t.Context(), []string{"PATH=/usr/bin:/bin"}, h) }})
		if se := (*ShimError)(nil); !errors.As(err, &se) || !strings.Contains(err.Error(), "version '3.9.0' is not installed") ||
			!strings.Contains(err.Error(), "`pyenv which python3` answered") {
			t.Errorf("got %v, want a ShimError with pyenv's reason", err)
		}
	})
	t.Run("an answer that is no program is refused", func(t *testing.T) {
		t.Parallel()
		for _, answer := range []string{"relative/python3", filepath.Join(root, "missing"), shim, root + "/bin/../bin/python3"} {
			_, err := Resolve("python3", Options{Path: path, Homes: []string{home}, Shims: map[string]string{shim: answer}})
			if se := (*ShimError)(nil); !errors.As(err, &se) || se.Err == nil {
				t.Errorf("answer %s: got %v, want it refused", answer, err)
			}
		}
	})
}

// TestNvm: npx and an npm-installed server under nvm run node through
// `#!/usr/bin/env node`, which is not on the PATH they are found with: it
// is found in their own install, bound whole, and put first on PATH.
func TestNvm(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	v := ".nvm/versions/node/v20.11.0"
	layout(t, home, map[string]string{
		".nvm/nvm.sh":                                        "",
		v + "/bin/node":                                      binary,
		v + "/bin/npx":                                       "->../lib/node_modules/npm/bin/npx-cli.js",
		v + "/bin/server-x":                                  "->../lib/node_modules/@acme/server-x/dist/index.js",
		v + "/lib/node_modules/npm/package.json":             "{}",
		v + "/lib/node_modules/npm/bin/npx-cli.js":           "#!/usr/bin/env node\n",
		v + "/lib/node_modules/@acme/server-x/package.json":  `{"dependencies":{"zod":"3"}}`,
		v + "/lib/node_modules/@acme/server-x/dist/index.js": "#!/usr/bin/env node\n",
		v + "/lib/node_modules/@acme/server-x/node_modules/zod/package.json": "{}",
		".npmrc": "//registry.npmjs.org/:_authToken=canary\n",
	})
	root := filepath.Join(home, v)
	for _, prog := range []string{"npx", "server-x"} {
		t.Run(prog, func(t *testing.T) {
			t.Parallel()
			res, err := Resolve(filepath.Join(root, "bin", prog), Options{Path: "/usr/bin:/bin", Homes: []string{home}})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.Binds, []string{root}) || !slices.Equal(res.Path, []string{filepath.Join(root, "bin")}) {
				t.Errorf("got binds %v, path %v; want %s and its bin", res.Binds, res.Path, root)
			}
			if last := res.Steps[len(res.Steps)-1]; last != (Step{filepath.Join(root, "bin", "node"), "#! env node"}) {
				t.Errorf("the last step: got %+v, want node found for the #! line", last)
			}
			if res.Program != filepath.Join(root, "bin", prog) {
				t.Errorf("program: got %s, want the one given", res.Program)
			}
		})
	}
}

// TestPipx: pipx links ~/.local/bin/APP to a script in its venv whose #!
// line names the venv's python, a link to a pyenv Python.
func TestPipx(t *testing.T) {
	t.Parallel()
	home := pyenvHome(t)
	venv := filepath.Join(home, ".local", "share", "pipx", "venvs", "mcp-server-fetch")
	layout(t, home, map[string]string{
		".local/bin/mcp-server-fetch":                                   "->$HOME/.local/share/pipx/venvs/mcp-server-fetch/bin/mcp-server-fetch",
		".local/share/pipx/venvs/mcp-server-fetch/pyvenv.cfg":           "home = $HOME/.pyenv/versions/3.12.1/bin\n",
		".local/share/pipx/venvs/mcp-server-fetch/bin/python":           "->$HOME/.pyenv/versions/3.12.1/bin/python3",
		".local/share/pipx/venvs/mcp-server-fetch/bin/mcp-server-fetch": "#!$HOME/.local/share/pipx/venvs/mcp-server-fetch/bin/python\nimport sys\n",
		".local/share/keyrings/login.keyring":                           "canary",
	})
	res, err := Resolve("mcp-server-fetch", Options{Path: filepath.Join(home, ".local", "bin") + ":/usr/bin", Homes: []string{home}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(home, ".local", "bin"), venv, filepath.Join(home, ".pyenv", "versions", "3.12.1")}
	slices.Sort(want)
	if !slices.Equal(res.Binds, want) {
		t.Errorf("binds: got %v, want %v", res.Binds, want)
	}
	for _, b := range res.Binds {
		for _, never := range []string{home, filepath.Join(home, ".local"), filepath.Join(home, ".local", "share")} {
			if b == never {
				t.Errorf("%s is bound", never)
			}
		}
	}
}

// TestCargo: a program cargo installed is bound with its directory, never
// with ~/.cargo, which holds the registry token; a rustup proxy beside it
// is a shim for the toolchain's program.
func TestCargo(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	tc := filepath.Join(home, ".rustup", "toolchains", "stable-x86_64-unknown-linux-gnu")
	layout(t, home, map[string]string{
		".cargo/credentials.toml":  "[registry]\ntoken = \"canary\"\n",
		".cargo/bin/mcp-server-rs": binary,
		".cargo/bin/rustup":        binary + "rustup",
		".rustup/settings.toml":    "",
		".rustup/toolchains/stable-x86_64-unknown-linux-gnu/bin/cargo": binary + "cargo",
	})
	bin := filepath.Join(home, ".cargo", "bin")
	if err := os.Link(filepath.Join(bin, "rustup"), filepath.Join(bin, "cargo")); err != nil {
		t.Fatal(err)
	}
	res, err := Resolve("mcp-server-rs", Options{Path: bin, Homes: []string{home}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Binds, []string{bin}) {
		t.Errorf("binds: got %v, want only %s (never %s)", res.Binds, bin, filepath.Join(home, ".cargo"))
	}

	_, err = Resolve("cargo", Options{Path: bin, Homes: []string{home}})
	var se *ShimError
	if !errors.As(err, &se) || se.Shim.Manager != "rustup" || se.Fix([]string{"cargo", "run"}) != `"$(rustup which cargo)" run` {
		t.Fatalf("cargo, a rustup proxy: got %v, want a rustup ShimError", err)
	}
	real := filepath.Join(tc, "bin", "cargo")
	res, err = Resolve("cargo", Options{Path: bin, Homes: []string{home}, Shims: map[string]string{filepath.Join(bin, "cargo"): real}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Program != real || !slices.Equal(res.Binds, []string{tc}) {
		t.Errorf("cargo: got %s binding %v, want %s binding %s only", res.Program, res.Binds, real, tc)
	}
}

// TestTooBroad: what holds more than installs is never bound whole; the
// file that runs is bound alone instead.
func TestTooBroad(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	layout(t, home, map[string]string{
		"myserver":                   binary,
		".config/tool/bin/tool":      binary,
		".cargo/tool":                binary,
		".local/share/tool":          binary,
		".ssh/deep/er/tool":          binary,
		"bin/tool":                   binary,
		"venv-in-home/bin/python":    binary,
		".local/share/x/bin/program": binary,
	})
	layout(t, home, map[string]string{"pyvenv.cfg": ""}) // HOME itself a venv
	for rel, want := range map[string]string{
		"myserver":                   "myserver",
		".config/tool/bin/tool":      ".config/tool/bin/tool",
		".cargo/tool":                ".cargo/tool",
		".local/share/tool":          ".local/share/tool",
		".ssh/deep/er/tool":          ".ssh/deep/er/tool",
		"bin/tool":                   "bin",
		".local/share/x/bin/program": ".local/share/x/bin",
	} {
		res, err := Resolve(filepath.Join(home, rel), Options{Homes: []string{home}})
		if err != nil {
			t.Fatal(err)
		}
		if w := []string{filepath.Join(home, want)}; !slices.Equal(res.Binds, w) {
			t.Errorf("%s: got binds %v, want %v", rel, res.Binds, w)
		}
	}
	// A link to the home from elsewhere names the same directories.
	link := filepath.Join(t.TempDir(), "home")
	if err := os.Symlink(home, link); err != nil {
		t.Fatal(err)
	}
	res, err := Resolve(filepath.Join(link, "myserver"), Options{Homes: []string{link}})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range res.Binds {
		if b == home || b == link {
			t.Errorf("got binds %v, want neither %s nor %s", res.Binds, home, link)
		}
	}
}

func TestInterpreters(t *testing.T) {
	t.Parallel()
	home := pyenvHome(t)
	shim := filepath.Join(home, ".pyenv", "shims", "python3")
	real := filepath.Join(home, ".pyenv", "versions", "3.12.1", "bin", "python3")
	layout(t, home, map[string]string{
		"src/srv/env.py":      "#!/usr/bin/env python3\n",
		"src/srv/abs.py":      "#!$HOME/.pyenv/shims/python3\n",
		"src/srv/loop.sh":     "#!$HOME/src/srv/loop.sh\n",
		"src/srv/missing.js":  "#!/usr/bin/env nodejs-not-here\n",
		"src/srv/flags.js":    "#!/usr/bin/env -S node --max-old-space-size=100\n",
		"src/srv/relative.sh": "#!bin/sh\n",
		"src/srv/secret.sh":   "#!$HOME/.ssh/id_ed25519\n",
		".ssh/id_ed25519":     "canary",
		"node/bin/node":       binary,
	})
	srv := filepath.Join(home, "src", "srv")
	if err := os.Chmod(filepath.Join(home, ".ssh", "id_ed25519"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(home, ".pyenv", "shims") + ":" + filepath.Join(home, "node", "bin") + ":/usr/bin:/bin"

	t.Run("env finds a shim: the manager's answer, first on PATH", func(t *testing.T) {
		t.Parallel()
		res, err := Resolve(filepath.Join(srv, "env.py"), Options{Path: path, Homes: []string{home}, Shims: map[string]string{shim: real}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Program != filepath.Join(srv, "env.py") || res.Path[0] != filepath.Dir(real) {
			t.Errorf("got program %s, path %v; want the script, and %s first", res.Program, res.Path, filepath.Dir(real))
		}
		_, err = Resolve(filepath.Join(srv, "env.py"), Options{Path: path, Homes: []string{home}})
		var se *ShimError
		if !errors.As(err, &se) || se.Via != filepath.Join(srv, "env.py") {
			t.Fatalf("without the answer: got %v, want a ShimError via the script", err)
		}
		if got, want := se.Fix([]string{"./env.py", "a"}), `"$(pyenv which python3)" `+filepath.Join(srv, "env.py")+" a"; got != want {
			t.Errorf("fix: got %s, want %s", got, want)
		}
	})
	t.Run("an absolute #! shim is refused even with an answer", func(t *testing.T) {
		t.Parallel()
		_, err := Resolve(filepath.Join(srv, "abs.py"), Options{Path: path, Homes: []string{home}, Shims: map[string]string{shim: real}})
		if se := (*ShimError)(nil); !errors.As(err, &se) || se.Via == "" {
			t.Errorf("got %v, want a ShimError via the script", err)
		}
	})
	t.Run("env -S", func(t *testing.T) {
		t.Parallel()
		res, err := Resolve(filepath.Join(srv, "flags.js"), Options{Path: path, Homes: []string{home}})
		if err != nil {
			t.Fatal(err)
		}
		if last := res.Steps[len(res.Steps)-1].Path; last != filepath.Join(home, "node", "bin", "node") {
			t.Errorf("got %s, want node", last)
		}
	})
	for name, want := range map[string]string{
		"loop.sh":     "more than 8 shims and interpreters",
		"missing.js":  "cannot find nodejs-not-here",
		"relative.sh": "not an absolute path",
		"secret.sh":   "missing or not an executable file",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Resolve(filepath.Join(srv, name), Options{Path: path, Homes: []string{home}})
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("got %v, want %q", err, want)
			}
		})
	}
}

func TestFind(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	layout(t, dir, map[string]string{"tools/x": binary, "plain": "not executable"})
	if err := os.Chmod(filepath.Join(dir, "plain"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, prog, path, dir, want string
	}{
		{"relative in dir", "./tools/x", "", dir, filepath.Join(dir, "tools", "x")},
		{"relative without dir", "tools/x", "", "", "the directory it is relative to is unknown"},
		{"on PATH", "x", "rel:" + filepath.Join(dir, "tools"), "", filepath.Join(dir, "tools", "x")},
		{"not on PATH", "x", "tools", dir, "it is not on PATH"},
		{"not executable", filepath.Join(dir, "plain"), "", "", "missing or not an executable file"},
		{"a directory", dir, "", "", "missing or not an executable file"},
		{"empty", "", "", "", "not a program name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Resolve(tc.prog, Options{Path: tc.path, Dir: tc.dir})
			switch {
			case err != nil && !strings.Contains(err.Error(), tc.want):
				t.Errorf("got %v, want %q", err, tc.want)
			case err == nil && res.Program != tc.want:
				t.Errorf("got %s, want %s", res.Program, tc.want)
			}
		})
	}
}

func TestDetectShim(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	layout(t, home, map[string]string{
		".asdf/shims/node":             "#!/usr/bin/env bash\n# asdf-plugin: nodejs 20.11.0\nexec $HOME/.asdf/bin/asdf exec \"node\" \"$@\" # asdf_allow: ' asdf '\n",
		".asdf/shims/npm":              "#!/usr/bin/env bash\n# asdf-plugin: nodejs 22.0.0\nexec asdf exec \"npm\" \"$@\" # asdf_allow: ' asdf '\n",
		".local/bin/mise":              binary,
		".local/share/mise/shims/node": "->../../../bin/mise",
		".local/share/mise/shims/mise": "->../../../bin/mise",
		".volta/bin/volta-shim":        binary,
		".volta/bin/node":              "->volta-shim",
		".rbenv/shims/ruby":            "#!/usr/bin/env bash\nexport RBENV_ROOT=\"$HOME/.rbenv\"\nexec \"/usr/lib/rbenv/libexec/rbenv\" exec \"$program\" \"$@\"\n",
		".jenv/shims/java":             "#!/usr/bin/env bash\nexec jenv-something\n",
		"bin/rustup":                   binary,
		"bin/rustc":                    "->rustup",
		"bin/plain":                    binary,
		"shims/plain-script":           "#!/bin/sh\necho hi\n",
	})
	for rel, want := range map[string]string{
		".asdf/shims/node":             "asdf which node",
		".asdf/shims/npm":              "asdf which npm",
		".local/share/mise/shims/node": "mise which node",
		".volta/bin/node":              "volta which node",
		".rbenv/shims/ruby":            "rbenv which ruby",
		".jenv/shims/java":             "", // a shims directory, a manager this cannot ask
		"bin/rustc":                    "rustup which rustc",
		"shims/plain-script":           "",
	} {
		s, ok := DetectShim(filepath.Join(home, rel))
		if !ok || s.Which() != want {
			t.Errorf("%s: got %v %+v (%q), want a shim asked with %q", rel, ok, s, s.Which(), want)
		}
	}
	for _, rel := range []string{".local/share/mise/shims/mise", ".volta/bin/volta-shim", "bin/rustup", "bin/plain", "missing"} {
		if s, ok := DetectShim(filepath.Join(home, rel)); ok {
			t.Errorf("%s: got shim %+v, want none", rel, s)
		}
	}
	if s, _ := DetectShim(filepath.Join(home, ".asdf", "shims", "node")); s.command[0] != filepath.Join(home, ".asdf", "bin", "asdf") {
		t.Errorf("asdf: got command %v, want its absolute asdf", s.command)
	}
	if s, _ := DetectShim(filepath.Join(home, ".rbenv", "shims", "ruby")); !slices.Equal(s.env, []string{"RBENV_ROOT=" + filepath.Join(home, ".rbenv")}) {
		t.Errorf("rbenv: got env %v, want RBENV_ROOT from the shim", s.env)
	}
}

func TestAsk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	layout(t, dir, map[string]string{
		"bin/mgr":   "#!/bin/sh\nprintf '\\n  %s/%s  \\nignored\\n' \"$PWD\" \"$2\"\n",
		"bin/quiet": "#!/bin/sh\n",
		"bin/fails": "#!/bin/sh\necho 'first line' >&2; echo 'mgr: no such version' >&2; exit 3\n",
	})
	env := []string{"PATH=" + filepath.Join(dir, "bin")}
	s := Shim{Manager: "mgr", Tool: "tool", command: []string{"mgr", "which", "tool"}}
	got, err := s.Ask(context.Background(), env, dir)
	if err != nil || got != dir+"/tool" {
		t.Errorf("got %q, %v; want the first line, trimmed, run in the directory", got, err)
	}
	for cmd, want := range map[string]string{"quiet": "printed nothing", "fails": "mgr: no such version", "absent": "absent is not on PATH"} {
		s.command[0] = cmd
		if _, err := s.Ask(context.Background(), env, dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", cmd, err, want)
		}
	}
	if _, err := (Shim{Manager: "jenv"}).Ask(context.Background(), env, dir); err == nil {
		t.Error("a manager without a command: got no error")
	}
}

func TestParseShebang(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line, interp, arg string
		ok                bool
	}{
		{"/bin/sh", "/bin/sh", "", true},
		{" \t/usr/bin/env  node  ", "/usr/bin/env", "node", true},
		{"/usr/bin/env -S node --flag  x", "/usr/bin/env", "-S node --flag  x", true},
		{"/bin/sh\t-e", "/bin/sh", "-e", true},
		{"", "", "", false},
		{"  ", "", "", false},
	} {
		interp, arg, ok := ParseShebang(tc.line)
		if interp != tc.interp || arg != tc.arg || ok != tc.ok {
			t.Errorf("%q: got %q %q %v, want %q %q %v", tc.line, interp, arg, ok, tc.interp, tc.arg, tc.ok)
		}
	}
	for arg, want := range map[string]string{
		"node":                    "node",
		"node --flag":             "", // one name to env, which it cannot find
		"-S node --flag":          "node",
		"-S -i PATH=/x node":      "node",
		"-S -u HOME python3 -u":   "python3",
		"--split-string=deno run": "deno",
		"-S -- python3":           "python3",
		"-S --debug node":         "",
		"-i node":                 "",
		"FOO=1 node":              "",
		"":                        "",
		"-S":                      "",
	} {
		if got := EnvProgram(arg); got != want {
			t.Errorf("EnvProgram(%q): got %q, want %q", arg, got, want)
		}
	}
}

// FuzzParseShebang: whatever a #! line holds, the interpreter has no
// blank, and env's program has none either.
func FuzzParseShebang(f *testing.F) {
	for _, s := range []string{"/bin/sh", "/usr/bin/env node", "/usr/bin/env -S node --x", " \t", "/usr/bin/env -S -u A -- x y", "/e --split-string=a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		interp, arg, ok := ParseShebang(line)
		if !ok {
			return
		}
		if interp == "" || strings.ContainsAny(interp, " \t") {
			t.Fatalf("interpreter %q", interp)
		}
		if p := EnvProgram(arg); strings.ContainsAny(p, " \t\n") || strings.HasPrefix(p, "-") && p != "" {
			t.Fatalf("env program %q from %q", p, arg)
		}
	})
}
