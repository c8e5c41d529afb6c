package sandbox

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/neullabs/ringlet/privatefile"
)

// DefaultProtected are the paths, relative to the workspace and to each
// read-write directory, that the sandbox shows read-only: files that tools
// on the host later execute or obey without asking again, so that code the
// agent runs cannot plant instructions there. A trailing "/" marks a
// directory. Git's hooks and config are guarded separately (gitGuard).
//
//   - .claude/: Claude Code's project settings (hooks, permissions),
//     commands, agents and skills;
//   - .mcp.json: project MCP servers, commands Claude Code starts;
//   - .vscode/: VS Code tasks (runOn folderOpen), settings, launch configs;
//   - .idea/: JetBrains run configurations and startup tasks;
//   - .envrc: direnv's shell code;
//   - .codex/, .opencode/, opencode.json, opencode.jsonc, .cursor/: the
//     project config of Codex, OpenCode (plugins are code) and Cursor;
//   - .devcontainer/: initializeCommand runs on the host;
//   - .pre-commit-config.yaml: what pre-commit runs at each git commit.
var DefaultProtected = []string{
	".claude/", ".mcp.json", ".vscode/", ".idea/", ".envrc",
	".codex/", ".opencode/", "opencode.json", "opencode.jsonc", ".cursor/",
	".devcontainer/", ".pre-commit-config.yaml",
}

// maxProtected bounds a profile's list.
const maxProtected = 64

// CheckProtected checks one entry of a protected list: a clean relative
// path inside the tree (".vscode/", "config/settings.json"), a trailing
// "/" for a directory.
func CheckProtected(entry string) error {
	p := strings.TrimSuffix(entry, "/")
	switch {
	case p == "" || p == ".":
		return fmt.Errorf("protected path %q is empty; name a file or directory inside the workspace, such as .vscode/", entry)
	case strings.ContainsAny(p, "\x00\n\r\\"):
		return fmt.Errorf("protected path %q contains a newline, NUL or backslash", entry)
	case !filepath.IsLocal(p) || filepath.Clean(p) != p:
		return fmt.Errorf("protected path %q must be a clean relative path inside the workspace, such as .vscode/ or .envrc", entry)
	}
	return nil
}

// ProtectedPaths is DefaultProtected with add appended and lift taken
// out (an entry matches with or without its trailing "/").
func ProtectedPaths(add, lift []string) ([]string, error) {
	var errs []error
	for _, e := range append(append([]string{}, add...), lift...) {
		errs = append(errs, CheckProtected(e))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	key := func(e string) string { return strings.TrimSuffix(e, "/") }
	var out []string
	for _, e := range append(append([]string{}, DefaultProtected...), add...) {
		if slices.ContainsFunc(lift, func(l string) bool { return key(l) == key(e) }) ||
			slices.ContainsFunc(out, func(o string) bool { return key(o) == key(e) }) {
			continue
		}
		out = append(out, e)
	}
	if len(out) > maxProtected {
		return nil, fmt.Errorf("at most %d protected paths", maxProtected)
	}
	return out, nil
}

// protection is what guardProtected found for the trees of a policy.
type protection struct {
	// ReadOnly are protected files and directories that hold something:
	// bound read-only onto themselves.
	ReadOnly []string
	// Self are directories between a tree and a protected path, bound
	// onto themselves so that they cannot be renamed aside.
	Self []string
	// Empty are protected paths that do not exist or are empty (a
	// trailing "/" for directories): each gets an empty read-only file
	// (Policy.EmptyFile bound over it) or directory (a read-only tmpfs),
	// so that the agent cannot create one. Missing are those of them
	// that do not exist: a Lease makes them, empty, on the host, as the
	// mount points.
	Empty, Missing []string
}

// Trees are the trees the protected list applies to, and a Lease covers:
// the workspace and every read-write directory.
func (p *Policy) Trees() []string {
	trees := []string{p.Workspace}
	for _, d := range p.ReadWrite {
		if fi, err := os.Stat(d); err == nil && fi.IsDir() {
			trees = append(trees, d)
		}
	}
	return trees
}

// guardProtected finds, in each tree, the paths of list. A symbolic link
// at a protected path or on the way to it is an error: bubblewrap would
// follow it on the host when binding, and the host tool would follow it
// when reading.
func (p *Policy) guardProtected() (protection, error) {
	var g protection
	for _, tree := range p.Trees() {
		for _, entry := range p.Protected {
			if err := CheckProtected(entry); err != nil {
				return g, err
			}
			rel := strings.TrimSuffix(entry, "/")
			full := filepath.Join(tree, rel)
			// The directories on the way, outermost first: a symlink
			// there is refused; a missing one means nothing to guard
			// (the entry for it, if listed, guards it).
			var way []string
			for d := filepath.Dir(full); within(d, tree) && d != tree; d = filepath.Dir(d) {
				way = append([]string{d}, way...)
			}
			parentMissing := false
			for _, d := range way {
				fi, err := os.Lstat(d)
				switch {
				case errors.Is(err, fs.ErrNotExist):
					parentMissing = true
				case err != nil:
					return g, fmt.Errorf("check %s: %w", d, err)
				case fi.Mode()&fs.ModeSymlink != 0:
					return g, fmt.Errorf("%s is a symbolic link; Ringlet cannot keep %s read-only in the sandbox through it: replace it with the directory, or lift the protection with 'ringlet profiles set ALIAS --unprotect %s'", d, full, entry)
				case !fi.IsDir():
					return g, fmt.Errorf("%s is not a directory; Ringlet cannot keep %s read-only: replace it, or lift the protection with 'ringlet profiles set ALIAS --unprotect %s'", d, full, entry)
				}
				if parentMissing {
					break
				}
			}
			if parentMissing {
				continue
			}
			fi, err := os.Lstat(full)
			dir := strings.HasSuffix(entry, "/")
			mark := full
			if dir {
				mark += "/"
			}
			switch {
			case errors.Is(err, fs.ErrNotExist):
				g.Empty = append(g.Empty, mark)
				g.Missing = append(g.Missing, mark)
			case err != nil:
				return g, fmt.Errorf("check %s: %w", full, err)
			case fi.Mode()&fs.ModeSymlink != 0:
				return g, fmt.Errorf("%s is a symbolic link; Ringlet cannot keep it read-only in the sandbox through it: replace it with the file or directory, or lift its protection with 'ringlet profiles set ALIAS --unprotect %s'", full, entry)
			case fi.Mode().IsRegular() && fi.Size() == 0:
				g.Empty = append(g.Empty, strings.TrimSuffix(full, "/")) // a file, whatever the entry said
			case fi.IsDir() && emptyDir(full):
				g.Empty = append(g.Empty, full+"/")
			default:
				g.ReadOnly = append(g.ReadOnly, full)
			}
			g.Self = append(g.Self, way...)
		}
	}
	sort.Strings(g.ReadOnly)
	g.ReadOnly = dedupe(g.ReadOnly)
	sort.Strings(g.Missing)
	g.Missing = dedupe(g.Missing)
	sort.Strings(g.Empty)
	g.Empty = dedupe(g.Empty)
	sort.Strings(g.Self)
	g.Self = dedupe(g.Self)
	// Outer directories first, as for git.
	sort.SliceStable(g.Self, func(i, j int) bool { return strings.Count(g.Self[i], "/") < strings.Count(g.Self[j], "/") })
	return g, nil
}

// emptyDir reports whether dir holds nothing (or cannot be read: then it
// is not treated as empty).
func emptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	return len(names) == 0 && errors.Is(err, io.EOF)
}

// EmptyFile makes sure dir/empty exists as an empty file that only its
// owner can read, and returns its path: the stand-in bound over protected
// files that are missing or empty (Policy.EmptyFile). dir should be one
// of Ringlet's own directories, which no sandbox shows.
func EmptyFile(dir string) (string, error) {
	if err := privatefile.EnsureDir(dir); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "empty")
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|syscall.O_NOFOLLOW, 0o400)
	if err != nil {
		return "", fmt.Errorf("the sandbox's empty stand-in file %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() || fi.Size() != 0 {
		return "", fmt.Errorf("%s should be an empty file and is not; remove it and Ringlet makes it again", path)
	}
	return path, nil
}

// removePlaceholders removes each of paths (a trailing "/" for a
// directory) while it is still an empty file or directory: anything put
// there since is kept.
func removePlaceholders(paths []string) {
	for _, m := range paths {
		path := strings.TrimSuffix(m, "/")
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		switch {
		case strings.HasSuffix(m, "/") && fi.IsDir():
			os.Remove(path) // fails unless empty
		case !strings.HasSuffix(m, "/") && fi.Mode().IsRegular() && fi.Size() == 0:
			os.Remove(path)
		}
	}
}

// protectArgs are bubblewrap's options that make the protected paths
// read-only; they follow the workspace and read-write binds.
func (p *Policy) protectArgs() ([]string, error) {
	if len(p.Protected) == 0 {
		return nil, nil
	}
	g, err := p.guardProtected()
	if err != nil {
		return nil, err
	}
	var a []string
	for _, d := range g.Self {
		a = append(a, "--bind", d, d)
	}
	for _, d := range g.ReadOnly {
		a = append(a, "--ro-bind", d, d)
	}
	for _, e := range g.Empty {
		if d, ok := strings.CutSuffix(e, "/"); ok {
			a = append(a, "--tmpfs", d, "--remount-ro", d)
			continue
		}
		if p.EmptyFile == "" {
			return nil, fmt.Errorf("no empty stand-in file to keep %s read-only (Policy.EmptyFile)", e)
		}
		a = append(a, "--ro-bind", p.EmptyFile, e)
	}
	return a, nil
}
