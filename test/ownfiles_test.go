package test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSandboxPathsHideRinglet: no path a sandbox binds may show Ringlet's
// config (its token, the keys file), state or data: a workspace, --ro or
// --rw that is, holds or lies inside them is refused by profiles create
// and set and by mcp add, and an MCP server of a profile edited by hand to
// name one does not start.
func TestSandboxPathsHideRinglet(t *testing.T) {
	t.Parallel()
	e, _ := newMCPEnv(t)
	project := filepath.Join(e.Root, "project")
	if err := os.Mkdir(project, 0o700); err != nil {
		t.Fatal(err)
	}
	refused := func(t *testing.T, stdin string, args ...string) {
		t.Helper()
		stdout, stderr, code := e.RunInput(stdin, args...)
		if code == 0 || !strings.Contains(stderr, "Ringlet's own files") || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("ringlet %s: exit %d, stdout %q, stderr %q; want one line refusing Ringlet's own files", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	for _, tc := range []struct{ name, path string }{
		{"HOME holding the config dir", e.Root},
		{"the config dir", e.ConfigDir()},
		{"a file in it", filepath.Join(e.ConfigDir(), "http_token")},
		{"the state dir", e.StateDir()},
		{"another profile's HOME", filepath.Join(e.DataHome, "ringlet", "profiles", "other", "home")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if fi, err := os.Stat(tc.path); err == nil && fi.IsDir() {
				// (A file is refused as a workspace for not being a directory.)
				refused(t, "sk-ant-own-files", "profiles", "create", "generic", "px", "--provider", "local", "--command", "true", "--workspace", tc.path)
				refused(t, "", "profiles", "set", "work", "--workspace", tc.path)
			}
			refused(t, "", "profiles", "set", "work", "--rw", tc.path)
			refused(t, "", "profiles", "set", "work", "--ro", tc.path)
			refused(t, "", "mcp", "add", "work", "leak", "--rw", tc.path, "--", "/bin/sh", "-c", "cat")
			refused(t, "", "mcp", "add", "work", "leak", "--ro", tc.path, "--", "/bin/sh", "-c", "cat")
		})
	}
	// The control: an ordinary project directory is accepted everywhere.
	mustRun(t, e, "profiles", "set", "work", "--workspace", project)
	mustRun(t, e, "mcp", "add", "work", "fine", "--ro", project, "--", "/bin/sh", "-c", "cat")
	mustRun(t, e, "mcp", "remove", "work", "fine")

	// A profile file edited to name the config dir as its workspace: its
	// MCP servers refuse to start, and say why.
	t.Run("edited profile", func(t *testing.T) {
		requireSandbox(t)
		file := filepath.Join(e.ConfigDir(), "profiles", "work.toml")
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "workspace = ") {
				l = "workspace = " + strconv.Quote(e.ConfigDir())
			}
			lines = append(lines, l)
		}
		edited := strings.Join(lines, "\n")
		if edited == string(data) {
			t.Fatalf("profile file %s: no workspace line to edit in %q", file, data)
		}
		writeFile(t, file, edited, 0o600)
		mustRun(t, e, "mcp", "add", "work", "probe", "--", "/bin/sh", "-c", "cp http_token leaked-token; cat")
		stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}, stdioInit, stdioInitialized, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
		var why string
		for _, s := range mcpServers(t, e, "work") {
			if s.Name == "probe" {
				why = s.Error
			}
		}
		if !strings.Contains(why, "Ringlet's own files") {
			t.Errorf("mcp list after the edit: probe's error %q, want its start refused for Ringlet's own files", why)
		}
		if _, err := os.Stat(filepath.Join(e.ConfigDir(), "leaked-token")); err == nil {
			t.Error("the MCP server ran with the config dir as its workspace and copied the daemon's token")
		}
	})
}

// TestSandboxPathsHideAuditLog: an audit log outside the state dir
// (audit.path) and its -wal, -shm and anchor files are Ringlet's own too.
func TestSandboxPathsHideAuditLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	logs := filepath.Join(e.Root, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(logs, "audit.db")
	mustRun(t, e, "config", "set", "audit.path", db)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	if _, stderr, code := e.RunInput("sk-ant-auditlog", "profiles", "create", "generic", "work", "--provider", "local", "--command", "true"); code != 0 {
		t.Fatalf("profiles create: exit %d, stderr %q", code, stderr)
	}
	for _, args := range [][]string{
		{"profiles", "set", "work", "--workspace", logs},
		{"profiles", "set", "work", "--ro", db + "-wal"},
		{"mcp", "add", "work", "leak", "--ro", db + ".anchor", "--", "/bin/sh", "-c", "cat"},
		{"mcp", "add", "work", "leak", "--rw", logs, "--", "/bin/sh", "-c", "cat"},
	} {
		stdout, stderr, code := e.Run(args...)
		checkOneLineError(t, stdout, stderr, code, []int{1, 2}, "Ringlet's own files")
	}
	// profiles run from the directory that holds the log, with no
	// workspace: the current directory would be the workspace.
	ctx := t.Context()
	cmd := e.command(ctx, ringletBin, "profiles", "run", "work")
	cmd.Dir = logs
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Ringlet's own files") {
		t.Errorf("profiles run from %s: got %v, %q; want it refused for Ringlet's own files", logs, err, out)
	}
}
