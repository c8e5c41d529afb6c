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
		p.Socket = filepath.Join(root, "sock", SocketFile)
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
		{"provider with a socket of another name", func(t *testing.T, p *Policy) { p.Socket = "/tmp/x/session.sock" }, "is not named s.sock"},
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
