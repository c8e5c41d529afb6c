package sandbox

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestProtectedPaths(t *testing.T) {
	t.Parallel()
	got, err := ProtectedPaths([]string{".github/workflows/", ".envrc"}, []string{".vscode", ".idea/"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".claude/", ".mcp.json", ".envrc", ".github/workflows/"} {
		if !slices.Contains(got, want) {
			t.Errorf("got %v, want it to hold %s", got, want)
		}
	}
	for _, lifted := range []string{".vscode/", ".idea/"} {
		if slices.Contains(got, lifted) {
			t.Errorf("got %v, want %s lifted", got, lifted)
		}
	}
	if n := strings.Count(strings.Join(got, " "), ".envrc"); n != 1 {
		t.Errorf("got .envrc %d times, want once", n)
	}
	for _, bad := range []string{"", ".", "/etc/passwd", "../x", "a/../../x", "a//b", "a\nb", `a\b`, "./x"} {
		if _, err := ProtectedPaths([]string{bad}, nil); err == nil {
			t.Errorf("--protect %q: got no error, want a refusal", bad)
		}
		if _, err := ProtectedPaths(nil, []string{bad}); err == nil {
			t.Errorf("--unprotect %q: got no error, want a refusal", bad)
		}
	}
}

// TestProtectedArgs: a protected path that holds something is bound
// read-only onto itself; one missing or empty gets an empty read-only
// stand-in that needs nothing on the host (so another sandbox removing
// its placeholder cannot break this one's start); only the missing ones
// are placeholders, and only those still empty are removed afterwards.
func TestProtectedArgs(t *testing.T) {
	t.Parallel()
	ws := t.TempDir()
	write := func(rel, data string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(ws, rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ws, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".envrc", "keep")
	write(".mcp.json", "")
	write(".claude/settings.json", "{}")
	if err := os.Mkdir(filepath.Join(ws, ".idea"), 0o755); err != nil {
		t.Fatal(err)
	}
	empty, err := EmptyFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Workspace: ws, EmptyFile: empty, Protected: []string{".envrc", ".mcp.json", "opencode.json", ".claude/", ".vscode/", ".idea/", "deep/missing/x"}}
	args, err := p.protectArgs()
	if err != nil {
		t.Fatal(err)
	}
	joined := "\x00" + strings.Join(args, "\x00") + "\x00"
	j := func(parts ...string) string { return "\x00" + strings.Join(parts, "\x00") + "\x00" }
	for _, want := range []string{
		j("--ro-bind", filepath.Join(ws, ".envrc"), filepath.Join(ws, ".envrc")),
		j("--ro-bind", filepath.Join(ws, ".claude"), filepath.Join(ws, ".claude")),
		j("--ro-bind", empty, filepath.Join(ws, ".mcp.json")),
		j("--ro-bind", empty, filepath.Join(ws, "opencode.json")),
		j("--tmpfs", filepath.Join(ws, ".vscode"), "--remount-ro", filepath.Join(ws, ".vscode")),
		j("--tmpfs", filepath.Join(ws, ".idea"), "--remount-ro", filepath.Join(ws, ".idea")),
	} {
		if !strings.Contains(joined, want) {
			t.Errorf("bwrap args %q: want %q", args, strings.Trim(strings.ReplaceAll(want, "\x00", " "), " "))
		}
	}
	if strings.Contains(joined, "deep") {
		t.Errorf("bwrap args %q: want nothing for deep/missing/x, whose parent does not exist", args)
	}
	if _, err := (&Policy{Workspace: ws, Protected: []string{"opencode.json"}}).protectArgs(); err == nil {
		t.Errorf("a missing protected file and no EmptyFile: got no error, want a refusal")
	}

}

// TestLease: holding a lease makes the missing protected paths, empty;
// giving it back removes those still empty, but only once no other
// holder (another sandbox on the same workspace) is left: removing a
// mount point on the host would detach it in the sandbox still running.
func TestLease(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("placeholders are for bubblewrap's mounts; sandbox-exec needs none")
	}
	t.Parallel()
	ws, state := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ws, ".envrc"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := &Policy{Workspace: ws, Protected: []string{".envrc", "opencode.json", ".mcp.json", ".vscode/", ".idea/"}}
	first, second := NewLease(state), NewLease(state)
	if err := first.Hold(p); err != nil {
		t.Fatal(err)
	}
	for _, made := range []string{"opencode.json", ".mcp.json", ".vscode", ".idea"} {
		if fi, err := os.Lstat(filepath.Join(ws, made)); err != nil || (fi.IsDir() != strings.HasPrefix(made, ".v") && fi.IsDir() != strings.HasPrefix(made, ".i")) {
			t.Errorf("%s after Hold: %v, want it made empty", made, err)
		}
	}
	if err := second.Hold(p); err != nil {
		t.Fatal(err)
	}
	first.Release()
	if _, err := os.Lstat(filepath.Join(ws, ".vscode")); err != nil {
		t.Errorf(".vscode after the first Release: %v; want it kept while the second sandbox holds the workspace", err)
	}
	// The user writes one on the host meanwhile: it stays.
	if err := os.WriteFile(filepath.Join(ws, "opencode.json"), []byte(`{"user":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	second.Release()
	for path, want := range map[string]bool{".envrc": true, "opencode.json": true, ".mcp.json": false, ".vscode": false, ".idea": false} {
		if _, err := os.Lstat(filepath.Join(ws, path)); (err == nil) != want {
			t.Errorf("%s after the last Release: exists %v, want %v", path, err == nil, want)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(ws, ".envrc")); string(data) != "keep" {
		t.Errorf(".envrc: got %q, want it untouched", data)
	}
}

// TestProtectedSymlinkRefused: a symlink at a protected path or on the
// way to one is refused, never followed.
func TestProtectedSymlinkRefused(t *testing.T) {
	t.Parallel()
	ws, elsewhere := t.TempDir(), t.TempDir()
	if err := os.Symlink(elsewhere, filepath.Join(ws, ".github")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "f"), filepath.Join(ws, ".envrc")); err != nil {
		t.Fatal(err)
	}
	for _, entry := range []string{".envrc", ".github/workflows/"} {
		p := &Policy{Workspace: ws, Protected: []string{entry}}
		if _, err := p.protectArgs(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
			t.Errorf("%s: got %v, want a refusal naming the symbolic link", entry, err)
		}
	}
	if entries, _ := os.ReadDir(elsewhere); len(entries) != 0 {
		t.Errorf("the symlinks' target got %d entries, want none", len(entries))
	}
}
