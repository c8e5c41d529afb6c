package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// gitGuard is what keeps code the agent runs from planting something that
// git on the host later runs (hooks, core.fsmonitor and aliases in config).
type gitGuard struct {
	// Self are git directories bound onto themselves (read-write): a
	// mount point cannot be renamed or removed, so the agent cannot move
	// one aside and put a git directory of its own in its place.
	Self []string
	// ReadOnly are existing files and directories bound read-only.
	ReadOnly []string
	// Empty are missing hook directories that would run if created; they
	// get an empty read-only mount (bwrap leaves the empty directory on
	// the host, as git init would have made it).
	Empty []string
	// Dirs are the git directories inside the workspace (the repository's
	// and its submodules'), File the .git file of a worktree or
	// submodule checkout, HooksPath a core.hooksPath inside the
	// workspace: for rules that, unlike binds, can name paths that do not
	// exist yet (macOS).
	Dirs      []string
	File      string
	HooksPath string
}

// maxGitDirs bounds the submodule git directories guarded in one
// workspace.
const maxGitDirs = 256

// guardGit finds what to guard in the workspace ws:
//   - its git directory: .git, or the directory a .git file names (a
//     worktree or submodule checkout) when that lies inside ws; the .git
//     file itself is read-only, so the agent cannot point it elsewhere;
//   - in each git directory, in the git directories of submodules under
//     its modules/ and of linked worktrees under its worktrees/: hooks,
//     config, config.worktree and commondir;
//   - the .git files of the submodule checkouts .gitmodules names;
//   - core.hooksPath when the repository sets it to a directory inside ws
//     (husky's .husky/_, a .githooks directory), read from git itself.
//
// Every directory between ws and a guarded path is bound onto itself, so
// that the agent cannot rename it aside and build an unguarded one in its
// place. A guarded path, or a directory on the way to it, that is a
// symbolic link is an error: bubblewrap would follow it on the host when
// binding, and git on the host would follow it when reading.
//
// It cannot guard a new commondir or config.worktree that the agent
// creates, nor a repository created inside ws: bubblewrap can only bind
// what exists.
func guardGit(ws string) (gitGuard, error) {
	var g gitGuard
	// Paths git reports are resolved; ws may be a path through a symlink,
	// and the sandbox shows the workspace at ws.
	wsReal, err := filepath.EvalSymlinks(ws)
	if err != nil {
		wsReal = ws
	}
	inWS := func(p string) (string, bool) {
		switch {
		case within(p, ws):
			return p, true
		case within(p, wsReal):
			return ws + strings.TrimPrefix(p, wsReal), true
		}
		return "", false
	}
	dotgit := filepath.Join(ws, ".git")
	fi, err := os.Lstat(dotgit)
	var gitDir string
	switch {
	case err != nil:
		// No repository here; a hooksPath from the global config may
		// still point inside.
	case fi.Mode()&fs.ModeSymlink != 0:
		return g, fmt.Errorf("%s is a symbolic link; Ringlet cannot keep git's hooks and config read-only through it: replace it with the directory, or use --allow-git-config", dotgit)
	case fi.IsDir():
		gitDir = dotgit
	case fi.Mode().IsRegular():
		g.ReadOnly = append(g.ReadOnly, dotgit)
		g.File = dotgit
		if d, ok := inWS(gitdirOf(dotgit)); ok {
			gitDir = d
		}
	}
	if gitDir != "" {
		dirs := []string{gitDir}
		for _, under := range []string{"modules", "worktrees"} {
			found, err := gitDirsUnder(filepath.Join(gitDir, under))
			if err != nil {
				return g, err
			}
			dirs = append(dirs, found...)
		}
		g.Dirs = dirs
		for _, d := range dirs {
			g.Self = append(g.Self, d)
			hooks := filepath.Join(d, "hooks")
			if exists(hooks) {
				g.ReadOnly = append(g.ReadOnly, hooks)
			} else {
				g.Empty = append(g.Empty, hooks)
			}
			for _, f := range []string{"config", "config.worktree", "commondir"} {
				if p := filepath.Join(d, f); exists(p) {
					g.ReadOnly = append(g.ReadOnly, p)
				}
			}
		}
		for _, sub := range submodulePaths(ws) {
			if fi, err := os.Lstat(filepath.Join(sub, ".git")); err == nil && !fi.IsDir() {
				g.ReadOnly = append(g.ReadOnly, filepath.Join(sub, ".git"))
			}
		}
	}
	if hp, ok := inWS(hooksPath(ws)); ok && hp != ws {
		g.HooksPath = hp
		if exists(hp) {
			g.ReadOnly = append(g.ReadOnly, hp)
		} else if parent := filepath.Dir(hp); exists(parent) {
			g.Empty = append(g.Empty, hp)
		}
	}
	// Nothing on the way may be a symlink, and every directory on the way
	// stays where it is.
	for _, p := range append(append(append([]string{}, g.ReadOnly...), g.Empty...), g.Self...) {
		for d := p; within(d, ws) && d != ws; d = filepath.Dir(d) {
			fi, err := os.Lstat(d)
			if errors.Is(err, fs.ErrNotExist) && d == p {
				continue // an Empty mount point bwrap creates
			}
			if err != nil {
				return g, fmt.Errorf("check %s: %w", d, err)
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				return g, fmt.Errorf("%s is a symbolic link; Ringlet cannot keep git's hooks and config read-only through it: replace it, or use --allow-git-config", d)
			}
			if d != p && fi.IsDir() {
				g.Self = append(g.Self, d)
			}
		}
	}
	for _, l := range []*[]string{&g.Self, &g.ReadOnly, &g.Empty} {
		sort.Strings(*l)
		*l = dedupe(*l)
	}
	// Outer directories first: a bind onto an inner one must come after
	// the bind of the directory that holds it.
	sort.Slice(g.Self, func(i, j int) bool { return strings.Count(g.Self[i], "/") < strings.Count(g.Self[j], "/") })
	return g, nil
}

// submodulePaths are the checkouts .gitmodules names, inside ws.
func submodulePaths(ws string) []string {
	data, err := os.ReadFile(filepath.Join(ws, ".gitmodules"))
	if err != nil || len(data) > 1<<20 {
		return nil
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if !ok || strings.TrimSpace(k) != "path" {
			continue
		}
		p := filepath.Join(ws, strings.TrimSpace(v))
		if within(p, ws) && p != ws && len(out) < maxGitDirs {
			out = append(out, p)
		}
	}
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// within reports whether p is dir or lies under it.
func within(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// gitdirOf reads the "gitdir: PATH" line of a .git file and returns PATH
// made absolute (relative to the file's directory) and clean, with
// symbolic links resolved, or "" when it cannot.
func gitdirOf(dotgit string) string {
	f, err := os.Open(dotgit)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return ""
	}
	d, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "gitdir:")
	if !ok {
		return ""
	}
	d = strings.TrimSpace(d)
	if !filepath.IsAbs(d) {
		d = filepath.Join(filepath.Dir(dotgit), d)
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(d))
	if err != nil {
		return ""
	}
	return real
}

// gitDirsUnder are the git directories under dir (a modules/ or
// worktrees/ directory; nested submodules included): directories holding
// a HEAD file.
func gitDirsUnder(modules string) ([]string, error) {
	var out []string
	var link string
	// The walk function returns no errors (unreadable parts are skipped).
	_ = filepath.WalkDir(modules, func(p string, de fs.DirEntry, err error) error {
		if err != nil || len(out) >= maxGitDirs {
			return fs.SkipDir
		}
		if de.Type()&fs.ModeSymlink != 0 && p != modules {
			// Outside objects/, refs/ and logs/, a link here can only
			// point git on the host somewhere else.
			link = p
			return fs.SkipAll
		}
		if !de.IsDir() {
			return nil
		}
		if de.Name() == "objects" || de.Name() == "refs" || de.Name() == "logs" || de.Name() == "hooks" {
			return fs.SkipDir
		}
		if fi, err := os.Lstat(filepath.Join(p, "HEAD")); err == nil && fi.Mode().IsRegular() {
			out = append(out, p)
		}
		return nil
	})
	if link != "" {
		return nil, fmt.Errorf("%s is a symbolic link; Ringlet cannot keep git's hooks and config read-only through it: replace it, or use --allow-git-config", link)
	}
	return out, nil
}

// hooksPath is the repository's core.hooksPath as git on the host sees it
// (system, global and repository config), made absolute, or "" when it is
// unset or git is not installed (then nothing on the host runs hooks).
// git config does not run hooks or fsmonitor.
func hooksPath(ws string) string {
	git, err := exec.LookPath("git")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, git, "-C", ws, "config", "--path", "--get", "core.hooksPath")
	cmd.Env = gitEnv()
	out, err := cmd.Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return ""
	}
	p := strings.TrimSpace(string(out))
	if p == "" || strings.ContainsAny(p, "\x00\n") {
		return ""
	}
	if !filepath.IsAbs(p) {
		// Relative to where hooks run: the top of the working tree.
		p = filepath.Join(ws, p)
	}
	p = filepath.Clean(p)
	if real, err := filepath.EvalSymlinks(p); err == nil {
		p = real
	}
	return p
}

// gitEnv is the environment for git run by Ringlet: the user's (so the
// config git reads is the one git on the host reads), without the
// variables that would point it at another repository.
func gitEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "GIT_DIR", "GIT_WORK_TREE", "GIT_COMMON_DIR", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_NAMESPACE", "GIT_CEILING_DIRECTORIES":
			continue
		}
		env = append(env, kv)
	}
	return append(env, "GIT_OPTIONAL_LOCKS=0")
}
