package keystore

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"

	"github.com/pelletier/go-toml/v2"

	"github.com/neullabs/ringlet/credentials"
	"github.com/neullabs/ringlet/names"
	"github.com/neullabs/ringlet/privatefile"
)

// fileBackend keeps keys in credentials.toml: one table per provider, one
// string per alias. The file holds nothing else, is created 0600 in a 0700
// directory, and is replaced atomically; a file that is a symlink or that
// group or others can read is refused, never re-chmod-ed.
type fileBackend struct {
	path string
	lock string

	// The parsed file, kept while the file's stat is unchanged: without
	// it every key looked up re-reads and re-parses the whole file, and a
	// listing of n keys costs n parses. Any change to the file (a write by
	// this or another process, a chmod, a replacement) changes its inode,
	// size, mtime or ctime, and the next read parses it again, checks
	// included; nothing is cached across a failed read.
	mu     sync.Mutex
	cached map[string]map[string]string
	stat   privatefile.Stamp
	parses int // how many times the file was parsed (for tests)
}

func newFileBackend(dir string) *fileBackend {
	return &fileBackend{path: filepath.Join(dir, "credentials.toml"), lock: filepath.Join(dir, "credentials.lock")}
}

func (*fileBackend) Name() string { return credentials.BackendFile }

const fileHeader = "# Ringlet's provider keys (file backend). Managed by 'ringlet keychain'; keep it 0600.\n"

// maxFileSize bounds credentials.toml.
const maxFileSize = 4 << 20

// readFile parses credentials.toml; a missing file is empty. The result is
// shared: callers must not change it (update works on a copy).
func (f *fileBackend) readFile() (map[string]map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The stamp before the read is the cache's key: a file replaced
	// between the two is parsed again on the next read, never missed.
	key, keyed := privatefile.StampOf(f.path)
	if keyed && f.cached != nil && key == f.stat {
		return f.cached, nil
	}
	f.cached = nil
	data, err := privatefile.Read(f.path, maxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	f.parses++
	m, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", f.path, err)
	}
	if keyed {
		f.cached, f.stat = m, key
	}
	return m, nil
}

// forget drops the cached content (after a write, whose new stat is read
// by the next readFile).
func (f *fileBackend) forget() {
	f.mu.Lock()
	f.cached = nil
	f.mu.Unlock()
}

func cloneFile(m map[string]map[string]string) map[string]map[string]string {
	out := make(map[string]map[string]string, len(m))
	for p, t := range m {
		out[p] = maps.Clone(t)
	}
	return out
}

// parseFile decodes the credentials file and checks every name and key, so
// a hand-edited file cannot smuggle in something the rest of Ringlet does
// not expect. Errors never quote a value.
func parseFile(data []byte) (map[string]map[string]string, error) {
	var raw map[string]any
	if err := toml.Unmarshal(data, &raw); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, _ := de.Position()
			return nil, fmt.Errorf("not valid TOML at line %d; fix or restore the file", row)
		}
		return nil, errors.New("not valid TOML; fix or restore the file")
	}
	out := make(map[string]map[string]string, len(raw))
	for provider, v := range raw {
		table, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%q must be a table of alias = \"key\"", provider)
		}
		if err := names.Check("provider", provider); err != nil {
			return nil, err
		}
		out[provider] = make(map[string]string, len(table))
		for alias, kv := range table {
			if err := names.Check("alias", alias); err != nil {
				return nil, err
			}
			key, ok := kv.(string)
			if !ok || credentials.ValidateKey(key) != nil {
				return nil, fmt.Errorf("the key of %s/%s is not a valid key string", provider, alias)
			}
			out[provider][alias] = key
		}
	}
	return out, nil
}

func encodeFile(m map[string]map[string]string) ([]byte, error) {
	for p, t := range m {
		if len(t) == 0 {
			delete(m, p)
		}
	}
	body, err := toml.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append([]byte(fileHeader), body...), nil
}

// update runs change on the file's content under an exclusive lock and
// writes the result atomically, so concurrent writers in several processes
// lose nothing.
func (f *fileBackend) update(change func(map[string]map[string]string) error) error {
	unlock, err := lockFile(f.lock)
	if err != nil {
		return err
	}
	defer unlock()
	// A writer killed between write and rename leaves a temporary copy of
	// every key behind; under the lock none is in use, so remove them.
	_ = privatefile.RemoveStaleTemps(f.path)
	m, err := f.readFile()
	if err != nil {
		return err
	}
	m = cloneFile(m)
	if err := change(m); err != nil {
		return err
	}
	data, err := encodeFile(m)
	if err != nil {
		return fmt.Errorf("encode credentials file: %w", err)
	}
	// Whether or not the write lands, what is cached may be stale; and
	// file times are coarse (a clock tick) and inodes are reused, so a
	// write of our own is not left to the stamp to notice.
	defer f.forget()
	return privatefile.WriteAtomic(f.path, data, privatefile.FileMode)
}

func (f *fileBackend) Get(r credentials.Ref) (credentials.Secret, error) {
	m, err := f.readFile()
	if err != nil {
		return credentials.Secret{}, err
	}
	k, ok := m[r.Provider][r.Alias]
	if !ok {
		return credentials.Secret{}, fmt.Errorf("read %s: %w", r, credentials.ErrNotFound)
	}
	return credentials.NewSecret(k), nil
}

func (f *fileBackend) Set(r credentials.Ref, s credentials.Secret) error {
	if err := privatefile.EnsureDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("credentials directory: %w", err)
	}
	return f.update(func(m map[string]map[string]string) error {
		if m[r.Provider] == nil {
			m[r.Provider] = map[string]string{}
		}
		m[r.Provider][r.Alias] = s.Reveal()
		return nil
	})
}

func (f *fileBackend) Delete(r credentials.Ref) error {
	if _, err := os.Lstat(f.path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", r, credentials.ErrNotFound)
	}
	return f.update(func(m map[string]map[string]string) error {
		if _, ok := m[r.Provider][r.Alias]; !ok {
			return fmt.Errorf("delete %s: %w", r, credentials.ErrNotFound)
		}
		delete(m[r.Provider], r.Alias)
		return nil
	})
}

// present reports which of refs the file holds, from one read.
func (f *fileBackend) present(refs []credentials.Ref) (map[credentials.Ref]bool, error) {
	m, err := f.readFile()
	if err != nil {
		return nil, err
	}
	out := make(map[credentials.Ref]bool, len(refs))
	for _, r := range refs {
		_, out[r] = m[r.Provider][r.Alias]
	}
	return out, nil
}

// refs lists what the file holds, sorted.
func (f *fileBackend) refs() ([]credentials.Ref, error) {
	m, err := f.readFile()
	if err != nil {
		return nil, err
	}
	var out []credentials.Ref
	for p, t := range m {
		for a := range t {
			out = append(out, credentials.Ref{Provider: p, Alias: a})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// lockFile takes an exclusive flock on path (created 0600) and returns its
// release.
func lockFile(path string) (func(), error) {
	if err := privatefile.EnsureDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	fd, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, privatefile.FileMode)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(fd.Fd()), syscall.LOCK_EX); err != nil {
		fd.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { fd.Close() }, nil
}
