package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/neullabs/ringlet/toolchain"
)

// fakePyMCP is a stdio MCP server in Python with one tool, read, which
// answers a file's content or "read failed".
const fakePyMCP = `#!/usr/bin/env python3
import json, sys

def send(m):
    sys.stdout.write(json.dumps(m) + "\n")
    sys.stdout.flush()

for line in sys.stdin:
    m = json.loads(line)
    mid, method = m.get("id"), m.get("method")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": mid, "result": {"protocolVersion": m["params"]["protocolVersion"],
              "capabilities": {"tools": {}}, "serverInfo": {"name": "fakepy", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": mid, "result": {"tools": [{"name": "read", "description": "Read a file.",
              "inputSchema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}]}})
    elif method == "tools/call":
        try:
            with open(m["params"]["arguments"]["path"]) as f:
                text = "read: " + f.read()
        except Exception:
            text = "read failed"
        send({"jsonrpc": "2.0", "id": mid, "result": {"content": [{"type": "text", "text": text}]}})
    elif method == "ping":
        send({"jsonrpc": "2.0", "id": mid, "result": {}})
    elif mid is not None:
        send({"jsonrpc": "2.0", "id": mid, "error": {"code": -32601, "message": "no such method"}})
`

// fakePyAgent is an agent in Python: it says which Python runs it, tries
// to read each file it is given, and exits 5.
const fakePyAgent = `#!/usr/bin/env python3
import sys
print("AGENT", sys.executable)
for p in sys.argv[1:]:
    try:
        with open(p) as f:
            print("read: " + f.read())
    except Exception:
        print("read failed")
sys.exit(5)
`

// fakeNodeMCP is a stdio MCP server in JavaScript, as npm installs one:
// its one tool says which node runs it (FAKE_NVM, set by the fake nvm's
// node).
const fakeNodeMCP = `#!/usr/bin/env node
const rl = require("readline").createInterface({ input: process.stdin });
const send = (m) => process.stdout.write(JSON.stringify(m) + "\n");
rl.on("line", (line) => {
  const m = JSON.parse(line);
  if (m.method === "initialize") {
    send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: "fakenode", version: "1" } } });
  } else if (m.method === "tools/list") {
    send({ jsonrpc: "2.0", id: m.id, result: { tools: [{ name: "node", description: "Which node runs this.", inputSchema: { type: "object", properties: {} } }] } });
  } else if (m.method === "tools/call") {
    send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: "node from " + (process.env.FAKE_NVM || "elsewhere") }] } });
  } else if (m.method === "ping") {
    send({ jsonrpc: "2.0", id: m.id, result: {} });
  } else if (m.id !== undefined) {
    send({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "no such method" } });
  }
});
`

// fakePyenv is pyenv as far as its shims and 'pyenv which' go: the
// version in $PYENV_ROOT/version.
const fakePyenv = `#!/bin/sh
cmd=$1; shift
v=$(cat "$PYENV_ROOT/version")
p="$PYENV_ROOT/versions/$v/bin/$1"
if [ ! -x "$p" ]; then echo "pyenv: $1: command not found" >&2; exit 127; fi
case $cmd in
which) echo "$p" ;;
exec) shift; exec "$p" "$@" ;;
*) exit 64 ;;
esac
`

// TestVersionManagerShims: a user whose python3 and whose MCP server and
// agent are reached through pyenv's shims (a fake pyenv in their HOME,
// with a real Python linked into its version directory). Without Ringlet
// resolving them, the shims exit 127 in the sandbox (no pyenv there).
// With it, the server starts and answers tools/list, the agent runs and
// exits with its own code, each with that one version directory bound
// read-only, and neither can read a file elsewhere in the HOME: beside
// the version directory, in ~/.cargo, in ~ itself. A shim pyenv cannot
// resolve is refused when it is added, with the command that fixes it.
func TestVersionManagerShims(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	// The system's own: the test's PATH may well have a shim first.
	python, err := filepath.EvalSymlinks(toolchain.LookPath("python3", "/usr/local/bin:/usr/bin:/bin"))
	if err != nil || !strings.HasPrefix(python, "/usr/") {
		t.Skipf("the fake pyenv needs the system's python3 (got %q, %v)", python, err)
	}
	e := newEnv(t)
	pyenv := filepath.Join(e.Home, ".pyenv")
	shims := filepath.Join(pyenv, "shims")
	root := filepath.Join(pyenv, "versions", "3.12.0")
	ws := filepath.Join(e.Root, "ws")
	canaries := map[string]string{
		filepath.Join(pyenv, "canary.txt"):                  "PYENV-ROOT-CANARY-" + sbRandomHex(8),
		filepath.Join(e.Home, ".cargo", "credentials.toml"): "CARGO-CANARY-" + sbRandomHex(8),
		filepath.Join(e.Home, "secret.txt"):                 "HOME-CANARY-" + sbRandomHex(8),
	}
	for p, c := range canaries {
		writeFile(t, p, c, 0o600)
	}
	shim := "#!/usr/bin/env bash\nset -e\nprogram=\"${0##*/}\"\nexport PYENV_ROOT=\"" + pyenv + "\"\nexec \"" + filepath.Join(pyenv, "libexec", "pyenv") + "\" exec \"$program\" \"$@\"\n"
	for _, name := range []string{"python3", "fakepy-mcp", "fakepy-agent", "badtool"} {
		writeFile(t, filepath.Join(shims, name), shim, 0o755)
	}
	writeFile(t, filepath.Join(pyenv, "libexec", "pyenv"), fakePyenv, 0o755)
	writeFile(t, filepath.Join(pyenv, "version"), "3.12.0\n", 0o644)
	writeFile(t, filepath.Join(root, "bin", "fakepy-mcp"), fakePyMCP, 0o755)
	writeFile(t, filepath.Join(root, "bin", "fakepy-agent"), fakePyAgent, 0o755)
	if err := os.Symlink(python, filepath.Join(root, "bin", "python3")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	// nvm, with a node that runs the system's, and a server npm installed.
	node := toolchain.LookPath("node", "/usr/local/bin:/usr/bin:/bin")
	nvm := filepath.Join(e.Home, ".nvm", "versions", "node", "v20.0.0")
	if node != "" {
		writeFile(t, filepath.Join(e.Home, ".nvm", "nvm.sh"), "", 0o644)
		writeFile(t, filepath.Join(nvm, "bin", "node"), "#!/bin/sh\nexport FAKE_NVM=v20.0.0\nexec "+node+" \"$@\"\n", 0o755)
		writeFile(t, filepath.Join(nvm, "lib", "node_modules", "fake-mcp", "package.json"), `{"name":"fake-mcp","bin":{"fakenode-mcp":"index.js"}}`, 0o644)
		writeFile(t, filepath.Join(nvm, "lib", "node_modules", "fake-mcp", "index.js"), fakeNodeMCP, 0o755)
		if err := os.Symlink("../lib/node_modules/fake-mcp/index.js", filepath.Join(nvm, "bin", "fakenode-mcp")); err != nil {
			t.Fatal(err)
		}
	}
	// The user's shell, and the daemon it starts, find the shims first.
	e.ExtraEnv = []string{"PATH=" + shims + ":/usr/bin:/bin"}
	if os.Geteuid() == 0 {
		// As the unprivileged user, whose world this is.
		cred := &syscall.Credential{Uid: uint32(nobody), Gid: uint32(nobody)}
		chmod(t, filepath.Dir(e.Root), 0o755)
		chmod(t, e.Root, 0o755)
		if err := filepath.WalkDir(e.Root, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(cred.Uid), int(cred.Gid))
		}); err != nil {
			t.Fatal(err)
		}
		e.Cred = cred
	}
	// The shim works outside the sandbox, as on the user's machine.
	if out, err := e.command(t.Context(), filepath.Join(shims, "python3"), "-c", "print('ok')").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("the fake pyenv's python3 shim: %v %q", err, out)
	}

	e.StartDaemon()
	mustRun(t, e, "providers", "add", "local", "--base-url", "http://127.0.0.1:9", "--format", "anthropic", "--auth", "x-api-key")
	stdout, stderr, code := e.RunInput("sk-ant-shims-"+sbRandomHex(8), "profiles", "create", "generic", "work", "--provider", "local",
		"--command", "fakepy-agent", "--workspace", ws, "--network", "none")
	if code != 0 {
		t.Fatalf("profiles create: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, want := range []string{"runs " + filepath.Join(root, "bin", "fakepy-agent"), "(pyenv shim)", "read-only: " + root + "\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("profiles create: got %q, want %q in it", stdout, want)
		}
	}

	t.Run("MCP server", func(t *testing.T) {
		out := mustRun(t, e, "mcp", "add", "work", "py", "--", "fakepy-mcp")
		for _, want := range []string{"runs " + filepath.Join(root, "bin", "fakepy-mcp"), filepath.Join(shims, "fakepy-mcp") + " (on PATH)",
			"(pyenv shim)", "#! env python3", "read-only: " + root + "\n", "first on its PATH: " + filepath.Join(root, "bin")} {
			if !strings.Contains(out, want) {
				t.Errorf("mcp add: got %q, want %q in it", out, want)
			}
		}
		// The control: unconfined, the same server reads what the
		// sandbox hides.
		mustRun(t, e, "mcp", "add", "work", "loose", "--no-sandbox", "--", "fakepy-mcp")

		tok := mcpSessionToken(t, e, "work")
		msgs := []string{stdioInit, stdioInitialized, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`}
		id := 3
		paths := slices.Sorted(func(yield func(string) bool) {
			for p := range canaries {
				if !yield(p) {
					return
				}
			}
		})
		for _, p := range paths {
			msgs = append(msgs, stdioCall(id, "py__read", map[string]string{"path": p}), stdioCall(id+100, "loose__read", map[string]string{"path": p}))
			id++
		}
		got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + tok}, msgs...)
		if tools := string(got["2"].Result); !strings.Contains(tools, `"py__read"`) {
			var s []mcpServerView
			_ = json.Unmarshal([]byte(mustRun(t, e, "mcp", "list", "work", "--json")), &s)
			t.Fatalf("tools/list: got %s, want py__read (the server running in its sandbox); servers: %+v", tools, s)
		}
		for i, p := range paths {
			if text, _ := callText(t, got[strconv.Itoa(3+i)]); text != "read failed" {
				t.Errorf("py__read %s in the sandbox: got %q, want read failed", p, text)
			}
			if text, _ := callText(t, got[strconv.Itoa(103+i)]); text != "read: "+canaries[p] {
				t.Errorf("loose__read %s without a sandbox (the control): got %q, want the canary", p, text)
			}
		}

		var s struct {
			State   string `json:"state"`
			Path    string `json:"path"`
			Shims   map[string]string
			Runtime struct {
				Program string   `json:"program"`
				Binds   []string `json:"binds"`
				Path    []string `json:"path"`
			} `json:"runtime"`
		}
		if err := json.Unmarshal([]byte(mustRun(t, e, "mcp", "show", "work", "py", "--json")), &s); err != nil {
			t.Fatal(err)
		}
		if s.State != "running" || s.Runtime.Program != filepath.Join(root, "bin", "fakepy-mcp") || !slices.Equal(s.Runtime.Binds, []string{root}) ||
			s.Shims[filepath.Join(shims, "fakepy-mcp")] != filepath.Join(root, "bin", "fakepy-mcp") || !strings.HasPrefix(s.Path, shims+":") {
			t.Errorf("mcp show --json: got %+v, want it running, the program pyenv named, only %s bound, the shim's answer and the shell's PATH kept", s, root)
		}
		if out := mustRun(t, e, "mcp", "show", "work", "py"); !strings.Contains(out, "reads") || !strings.Contains(out, root) {
			t.Errorf("mcp show: got %q, want what its sandbox reads", out)
		}
	})

	// env node finds the node of the server's own install first, although
	// the PATH has the system's.
	t.Run("npm-installed server under nvm", func(t *testing.T) {
		if node == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("no node on this machine; CI has one")
			}
			t.Skip("no node on this machine")
		}
		out := mustRun(t, e, "mcp", "add", "work", "js", "--", filepath.Join(nvm, "bin", "fakenode-mcp"))
		if !strings.Contains(out, "read-only: "+nvm+"\n") || !strings.Contains(out, "#! env node") {
			t.Errorf("mcp add: got %q, want %s bound and node found for the #! line", out, nvm)
		}
		got := stdioBridge(t, e, []string{"RINGLET_SESSION_TOKEN=" + mcpSessionToken(t, e, "work")}, stdioInit, stdioInitialized, stdioCall(2, "js__node", map[string]string{}))
		if text, isErr := callText(t, got["2"]); isErr || text != "node from v20.0.0" {
			t.Errorf("js__node: got %v %q, want the node of its nvm version", isErr, text)
		}
	})

	t.Run("agent", func(t *testing.T) {
		args := append([]string{"profiles", "run", "work", "--"}, slices.Sorted(func(yield func(string) bool) {
			for p := range canaries {
				if !yield(p) {
					return
				}
			}
		})...)
		stdout, stderr, code := e.Run(args...)
		if code != 5 || !strings.Contains(stdout, "AGENT "+filepath.Join(root, "bin", "python3")) || strings.Count(stdout, "read failed") != len(canaries) {
			t.Errorf("profiles run: exit %d, stdout %q, stderr %q; want exit 5 from the agent, run by the Python in %s, and every canary unreadable", code, stdout, stderr, root)
		}
		for _, c := range canaries {
			if strings.Contains(stdout+stderr, c) {
				t.Errorf("the agent read %s", c)
			}
		}
		out := mustRun(t, e, "profiles", "inspect", "work")
		if !strings.Contains(out, filepath.Join(root, "bin", "fakepy-agent")) || !strings.Contains(out, root) {
			t.Errorf("profiles inspect: got %q, want what runs and what its sandbox reads", out)
		}
	})

	t.Run("a shim pyenv cannot resolve is refused with the fix", func(t *testing.T) {
		_, stderr, code := e.Run("mcp", "add", "work", "bad", "--ro", ws, "--", "badtool", "--flag")
		for _, want := range []string{"badtool is a pyenv shim (" + filepath.Join(shims, "badtool") + ")", "pyenv: badtool: command not found",
			"the sandbox cannot run pyenv", `ringlet mcp add work bad --ro ` + ws + ` -- "$(pyenv which badtool)" --flag`, "--no-sandbox"} {
			if code == 0 || !strings.Contains(stderr, want) {
				t.Errorf("mcp add of an unresolvable shim: exit %d, stderr %q; want a failure with %q", code, stderr, want)
			}
		}
		if strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("got %q, want one line", stderr)
		}
		for _, s := range mcpServers(t, e, "work") {
			if s.Name == "bad" {
				t.Error("the refused server was added")
			}
		}
		_, stderr, code = e.RunInput("sk-ant-bad", "profiles", "create", "generic", "bad", "--provider", "local", "--command", "badtool x", "--workspace", ws)
		if code == 0 || !strings.Contains(stderr, `--command "$(pyenv which badtool) x"`) {
			t.Errorf("profiles create with an unresolvable shim: exit %d, stderr %q; want a failure with the --command that fixes it", code, stderr)
		}
	})
}
