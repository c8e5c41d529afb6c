package privatefile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Rewrite changes the file name in dir, a directory that someone else
// can write: an agent's config directory in the HOME it runs with. change
// gets the file's content (nil when there is none) and returns the new
// one; the file is replaced, 0600, only when that differs, so an
// unchanged file keeps its mtime.
//
// Nothing the other writer left is followed: a symbolic link in place of
// dir or of the file is refused, and every step below goes through an
// os.Root on dir's parent, so a link swapped in after the check cannot
// lead a read or write out of it either. dir is created 0700 when it is
// missing; a file that is not regular or is larger than limit is refused.
func Rewrite(dir, name string, limit int64, change func(old []byte) ([]byte, error)) error {
	if name != filepath.Base(name) || name == "." || name == ".." {
		return fmt.Errorf("rewrite %s: %q is not a file name", dir, name)
	}
	path := filepath.Join(dir, name)
	for _, p := range []string{dir, path} {
		if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link; Ringlet does not follow it: remove it", p)
		}
	}
	parent, base := filepath.Dir(dir), filepath.Base(dir)
	if err := EnsureDir(parent); err != nil {
		return err
	}
	root, err := os.OpenRoot(parent)
	if err != nil {
		return err
	}
	defer root.Close()
	if err := root.Mkdir(base, DirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, WithoutPath(err))
	}
	rel := filepath.Join(base, name)
	var old []byte
	switch fi, err := root.Lstat(rel); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("%s: %w", path, WithoutPath(err))
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file; remove it", path)
	case fi.Size() > limit:
		return fmt.Errorf("%s is larger than %d bytes; Ringlet does not read it: remove it", path, limit)
	default:
		f, err := root.Open(rel)
		if err != nil {
			return fmt.Errorf("%s: %w", path, WithoutPath(err))
		}
		old, err = io.ReadAll(io.LimitReader(f, limit+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, WithoutPath(err))
		}
		if int64(len(old)) > limit {
			return fmt.Errorf("%s is larger than %d bytes; Ringlet does not read it: remove it", path, limit)
		}
		if old == nil {
			old = []byte{}
		}
	}
	data, err := change(old)
	if err != nil {
		return err
	}
	if old != nil && bytes.Equal(data, old) {
		return nil
	}
	return WriteInRoot(root, rel, data)
}
