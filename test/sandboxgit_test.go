package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSandboxGitGuards: beyond a plain .git directory, git on the host
// runs hooks from a worktree's or submodule's git directory, from a
// core.hooksPath inside the working tree (husky), and follows a .git file
// to wherever it points. None of these may be writable from inside.
func TestSandboxGitGuards(t *testing.T) {
	requireSandbox(t)
	t.Parallel()
	git, err := exec.LookPath("git")
	if err != nil {
		skipUnlessCI(t, "git is not installed")
	}
	w := newSBWorld(t, nil)
	root := filepath.Dir(w.ws)

	// A linked worktree: .git is a file naming a git directory outside.
	wt := filepath.Join(root, "wt")
	writeFile(t, filepath.Join(root, "main", ".git", "worktrees", "wt", "HEAD"), "ref: refs/heads/wt\n", 0o644)
	dotgit := "gitdir: " + filepath.Join(root, "main", ".git", "worktrees", "wt") + "\n"
	writeFile(t, filepath.Join(wt, ".git"), dotgit, 0o644)

	// A repository with husky's core.hooksPath and a submodule.
	repo := filepath.Join(root, "repo")
	for _, args := range [][]string{{"init", "-q", repo}, {"-C", repo, "config", "core.hooksPath", ".husky/_"}} {
		if out, err := exec.Command(git, args...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	writeFile(t, filepath.Join(repo, ".husky", "_", "h"), "#!/bin/sh\n", 0o755)
	mod := filepath.Join(repo, ".git", "modules", "lib")
	writeFile(t, filepath.Join(mod, "HEAD"), "ref: refs/heads/main\n", 0o644)
	writeFile(t, filepath.Join(mod, "config"), "[core]\n", 0o644)
	writeFile(t, filepath.Join(mod, "hooks", "pre-commit.sample"), "#!/bin/sh\n", 0o755)

	// A local clone hard-links its objects: one of them is a file outside.
	outsideObj := filepath.Join(root, "other-repo-object")
	writeFile(t, outsideObj, "object", 0o444)
	if err := os.MkdirAll(filepath.Join(repo, ".git", "objects", "ab"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(outsideObj, filepath.Join(repo, ".git", "objects", "ab", "cdef")); err != nil {
		t.Fatal(err)
	}

	w.create(t, "sk-ant-wt-"+sbRandomHex(8), "wt", "--workspace", wt)
	w.create(t, "sk-ant-repo-"+sbRandomHex(8), "repo", "--workspace", repo)

	before := map[string]map[string]fileState{wt: snapshot(t, wt), repo: snapshot(t, repo)}
	out := w.mustProbe(t, "wt", `
echo "gitdir: ./evil" 2>/dev/null > .git && echo "WROTE .git file"
mv .git moved 2>/dev/null && echo "MOVED .git file"
exit 0`)
	if strings.Contains(out, "WROTE") || strings.Contains(out, "MOVED") {
		t.Errorf("worktree: got %q, want the .git file read-only", out)
	}
	out = w.mustProbe(t, "repo", `
echo 'touch /tmp/pwned' 2>/dev/null > .husky/_/pre-commit && echo "WROTE husky hook"
echo 'touch /tmp/pwned' 2>/dev/null > .git/modules/lib/hooks/post-checkout && echo "WROTE submodule hook"
printf '[core]\n\tfsmonitor = touch /tmp/pwned\n' 2>/dev/null >> .git/modules/lib/config && echo "WROTE submodule config"
mv .git/modules/lib .git/modules/lib.old 2>/dev/null && echo "MOVED submodule git dir"
mv .git/modules .git/modules.old 2>/dev/null && echo "MOVED modules"
mv .husky .husky.old 2>/dev/null && echo "MOVED husky"
chmod u+w .git/objects/ab/cdef 2>/dev/null; echo changed 2>/dev/null >> .git/objects/ab/cdef && echo "WROTE object"
echo ok > notes.txt && echo "WROTE notes"
exit 0`)
	for _, bad := range []string{"WROTE husky", "WROTE submodule", "MOVED", "WROTE object"} {
		if strings.Contains(out, bad) {
			t.Errorf("repository: got %q, want hooksPath, the submodule's hooks and config, their directories and the hard-linked object guarded", out)
			break
		}
	}
	if !strings.Contains(out, "WROTE notes") {
		t.Errorf("repository: got %q, want the working tree writable", out)
	}
	if data, _ := os.ReadFile(outsideObj); string(data) != "object" {
		t.Errorf("the outside object became %q", data)
	}
	os.Remove(filepath.Join(repo, "notes.txt"))
	// A guarded path that is a symlink would be followed on the host by
	// the bind (showing the host file inside) and by git: refused.
	linked := filepath.Join(root, "linked")
	writeFile(t, filepath.Join(linked, ".git", "HEAD"), "ref: refs/heads/main\n", 0o644)
	if err := os.Symlink(canaryTarget(t, root), filepath.Join(linked, ".git", "commondir")); err != nil {
		t.Fatal(err)
	}
	w.create(t, "sk-ant-ln-"+sbRandomHex(8), "ln", "--workspace", linked)
	if stdout, stderr, code := w.sh(t, "ln", "cat .git/commondir"); code == 0 || !strings.Contains(stderr, "symbolic link") || strings.Contains(stdout, "host canary") {
		t.Errorf("a symlinked .git/commondir: exit %d, stdout %q, stderr %q; want the run refused, naming the link", code, stdout, stderr)
	}

	for dir, snap := range before {
		if d := diffSnapshots(snap, snapshot(t, dir)); len(d) > 0 {
			t.Errorf("%s changed on the host: %v", dir, d)
		}
	}
}

// canaryTarget is a host file outside every workspace.
func canaryTarget(t *testing.T, root string) string {
	t.Helper()
	p := filepath.Join(root, "host-canary")
	writeFile(t, p, "host canary", 0o644)
	return p
}
