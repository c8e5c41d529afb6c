package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestMCPServerSandbox: a profile's stdio MCP server runs in the profile's
// sandbox. From inside, a probe tool cannot read a host file or the
// daemon's token, cannot write to the host outside the profile's HOME and
// workspace,
// and cannot reach the daemon's port; --network host gives it the
// network; --no-sandbox (warned, audited) runs it unconfined, which is
// also the control that shows the probe can see what the sandbox hides.
func TestMCPServerSandbox(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	bin := buildMCPTestServer(t)
	e, d := newMCPEnv(t)
	canary := filepath.Join(e.Root, "host-secret.txt")
	writeFile(t, canary, "host canary "+sbRandomHex(8), 0o644)
	escape := filepath.Join(e.Root, "escaped.txt")
	home := filepath.Join(e.DataHome, "ringlet", "profiles", "work", "home")
	inHome := filepath.Join(home, "from-the-server.txt")

	mustRun(t, e, "mcp", "add", "work", "boxed", "--", bin)
	mustRun(t, e, "mcp", "add", "work", "net", "--network", "host", "--", bin)
	_, stderr, code := e.Run("mcp", "add", "work", "loose", "--no-sandbox", "--", bin)
	if code != 0 || !strings.Contains(stderr, "without a sandbox") {
		t.Errorf("mcp add --no-sandbox: exit %d, stderr %q; want 0 and a warning", code, stderr)
	}
	probe := func(id int, server string, args map[string]string) string {
		t.Helper()
		got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}, stdioInit, stdioInitialized,
			stdioCall(id, server+"__probe", args))
		text, isErr := callText(t, got[strconv.Itoa(id)])
		if isErr {
			t.Fatalf("%s__probe: error %q", server, text)
		}
		return text
	}

	// A write outside lands in the sandbox's own tmpfs (or is refused),
	// never on the host.
	out := probe(2, "boxed", map[string]string{"read": canary, "write": escape, "connect": d.Addr})
	if lines := strings.Split(out, "\n"); len(lines) != 3 || lines[0] != "read failed" || lines[2] != "connect failed" {
		t.Errorf("sandboxed server: got %q, want the host file unreadable and the daemon unreachable", out)
	}
	if _, err := os.Stat(escape); err == nil {
		t.Errorf("%s exists on the host: the sandboxed server wrote outside", escape)
	}
	if out := probe(3, "boxed", map[string]string{"read": e.TokenFile()}); out != "read failed" {
		t.Errorf("the daemon's token from the sandboxed server: got %q, want it unreadable", out)
	}
	if out := probe(4, "boxed", map[string]string{"write": inHome}); out != "wrote" {
		t.Errorf("writing the profile's HOME: got %q, want it writable", out)
	} else if data, err := os.ReadFile(inHome); err != nil || string(data) != "written by the server" {
		t.Errorf("the HOME file on the host: got %q, %v", data, err)
	}
	if out := probe(5, "net", map[string]string{"connect": d.Addr}); out != "connected" {
		t.Errorf("--network host: got %q, want the daemon's port reachable", out)
	}
	if out := probe(6, "loose", map[string]string{"read": canary}); !strings.HasPrefix(out, "read: host canary") {
		t.Errorf("--no-sandbox (the control): got %q, want the host file read", out)
	}

	byName := map[string]mcpServerView{}
	for _, s := range mcpServers(t, e, "work") {
		byName[s.Name] = s
	}
	if !byName["loose"].NoSandbox || byName["boxed"].NoSandbox || byName["net"].Network != "host" {
		t.Errorf("mcp list --json: got %+v, want loose unsandboxed, boxed sandboxed, net on the host network", byName)
	}
	recs := auditOf(t, e, "work", "mcp.add")
	sandboxed := map[string]any{}
	for _, r := range recs {
		sandboxed[r.Target] = r.Detail["sandbox"]
	}
	if sandboxed["loose"] != false || sandboxed["boxed"] != true {
		t.Errorf("mcp.add audit: got sandbox %v, want loose false and boxed true", sandboxed)
	}
}

// TestMCPServerWithoutSandbox: where bubblewrap is missing, a sandboxed
// server does not start (fail closed) and mcp list says how to fix it or
// run it unconfined; a --no-sandbox one still starts.
func TestMCPServerWithoutSandbox(t *testing.T) {
	t.Parallel()
	bin := buildMCPTestServer(t)
	e := newEnv(t)
	// A PATH without bwrap for the daemon and what it starts.
	noBwrap := t.TempDir()
	for _, tool := range []string{"sh", "true", "cat"} {
		if p, err := exec.LookPath(tool); err == nil {
			if err := os.Symlink(p, filepath.Join(noBwrap, tool)); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.ExtraEnv = append(e.ExtraEnv, "PATH="+noBwrap)
	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	if out, stderr, code := e.RunInput("sk-ant-nobwrap", "profiles", "create", "generic", "work", "--provider", "local", "--command", "true"); code != 0 {
		t.Fatalf("profiles create: exit %d, %q %q", code, out, stderr)
	}
	mustRun(t, e, "mcp", "add", "work", "boxed", "--", bin)
	e.Run("mcp", "add", "work", "loose", "--no-sandbox", "--", bin)
	got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}, stdioInit, stdioInitialized, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	tools := string(got["2"].Result)
	if strings.Contains(tools, "boxed__") || !strings.Contains(tools, "loose__echo") {
		t.Errorf("tools/list: got %s, want loose's tools and none of boxed's", tools)
	}
	for _, s := range mcpServers(t, e, "work") {
		if s.Name == "boxed" && (!strings.Contains(s.Error, "bubblewrap") || !strings.Contains(s.Error, "--no-sandbox")) {
			t.Errorf("mcp list: boxed's error %q, want one naming bubblewrap and --no-sandbox", s.Error)
		}
	}
}
