// Package privatefile creates, checks and replaces files that only their
// owner may read: the daemon's bearer token, the config and, later, the
// credentials fallback file.
//
// Files are created with their final mode in the same open(2) call, never
// written first and chmod-ed after, and replaced through a temporary file in
// the same directory that is synced and renamed over the old one, so a
// reader sees either the old or the new content and never a torn write.
// Files that are symbolic links, not owned by the caller, or readable by
// group or others are refused rather than silently repaired: a key that was
// world-readable may already have been copied, and the user needs to know.
package privatefile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DirMode is the mode of directories that hold private files.
const DirMode fs.FileMode = 0o700

// FileMode is the mode of private files.
const FileMode fs.FileMode = 0o600

// EnsureDir creates dir (and its parents) with mode 0700 when it is missing.
// An existing directory that group or others can write is refused: anyone
// who can write it can swap the files inside.
func EnsureDir(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, WithoutPath(err))
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("check directory %s: %w", dir, WithoutPath(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("refusing directory %s: group or others can write it (mode %04o); fix it with: chmod 700 %s", dir, fi.Mode().Perm(), dir)
	}
	return nil
}

// Check verifies that the file at path is a regular file owned by the
// current user that neither group nor others can read or write. The
// returned error says how to fix what it found. A missing file yields an
// error that matches fs.ErrNotExist.
func Check(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	return checkInfo(path, fi)
}

func checkInfo(path string, fi fs.FileInfo) error {
	if fi.Mode()&fs.ModeSymlink != 0 {
		return fmt.Errorf("refusing %s: it is a symbolic link; replace it with a regular file (mode 0600) or remove it", path)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("refusing %s: it is not a regular file", path)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("refusing %s: it is owned by uid %d, not by you (uid %d); remove it or fix it with: chown %d %s", path, st.Uid, os.Geteuid(), os.Geteuid(), path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("refusing %s: group or others can access it (mode %04o); fix it with: chmod 600 %s", path, perm, path)
	}
	return nil
}

// Read returns the content of the private file at path after the checks of
// Check, reading at most limit bytes. The file is opened without following
// symbolic links and the checks run on the opened file, so it cannot be
// swapped between check and read.
func Read(path string, limit int64) ([]byte, error) {
	data, _, err := ReadInfo(path, limit)
	return data, err
}

// ReadInfo is Read that also returns what the opened file's stat said
// before it was read, for a caller that keeps what it read while the
// file stays the same.
func ReadInfo(path string, limit int64) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("refusing %s: it is a symbolic link; replace it with a regular file (mode 0600) or remove it", path)
		}
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if err := checkInfo(path, fi); err != nil {
		return nil, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, WithoutPath(err))
	}
	if int64(len(data)) > limit {
		return nil, nil, fmt.Errorf("refusing %s: it is larger than %d bytes", path, limit)
	}
	return data, fi, nil
}

// Create writes data to a new file at path with mode 0600. It fails with an
// error matching fs.ErrExist when the path exists, so two processes racing
// to create the same file cannot both win. The file appears whole: data is
// written to a temporary file that is then hard-linked to path, so a reader
// racing the creator (a CLI reading the daemon's new token) never sees it
// empty or half written.
func Create(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, filepath.Base(path), FileMode)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, WithoutPath(err))
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := writeSync(tmp, data); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Link(name, path); err != nil {
		if errors.Is(err, fs.ErrExist) || !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.ENOTSUP) {
			// Callers name the path; errors.Is(err, fs.ErrExist) still holds.
			return WithoutPath(err)
		}
		// A file system without hard links: create in place.
		return createInPlace(path, data)
	}
	return SyncDir(dir)
}

func createInPlace(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, FileMode)
	if err != nil {
		return WithoutPath(err)
	}
	if err := writeSync(f, data); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// WriteAtomic replaces the file at path with data: a temporary file with
// mode perm is written in the same directory, synced, and renamed over path.
// Readers see the old content or the new, never a mix; on error the old file
// is untouched and the temporary file is removed.
func WriteAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, filepath.Base(path), perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, WithoutPath(err))
	}
	name := tmp.Name()
	if err := writeSync(tmp, data); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("replace %s: %w", path, WithoutPath(err))
	}
	return SyncDir(dir)
}

// RemoveStaleTemps deletes temporary files that WriteAtomic left beside
// path when its process was killed between writing and renaming. Call it
// only while holding the lock that serialises writers of path: then no
// temporary file of path can be in use.
func RemoveStaleTemps(path string) error {
	dir := filepath.Dir(path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	prefix := "." + filepath.Base(path) + ".tmp-"
	var errs []error
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), prefix) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// tempName matches the names createTemp makes: "." + base + ".tmp-" and
// 16 hex digits.
var tempName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^\..+\.tmp-[0-9a-f]{16}$`) })

// maxSweepDepth bounds how deep SweepStaleTemps looks.
const maxSweepDepth = 3

// SweepStaleTemps deletes the temporary files that Create and WriteAtomic
// (and writers that name theirs the same way) left anywhere under dir,
// down to three levels, when their process died between writing and
// renaming, such as a daemon killed while it started. Only regular files
// with that name pattern, last changed longer than olderThan ago, are
// removed: a writer in another process (the CLI's config set) has its
// temporary file for milliseconds. Symbolic links are neither followed
// nor removed. It returns how many it removed.
func SweepStaleTemps(dir string, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	// Everything through an os.Root on dir: a directory swapped for a
	// symlink during the walk cannot lead a removal out of it.
	root, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer root.Close()
	removed := 0
	var errs []error
	err = fs.WalkDir(root.FS(), ".", func(rel string, de fs.DirEntry, err error) error {
		if err != nil {
			if rel == "." {
				return err
			}
			return nil // a directory that went away or is not ours to read
		}
		if de.IsDir() {
			if rel != "." && strings.Count(rel, "/") >= maxSweepDepth-1 {
				return fs.SkipDir
			}
			return nil
		}
		if !de.Type().IsRegular() || !tempName().MatchString(de.Name()) {
			return nil
		}
		fi, err := de.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		if err := root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			return nil
		}
		removed++
		return nil
	})
	return removed, errors.Join(append(errs, err)...)
}

func createTemp(dir, base string, perm fs.FileMode) (*os.File, error) {
	for range 10 {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, err
		}
		name := filepath.Join(dir, "."+base+".tmp-"+hex.EncodeToString(b[:]))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, errors.New("no free temporary file name")
}

func writeSync(f *os.File, data []byte) error {
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	return WithoutPath(errors.Join(werr, serr, cerr))
}

// SyncDir syncs the directory dir, so that the files created, renamed
// or removed in it stay so after a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, WithoutPath(err))
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return fmt.Errorf("sync directory %s: %w", dir, WithoutPath(err))
	}
	return nil
}

// WithoutPath drops the *fs.PathError wrapper, for messages that name the
// path themselves and should not name it twice.
func WithoutPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// ReadJSON decodes the private JSON file at path (at most limit bytes,
// with the checks of Read) into v, refusing unknown fields and trailing
// data. It reports false, and no error, when the file does not exist.
func ReadJSON(path string, limit int64, v any) (bool, error) {
	data, err := Read(path, limit)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, fmt.Errorf("%s is not valid JSON (%v); fix or remove it", path, err)
	}
	if dec.More() {
		return false, fmt.Errorf("%s is not valid JSON (data after the value); fix or remove it", path)
	}
	return true, nil
}

// WriteJSON writes v as indented JSON to path with WriteAtomic (mode 0600),
// creating its 0700 directory when needed.
func WriteJSON(path string, v any) error {
	if err := EnsureDir(filepath.Dir(path)); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteAtomic(path, append(data, '\n'), FileMode)
}

// ReadInRoot reads rel in root, a directory someone else can write (an
// agent's HOME): a regular file of at most limit bytes, never through a
// symbolic link, nor out of root. A missing file reports ok false and no
// error.
func ReadInRoot(root *os.Root, rel string, limit int64) (data []byte, ok bool, err error) {
	fi, err := root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("%s: %w", rel, WithoutPath(err))
	case !fi.Mode().IsRegular():
		return nil, false, fmt.Errorf("%s is not a regular file", rel)
	case fi.Size() > limit:
		return nil, false, fmt.Errorf("%s is larger than %d bytes", rel, limit)
	}
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rel, WithoutPath(err))
	}
	defer f.Close()
	data, err = io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", rel, WithoutPath(err))
	}
	if int64(len(data)) > limit {
		return nil, false, fmt.Errorf("%s is larger than %d bytes", rel, limit)
	}
	return data, true, nil
}

// WriteInRoot replaces rel in root with data, 0600: a temporary file
// beside it, synced, renamed over it, all within root, so a symbolic link
// someone swaps in cannot lead the write out of it.
func WriteInRoot(root *os.Root, rel string, data []byte) error {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	tmp := filepath.Join(filepath.Dir(rel), "."+filepath.Base(rel)+".tmp-"+hex.EncodeToString(b[:]))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, FileMode)
	if err != nil {
		return fmt.Errorf("write %s: %w", rel, WithoutPath(err))
	}
	_, werr := f.Write(data)
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		_ = root.Remove(tmp) // best effort; the write already failed
		return fmt.Errorf("write %s: %w", rel, WithoutPath(err))
	}
	if err := root.Rename(tmp, rel); err != nil {
		_ = root.Remove(tmp) // best effort; the rename already failed
		return fmt.Errorf("replace %s: %w", rel, WithoutPath(err))
	}
	return nil
}
