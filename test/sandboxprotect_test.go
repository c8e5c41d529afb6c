package test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSandboxProtectsHostRunFiles: the files host tools run or obey
// (.claude, .mcp.json, .vscode, .idea, .envrc and the rest of the default
// list) are read-only in the sandbox, existing or not, in the workspace
// and in read-write directories; one that did not exist is not left
// behind on the host; the rest of the workspace stays writable; a lifted
// path is writable; a symlink at a protected path is refused.
func TestSandboxProtectsHostRunFiles(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	w := newSBWorld(t, nil)
	root := filepath.Dir(w.ws)
	ws := filepath.Join(root, "proj")
	extra := filepath.Join(root, "extra")
	for _, d := range []string{ws, extra} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Some exist, some do not.
	writeFile(t, filepath.Join(ws, ".claude", "settings.json"), `{"hooks":{}}`, 0o644)
	writeFile(t, filepath.Join(ws, ".vscode", "tasks.json"), `{"tasks":[]}`, 0o644)
	writeFile(t, filepath.Join(ws, ".envrc"), "export A=1\n", 0o644)
	w.create(t, "sk-ant-pr-"+sbRandomHex(8), "pr", "--workspace", ws, "--rw", extra)
	before := map[string]map[string]fileState{ws: snapshot(t, ws), extra: snapshot(t, extra)}

	out := w.mustProbe(t, "pr", `
try() { if eval "$1" 2>/dev/null; then echo "WROTE $2"; fi; }
for d in "$PWD" "$1"; do
  try "echo '{\"hooks\":{\"SessionStart\":[]}}' > $d/.claude/settings.json" "$d .claude/settings.json"
  try "mkdir -p $d/.claude/commands && echo x > $d/.claude/commands/x.md" "$d .claude/commands"
  try "echo '{\"mcpServers\":{}}' > $d/.mcp.json" "$d .mcp.json"
  try "mkdir -p $d/.vscode && echo '{}' > $d/.vscode/tasks.json" "$d .vscode/tasks.json"
  try "echo '{}' > $d/.vscode/settings.json" "$d .vscode/settings.json"
  try "mkdir -p $d/.idea && echo x > $d/.idea/workspace.xml" "$d .idea"
  try "echo 'touch /tmp/pwned' > $d/.envrc" "$d .envrc"
  try "echo 'touch /tmp/pwned' >> $d/.envrc" "$d .envrc append"
  try "mv $d/.vscode $d/vscode.old" "$d moved .vscode"
  try "rm -rf $d/.claude" "$d removed .claude"
  try "echo x > $d/.pre-commit-config.yaml" "$d .pre-commit-config.yaml"
  try "mkdir -p $d/.codex && echo x > $d/.codex/config.toml" "$d .codex"
  try "echo '{}' > $d/opencode.json" "$d opencode.json"
  try "ln -s /etc/passwd $d/.mcp.json" "$d symlinked .mcp.json"
  try "echo ok > $d/notes.txt" "notes in $d"
done
exit 0`, extra)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(line, "WROTE ") && !strings.HasPrefix(line, "WROTE notes") {
			t.Errorf("inside the sandbox: %s; want every protected path read-only", line)
		}
	}
	for _, d := range []string{ws, extra} {
		if !strings.Contains(out, "WROTE notes in "+d) {
			t.Errorf("inside the sandbox: got %q, want %s writable outside the protected paths", out, d)
		}
		os.Remove(filepath.Join(d, "notes.txt"))
	}
	// Nothing changed, nothing left behind: the placeholders for missing
	// paths were removed when the agent exited.
	for dir, snap := range before {
		if d := diffSnapshots(snap, snapshot(t, dir)); len(d) > 0 {
			t.Errorf("%s changed on the host: %v", dir, d)
		}
	}

	// A lifted path is the agent's to write.
	w.mustRun(t, "profiles", "set", "pr", "--unprotect", ".vscode/")
	if out := w.mustProbe(t, "pr", `echo '{"a":1}' > .vscode/tasks.json && echo WROTE; exit 0`); !strings.Contains(out, "WROTE") {
		t.Errorf("after --unprotect .vscode/: got %q, want .vscode writable", out)
	}
	// An added one is not.
	writeFile(t, filepath.Join(ws, ".github", "workflows", "ci.yml"), "on: push\n", 0o644)
	w.mustRun(t, "profiles", "set", "pr", "--protect", ".github/workflows/")
	if out := w.mustProbe(t, "pr", `echo evil > .github/workflows/ci.yml && echo WROTE; mv .github gh.old && echo MOVED; exit 0`); strings.Contains(out, "WROTE") || strings.Contains(out, "MOVED") {
		t.Errorf("after --protect .github/workflows/: got %q, want it read-only and its parent kept in place", out)
	}
	if stdout, stderr, code := w.e.Run("profiles", "set", "pr", "--protect", "../escape"); code != 2 || !strings.Contains(stderr, "clean relative path") {
		t.Errorf("--protect ../escape: exit %d, stdout %q, stderr %q; want exit 2 and the rule", code, stdout, stderr)
	}

	// A symlink at a protected path would be followed by the bind and by
	// the host tool: refused, naming it.
	if err := os.Symlink(canaryTarget(t, root), filepath.Join(ws, ".mcp.json")); err != nil {
		t.Fatal(err)
	}
	if stdout, stderr, code := w.sh(t, "pr", "cat .mcp.json"); code == 0 || !strings.Contains(stderr, "symbolic link") || strings.Contains(stdout, "host canary") {
		t.Errorf("a symlinked .mcp.json: exit %d, stdout %q, stderr %q; want the run refused, naming the link", code, stdout, stderr)
	}

	var view struct {
		Protected []string `json:"protected"`
	}
	if err := json.Unmarshal([]byte(w.mustRun(t, "profiles", "inspect", "pr", "--json")), &view); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(view.Protected, " "), ".vscode") || !strings.Contains(strings.Join(view.Protected, " "), ".github/workflows/") || !strings.Contains(strings.Join(view.Protected, " "), ".envrc") {
		t.Errorf("profiles inspect: protected %v, want the defaults without .vscode/ and with .github/workflows/", view.Protected)
	}
}
