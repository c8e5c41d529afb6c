package sandbox

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// validPolicy is a policy that Validate accepts, with a workspace and a
// HOME under t.TempDir().
func validPolicy(t *testing.T, network string) *Policy {
	t.Helper()
	root := t.TempDir()
	p := &Policy{
		Workspace: filepath.Join(root, "ws"),
		Home:      filepath.Join(root, "profile-home"),
		HomePath:  "/home/agent",
		Command:   []string{"/bin/sh", "-c", "true"},
		Env:       []string{"PATH=/usr/bin:/bin", "HOME=/home/agent"},
		Network:   network,
	}
	for _, d := range []string{p.Workspace, p.Home} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if network == NetProvider {
		p.Socket = filepath.Join(root, "s.sock")
		p.Ringlet = "/usr/local/bin/ringlet"
	}
	return p
}

func TestValidate(t *testing.T) {
	t.Parallel()
	for _, network := range []string{NetProvider, NetNone, NetHost} {
		if err := validPolicy(t, network).Validate(); err != nil {
			t.Errorf("network %s: got %v, want a valid policy", network, err)
		}
	}

	tests := []struct {
		name   string
		change func(t *testing.T, p *Policy)
		want   string // in the error
	}{
		{"relative workspace", func(t *testing.T, p *Policy) { p.Workspace = "ws" }, `workspace "ws" is not an absolute path`},
		{"unclean workspace", func(t *testing.T, p *Policy) { p.Workspace += "/../ws" }, "is not a clean path"},
		{"trailing slash", func(t *testing.T, p *Policy) { p.Workspace += "/" }, "is not a clean path"},
		{"workspace starting with -", func(t *testing.T, p *Policy) { p.Workspace = "--share-net" }, `workspace "--share-net" starts with '-'`},
		{"workspace with a newline", func(t *testing.T, p *Policy) { p.Workspace += "\n/etc" }, "contains a newline or NUL"},
		{"workspace with a carriage return", func(t *testing.T, p *Policy) { p.Workspace += "\r" }, "contains a newline or NUL"},
		{"workspace with NUL", func(t *testing.T, p *Policy) { p.Workspace += "\x00" }, "contains a newline or NUL"},
		{"empty workspace", func(t *testing.T, p *Policy) { p.Workspace = "" }, "workspace is empty"},
		{"missing workspace", func(t *testing.T, p *Policy) { p.Workspace += "-missing" }, "no such file or directory"},
		{"workspace is a symlink to /", func(t *testing.T, p *Policy) {
			link := filepath.Join(t.TempDir(), "root")
			if err := os.Symlink("/", link); err != nil {
				t.Fatal(err)
			}
			p.Workspace = link
		}, "resolves to /; choose a project directory"},
		{"workspace is /", func(t *testing.T, p *Policy) { p.Workspace = "/" }, "resolves to /"},
		{"workspace is a file", func(t *testing.T, p *Policy) {
			f := filepath.Join(t.TempDir(), "file")
			if err := os.WriteFile(f, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			p.Workspace = f
		}, "is not a directory"},
		{"relative HOME", func(t *testing.T, p *Policy) { p.Home = "home" }, `profile HOME "home" is not an absolute path`},
		{"home path starting with -", func(t *testing.T, p *Policy) { p.HomePath = "-x" }, `home path "-x" starts with '-'`},
		{"home path with a newline", func(t *testing.T, p *Policy) { p.HomePath = "/home/a\nb" }, "contains a newline or NUL"},
		{"no command", func(t *testing.T, p *Policy) { p.Command = nil }, "no command to run"},
		{"relative command", func(t *testing.T, p *Policy) { p.Command = []string{"sh"} }, `command "sh" is not an absolute path`},
		{"command starting with -", func(t *testing.T, p *Policy) { p.Command = []string{"--bind"} }, `command "--bind" starts with '-'`},
		{"ro path starting with --", func(t *testing.T, p *Policy) { p.ReadOnly = []string{"--bind=/"} }, `extra path "--bind=/" starts with '-'`},
		{"rw path with a newline", func(t *testing.T, p *Policy) { p.ReadWrite = []string{"/srv\n--share-net"} }, "contains a newline or NUL"},
		{"relative runtime dir", func(t *testing.T, p *Policy) { p.Runtime = []string{"node_modules"} }, `extra path "node_modules" is not an absolute path`},
		{"bad network", func(t *testing.T, p *Policy) { p.Network = "bridge" }, `network "bridge"; accepted values: provider, none, host`},
		{"empty network", func(t *testing.T, p *Policy) { p.Network = "" }, `network ""; accepted values`},
		{"provider without a socket", func(t *testing.T, p *Policy) { p.Socket = "" }, "session socket is empty"},
		{"provider with a relative binary", func(t *testing.T, p *Policy) { p.Ringlet = "ringlet" }, `ringlet binary "ringlet" is not an absolute path`},
		{"env entry without =", func(t *testing.T, p *Policy) { p.Env = append(p.Env, "TOKEN") }, "invalid environment entry"},
		{"env entry with NUL", func(t *testing.T, p *Policy) { p.Env = append(p.Env, "A=b\x00c") }, "invalid environment entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := validPolicy(t, NetProvider)
			tt.change(t, p)
			err := p.Validate()
			if err == nil {
				t.Fatalf("got no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to contain %q", err, tt.want)
			}
			// One clear sentence: a newline in a path is quoted, never
			// printed raw.
			if strings.ContainsAny(err.Error(), "\n\r\x00") {
				t.Errorf("got %q, want a single line", err)
			}
			if _, err := p.Args("/usr/bin/bwrap"); err == nil {
				t.Errorf("Args: got no error for a policy that Validate refuses")
			}
		})
	}
}

func TestSummaryHasNamesNotValues(t *testing.T) {
	t.Parallel()
	const token = "rlt_summary-canary-7d0c1e"
	p := validPolicy(t, NetProvider)
	p.Env = append(p.Env, "ANTHROPIC_API_KEY="+token, "ANTHROPIC_BASE_URL=http://127.0.0.1:8765/proxy")
	p.ReadOnly = []string{"/srv/docs"}
	s := p.Summary()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), token) || strings.Contains(string(data), "rlt_") {
		t.Errorf("got summary %s, want no environment value in it", data)
	}
	if strings.Contains(string(data), p.Socket) {
		t.Errorf("got summary %s, want no session socket path", data)
	}
	wantNames := []string{"ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "HOME", "PATH"}
	if got, _ := s["env"].([]string); !slices.Equal(got, wantNames) {
		t.Errorf("env: got %v, want the sorted names %v", got, wantNames)
	}
	for k, want := range map[string]any{"workspace": p.Workspace, "home": p.HomePath, "network": NetProvider, "command": "/bin/sh", "git_config_writable": false} {
		if s[k] != want {
			t.Errorf("%s: got %v, want %v", k, s[k], want)
		}
	}
}

func TestRuntimeDirs(t *testing.T) {
	t.Parallel()
	mkfile := func(t *testing.T, path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("{}"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	symlink := func(t *testing.T, target, link string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("npm bin symlink binds the package root", func(t *testing.T) {
		t.Parallel()
		prefix := t.TempDir()
		pkg := filepath.Join(prefix, "lib", "node_modules", "@anthropic-ai", "claude-code")
		mkfile(t, filepath.Join(pkg, "package.json"))
		mkfile(t, filepath.Join(pkg, "bin", "cli.js"))
		// A package.json below the root (an ESM marker) is not the root.
		mkfile(t, filepath.Join(pkg, "bin", "package.json"))
		symlink(t, "../lib/node_modules/@anthropic-ai/claude-code/bin/cli.js", filepath.Join(prefix, "bin", "claude"))

		got, err := RuntimeDirs(filepath.Join(prefix, "bin", "claude"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(prefix, "bin"), pkg, filepath.Join(pkg, "bin")}
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("installed dependencies beside the package are bound", func(t *testing.T) {
		t.Parallel()
		// Codex CLI: a launcher package whose native binary is in an
		// optional dependency installed beside it; one dependency nested
		// in the package, one not installed, one name that tries to climb.
		nm := filepath.Join(t.TempDir(), "node_modules")
		pkg := filepath.Join(nm, "@openai", "codex")
		native := filepath.Join(nm, "@openai", "codex-linux-x64")
		helper := filepath.Join(nm, "helper")
		writeJSON := func(path, body string) {
			t.Helper()
			mkfile(t, path)
			if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		writeJSON(filepath.Join(pkg, "package.json"), `{"optionalDependencies":{"@openai/codex-linux-x64":"npm:@openai/codex@1-linux-x64","@openai/codex-darwin-arm64":"1"},
			"dependencies":{"nested":"1","../../etc":"1","@x/../../y":"1"}}`)
		writeJSON(filepath.Join(pkg, "node_modules", "nested", "package.json"), `{}`)
		writeJSON(filepath.Join(native, "package.json"), `{"dependencies":{"helper":"1"}}`)
		writeJSON(filepath.Join(helper, "package.json"), `{"dependencies":{"@openai/codex":"1"}}`)
		mkfile(t, filepath.Join(pkg, "bin", "codex.js"))
		symlink(t, filepath.Join(pkg, "bin", "codex.js"), filepath.Join(nm, ".bin", "codex"))

		got, err := RuntimeDirs(filepath.Join(nm, ".bin", "codex"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(nm, ".bin"), pkg, filepath.Join(pkg, "bin"), native, helper}
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("unscoped package", func(t *testing.T) {
		t.Parallel()
		prefix := t.TempDir()
		pkg := filepath.Join(prefix, "lib", "node_modules", "pkg")
		mkfile(t, filepath.Join(pkg, "package.json"))
		mkfile(t, filepath.Join(pkg, "cli.js"))
		symlink(t, "../lib/node_modules/pkg/cli.js", filepath.Join(prefix, "bin", "pkg"))
		got, err := RuntimeDirs(filepath.Join(prefix, "bin", "pkg"))
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{filepath.Join(prefix, "bin"), pkg}; !slices.Equal(got, want) {
			t.Errorf("got %v, want %v", got, want)
		}
	})

	t.Run("a package.json far above is not a package root", func(t *testing.T) {
		t.Parallel()
		// ~/package.json from an npm install run in ~, and a native
		// installer's ~/.local/bin/agent -> ~/.local/share/agent/1.0/agent:
		// binding "the package" would bind the whole home.
		home := t.TempDir()
		mkfile(t, filepath.Join(home, "package.json"))
		real := filepath.Join(home, ".local", "share", "agent", "1.0", "agent")
		mkfile(t, real)
		symlink(t, real, filepath.Join(home, ".local", "bin", "agent"))
		got, err := RuntimeDirs(filepath.Join(home, ".local", "bin", "agent"))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{filepath.Join(home, ".local", "bin"), filepath.Dir(real)}
		if !slices.Equal(got, want) {
			t.Errorf("got %v, want %v (never %s)", got, want, home)
		}
	})

	t.Run("a program in the system dirs needs nothing", func(t *testing.T) {
		t.Parallel()
		got, err := RuntimeDirs("/bin/sh")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("got %v, want nothing to bind", got)
		}
	})

	t.Run("a missing program is an error", func(t *testing.T) {
		t.Parallel()
		if _, err := RuntimeDirs(filepath.Join(t.TempDir(), "missing")); err == nil {
			t.Error("got no error, want one")
		}
	})
}

// FuzzCheckPath: whatever CheckPath accepts is a clean absolute path that
// cannot be taken for an option or break an argument list.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"/", "/home/u/src", "/tmp/a b", "rel", "-x", "--bind", "/a/../b", "/a/", "/a\nb", "/a\x00b", "/a\rb", "//a", "/ä/€", `/a"b`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath("path", p) != nil {
			return
		}
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || strings.HasPrefix(p, "-") || strings.ContainsAny(p, "\x00\n\r") {
			t.Errorf("CheckPath accepted %q", p)
		}
	})
}

func TestValidPackageName(t *testing.T) {
	t.Parallel()
	for name, want := range map[string]bool{
		"pkg": true, "@scope/pkg": true, "lodash.merge": true,
		"": false, "..": false, ".": false, "../x": false, "@scope/..": false, "@x/../../y": false,
		"a/b": false, "@scope": false, "@/x": false, "@s/a/b": false, `a\b`: false, "a\x00": false,
	} {
		if got := validPackageName(name); got != want {
			t.Errorf("validPackageName(%q) = %v, want %v", name, got, want)
		}
	}
}
