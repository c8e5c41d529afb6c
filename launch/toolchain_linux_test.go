package launch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// fakeHome is a user's HOME with pyenv (a shim for python3, and Python
// 3.12.1), a program cargo installed beside ~/.cargo/credentials.toml,
// and an SSH key.
type fakeHome struct {
	dir, shims, shim, root, real, cargoBin string
}

func newFakeHome(t *testing.T) fakeHome {
	t.Helper()
	h := fakeHome{dir: filepath.Join(t.TempDir(), "u")}
	h.shims = filepath.Join(h.dir, ".pyenv", "shims")
	h.shim = filepath.Join(h.shims, "python3")
	h.root = filepath.Join(h.dir, ".pyenv", "versions", "3.12.1")
	h.real = filepath.Join(h.root, "bin", "python3")
	h.cargoBin = filepath.Join(h.dir, ".cargo", "bin")
	for p, content := range map[string]string{
		h.shim: "#!/usr/bin/env bash\nexport PYENV_ROOT=\"" + filepath.Join(h.dir, ".pyenv") + "\"\nexec \"" +
			filepath.Join(h.dir, ".pyenv", "libexec", "pyenv") + "\" exec \"$program\" \"$@\"\n",
		h.real:                             "\x7fELF",
		filepath.Join(h.cargoBin, "agent"): "\x7fELF",
		filepath.Join(h.dir, ".cargo", "credentials.toml"):  "token = \"canary\"\n",
		filepath.Join(h.dir, ".ssh", "id_ed25519"):          "canary",
		filepath.Join(h.dir, ".pyenv", "version"):           "3.12.1\n",
		filepath.Join(h.dir, ".pyenv", "libexec", "pyenv"):  "#!/bin/sh\n",
		filepath.Join(h.root, "lib", "python3.12", "os.py"): "",
	} {
		writeExec(t, p)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return h
}

// roBinds are the sources of the --ro-bind options in bwrap's options.
func roBinds(files [][]byte) []string {
	opts := strings.Split(string(files[0]), "\x00")
	var out []string
	for i := 0; i+1 < len(opts); i++ {
		if opts[i] == "--ro-bind" {
			out = append(out, opts[i+1])
		}
	}
	return out
}

// setenv is the value --setenv gives name in bwrap's options.
func setenv(files [][]byte, name string) string {
	opts := strings.Split(string(files[0]), "\x00")
	for i := 0; i+2 < len(opts); i++ {
		if opts[i] == "--setenv" && opts[i+1] == name {
			return opts[i+2]
		}
	}
	return ""
}

// TestAgentBehindShim: an agent whose program is a pyenv shim runs the
// program pyenv named in the launcher's shell, with its install bound
// read-only and first on PATH; never pyenv's root, and never without that
// answer.
func TestAgentBehindShim(t *testing.T) {
	// Not parallel: see TestAgentPlan.
	requireSandbox(t)
	w := newAgentWorld(t)
	h := newFakeHome(t)
	w.b.opts.Home = h.dir
	p := w.profile()
	p.Command, p.Network = []string{"python3", "agent.py"}, sandbox.NetNone
	path := h.shims + ":" + w.path + ":/usr/bin:/bin"

	_, err := w.b.Agent(p, profile.Agent{}, w.home, Request{Path: path, Home: h.dir})
	for _, want := range []string{"python3 is a pyenv shim (" + h.shim + ")", "the sandbox cannot run pyenv", "ringlet profiles run work", "`pyenv which python3`", "--no-sandbox"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("without the answer: got %v, want %q in the error", err, want)
		}
	}

	a, err := w.b.Agent(p, profile.Agent{}, w.home, Request{Path: path, Home: h.dir, Shims: map[string]string{h.shim: h.real}})
	if err != nil {
		t.Fatal(err)
	}
	plan, err := w.b.Plan(a, Session{Home: w.home, Socket: filepath.Join(t.TempDir(), "s.sock")})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Release()
	if want := []string{h.real, "agent.py"}; !slices.Equal(plan.Argv[len(plan.Argv)-2:], want) {
		t.Errorf("argv: got %q, want it to end with %q", plan.Argv, want)
	}
	binds := roBinds(plan.Files)
	if !slices.Contains(binds, h.root) {
		t.Errorf("--ro-bind: got %q, want %s", binds, h.root)
	}
	for _, b := range binds {
		if b == h.dir || b == filepath.Join(h.dir, ".pyenv") || b == h.shims {
			t.Errorf("--ro-bind %s: want neither HOME, pyenv's root nor its shims", b)
		}
	}
	if got, want := setenv(plan.Files, "PATH"), filepath.Join(h.root, "bin")+":/usr/local/bin:/usr/bin:/bin"; got != want {
		t.Errorf("PATH inside: got %q, want %q", got, want)
	}
	if plan.Summary["command"] != h.real {
		t.Errorf("summary: got command %v, want %s", plan.Summary["command"], h.real)
	}

	// A program cargo installed: ~/.cargo/bin, never ~/.cargo.
	p.Command = []string{"agent"}
	a, err = w.b.Agent(p, profile.Agent{}, w.home, Request{Path: h.cargoBin, Home: h.dir})
	if err != nil {
		t.Fatal(err)
	}
	plan2, err := w.b.Plan(a, Session{Home: w.home, Socket: filepath.Join(t.TempDir(), "s.sock")})
	if err != nil {
		t.Fatal(err)
	}
	defer plan2.Release()
	if binds := roBinds(plan2.Files); !slices.Contains(binds, h.cargoBin) || slices.Contains(binds, filepath.Join(h.dir, ".cargo")) {
		t.Errorf("--ro-bind: got %q, want %s and never %s", binds, h.cargoBin, filepath.Join(h.dir, ".cargo"))
	}

	// An answer inside Ringlet's own directories is never bound.
	own := filepath.Join(w.config, "bin", "python3")
	writeExec(t, own)
	q := w.profile()
	q.Network = sandbox.NetNone
	_, err = w.b.Agent(q, profile.Agent{}, w.home, Request{Path: h.shims + ":" + w.path, Home: h.dir, Shims: map[string]string{filepath.Join(w.path, "agent"): own}})
	if err != nil {
		t.Fatal(err) // agent is no shim: its answer is not used
	}
	p.Command = []string{"python3"}
	if _, err := w.b.Agent(p, profile.Agent{}, w.home, Request{Path: h.shims, Home: h.dir, Shims: map[string]string{h.shim: own}}); err == nil || !strings.Contains(err.Error(), "Ringlet's own files") {
		t.Errorf("an answer in Ringlet's config: got %v, want it refused", err)
	}
	// Answers are paths, no more than a few.
	for name, shims := range map[string]map[string]string{
		"relative": {h.shim: "python3"},
		"option":   {"-x": h.real},
		"too many": func() map[string]string {
			m := map[string]string{}
			for i := range 17 {
				m[filepath.Join("/s", strings.Repeat("x", i+1))] = h.real
			}
			return m
		}(),
	} {
		if _, err := w.b.Agent(p, profile.Agent{}, w.home, Request{Path: h.shims, Home: h.dir, Shims: shims}); err == nil {
			t.Errorf("shims %s: got no error", name)
		}
	}
}

// TestMCPServerBehindShim: a stdio server added as `python3` with pyenv's
// answer runs that Python with its install bound; without the answer it is
// refused with the command that adds it right.
func TestMCPServerBehindShim(t *testing.T) {
	t.Parallel()
	requireSandbox(t)
	h := newFakeHome(t)
	dir := t.TempDir()
	home, ws := filepath.Join(dir, "home"), filepath.Join(dir, "ws")
	for _, d := range []string{home, ws} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(dir, "state")
	empty, err := sandbox.EmptyFile(state)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{StateDir: state, Home: h.dir, EmptyFile: empty})
	lease := sandbox.NewLease(state)
	defer lease.Release()
	p := profile.Profile{Alias: "work"}
	cfg := mcpserver.Config{Name: "py", Command: []string{"python3", "server.py"}, ReadOnly: []string{"/srv/x"}, Shims: map[string]string{h.shim: h.real}}
	env := []string{"PATH=" + h.shims + ":/usr/bin", "HOME=" + home}
	argv, files, err := b.MCPServer(MCPServer{Profile: p, Home: home, Dir: ws, Config: cfg, Argv: []string{h.shim, "server.py"}, Env: env}, lease)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{h.real, "server.py"}; !slices.Equal(argv[len(argv)-2:], want) {
		t.Errorf("argv: got %q, want it to end with %q", argv, want)
	}
	if binds := roBinds(files); !slices.Contains(binds, h.root) || slices.Contains(binds, filepath.Join(h.dir, ".pyenv")) {
		t.Errorf("--ro-bind: got %q, want %s and never pyenv's root", binds, h.root)
	}
	if got, want := setenv(files, "PATH"), filepath.Join(h.root, "bin")+":"+h.shims+":/usr/bin"; got != want {
		t.Errorf("PATH inside: got %q, want %q", got, want)
	}

	cfg.Shims = nil
	_, _, err = b.MCPServer(MCPServer{Profile: p, Home: home, Dir: ws, Config: cfg, Argv: []string{h.shim, "server.py"}, Env: env}, lease)
	want := `python3 is a pyenv shim (` + h.shim + `); the sandbox cannot run pyenv: remove it (ringlet mcp remove work py) and add it again with the program itself, ringlet mcp add work py --ro /srv/x -- "$(pyenv which python3)" server.py, or with --no-sandbox`
	if err == nil || err.Error() != want {
		t.Errorf("without the answer:\n got %v\nwant %s", err, want)
	}
}
