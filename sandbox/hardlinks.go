package sandbox

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// MaxOutsideLinks bounds the files that OutsideLinks pins read-only; a
// tree with more is refused.
const MaxOutsideLinks = 4096

// OutsideLinks returns the regular files under root that are hard links to
// files outside it: their link count is higher than the number of their
// names found under root. The sandbox binds root read-write, and such a
// file is the outside file itself (one inode), so writing it from inside
// would change a file the agent must not reach. The caller binds each one
// read-only onto itself, which also keeps it from being removed or
// renamed. Symbolic links are not followed (but a root reached through
// one is walked). A directory of another user's that this user cannot
// list is skipped; one of the user's own is an error.
func OutsideLinks(root string) ([]string, error) {
	type inode struct{ dev, ino uint64 }
	type seen struct {
		nlink uint64
		paths []string
	}
	files := map[inode]*seen{}
	// A root reached through a symlink (a workspace taken from $PWD) is
	// walked where it is and reported under root, where the sandbox
	// binds it.
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, fmt.Errorf("check %s for hard links to files outside it: %w", root, err)
	}
	err = filepath.WalkDir(real, func(path string, de fs.DirEntry, err error) error {
		if real != root && (path == real || strings.HasPrefix(path, real+"/")) {
			path = root + strings.TrimPrefix(path, real)
		}
		if err != nil {
			// A directory of another user's that this user cannot list
			// (a database volume) is skipped: the agent cannot list or
			// change it either. One of the user's own could be made
			// listable again from inside, so it must be checked.
			if errors.Is(err, fs.ErrPermission) && path != root && de != nil && de.IsDir() {
				if fi, lerr := de.Info(); lerr == nil {
					if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
						return fs.SkipDir
					}
				}
				return fmt.Errorf("cannot list %s; make it readable (chmod u+rx) so Ringlet can check it for hard links", path)
			}
			return err
		}
		if !de.Type().IsRegular() {
			return nil
		}
		fi, err := de.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // removed while we walked
		}
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || uint64(st.Nlink) < 2 {
			return nil
		}
		k := inode{uint64(st.Dev), uint64(st.Ino)}
		s := files[k]
		if s == nil {
			s = &seen{nlink: uint64(st.Nlink)}
			files[k] = s
		}
		s.paths = append(s.paths, path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("check %s for hard links to files outside it: %w", root, err)
	}
	var out []string
	for _, s := range files {
		if uint64(len(s.paths)) < s.nlink {
			out = append(out, s.paths...)
		}
	}
	sort.Strings(out)
	if len(out) > MaxOutsideLinks {
		return nil, fmt.Errorf("%s holds %d hard links to files outside it (the first: %s); writes through them would change those files, and more than %d cannot be pinned read-only: replace them with copies (for a local git clone, clone with --no-hardlinks)",
			root, len(out), out[0], MaxOutsideLinks)
	}
	return out, nil
}

// PinnedFiles is OutsideLinks over every read-write tree of a sandbox,
// with the same bound.
func PinnedFiles(trees ...string) ([]string, error) {
	var out []string
	for _, t := range trees {
		files, err := OutsideLinks(t)
		if err != nil {
			return nil, err
		}
		out = append(out, files...)
	}
	sort.Strings(out)
	out = dedupe(out)
	if len(out) > MaxOutsideLinks {
		return nil, fmt.Errorf("the workspace and read-write paths hold %d hard links to files outside them (the first: %s); more than %d cannot be pinned read-only: replace them with copies",
			len(out), out[0], MaxOutsideLinks)
	}
	return out, nil
}
