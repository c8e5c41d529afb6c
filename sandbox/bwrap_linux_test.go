package sandbox

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// op is one bwrap option with its operands.
type op struct {
	flag string
	args []string
}

func (o op) is(flag string, args ...string) bool {
	return o.flag == flag && slices.Equal(o.args, args)
}

// bwrapArity is the number of operands of each option Args may emit. An
// option that is not here fails the test: a new one is a visible change.
var bwrapArity = map[string]int{
	"--die-with-parent": 0, "--new-session": 0, "--unshare-all": 0, "--share-net": 0, "--clearenv": 0, "--unshare-user": 0, "--disable-userns": 0,
	"--cap-drop": 1, "--seccomp": 1, "--size": 1, "--tmpfs": 1, "--proc": 1, "--dev": 1, "--dir": 1, "--remount-ro": 1, "--chdir": 1,
	"--symlink": 2, "--ro-bind": 2, "--bind": 2, "--setenv": 2,
}

// parseArgs splits a bwrap command line into its options and the command
// after "--".
func parseArgs(t *testing.T, argv []string) (ops []op, command []string) {
	t.Helper()
	for i := 1; i < len(argv); {
		flag := argv[i]
		if flag == "--" {
			return ops, argv[i+1:]
		}
		n, ok := bwrapArity[flag]
		if !ok {
			t.Fatalf("argument %d: got %q, want a known bwrap option or --", i, flag)
		}
		if i+1+n > len(argv) {
			t.Fatalf("option %s at %d: got %d operands, want %d", flag, i, len(argv)-i-1, n)
		}
		ops = append(ops, op{flag, argv[i+1 : i+1+n]})
		i += 1 + n
	}
	t.Fatalf("got no -- before the command in %q", argv)
	return nil, nil
}

func indexOp(ops []op, flag string, args ...string) int {
	return slices.IndexFunc(ops, func(o op) bool { return o.is(flag, args...) })
}

// gitWorkspace makes .git/hooks and .git/config in p's workspace.
func gitWorkspace(t *testing.T, p *Policy) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(p.Workspace, ".git", "hooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.Workspace, ".git", "config"), []byte("[core]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestArgs(t *testing.T) {
	t.Parallel()
	for _, network := range []string{NetProvider, NetNone, NetHost} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			p := validPolicy(t, network)
			p.Ringlet = "/usr/local/bin/ringlet"
			gitWorkspace(t, p)
			p.Env = append(p.Env, "ANTHROPIC_API_KEY=rlt_x")
			p.ReadOnly = []string{"/srv/ro"}
			p.ReadWrite = []string{"/srv/rw"}
			p.Runtime = []string{"/opt/agent"}
			argv, err := p.Args("/usr/bin/bwrap")
			if err != nil {
				t.Fatal(err)
			}

			mandatory := []string{"/usr/bin/bwrap", "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL", "--clearenv"}
			if got := argv[:len(mandatory)]; !slices.Equal(got, mandatory) {
				t.Errorf("start: got %q, want %q", got, mandatory)
			}
			ops, command := parseArgs(t, argv)

			// The command follows "--" at once, behind the forwarder
			// only with provider network.
			wantCommand := p.Command
			if network == NetProvider {
				wantCommand = append([]string{InsideBinary, "sandbox", "forward", "--socket", InsideSocket, "--port", strconv.Itoa(ForwarderPort), "--"}, p.Command...)
			}
			if !slices.Equal(command, wantCommand) {
				t.Errorf("command: got %q, want %q", command, wantCommand)
			}
			if got := ops[len(ops)-1]; !got.is("--chdir", p.Workspace) {
				t.Errorf("last option: got %v, want --chdir %s", got, p.Workspace)
			}

			// Every sandbox loads the seccomp filter, from descriptor 3
			// (ArgsFD moves it to 4).
			if indexOp(ops, "--seccomp", "3") < 0 {
				t.Errorf("got no --seccomp 3 in %q, want the seccomp filter loaded", argv)
			}

			if got, want := indexOp(ops, "--share-net") >= 0, network == NetHost; got != want {
				t.Errorf("--share-net: got %v, want %v", got, want)
			}

			// The system, read-only: merged-/usr links as links.
			firstTmpfs := indexOp(ops, "--tmpfs", "/home")
			for _, d := range systemDirs {
				fi, err := os.Lstat(d)
				var i int
				switch {
				case errors.Is(err, fs.ErrNotExist):
					for _, o := range ops {
						if slices.Contains(o.args, d) {
							t.Errorf("got %v for %s, which does not exist here", o, d)
						}
					}
					continue
				case err != nil:
					t.Fatal(err)
				case fi.Mode()&fs.ModeSymlink != 0:
					target, _ := os.Readlink(d)
					i = indexOp(ops, "--symlink", target, d)
				default:
					i = indexOp(ops, "--ro-bind", d, d)
				}
				if i < 0 {
					t.Errorf("%s: got no read-only bind or symlink for it", d)
				} else if i > firstTmpfs {
					t.Errorf("%s: bound after the tmpfs dirs", d)
				}
			}
			for _, d := range []string{"/usr", "/etc"} {
				if indexOp(ops, "--ro-bind", d, d) < 0 {
					t.Errorf("got no --ro-bind %s %s", d, d)
				}
				if indexOp(ops, "--bind", d, d) >= 0 {
					t.Errorf("got %s bound read-write", d)
				}
			}

			// Empty tmpfs over what holds users' files, before anything
			// is bound below them (else the bind would be hidden).
			tmpfs := map[string]int{}
			for _, d := range tmpfsDirs {
				i := indexOp(ops, "--tmpfs", d)
				if i < 0 {
					t.Errorf("got no --tmpfs %s", d)
				}
				tmpfs[d] = i
			}
			for i, o := range ops {
				if o.flag != "--bind" && o.flag != "--ro-bind" && o.flag != "--dir" {
					continue
				}
				dest := o.args[len(o.args)-1]
				for d, ti := range tmpfs {
					if strings.HasPrefix(dest, d+"/") && i < ti {
						t.Errorf("%v comes before --tmpfs %s, which hides it", o, d)
					}
				}
			}
			if indexOp(ops, "--proc", "/proc") < 0 || indexOp(ops, "--dev", "/dev") < 0 {
				t.Errorf("got no --proc /proc and --dev /dev in %v", ops)
			}

			home := indexOp(ops, "--bind", p.Home, p.HomePath)
			ws := indexOp(ops, "--bind", p.Workspace, p.Workspace)
			if home < 0 || ws < 0 {
				t.Fatalf("got HOME bind at %d and workspace bind at %d, want both", home, ws)
			}
			for _, want := range []op{{"--ro-bind", []string{"/srv/ro", "/srv/ro"}}, {"--bind", []string{"/srv/rw", "/srv/rw"}}, {"--ro-bind", []string{"/opt/agent", "/opt/agent"}}} {
				if indexOp(ops, want.flag, want.args...) < 0 {
					t.Errorf("got no %v", want)
				}
			}

			// .git/hooks and .git/config read-only, after the workspace
			// and after .git bound onto itself (which pins it in place).
			git := filepath.Join(p.Workspace, ".git")
			self := indexOp(ops, "--bind", git, git)
			hooks := indexOp(ops, "--ro-bind", filepath.Join(git, "hooks"), filepath.Join(git, "hooks"))
			config := indexOp(ops, "--ro-bind", filepath.Join(git, "config"), filepath.Join(git, "config"))
			if !(ws < self && self < hooks && self < config) {
				t.Errorf("got workspace at %d, .git at %d, hooks at %d, config at %d; want them bound in that order", ws, self, hooks, config)
			}

			// The session socket only with provider network; the ringlet
			// binary, where the policy names one, at its own path and at
			// InsideBinary (the forwarder, and 'ringlet' on PATH).
			socket := indexOp(ops, "--ro-bind", filepath.Dir(p.Socket), InsideSocketDir) >= 0
			if want := network == NetProvider; socket != want {
				t.Errorf("got socket %v; want %v", socket, want)
			}
			binary := indexOp(ops, "--ro-bind", p.Ringlet, InsideBinary) >= 0
			atHost := indexOp(ops, "--ro-bind", p.Ringlet, p.Ringlet) >= 0
			dir := indexOp(ops, "--dir", InsideBinDir) >= 0
			if !binary || !atHost || !dir {
				t.Errorf("got binary at %s %v, at its own path %v, %s %v; want all", InsideBinary, binary, atHost, InsideBinDir, dir)
			}

			// The environment is exactly the policy's, after --clearenv.
			var env []string
			for i, o := range ops {
				if o.flag == "--setenv" {
					env = append(env, o.args[0]+"="+o.args[1])
					if i < indexOp(ops, "--clearenv") {
						t.Errorf("%v comes before --clearenv", o)
					}
				}
			}
			if !slices.Equal(env, p.Env) {
				t.Errorf("environment: got %q, want %q", env, p.Env)
			}
		})
	}
}

func TestArgsGit(t *testing.T) {
	t.Parallel()
	gitBinds := func(t *testing.T, p *Policy) []string {
		t.Helper()
		argv, err := p.Args("/usr/bin/bwrap")
		if err != nil {
			t.Fatal(err)
		}
		ops, _ := parseArgs(t, argv)
		var out []string
		for _, o := range ops {
			if len(o.args) == 2 && strings.Contains(o.args[1], "/.git") {
				out = append(out, o.flag+" "+strings.TrimPrefix(o.args[1], p.Workspace))
			}
		}
		return out
	}
	t.Run("no .git", func(t *testing.T) {
		t.Parallel()
		if got := gitBinds(t, validPolicy(t, NetNone)); len(got) != 0 {
			t.Errorf("got %q, want no .git binds (nothing to bind)", got)
		}
	})
	t.Run("hooks and config", func(t *testing.T) {
		t.Parallel()
		p := validPolicy(t, NetNone)
		gitWorkspace(t, p)
		want := []string{"--bind /.git", "--ro-bind /.git/config", "--ro-bind /.git/hooks"}
		if got := gitBinds(t, p); !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("config only", func(t *testing.T) {
		t.Parallel()
		p := validPolicy(t, NetNone)
		gitWorkspace(t, p)
		os.Remove(filepath.Join(p.Workspace, ".git", "hooks"))
		want := []string{"--bind /.git", "--ro-bind /.git/config"}
		if got := gitBinds(t, p); !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		p := validPolicy(t, NetNone)
		gitWorkspace(t, p)
		p.AllowGitConfig = true
		if got := gitBinds(t, p); len(got) != 0 {
			t.Errorf("got %q, want no .git binds with AllowGitConfig", got)
		}
	})
}

// TestArgsNeverBindsHostSecrets: whatever the caller's environment says,
// the sandbox gets none of the host's agent sockets, runtime dir, display
// or Ringlet's own files.
func TestArgsNeverBindsHostSecrets(t *testing.T) {
	home := t.TempDir()
	runtimeDir := filepath.Join(home, "run-user")
	sshSock := filepath.Join(home, ".ssh", "agent.sock")
	configDir := filepath.Join(home, ".config", "ringlet")
	for _, d := range []string{runtimeDir, filepath.Dir(sshSock), configDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("HOME", home)
	t.Setenv("XDG_RUNTIME_DIR", runtimeDir)
	t.Setenv("SSH_AUTH_SOCK", sshSock)
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+filepath.Join(runtimeDir, "bus"))
	t.Setenv("DISPLAY", ":0")
	never := []string{runtimeDir, "/run/user", "/var/run", "/run/docker.sock", "/var/run/docker.sock", "/tmp/.X11-unix", sshSock, filepath.Dir(sshSock), configDir, home}

	for _, network := range []string{NetProvider, NetNone, NetHost} {
		p := validPolicy(t, network)
		gitWorkspace(t, p)
		argv, err := p.Args("/usr/bin/bwrap")
		if err != nil {
			t.Fatal(err)
		}
		ops, _ := parseArgs(t, argv)
		for _, o := range ops {
			if o.flag == "--setenv" {
				continue // the policy's own environment, checked elsewhere
			}
			for _, a := range o.args {
				for _, n := range never {
					if a == n || strings.HasPrefix(a, n+"/") {
						t.Errorf("network %s: got %v, which shows %s", network, o, n)
					}
				}
			}
		}
		// Nothing under the tmpfs dirs is bound but the policy's own.
		allowed := []string{p.Workspace, p.Home, p.HomePath, filepath.Dir(p.Socket), InsideDir}
		for _, o := range ops {
			if o.flag != "--bind" && o.flag != "--ro-bind" {
				continue
			}
			src := o.args[0]
			if !slices.ContainsFunc(allowed, func(a string) bool { return src == a || strings.HasPrefix(src, a+"/") }) && !underSystem(src) && src != p.Ringlet {
				t.Errorf("network %s: got %v, want only the policy's paths and the system dirs", network, o)
			}
		}
	}
}

func TestArgsFD(t *testing.T) {
	t.Parallel()
	const token = "rlt_argsfd-canary-31f9"
	p := validPolicy(t, NetProvider)
	p.Env = append(p.Env, "ANTHROPIC_API_KEY="+token)
	full, err := p.Args("/usr/bin/bwrap")
	if err != nil {
		t.Fatal(err)
	}
	argv, files, err := p.ArgsFD("/usr/bin/bwrap")
	if err != nil {
		t.Fatal(err)
	}
	filter, err := SeccompFilter()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || !bytes.Equal(files[1], filter) {
		t.Fatalf("files: got %d, want 2: the options, then the seccomp filter", len(files))
	}
	opts := files[0]
	if strings.Contains(strings.Join(argv, " "), token) {
		t.Errorf("argv %q: got the token on the command line, want it only on the descriptor", argv)
	}
	sep := slices.Index(full, "--chdir") + 2
	if full[sep] != "--" {
		t.Fatalf("Args: got %q after --chdir, want --", full[sep:])
	}
	if want := append([]string{"/usr/bin/bwrap", "--args", "3"}, full[sep:]...); !slices.Equal(argv, want) {
		t.Errorf("argv: got %q, want %q", argv, want)
	}
	if len(opts) == 0 || opts[len(opts)-1] != 0 {
		t.Fatalf("opts: got %q, want NUL-terminated options", opts)
	}
	got := strings.Split(string(bytes.TrimSuffix(opts, []byte{0})), "\x00")
	// The same options, but the filter comes on descriptor 4, after the
	// options on 3.
	want := slices.Clone(full[1:sep])
	if i := slices.Index(want, "--seccomp"); i < 0 || want[i+1] != "3" {
		t.Fatalf("Args: got %q, want --seccomp 3", want)
	} else {
		want[i+1] = "4"
	}
	if !slices.Equal(got, want) {
		t.Errorf("opts: got %q, want %q", got, want)
	}
	if _, _, err := (&Policy{}).ArgsFD("/usr/bin/bwrap"); err == nil {
		t.Error("ArgsFD of an invalid policy: got no error")
	}
}

func TestFindAndCheck(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "apt-get install bubblewrap") {
		t.Errorf("Find without bwrap: got %v, want how to install it", err)
	}
	// A bwrap that cannot create namespaces, as under a strict AppArmor.
	broken := filepath.Join(dir, "bwrap")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := Find(); err != nil || p != broken {
		t.Errorf("Find: got %q, %v; want %s", p, err, broken)
	}
	err := Check(broken)
	if err == nil || !strings.Contains(err.Error(), "bubblewrap cannot create a sandbox here (bwrap: setting up uid map: Permission denied)") {
		t.Errorf("Check of a failing bwrap: got %v, want bubblewrap's own message in it", err)
	}
}

// TestArgsGitWithoutHooks: a repository with no hooks directory gets an
// empty read-only one, so the agent cannot create .git/hooks; an existing
// commondir is read-only.
func TestArgsGitWithoutHooks(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	ws := filepath.Join(root, "ws")
	home := filepath.Join(root, "home")
	for _, d := range []string{filepath.Join(ws, ".git"), home} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(ws, ".git", "commondir"), []byte("../..\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &Policy{Workspace: ws, Home: home, HomePath: "/home/u", Command: []string{"/bin/true"}, Network: NetNone, NoNestedUserns: true}
	args, err := p.Args("/usr/bin/bwrap")
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(args, " ")
	hooks := filepath.Join(ws, ".git", "hooks")
	for _, want := range []string{
		"--tmpfs " + hooks + " --remount-ro " + hooks,
		"--ro-bind " + filepath.Join(ws, ".git", "commondir") + " " + filepath.Join(ws, ".git", "commondir"),
		"--unshare-user --disable-userns",
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("args: got %q, want %q in them", joined, want)
		}
	}
	if _, err := os.Stat(hooks); err == nil {
		t.Errorf("building the args created %s on the host; only bwrap may, when it runs", hooks)
	}
}
