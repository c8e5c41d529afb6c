package launch

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/neullabs/ringlet/mcp/mcpserver"
	"github.com/neullabs/ringlet/profile"
	"github.com/neullabs/ringlet/sandbox"
)

// requireSandbox returns bubblewrap, or skips t where it cannot create a
// sandbox (fails it in CI).
func requireSandbox(t *testing.T) string {
	t.Helper()
	bwrap, err := sandbox.Find()
	if err == nil {
		err = sandbox.Check(bwrap)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no sandbox here: %v; CI must have one", err)
		}
		t.Skipf("no sandbox here: %v", err)
	}
	return bwrap
}

// TestMCPSandboxLimitsAndFilter: a sandboxed MCP server gets the same
// seccomp filter and the profile's limits as its agent: the rlimit helper
// in front of bwrap, and the filter on the second descriptor.
func TestMCPSandboxLimitsAndFilter(t *testing.T) {
	t.Parallel()
	bwrap := requireSandbox(t)
	dir := t.TempDir()
	home, ws := filepath.Join(dir, "home"), filepath.Join(dir, "ws")
	for _, d := range []string{home, ws} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	p := profile.Profile{Alias: "work", MaxProcs: 100, MaxMemory: 512 << 20}
	const ringlet = "/usr/local/bin/ringlet"
	state := filepath.Join(dir, "state")
	empty, err := sandbox.EmptyFile(state)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Executable: ringlet, EmptyFile: empty, StateDir: state})
	lease := sandbox.NewLease(state)
	defer lease.Release()
	argv, files, err := b.MCPServer(MCPServer{Profile: p, Home: home, Dir: ws, Config: mcpserver.Config{Name: "fs"}, Argv: []string{"/bin/true"}, Env: []string{"PATH=/usr/bin"}}, lease)
	if err != nil {
		t.Fatal(err)
	}
	filter, _ := sandbox.SeccompFilter()
	if len(files) != 2 || !slices.Equal(files[1], filter) {
		t.Errorf("files: got %d, want the options and the seccomp filter", len(files))
	}
	l := sandbox.DetectLimits()
	var want []string
	switch {
	case l.Mechanism == sandbox.LimitRlimit && l.Prlimit != "":
		want = []string{l.Prlimit, "--core=0", "--data=" + strconv.Itoa(512<<20)}
	case l.Mechanism == sandbox.LimitRlimit:
		want = []string{ringlet, "sandbox", "rlimit", "--procs", "100", "--memory", strconv.Itoa(512 << 20), "--", bwrap}
	default:
		want = []string{ringlet, "sandbox", "rlimit"}
	}
	if len(argv) < len(want) || !slices.Equal(argv[:len(want)], want) {
		t.Errorf("argv: got %q, want it to start with %q", argv, want)
	}
}
